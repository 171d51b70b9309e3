"""torchvision's MobileNetV2, sized by the number of classes."""

from torch import nn
from torchvision.models import mobilenet_v2 as tv_mobilenet_v2

from fruitlab.models.registry import register_model


@register_model("mobilenet_v2")
def mobilenet_v2(num_classes: int, input_shape: tuple[int, ...], dropout: float = 0.2) -> nn.Module:
    return tv_mobilenet_v2(num_classes=num_classes, dropout=dropout)
