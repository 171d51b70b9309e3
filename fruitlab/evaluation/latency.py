"""Inference latency of the test-time model on the CPU, for fast-response use."""

import time
from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import nn


@torch.inference_mode()
def measure_latency(
    model: nn.Module, input_shape: tuple[int, ...], batch_size: int, repeats: int = 30, warmup: int = 5
) -> dict[str, float]:
    """p50, p95 and mean milliseconds per forward pass of a batch of `batch_size`, after `warmup` passes."""
    model = model.eval()
    example = torch.rand(batch_size, *input_shape)
    return time_calls(lambda: model(example), repeats, warmup)


def time_calls(call: Callable[[], object], repeats: int = 30, warmup: int = 5) -> dict[str, float]:
    """p50, p95 and mean milliseconds of `call()`, after `warmup` calls: any runtime is timed the same way."""
    return time_interleaved({"call": call}, repeats, warmup)["call"]


def time_interleaved(
    calls: Mapping[str, Callable[[], object]], repeats: int = 30, warmup: int = 5
) -> dict[str, dict[str, float]]:
    """p50, p95 and mean milliseconds of each call, timed side by side: every repeat runs each call once, in an
    order that rotates, so that a change in the machine's load falls on all of them alike and none always runs
    first."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    timings = {name: np.empty(repeats) for name in names}
    for i in range(repeats):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            start = time.perf_counter()
            calls[name]()
            timings[name][i] = (time.perf_counter() - start) * 1000
    return {name: summary(values) for name, values in timings.items()}


def summary(timings_ms: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(timings_ms, 50)),
        "p95_ms": float(np.percentile(timings_ms, 95)),
        "mean_ms": float(timings_ms.mean()),
    }


def latency_metrics(model: nn.Module, input_shape: tuple[int, ...], batch_sizes, repeats: int, warmup: int):
    """{'latency_b1_p50_ms': ..., 'latency_b64_p95_ms': ...} for each batch size."""
    metrics = {}
    for batch_size in batch_sizes:
        for stat, value in measure_latency(model, input_shape, batch_size, repeats, warmup).items():
            metrics[f"latency_b{batch_size}_{stat}"] = value
    return metrics
