"""LeNet-5 for 32x32 inputs: two 5x5 convolutions with max-pooling, then dense layers of 120 and 84."""

import math

from torch import nn

from fruitlab.models.registry import register_model


@register_model("lenet", min_side=16)  # two 5x5 convolutions and two poolings
def lenet(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    channels, height, width = input_shape
    # Each 5x5 valid convolution trims 4 pixels, each pooling halves.
    feature_h = ((height - 4) // 2 - 4) // 2
    feature_w = ((width - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(channels, 6, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * math.prod((feature_h, feature_w)), 120),
        nn.ReLU(inplace=True),
        nn.Linear(120, 84),
        nn.ReLU(inplace=True),
        nn.Linear(84, num_classes),
    )
