"""Inference latency of the test-time model on the CPU, for fast-response use, and how busy the machine's other
work kept its cores meanwhile (a latency measured beside a running study is not the model's alone)."""

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

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
    """{'latency_b1_p50_ms': ..., 'latency_b64_p95_ms': ...} for each batch size, and where the machine says
    (Linux), `latency_load`: the cores other work kept busy during the measurement, of `latency_cpus`."""
    metrics = {}
    before = CpuTimes.now()
    for batch_size in batch_sizes:
        for stat, value in measure_latency(model, input_shape, batch_size, repeats, warmup).items():
            metrics[f"latency_b{batch_size}_{stat}"] = value
    after = CpuTimes.now()
    if before is not None and after is not None:
        metrics |= {"latency_load": other_busy_cores(before, after), "latency_cpus": float(os.cpu_count() or 1)}
    return metrics


PROC_STAT = Path("/proc/stat")
IDLE_FIELDS = (3, 4)  # idle and iowait, of /proc/stat's `cpu` line: user nice system idle iowait irq softirq steal
BUSY_FIELDS = 8  # guest time is counted in user time already


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds spent so far: the machine's busy time over all cores, this process's own, and the wall clock.
    The 1-minute load average would not do: right after training it still counts the training itself."""

    machine_busy_s: float
    own_s: float
    wall_s: float

    @classmethod
    def now(cls) -> "CpuTimes | None":
        """The times now; None where the system keeps no /proc/stat (not Linux)."""
        try:
            fields = PROC_STAT.read_text().split("\n", 1)[0].split()[1 : 1 + BUSY_FIELDS]
        except OSError:
            return None
        ticks = sum(int(value) for index, value in enumerate(fields) if index not in IDLE_FIELDS)
        own = os.times()
        return cls(ticks / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.monotonic())


def other_busy_cores(before: CpuTimes, after: CpuTimes) -> float:
    """How many cores, on average between `before` and `after`, were busy with work other than this process."""
    elapsed = after.wall_s - before.wall_s
    others = (after.machine_busy_s - before.machine_busy_s) - (after.own_s - before.own_s)
    return max(0.0, others / elapsed) if elapsed > 0 else 0.0
