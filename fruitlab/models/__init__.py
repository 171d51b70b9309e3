"""Architectures, one module per family, and the deployable classifier that wraps them; importing this package
registers every architecture. May import only config, errors, signals, console."""

from fruitlab.models import ffnn, lenet, mobilenet, resnet, vgg  # noqa: F401  (registration side effects)
from fruitlab.models.classifier import (
    MODEL_SETTINGS,
    ImageClassifier,
    Probabilities,
    build_classifier,
    to_unit_float,
)
from fruitlab.models.registry import (
    check_image_size,
    count_parameters,
    get_model,
    list_models,
    min_image_side,
    register_model,
)

__all__ = [
    "MODEL_SETTINGS",
    "ImageClassifier",
    "Probabilities",
    "build_classifier",
    "check_image_size",
    "count_parameters",
    "get_model",
    "list_models",
    "min_image_side",
    "register_model",
    "to_unit_float",
]
