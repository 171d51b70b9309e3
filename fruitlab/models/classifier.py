"""The deployable classifier every architecture is wrapped in: fitted input preprocessing, then the network."""

from collections.abc import Mapping

import torch
from torch import nn

from fruitlab.models.registry import get_model

# Keys of the `model` config group that configure fruitlab, not the architecture's factory.
MODEL_SETTINGS = ("name", "init_from", "freeze")


class ImageClassifier(nn.Module):
    """Fitted input preprocessing, then the architecture. Takes float images in [0, 1] of shape (N, C, H, W)
    and returns logits."""

    def __init__(self, preprocess: nn.Module, backbone: nn.Module) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.preprocess(x))


class Probabilities(nn.Module):
    """What is logged to MLflow: class probabilities for [0, 1] float images."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(x), dim=1)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 batches from the data module become [0, 1] floats; float batches pass through."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images


def build_classifier(
    model_config: Mapping, num_classes: int, input_shape: tuple[int, ...], preprocess: nn.Module
) -> ImageClassifier:
    """The `model` config group's architecture for `num_classes` on inputs of `input_shape` (what the network
    sees after `preprocess`), behind `preprocess`."""
    options = {key: value for key, value in model_config.items() if key not in MODEL_SETTINGS}
    backbone = get_model(model_config["name"], num_classes, input_shape, **options)
    return ImageClassifier(preprocess, backbone)
