"""Inference latency of the test-time model on the CPU, for fast-response use."""

import time
from collections.abc import Callable

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
    for _ in range(warmup):
        call()
    timings = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        timings[i] = (time.perf_counter() - start) * 1000
    return {
        "p50_ms": float(np.percentile(timings, 50)),
        "p95_ms": float(np.percentile(timings, 95)),
        "mean_ms": float(timings.mean()),
    }


def latency_metrics(model: nn.Module, input_shape: tuple[int, ...], batch_sizes, repeats: int, warmup: int):
    """{'latency_b1_p50_ms': ..., 'latency_b64_p95_ms': ...} for each batch size."""
    metrics = {}
    for batch_size in batch_sizes:
        for stat, value in measure_latency(model, input_shape, batch_size, repeats, warmup).items():
            metrics[f"latency_b{batch_size}_{stat}"] = value
    return metrics
