"""Name -> factory registry for every architecture fruitlab can train."""

from collections.abc import Callable

from torch import nn

from fruitlab.errors import unknown

# A factory builds a network for `num_classes` outputs on inputs of `input_shape` (C, H, W).
ModelFactory = Callable[..., nn.Module]

_MODELS: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register `factory` under `name`; a name can be registered once."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _MODELS:
            raise ValueError(f"model '{name}' is already registered")
        _MODELS[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    return sorted(_MODELS)


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
