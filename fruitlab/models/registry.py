"""Name -> factory registry for every architecture fruitlab can train."""

from collections.abc import Callable

from torch import nn

from fruitlab.errors import ConfigError, unknown

# A factory builds a network for `num_classes` outputs on inputs of `input_shape` (C, H, W).
ModelFactory = Callable[..., nn.Module]

_MODELS: dict[str, ModelFactory] = {}
_MIN_SIDES: dict[str, int] = {}  # the smallest image side (pixels) each model accepts


def register_model(name: str, min_side: int = 1) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register `factory` under `name`, for images of at least `min_side` pixels a side; a name can
    be registered once."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _MODELS:
            raise ValueError(f"model '{name}' is already registered")
        _MODELS[name] = factory
        _MIN_SIDES[name] = min_side
        return factory

    return decorator


def list_models() -> list[str]:
    return sorted(_MODELS)


def min_image_side(name: str) -> int:
    if name not in _MODELS:
        raise unknown("model", name, list_models())
    return _MIN_SIDES[name]


def check_image_size(name: str, image_size: int | None) -> None:
    """Raise ConfigError when model `name` cannot take images of `image_size` pixels a side (None: the dataset's
    native size, which its loader checks)."""
    smallest = min_image_side(name)
    if image_size is not None and image_size < smallest:
        raise ConfigError(
            f"data.image_size={image_size} is too small for model={name}: it accepts images of at least "
            f"{smallest} pixels a side; give e.g. data.image_size={max(smallest, 32)}."
        )


def get_model(name: str, num_classes: int, input_shape: tuple[int, ...], **kwargs: object) -> nn.Module:
    """Build the registered model `name`; unknown names raise a ConfigError listing the valid ones."""
    if name not in _MODELS:
        raise unknown("model", name, list_models())
    return _MODELS[name](num_classes=num_classes, input_shape=tuple(input_shape), **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Parameters as Keras counts them (the seed paper's tables): every parameter plus batch-norm running
    mean and variance, which Keras lists as non-trainable weights."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            total += module.running_mean.numel() + module.running_var.numel()
    return total
