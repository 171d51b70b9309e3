"""`fruitlab quantize MODEL`: post-training int8 quantization of a recorded model with ONNX Runtime.

Quantizes the model's ONNX export, measures test accuracy, ONNX Runtime CPU latency and file size before and after
on the run's own data, records the int8 ONNX model in a child run of the training run, and with --register NAME
adds it as a new version of NAME (served by `fruitlab serve --runtime onnxruntime`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from fruitlab.commands.common import add_model_argument, command_parser, run_or_exit

if TYPE_CHECKING:
    from fruitlab.serving.quantize import QuantizationReport


def parser() -> argparse.ArgumentParser:
    p = command_parser("quantize", __doc__)
    add_model_argument(p)
    p.add_argument(
        "--mode",
        default="auto",
        choices=["auto", "static", "dynamic"],
        help="static: int8 weights (per channel) and activations, QDQ format (conv models); dynamic: int8 weights, "
        "activations quantized on the fly; auto (default): static when the model has convolutions",
    )
    p.add_argument(
        "--calibration-batches", type=int, default=8, help="training batches that set the static activation ranges"
    )
    p.add_argument("--register", metavar="NAME", help="register the int8 model as a new version of NAME")
    return p


def quantize(
    model: str,
    mode: str = "auto",
    calibration_batches: int = 8,
    register: str | None = None,
    tracking_uri: str | None = None,
    allow_pickle: bool | None = None,
) -> QuantizationReport:
    from fruitlab.data.cache import default_cache_dir
    from fruitlab.serving.quantize import quantize_recorded_model
    from fruitlab.serving.recorded import load_recorded_model
    from fruitlab.tracking.store import Store

    store = Store.open(tracking_uri)
    recorded = load_recorded_model(store, model, allow_pickle)
    cache_dir = str(default_cache_dir())  # this machine's decode cache, as training finds it
    return quantize_recorded_model(store, recorded, mode, calibration_batches, register, cache_dir)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    report = run_or_exit(
        lambda: quantize(
            args.model, args.mode, args.calibration_batches, args.register, args.tracking_uri, args.allow_pickle or None
        ),
        args.verbose,
    )
    m = report.metrics
    print(f"int8 ({report.mode}) model recorded in run {report.run_id}")
    print(f"test accuracy  fp32 {m['fp32_test_acc']:.4f}  int8 {m['int8_test_acc']:.4f}")
    print(f"ONNX size (MB) fp32 {m['fp32_size_mb']:.3f}  int8 {m['int8_size_mb']:.3f}")
    for key in sorted(k.removeprefix("fp32_") for k in m if k.startswith("fp32_latency_") and k.endswith("p50_ms")):
        print(f"{key:<14} fp32 {m['fp32_' + key]:.3f}  int8 {m['int8_' + key]:.3f}")
    if report.registered_version:
        print(f"registered as {args.register} version {report.registered_version}")
