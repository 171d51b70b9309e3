"""A report on the runs of an experiment or a sweep, read from the store only: ranking.{md,csv,png},
learning_curves.png and, for a sweep over `data.n_components`, pca_curve.{png,csv}, written to a folder."""

from pathlib import Path

import pandas as pd
from matplotlib import pyplot as plt

from fruitlab.errors import ReportError
from fruitlab.plotting import learning_curves
from fruitlab.reporting.ranking import markdown, pca_curve, pca_points, rank
from fruitlab.reporting.ranking_figure import ranking_chart
from fruitlab.reporting.runs_table import runs_frame
from fruitlab.tracking.query import Selection, StoreReader

DEFAULT_CURVES = 5
CHECKS_PARAM = "params.objective.checks_per_epoch"
PCA_FILES = ("pca_curve.png", "pca_curve.csv")


def pick_curves(table: pd.DataFrame, wanted: list[str] | None, per_model: bool = False) -> list[int]:
    """Row positions of the runs to overlay."""
    if per_model:
        return list(table.drop_duplicates("model").index)
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


def checks_per_epoch(frame: pd.DataFrame, run_id: str) -> int:
    """The run's validation checks per epoch (`objective.checks_per_epoch`); 1 for runs from before it existed."""
    value = frame.loc[frame["run_id"] == run_id].iloc[0].get(CHECKS_PARAM)
    return 1 if pd.isna(value) else int(value)


def write_report(
    reader: StoreReader,
    selection: Selection,
    out: Path,
    target: float,
    curves: list[str] | None,
    per_model: bool = False,
) -> pd.DataFrame:
    """Read the selection's runs, write every table and figure to `out`; return the ranking."""
    runs, left_out = reader.selected_runs(selection)
    frame = runs_frame(reader, runs, target)
    table = rank(frame, target)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "ranking.csv", index=False)
    overlaid = pick_curves(table, curves, per_model)
    figures = {
        "ranking.png": ranking_chart(table, frame, target),
        "learning_curves.png": learning_curves(
            {table["run"][i]: reader.read_history(table["run_id"][i]) for i in overlaid},
            {table["run"][i]: checks_per_epoch(frame, table["run_id"][i]) for i in overlaid},
        ),
    }
    points = pca_points(frame)
    if len(points) > 1:
        points.to_csv(out / "pca_curve.csv", index=False)
        figures["pca_curve.png"] = pca_curve(points)
    else:  # a PCA curve in the folder is an earlier report's, of other runs: it would be logged with this one
        for name in PCA_FILES:
            (out / name).unlink(missing_ok=True)
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
