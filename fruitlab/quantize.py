"""`python -m fruitlab.quantize MODEL`: post-training int8 quantization of a recorded model.

Measures test accuracy, CPU latency and size before and after on the run's own data, records the int8
model in a child run of the training run, and with --register NAME adds it as a new version of NAME.
"""

import argparse
import sys

from fruitlab.cli import report_error
from fruitlab.errors import FruitlabError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fruitlab.quantize",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", help="run id, runs:/<run_id>/model or models:/<name>@<alias> (or /<version>)"
    )
    parser.add_argument(
        "--mode",
        default="auto",
        choices=["auto", "static", "dynamic"],
        help="static: int8 weights and activations (conv models); dynamic: int8 Linear weights; "
        "auto (default): static when the model has convolutions",
    )
    parser.add_argument(
        "--calibration-batches", type=int, default=8, help="training batches for static ranges"
    )
    parser.add_argument("--register", metavar="NAME", help="register the int8 model as a new version of NAME")
    parser.add_argument(
        "--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)"
    )
    parser.add_argument("--verbose", action="store_true", help="full tracebacks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        from fruitlab.serving.models import load_recorded_model, use_store
        from fruitlab.serving.quantize import quantize_recorded_model

        use_store(args.tracking_uri)
        recorded = load_recorded_model(args.model)
        report = quantize_recorded_model(recorded, args.mode, args.calibration_batches, args.register)
    except FruitlabError as error:
        report_error(error, args.verbose)
        sys.exit(2)
    m = report.metrics
    print(f"int8 ({report.mode}) model recorded in run {report.run_id}")
    print(f"test accuracy  fp32 {m['fp32_test_acc']:.4f}  int8 {m['int8_test_acc']:.4f}")
    print(f"size (MB)      fp32 {m['fp32_size_mb']:.3f}  int8 {m['int8_size_mb']:.3f}")
    for key in sorted(
        k.removeprefix("fp32_") for k in m if k.startswith("fp32_latency_") and k.endswith("p50_ms")
    ):
        print(f"{key:<14} fp32 {m['fp32_' + key]:.3f}  int8 {m['int8_' + key]:.3f}")
    if report.registered_version:
        print(f"registered as {args.register} version {report.registered_version}")


if __name__ == "__main__":
    main()
