"""The seed paper's VGG ladder for 32x32 inputs (Keras-style VGG blocks, as in its Fruits-360 study).

A block is two 3x3 same-padded convolutions with ReLU, then 2x2 max-pooling. The classifier is a dense
layer of 128 units (ReLU) and the output layer. With batch norm, every convolution and the dense layer is
followed by BatchNorm and has no bias.

`model.dropout` overrides the paper's dropout rates (see `VGGConfig.with_dropout`); dropout has no
parameters, so the parameter counts stay the paper's.
"""

from dataclasses import dataclass, replace

from torch import nn

from fruitlab.errors import ConfigError
from fruitlab.models.registry import register_model


@dataclass(frozen=True)
class VGGConfig:
    widths: tuple[int, ...]
    block_dropout: tuple[float, ...] = ()  # one rate per block, empty for none
    dense_dropout: float = 0.0
    batch_norm: bool = False
    dense_units: int = 128

    def with_dropout(self, rate: float) -> "VGGConfig":
        """This network with `rate` as its largest dropout rate. A config with dropout keeps the ratios
        between its layers (vgg3_bn's 0.2, 0.3, 0.4 and dense 0.5 become 0.1, 0.15, 0.2 and 0.25 for
        rate 0.25); one without gets `rate` after every block and the dense layer (vgg3 with 0.2 is
        vgg3_dropout). Rate 0 removes dropout."""
        if not 0 <= rate < 1:
            raise ConfigError(f"model.dropout={rate} is not a dropout rate: use a number in [0, 1) or null")
        if rate == 0:
            return replace(self, block_dropout=(), dense_dropout=0.0)
        peak = max((*self.block_dropout, self.dense_dropout))
        if peak == 0:
            return replace(self, block_dropout=(rate,) * len(self.widths), dense_dropout=rate)
        scale = rate / peak
        return replace(
            self,
            block_dropout=tuple(round(r * scale, 6) for r in self.block_dropout),
            dense_dropout=round(self.dense_dropout * scale, 6),
        )


VGG_CONFIGS: dict[str, VGGConfig] = {
    "vgg1": VGGConfig(widths=(32,)),
    "vgg2": VGGConfig(widths=(32, 64)),
    "vgg3": VGGConfig(widths=(32, 64, 128)),
    "vgg3_dropout": VGGConfig(widths=(32, 64, 128), block_dropout=(0.2, 0.2, 0.2), dense_dropout=0.2),
    "vgg3_bn": VGGConfig(widths=(32, 64, 128), block_dropout=(0.2, 0.3, 0.4), dense_dropout=0.5, batch_norm=True),
}


def _conv(in_ch: int, out_ch: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=not batch_norm), nn.ReLU(inplace=True)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_ch))
    return layers


class VGG(nn.Module):
    def __init__(self, config: VGGConfig, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        for i, out_ch in enumerate(config.widths):
            layers += _conv(channels, out_ch, config.batch_norm) + _conv(out_ch, out_ch, config.batch_norm)
            layers.append(nn.MaxPool2d(2))
            if config.block_dropout:
                layers.append(nn.Dropout(config.block_dropout[i]))
            channels, height, width = out_ch, height // 2, width // 2
        self.features = nn.Sequential(*layers)
        dense: list[nn.Module] = [
            nn.Flatten(),
            nn.Linear(channels * height * width, config.dense_units, bias=not config.batch_norm),
            nn.ReLU(inplace=True),
        ]
        if config.batch_norm:
            dense.append(nn.BatchNorm1d(config.dense_units))
        if config.dense_dropout:
            dense.append(nn.Dropout(config.dense_dropout))
        dense.append(nn.Linear(config.dense_units, num_classes))
        self.classifier = nn.Sequential(*dense)

    def forward(self, x):
        return self.classifier(self.features(x))


def _register(name: str, config: VGGConfig) -> None:
    @register_model(name, min_side=2 ** len(config.widths))  # each block halves the side
    def build(num_classes: int, input_shape: tuple[int, ...], dropout: float | None = None) -> nn.Module:
        return VGG(config if dropout is None else config.with_dropout(dropout), num_classes, input_shape)


for _name, _config in VGG_CONFIGS.items():
    _register(_name, _config)
