"""CPU inference latency of one model in four forms, side by side: eager PyTorch, its `torch.export` program, its ONNX
export in ONNX Runtime, and that ONNX model quantized to int8 (ONNX Runtime).

    python benchmarks/bench_latency.py models:/cifar10@champion      # a registered model (alias or version)
    python benchmarks/bench_latency.py RUN_ID                        # the model a run logged
    python benchmarks/bench_latency.py mobilenet_v2_slim             # an architecture, untrained (fruitlab/schema/)

Each form gets the same pinned threads (torch.set_num_threads; ORT intra-op threads, sequential execution, spinning
off) and the same random input, and the forms are timed interleaved (every repeat runs each once, in a rotating
order, so that a change in the machine's load falls on all alike): warm-up, then p50 / p95 / mean over the repeats.
The model is the deployable one (input normalisation, network, softmax). The float forms are checked to agree before
anything is timed; the int8 model, quantized as `fruitlab quantize` does (static for conv models, dynamic otherwise)
but calibrated on random images (the ranges change its outputs, not its speed), is reported with its largest
difference and its agreement on the top class. Prints a table and the ONNX Runtime / eager ratio of the batch-1
median (goal: at most 0.7).
"""

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fruitlab.config import compose_config
from fruitlab.data.base import Normalize
from fruitlab.evaluation.latency import time_interleaved
from fruitlab.models import Probabilities, build_classifier, list_models
from fruitlab.serving.onnx import OnnxRuntimeClassifier, export_onnx, export_program
from fruitlab.serving.quantize import choose_mode, quantize_onnx
from fruitlab.serving.recorded import load_eager
from fruitlab.tracking.store import Store

GOAL = 0.7
FLOAT_ATOL = 1e-4
CALIBRATION_BATCHES = 4


def untrained(name: str, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """Architecture `name` with the options of its config (fruitlab/schema/), as a deployable model."""
    cfg = compose_config([f"model={name}"])
    channels = input_shape[0]
    preprocess = Normalize(torch.zeros(channels), torch.ones(channels))
    return Probabilities(build_classifier(cfg.model, num_classes, input_shape, preprocess)).eval()


def random_images(count: int, input_shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *input_shape), dtype=np.float32)


def runtimes(model: nn.Module, input_shape: tuple[int, ...], threads: int) -> dict[str, Callable]:
    """Name -> function of a float32 batch (numpy) to its probabilities (numpy), for each form."""
    program = export_program(model, input_shape)
    exported = program.module()
    calibration = [random_images(64, input_shape, seed) for seed in range(CALIBRATION_BATCHES)]
    with tempfile.TemporaryDirectory() as folder:  # a session holds its model: the files may go
        fp32 = export_onnx(program, input_shape, Path(folder) / "model.onnx")
        int8 = quantize_onnx(fp32, Path(folder) / "model.int8.onnx", choose_mode(model, "auto"), calibration)
        fp32_session, int8_session = OnnxRuntimeClassifier(fp32, threads), OnnxRuntimeClassifier(int8, threads)
    return {
        "eager": lambda images: model(torch.from_numpy(images)).numpy(),
        "torch.export": lambda images: exported(torch.from_numpy(images)).numpy(),
        "onnxruntime": fp32_session.outputs,
        "ort-int8": int8_session.outputs,
    }


@torch.inference_mode()
def time_batch(calls: dict[str, Callable], images: np.ndarray, repeats: int, warmup: int) -> dict[str, dict]:
    """Check every float form's output against eager's and report the int8 model's, then time all side by side."""
    reference = calls["eager"](images)
    for name, call in calls.items():
        output = call(images)
        diff = np.abs(output - reference).max()
        if name == "ort-int8":
            agree = (output.argmax(1) == reference.argmax(1)).mean()
            print(f"int8: max |diff| {diff:.3g}, top class as eager's for {agree:.0%} of the batch")
        elif diff > FLOAT_ATOL:
            raise SystemExit(f"{name} disagrees with eager: max |diff| {diff}")
    return time_interleaved({name: lambda call=call: call(images) for name, call in calls.items()}, repeats, warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="models:/NAME@ALIAS, runs:/RUN_ID/model, a run id, or an architecture")
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else mlruns/)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every runtime (default 1)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--num-classes", type=int, default=10, help="for an architecture name")
    parser.add_argument("--input-shape", type=int, nargs=3, default=[3, 32, 32], help="for an architecture name")
    parser.add_argument("--allow-pickle", action="store_true", help="load a recorded model stored as a pickle")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.model in list_models():
        input_shape = tuple(args.input_shape)
        model = untrained(args.model, args.num_classes, input_shape)
    else:
        model, input_shape = load_eager(Store.open(args.tracking_uri), args.model, args.allow_pickle or None)
    calls = runtimes(model, input_shape, args.threads)

    runs = f"{args.repeats} interleaved runs after {args.warmup} warm-up"
    print(f"{args.model}: input {input_shape}, {args.threads} thread(s), {runs}")
    for batch_size in args.batch_sizes:
        timings = time_batch(calls, random_images(batch_size, input_shape, seed=100), args.repeats, args.warmup)
        eager = timings["eager"]["p50_ms"]
        print(f"{'batch':>5}  {'runtime':<12} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'p50 / eager':>12}")
        for name, stats in timings.items():
            print(
                f"{batch_size:>5}  {name:<12} {stats['p50_ms']:>9.3f} {stats['p95_ms']:>9.3f} "
                f"{stats['mean_ms']:>9.3f} {stats['p50_ms'] / eager:>12.2f}"
            )
        if batch_size == 1:
            ratio = timings["onnxruntime"]["p50_ms"] / eager
            verdict = "met" if ratio <= GOAL else "not met"
            print(f"ONNX Runtime / eager at batch 1 (p50): {ratio:.2f} (goal <= {GOAL}: {verdict})")


if __name__ == "__main__":
    main()
