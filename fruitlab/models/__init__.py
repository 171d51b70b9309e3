"""Architectures, one module per family; importing this package registers them all."""

from fruitlab.models import ffnn, lenet, mobilenet, resnet, vgg  # noqa: F401  (registration side effects)
from fruitlab.models.registry import count_parameters, get_model, list_models, register_model

__all__ = ["count_parameters", "get_model", "list_models", "register_model"]
