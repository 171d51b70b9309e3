"""Read the training runs of an experiment or a sweep from an MLflow store, with the MLflow client only.

A sweep is a parent run: its runs are all its descendants (trials, and the trials of nested sweeps). A
training run is one that finished with a test result; parent, data-exploration and report runs are not.
"""

import math
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from fruitlab.errors import FruitlabError
from fruitlab.reporting.figures import History

PARENT_TAG = "mlflow.parentRunId"
RESULT_METRIC = "test_zero_one_loss"  # logged once a training run has been tested
HISTORY_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "elapsed_s")
PAGE = 1000


class ReportError(FruitlabError):
    """The experiment or sweep to report on is not in the store, or holds no finished training run."""


@dataclass(frozen=True)
class Selection:
    """What a report covers: an experiment, or the runs under one parent run of it."""

    experiment_id: str
    title: str  # the experiment's name, or the parent run's name
    parent_run_id: str | None = None


def select_experiment(client: mlflow.MlflowClient, name: str) -> Selection:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        known = ", ".join(e.name for e in client.search_experiments()) or "none"
        raise ReportError(f"no experiment named '{name}' in the store; experiments: {known}")
    return Selection(experiment.experiment_id, name)


def select_sweep(client: mlflow.MlflowClient, id_or_name: str) -> Selection:
    """The parent run with this id, else the latest run with this name."""
    try:
        run = client.get_run(id_or_name)
    except MlflowException:
        experiments = [e.experiment_id for e in client.search_experiments()]
        named = client.search_runs(
            experiments, f"tags.`mlflow.runName` = '{id_or_name}'", max_results=1, order_by=["start_time DESC"]
        )
        if not named:
            raise ReportError(
                f"no run with id or name '{id_or_name}' in the store; give the parent run of a sweep "
                "(its id or name, as shown in the MLflow UI)"
            ) from None
        run = named[0]
    return Selection(run.info.experiment_id, run.info.run_name, run.info.run_id)


def experiment_runs(client: mlflow.MlflowClient, experiment_id: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=PAGE, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def descendants(runs: list[Run], parent_run_id: str) -> list[Run]:
    """Runs below `parent_run_id` at any depth, from the runs of its experiment."""
    children: dict[str, list[Run]] = {}
    for run in runs:
        children.setdefault(run.data.tags.get(PARENT_TAG, ""), []).append(run)
    found, frontier = [], [parent_run_id]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += [run.info.run_id for run in below]
    return found


def is_training_result(run: Run) -> bool:
    return run.info.status == "FINISHED" and RESULT_METRIC in run.data.metrics


def selected_runs(client: mlflow.MlflowClient, selection: Selection) -> tuple[list[Run], int]:
    """(finished training runs of the selection, how many other runs of it were left out: failed, running,
    parents)."""
    runs = experiment_runs(client, selection.experiment_id)
    if selection.parent_run_id:
        runs = descendants(runs, selection.parent_run_id)
    results = [run for run in runs if is_training_result(run)]
    if not results:
        raise ReportError(
            f"'{selection.title}' holds no finished training run with a test result "
            f"({len(runs)} runs, none FINISHED with {RESULT_METRIC})"
        )
    return results, len(runs) - len(results)


def read_history(client: mlflow.MlflowClient, run_id: str, names: tuple[str, ...] = HISTORY_METRICS) -> History:
    """Per-epoch metrics of a run (step = epoch) as {name: [(epoch, value), ...]}."""
    history: dict[str, list[tuple[int, float]]] = {}
    for name in names:
        points = sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))
        if points:
            history[name] = points
    return history


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


def runs_frame(client: mlflow.MlflowClient, runs: list[Run], threshold: float = 0.99) -> pd.DataFrame:
    """One row per run: run_id, run_name, parent_run_id, `params.<name>`, `metrics.<name>` (last values),
    and the epochs and seconds to reach `threshold` validation accuracy."""
    rows = []
    for run in runs:
        epochs, seconds = first_reaching(read_history(client, run.info.run_id, ("val_acc", "elapsed_s")), threshold)
        rows.append(
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "parent_run_id": run.data.tags.get(PARENT_TAG),
                **{f"params.{k}": v for k, v in run.data.params.items()},
                **{f"metrics.{k}": v for k, v in run.data.metrics.items()},
                "epochs_to_target": epochs,
                "seconds_to_target": seconds,
            }
        )
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column.startswith("params."):
            frame[column] = numeric(frame[column])
    return frame
