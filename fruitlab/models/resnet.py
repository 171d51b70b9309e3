"""ResNet (torchvision's implementation), blocks and depths as data.

`small_input=True` gives the CIFAR-style stem for 32x32 images: the first convolution is 3x3 with stride 1 and
padding 1 (64 channels, no bias, He-initialised like torchvision's) instead of 7x7 with stride 2, and the 3x3
max-pooling after it is removed. The four stages then see 32, 16, 8 and 4 pixels a side instead of 8, 4, 2, 1.
"""

from dataclasses import dataclass

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from fruitlab.models.registry import register_model


@dataclass(frozen=True)
class ResNetConfig:
    block: type[BasicBlock] | type[Bottleneck]
    layers: tuple[int, int, int, int]  # blocks per stage


RESNET_CONFIGS: dict[str, ResNetConfig] = {
    "resnet34": ResNetConfig(BasicBlock, (3, 4, 6, 3)),
}


def build_resnet(
    config: ResNetConfig, num_classes: int, input_shape: tuple[int, ...], small_input: bool = False
) -> ResNet:
    model = ResNet(config.block, list(config.layers), num_classes=num_classes)
    if small_input:
        model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    return model


def _register(name: str, config: ResNetConfig) -> None:
    @register_model(name)
    def build(num_classes: int, input_shape: tuple[int, ...], small_input: bool = False) -> nn.Module:
        return build_resnet(config, num_classes, input_shape, small_input)


for _name, _config in RESNET_CONFIGS.items():
    _register(_name, _config)
