"""The seed paper's feed-forward baseline: one hidden layer of 32 ReLU units on a flat input."""

import math

from torch import nn

from fruitlab.models.registry import register_model


@register_model("ffnn")
def ffnn(num_classes: int, input_shape: tuple[int, ...], hidden_units: int = 32) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden_units),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_units, num_classes),
    )
