"""MobileNetV2 (torchvision's implementation) and the slim variant of the CIFAR study, settings as data.

A setting is the list of inverted-residual stages, rows (t, c, n, s): expansion factor, output channels,
blocks, stride of the first block; it is passed to torchvision's `inverted_residual_setting`. Everything else
(the 32-channel stem, the 1280-channel last convolution, dropout 0.2, the linear classifier) is torchvision's.

`small_input=True` adapts the network to 32x32 images: the stem's 3x3 convolution (`features.0.0`) gets
stride 1 instead of 2, so the stages see 32x32 maps instead of 16x16 and the last stage 2x2 (4x4 for the slim
setting) instead of 1x1 (2x2). That is the only change: the parameters are the same.
"""

from torch import nn
from torchvision.models import MobileNetV2

from fruitlab.models.registry import register_model

Setting = tuple[tuple[int, int, int, int], ...]

MOBILENET_V2_SETTINGS: dict[str, Setting] = {
    # The MobileNetV2 paper's (torchvision's default).
    "mobilenet_v2": (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ),
    # The CIFAR study's slim network: no 64-channel stage, fewer blocks per stage.
    "mobilenet_v2_slim": (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 1, 2),
        (6, 96, 2, 1),
        (6, 160, 2, 2),
        (6, 320, 1, 1),
    ),
}


def build_mobilenet_v2(
    setting: Setting, num_classes: int, small_input: bool = False, dropout: float = 0.2
) -> MobileNetV2:
    model = MobileNetV2(
        num_classes=num_classes, inverted_residual_setting=[list(row) for row in setting], dropout=dropout
    )
    if small_input:
        model.features[0][0].stride = (1, 1)
    return model


def _register(name: str, setting: Setting) -> None:
    @register_model(name)
    def build(
        num_classes: int, input_shape: tuple[int, ...], small_input: bool = False, dropout: float = 0.2
    ) -> nn.Module:
        return build_mobilenet_v2(setting, num_classes, small_input, dropout)


for _name, _setting in MOBILENET_V2_SETTINGS.items():
    _register(_name, _setting)
