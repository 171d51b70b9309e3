"""The runs of a report as one table: a row per run with its params, last metrics and time to a target."""

import math

import pandas as pd

from fruitlab.plotting import History
from fruitlab.tracking.query import RunRecord, StoreReader


def first_reaching(history: History, threshold: float, metric: str = "val_acc") -> tuple[float, float]:
    """(epochs, seconds) of training until `metric` first reached `threshold`; NaN when it never did."""
    elapsed = dict(history.get("elapsed_s", []))
    for epoch, value in sorted(history.get(metric, [])):
        if value >= threshold:
            return float(epoch + 1), elapsed.get(epoch, math.nan)
    return math.nan, math.nan


def numeric(values: pd.Series) -> pd.Series:
    """Params are stored as strings: numbers where every value is one, text otherwise."""
    converted = pd.to_numeric(values, errors="coerce")
    return converted if converted.notna().sum() == values.notna().sum() else values


def runs_frame(reader: StoreReader, runs: list[RunRecord], threshold: float = 0.99) -> pd.DataFrame:
    """One row per run: run_id, run_name, parent_run_id, `params.<name>`, `metrics.<name>` (last values),
    and the epochs and seconds to reach `threshold` validation accuracy."""
    rows = []
    for run in runs:
        epochs, seconds = first_reaching(reader.read_history(run.run_id, ("val_acc", "elapsed_s")), threshold)
        rows.append(
            {
                "run_id": run.run_id,
                "run_name": run.run_name,
                "parent_run_id": run.parent_run_id,
                **{f"params.{k}": v for k, v in run.params.items()},
                **{f"metrics.{k}": v for k, v in run.metrics.items()},
                "epochs_to_target": epochs,
                "seconds_to_target": seconds,
            }
        )
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column.startswith("params."):
            frame[column] = numeric(frame[column])
    return frame
