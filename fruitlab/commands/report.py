"""`fruitlab report`: rank the runs of an experiment or a sweep, read from the MLflow store only
(fruitlab/reporting/). Writes the tables and figures to a folder, prints the ranking, and logs the folder to
MLflow: under `report/` of the sweep's parent run, or of the experiment's one `report-<experiment>` run."""

import argparse
from dataclasses import dataclass
from pathlib import Path

from fruitlab.commands.common import command_parser, run_or_exit

DEFAULT_EXPERIMENT = "fruits360"


@dataclass(frozen=True)
class ReportResult:
    ranking: "object"  # the ranking table (a pandas DataFrame)
    folder: Path
    logged_run_id: str | None  # where the folder was logged; None with --no-log


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        "report",
        "Rank the finished runs of an experiment or of a sweep (a parent run and all runs below it) from the "
        "MLflow store, without training; write the tables and figures and log them to MLflow.",
        "examples:\n"
        "  fruitlab report                          # experiment fruits360\n"
        "  fruitlab report --sweep pca_components   # a sweep's parent run, by name or id\n"
        "  fruitlab report --experiment my_data --runs RUN_ID RUN_NAME --out /tmp/report",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--experiment", help=f"experiment name (default: {DEFAULT_EXPERIMENT})")
    which.add_argument("--sweep", metavar="RUN", help="parent run of a sweep: its id, or its name (latest such run)")
    curves = p.add_mutually_exclusive_group()
    curves.add_argument(
        "--runs",
        nargs="+",
        metavar="RUN",
        help="runs whose learning curves to overlay: ids (or their first characters), names or labels from "
        "the ranking (default: the best 5)",
    )
    curves.add_argument("--best-per-model", action="store_true", help="overlay the best run of each model")
    p.add_argument("--out", type=Path, help="output folder (default: reports/<experiment or sweep name>)")
    p.add_argument("--store", dest="tracking_uri", help="the same as --tracking-uri")
    p.add_argument("--target", type=float, default=0.99, help="validation accuracy to time (default: 0.99)")
    p.add_argument("--no-log", action="store_true", help="write the folder only; log nothing to MLflow")
    return p


def report(
    store: str | None = None,
    experiment: str | None = None,
    sweep: str | None = None,
    out: Path | None = None,
    target: float = 0.99,
    runs: list[str] | None = None,
    best_per_model: bool = False,
    log: bool = True,
) -> ReportResult:
    from fruitlab.reporting.report import write_report
    from fruitlab.tracking.query import StoreReader
    from fruitlab.tracking.store import Store, slug

    reader = StoreReader(Store.open(store, existing=True))
    selection = reader.select_sweep(sweep) if sweep else reader.select_experiment(experiment or DEFAULT_EXPERIMENT)
    folder = out or Path("reports") / slug(selection.title)
    table = write_report(reader, selection, folder, target, runs, best_per_model)
    return ReportResult(table, folder, reader.log_report(selection, folder) if log else None)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    result = run_or_exit(
        lambda: report(
            args.tracking_uri,
            args.experiment,
            args.sweep,
            args.out,
            args.target,
            args.runs,
            args.best_per_model,
            not args.no_log,
        ),
        args.verbose,
    )
    from fruitlab.reporting.ranking import display

    print(display(result.ranking).drop(columns="run_id").to_string(index=False))
    print(f"\nwritten: {result.folder}/ ({', '.join(sorted(p.name for p in result.folder.iterdir()))})")
    if result.logged_run_id:
        print(f"logged to MLflow run {result.logged_run_id} under report/")
