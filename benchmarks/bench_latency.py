"""CPU inference latency of one model in three runtimes: eager PyTorch, TorchScript and ONNX Runtime.

    python benchmarks/bench_latency.py models:/cifar10@champion      # a registered model (alias or version)
    python benchmarks/bench_latency.py RUN_ID                        # the model a run logged
    python benchmarks/bench_latency.py mobilenet_v2_slim             # an architecture, untrained (fruitlab/schema/)

Each runtime gets the same pinned threads (torch.set_num_threads; ORT intra-op threads, sequential execution,
spinning off), the same random input, and is timed by fruitlab's latency timer (warm-up, then p50 / p95 / mean
over the repeats). The model is the deployable one (input normalisation, network, softmax). Outputs are
checked to agree before anything is timed. Prints a table and the ONNX Runtime / eager ratio of the batch-1
median (goal: at most 0.7).
"""

import argparse
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fruitlab.config import compose_config
from fruitlab.data.base import Normalize
from fruitlab.evaluation.latency import time_calls
from fruitlab.models import Probabilities, build_classifier, list_models
from fruitlab.serving.onnx import INPUT_NAME, export_onnx, ort_session
from fruitlab.serving.recorded import load_eager
from fruitlab.tracking.store import Store

GOAL = 0.7


def untrained(name: str, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """Architecture `name` with the options of its config (fruitlab/schema/), as a deployable model."""
    cfg = compose_config([f"model={name}"])
    channels = input_shape[0]
    preprocess = Normalize(torch.zeros(channels), torch.ones(channels))
    return Probabilities(build_classifier(cfg.model, num_classes, input_shape, preprocess)).eval()


def torchscript(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """Traced and frozen (weights inlined, conv + batch norm folded) for inference."""
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")  # deprecated, still compared
    with torch.inference_mode():
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, example)))


def runtimes(model: nn.Module, input_shape: tuple[int, ...], threads: int) -> dict[str, Callable]:
    """Name -> function of a float32 batch, for eager PyTorch, TorchScript and ONNX Runtime."""
    scripted = torchscript(model, torch.rand(2, *input_shape))
    with tempfile.TemporaryDirectory() as folder:
        session = ort_session(export_onnx(model, input_shape, Path(folder) / "model.onnx"), threads)
    return {
        "eager": lambda images: model(torch.from_numpy(images)),
        "torchscript": lambda images: scripted(torch.from_numpy(images)),
        "onnxruntime": lambda images: session.run(None, {INPUT_NAME: images})[0],
    }


@torch.inference_mode()
def time_batch(calls: dict[str, Callable], images: np.ndarray, repeats: int, warmup: int) -> dict[str, dict]:
    """Check every runtime's output against eager's, then time each on the same batch."""
    reference = np.asarray(calls["eager"](images))
    for name, call in calls.items():
        output = np.asarray(call(images))
        if not np.allclose(output, reference, atol=1e-4):
            raise SystemExit(f"{name} disagrees with eager: max |diff| {np.abs(output - reference).max()}")
    return {name: time_calls(lambda call=call: call(images), repeats, warmup) for name, call in calls.items()}


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

    setup = f"input {input_shape}, {args.threads} thread(s), {args.repeats} runs after {args.warmup} warm-up"
    print(f"{args.model}: {setup}")
    print(f"{'batch':>5}  {'runtime':<12} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'p50 / eager':>12}")
    for batch_size in args.batch_sizes:
        images = np.random.default_rng(0).random((batch_size, *input_shape), dtype=np.float32)
        timings = time_batch(calls, images, args.repeats, args.warmup)
        eager = timings["eager"]["p50_ms"]
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
