"""Training-time augmentation with torchvision.transforms.v2, on uint8 batches already on the device.

The `augment` config group lists transforms as data: each entry names a `torchvision.transforms.v2` class
and gives its arguments. The model applies them to training batches only (see ClassifierModule), after
the batch reached its device, so the cached tensors are never decoded again.
"""

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torchvision.transforms import v2

from fruitlab.errors import ConfigError, unknown


class BatchAugmentation(nn.Module):
    """Applies `transform` to each image of a uint8 (N, C, H, W) batch with its own random draw: a v2
    transform given the whole batch would draw one rotation, one flip, ... for all of its images."""

    def __init__(self, transform: nn.Module) -> None:
        super().__init__()
        self.transform = transform

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # One small image at a time: handing each op to a second CPU thread costs more than it saves, and
        # much more on a busy machine (measured 10x slower with 2 threads than with 1).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return torch.stack([self.transform(image) for image in images])
        finally:
            torch.set_num_threads(threads)


def transform_names() -> list[str]:
    return [name for name, cls in vars(v2).items() if isinstance(cls, type) and issubclass(cls, v2.Transform)]


def build_transform(spec: Mapping) -> v2.Transform:
    options = dict(spec)
    name = options.pop("name", None)
    transform_class = getattr(v2, str(name), None)
    if not (isinstance(transform_class, type) and issubclass(transform_class, v2.Transform)):
        raise unknown("augment transform", name, transform_names())
    try:
        return transform_class(**options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"augment transform {name} with {options}: {error}") from error


def build_augmentation(config: Mapping | None) -> BatchAugmentation | None:
    """The `augment` group's transforms as one module; None when there are none."""
    specs: Sequence[Mapping] = (config or {}).get("transforms") or []
    if not specs:
        return None
    return BatchAugmentation(v2.Compose([build_transform(spec) for spec in specs]))
