"""How a run uses the machine: torch's intra-op threads, and the memory format of convolutional models."""

import os
import resource
import sys

import torch
from torch import nn

from fruitlab.errors import ConfigError


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to `threads`, or to every available core when None; returns the count.
    Trials that share a machine each get their share through the same setting."""
    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads}: expected a positive thread count, or null for every available core")
    count = threads or available_cores()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def uses_convolutions(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def wants_channels_last(setting: bool | str, model: nn.Module, accelerator: str) -> bool:
    """`channels_last`: true, false, or auto: convolutional models on the CPU (oneDNN) or a CUDA GPU, where the
    channels-last layout is the faster one for convolutions (measured on CPU: docs/benchmarks.md)."""
    if setting == "auto":
        return uses_convolutions(model) and accelerator in ("cpu", "cuda", "gpu")
    if isinstance(setting, bool):
        return setting
    raise ConfigError(f"channels_last={setting!r}: expected true, false or auto")


def peak_rss_mb() -> float:
    """The largest resident memory this process has used so far, in MiB: a sweep worker's grows only by what
    its trials leave behind."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
