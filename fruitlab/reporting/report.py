"""`python -m fruitlab.report`: rank the runs of an experiment or a sweep, read from the MLflow store only.

Writes ranking.{md,csv,png}, learning_curves.png and, for a sweep over `data.n_components`, pca_curve.{png,csv}
to a folder, prints the ranking, and logs the folder to MLflow: under `report/` of the sweep's parent run, or
as a new `report-<experiment>` run. Heavy libraries are imported after the arguments are parsed, so `--help`
answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import mlflow
    import pandas as pd

    from fruitlab.reporting.store_reader import Selection

DEFAULT_EXPERIMENT = "fruits360"
DEFAULT_CURVES = 5


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fruitlab.report",
        description="Rank the finished runs of an experiment or of a sweep (a parent run and all runs below "
        "it) from the MLflow store, without training; write the tables and figures and log them to MLflow.",
        epilog="examples:\n"
        "  python -m fruitlab.report                          # experiment fruits360\n"
        "  python -m fruitlab.report --sweep pca_components   # a sweep's parent run, by name or id\n"
        "  python -m fruitlab.report --experiment my_data --runs RUN_ID RUN_NAME --out /tmp/report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--experiment", help=f"experiment name (default: {DEFAULT_EXPERIMENT})")
    which.add_argument("--sweep", metavar="RUN", help="parent run of a sweep: its id, or its name (latest such run)")
    p.add_argument(
        "--runs",
        nargs="+",
        metavar="RUN",
        help=f"runs whose learning curves to overlay: ids (or their first "
        f"characters), names or labels from the ranking (default: the best {DEFAULT_CURVES})",
    )
    p.add_argument("--out", type=Path, help="output folder (default: reports/<experiment or sweep name>)")
    p.add_argument("--store", help="tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)")
    p.add_argument("--target", type=float, default=0.99, help="validation accuracy to time (default: 0.99)")
    p.add_argument("--no-log", action="store_true", help="write the folder only; log nothing to MLflow")
    return p


def pick_curves(table: pd.DataFrame, wanted: list[str] | None) -> list[int]:
    """Row positions of the runs to overlay."""
    from fruitlab.reporting.store_reader import ReportError

    if not wanted:
        return list(range(min(DEFAULT_CURVES, len(table))))
    rows = []
    for key in wanted:
        match = table.index[
            table["run_id"].str.startswith(key) | (table["run"] == key) | table["run"].str.startswith(f"{key} ")
        ]
        if match.empty:
            raise ReportError(f"--runs: no ranked run matches '{key}'; give a run id, name or label from the ranking")
        rows += [i for i in match if i not in rows]
    return rows


def write_report(
    client: mlflow.MlflowClient, selection: Selection, out: Path, target: float, curves: list[str] | None
) -> pd.DataFrame:
    """Read the selection's runs, write every table and figure to `out`; return the ranking."""
    from matplotlib import pyplot as plt

    from fruitlab.reporting.figures import learning_curves
    from fruitlab.reporting.ranking import markdown, pca_curve, pca_points, rank, ranking_chart
    from fruitlab.reporting.store_reader import read_history, runs_frame, selected_runs

    runs, left_out = selected_runs(client, selection)
    frame = runs_frame(client, runs, target)
    table = rank(frame, target)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "ranking.csv", index=False)
    figures = {
        "ranking.png": ranking_chart(table, target),
        "learning_curves.png": learning_curves(
            {table["run"][i]: read_history(client, table["run_id"][i]) for i in pick_curves(table, curves)}
        ),
    }
    points = pca_points(frame)
    if len(points) > 1:
        points.to_csv(out / "pca_curve.csv", index=False)
        figures["pca_curve.png"] = pca_curve(points)
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110)
        plt.close(figure)
    kind = "sweep (parent run)" if selection.parent_run_id else "experiment"
    header = [
        f"# Ranking: {selection.title}",
        "",
        f"{kind} `{selection.title}`: {len(table)} finished training runs ranked by test zero-one loss "
        f"(ties: test cross-entropy); {left_out} other runs (parents, failed, running) left out.",
        "",
    ]
    footer = ["", *[f"![{name}]({name})" for name in figures]]
    (out / "ranking.md").write_text("\n".join(header) + markdown(table) + "\n".join(footer) + "\n")
    return table


def log_report(client: mlflow.MlflowClient, selection: Selection, out: Path) -> str:
    """Log the folder to the sweep's parent run, or to a new report run of the experiment; return its id."""
    import mlflow

    from fruitlab.tracking.runs import tracked_run

    if selection.parent_run_id:
        client.log_artifacts(selection.parent_run_id, str(out), "report")
        return selection.parent_run_id
    with tracked_run(selection.experiment_id, f"report-{selection.title}") as run:
        mlflow.set_tag("fruitlab.kind", "report")
        mlflow.log_artifacts(str(out), "report")
    return run.info.run_id


def open_store(store: str | None) -> mlflow.MlflowClient:
    import mlflow

    from fruitlab.reporting.store_reader import ReportError
    from fruitlab.tracking.store import DEFAULT_STORE, normalize_uri

    uri = store or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).expanduser().is_file():
        raise ReportError(f"no MLflow store at {uri}: train first, or pass --store URI")
    uri = normalize_uri(uri)
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from fruitlab.cli import report_error
    from fruitlab.errors import FruitlabError
    from fruitlab.reporting.ranking import display
    from fruitlab.reporting.store_reader import select_experiment, select_sweep
    from fruitlab.tracking.store import slug

    try:
        client = open_store(args.store)
        if args.sweep:
            selection = select_sweep(client, args.sweep)
        else:
            selection = select_experiment(client, args.experiment or DEFAULT_EXPERIMENT)
        out = args.out or Path("reports") / slug(selection.title)
        table = write_report(client, selection, out, args.target, args.runs)
        print(display(table).drop(columns="run_id").to_string(index=False))
        print(f"\nwritten: {out}/ ({', '.join(sorted(p.name for p in out.iterdir()))})")
        if not args.no_log:
            print(f"logged to MLflow run {log_report(client, selection, out)} under report/")
    except FruitlabError as error:
        report_error(error, verbose=False)
        sys.exit(2)
