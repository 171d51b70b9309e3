"""`python -m fruitlab.export MODEL`: TorchScript and ONNX files of a recorded model, checked with ONNX
Runtime against PyTorch and logged to the run that trained it (artifacts under export/)."""

import argparse
import sys
from pathlib import Path

from fruitlab.cli import report_error
from fruitlab.errors import FruitlabError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fruitlab.export", description=__doc__)
    parser.add_argument(
        "model", help="run id, runs:/<run_id>/model or models:/<name>@<alias> (or /<version>)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("exports"), help="folder for the files (default: exports/<run_id>)"
    )
    parser.add_argument("--atol", type=float, default=1e-4, help="largest accepted difference in probability")
    parser.add_argument(
        "--no-log", action="store_true", help="write the files without logging them to the run"
    )
    parser.add_argument(
        "--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlruns/mlflow.db)"
    )
    parser.add_argument("--verbose", action="store_true", help="full tracebacks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        from fruitlab.serving.export import export_model, log_export
        from fruitlab.serving.models import load_recorded_model, use_store

        use_store(args.tracking_uri)
        recorded = load_recorded_model(args.model)
        report = export_model(recorded, args.out / recorded.run_id, args.atol)
        if not args.no_log:
            log_export(report, recorded.run_id)
    except FruitlabError as error:
        report_error(error, args.verbose)
        sys.exit(2)
    print(f"TorchScript: {report.torchscript} (max |diff| {report.torchscript_max_abs_diff:.2e})")
    print(f"ONNX:        {report.onnx} (ONNX Runtime max |diff| {report.onnx_max_abs_diff:.2e})")
    if not args.no_log:
        print(f"logged to run {recorded.run_id} under export/")


if __name__ == "__main__":
    main()
