"""`fruitlab export MODEL`: a `torch.export` program (.pt2) and an ONNX model of a recorded model, both loaded back
and checked against the eager model's probabilities on real test images of the run's data, and logged to the run
that trained it (artifacts under export/)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from fruitlab.commands.common import add_model_argument, command_parser, run_or_exit

if TYPE_CHECKING:
    from fruitlab.serving.export import ExportReport


def parser() -> argparse.ArgumentParser:
    p = command_parser("export", __doc__)
    add_model_argument(p)
    p.add_argument("--out", type=Path, default=Path("exports"), help="folder for the files (default: exports/<run_id>)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest accepted difference in probability")
    p.add_argument("--no-log", action="store_true", help="write the files without logging them to the run")
    return p


def export(
    model: str,
    out: Path,
    atol: float = 1e-4,
    log: bool = True,
    tracking_uri: str | None = None,
    allow_pickle: bool | None = None,
) -> ExportReport:
    from fruitlab.data.cache import default_cache_dir
    from fruitlab.serving.export import export_model, log_export
    from fruitlab.serving.recorded import load_recorded_model
    from fruitlab.tracking.runs import RunRecorder
    from fruitlab.tracking.store import Store

    store = Store.open(tracking_uri)
    recorded = load_recorded_model(store, model, allow_pickle)
    cache_dir = str(default_cache_dir())  # this machine's decode cache, as training finds it
    report = export_model(store, recorded, out / recorded.run_id, atol, cache_dir)
    if log:
        log_export(RunRecorder(recorded.run_id, store), report)
    return report


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    report = run_or_exit(
        lambda: export(args.model, args.out, args.atol, not args.no_log, args.tracking_uri, args.allow_pickle or None),
        args.verbose,
    )
    checked = f"on {report.checked_images} test images, tolerance {report.atol:g}"
    print(f"torch.export: {report.program} (max |diff| {report.program_max_abs_diff:.2e} {checked})")
    print(f"ONNX:         {report.onnx} (ONNX Runtime max |diff| {report.onnx_max_abs_diff:.2e} {checked})")
    if not args.no_log:
        print(f"logged to run {report.run_id} under export/")
