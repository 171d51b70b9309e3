"""Optimizers and learning-rate schedules by name, built from the `optim` and `scheduler` config groups."""

from collections.abc import Iterable, Mapping

import torch

from fruitlab.errors import ConfigError, unknown

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adadelta": torch.optim.Adadelta,
    "rmsprop": torch.optim.RMSprop,
}

SCHEDULERS = ("none", "cosine", "step", "plateau")


def build_optimizer(params: Iterable, lr: float, config: Mapping) -> torch.optim.Optimizer:
    """`config` is the `optim` group: `name` plus the optimizer's keyword arguments (null ones: torch's defaults)."""
    options = {key: value for key, value in config.items() if value is not None}
    name = options.pop("name")
    if name not in OPTIMIZERS:
        raise unknown("optimizer", name, list(OPTIMIZERS))
    try:
        return OPTIMIZERS[name](params, lr=lr, **options)
    except (TypeError, ValueError) as error:  # torch checks the values: `optim.momentum=abc`, `lr=-1`
        shown = ", ".join(f"{key}={value!r}" for key, value in {"lr": lr, **options}.items())
        raise ConfigError(f"invalid {name} settings ({shown}): {error}; fix the optim.* overrides.") from error


def build_scheduler(optimizer: torch.optim.Optimizer, config: Mapping, max_epochs: int, monitor: str) -> dict | None:
    """A Lightning lr-scheduler dict for the `scheduler` group, stepped once per epoch; None for `none`."""
    options = dict(config)
    name = options.pop("name")
    if name == "none":
        return None
    if name == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(max_epochs, 1), **options)
    elif name == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, **options)
    elif name == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **options)
    else:
        raise unknown("scheduler", name, list(SCHEDULERS))
    return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
