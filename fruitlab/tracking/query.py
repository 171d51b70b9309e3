"""Read runs back from an MLflow store: one run, runs by tag, or the training runs of an experiment or a sweep.

A sweep is a parent run: its runs are all its descendants (trials, and the trials of nested sweeps). A
training run is one that finished with a test result; parent, data-exploration and report runs are not.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from fruitlab.errors import ReportError
from fruitlab.plotting import CHECK_PREFIX, History
from fruitlab.tracking.runs import RunRecorder, tracked_run
from fruitlab.tracking.store import Store

PARENT_TAG = "mlflow.parentRunId"
SWEEP_PARENT_TAG = "sweep.parent"  # a sweep's parent run, tagged with its study's name
CHECK_METRICS = (f"{CHECK_PREFIX}val_loss", f"{CHECK_PREFIX}val_acc")  # at each validation check
RESULT_METRIC = "test_zero_one_loss"  # logged once a training run has been tested
HISTORY_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "elapsed_s", *CHECK_METRICS)
PAGE = 1000
KIND_TAG, REPORT_KIND = "fruitlab.kind", "report"  # the tag of an experiment's report run
REPORT_FOLDER = "report"

log = logging.getLogger(__name__)


def find_run(store: Store, run_id: str) -> "RunRecord | None":
    """The run `run_id` of `store`, or None when the store has no such run."""
    try:
        return RunRecord.of(store.client.get_run(run_id))
    except MlflowException:
        return None


def runs_tagged(store: Store, experiment_id: str, key: str, value: str, limit: int = 10) -> "list[RunRecord]":
    """Runs of the experiment whose tag `key` is `value` (no quote in `value`), latest first."""
    runs = store.client.search_runs([experiment_id], f"tags.`{key}` = '{value}'", max_results=limit)
    return [RunRecord.of(run) for run in runs]


def runs_under(store: Store, name_or_id: str) -> "list[RunRecord] | None":
    """The runs an experiment (by name), a sweep (its parent run's name or id: the runs below it) or one run (by
    id) stands for; None when the store has nothing by that name or id."""
    reader = StoreReader(store)
    experiment = store.client.get_experiment_by_name(name_or_id)
    if experiment is not None:
        return reader.experiment_runs(experiment.experiment_id)
    try:
        selection = reader.select_sweep(name_or_id)
    except ReportError:
        return None
    runs = reader.experiment_runs(selection.experiment_id)
    return descendants(runs, selection.parent_run_id) or [r for r in runs if r.run_id == selection.parent_run_id]


@dataclass(frozen=True)
class Selection:
    """What a report covers: an experiment, or the runs under one parent run of it."""

    experiment_id: str
    title: str  # the experiment's name, or the parent run's name
    parent_run_id: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """A run as a report reads it."""

    run_id: str
    run_name: str
    experiment_id: str
    status: str
    parent_run_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, run: Run) -> "RunRecord":
        info, data = run.info, run.data
        return cls(
            info.run_id,
            info.run_name,
            info.experiment_id,
            info.status,
            data.tags.get(PARENT_TAG),
            data.params,
            data.metrics,
            data.tags,
        )

    @property
    def is_training_result(self) -> bool:
        return self.status == "FINISHED" and RESULT_METRIC in self.metrics


class StoreReader:
    """Reads one store: what reports are made from."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def select_experiment(self, name: str) -> Selection:
        experiment = self.store.client.get_experiment_by_name(name)
        if experiment is None:
            known = ", ".join(e.name for e in self.store.client.search_experiments()) or "none"
            raise ReportError(f"no experiment named '{name}' in the store; experiments: {known}")
        return Selection(experiment.experiment_id, name)

    def select_sweep(self, id_or_name: str) -> Selection:
        """The parent run with this id, else the latest run with this name."""
        try:
            run = self.store.client.get_run(id_or_name)
        except MlflowException:
            experiments = [e.experiment_id for e in self.store.client.search_experiments()]
            named = self.store.client.search_runs(
                experiments, f"tags.`mlflow.runName` = '{id_or_name}'", max_results=1, order_by=["start_time DESC"]
            )
            if not named:
                raise ReportError(
                    f"no run with id or name '{id_or_name}' in the store; give the parent run of a sweep "
                    "(its id or name, as shown in the MLflow UI)"
                ) from None
            run = named[0]
        return Selection(run.info.experiment_id, run.info.run_name, run.info.run_id)

    def experiment_runs(self, experiment_id: str) -> list[RunRecord]:
        runs: list[RunRecord] = []
        token = None
        while True:
            page = self.store.client.search_runs([experiment_id], max_results=PAGE, page_token=token)
            runs += [RunRecord.of(run) for run in page]
            token = page.token
            if not token:
                return runs

    def selected_runs(self, selection: Selection) -> tuple[list[RunRecord], int]:
        """(finished training runs of the selection, how many other runs of it were left out: failed, running,
        parents; its report run is not counted)."""
        runs = [run for run in self.experiment_runs(selection.experiment_id) if run.tags.get(KIND_TAG) != REPORT_KIND]
        if selection.parent_run_id:
            runs = descendants(runs, selection.parent_run_id)
        results = [run for run in runs if run.is_training_result]
        if not results:
            raise ReportError(
                f"'{selection.title}' holds no finished training run with a test result "
                f"({len(runs)} runs, none FINISHED with {RESULT_METRIC})"
            )
        return results, len(runs) - len(results)

    def read_history(self, run_id: str, names: tuple[str, ...] = HISTORY_METRICS) -> History:
        """Per-epoch metrics of a run (step = epoch) as {name: [(epoch, value), ...]}."""
        history: dict[str, list[tuple[int, float]]] = {}
        for name in names:
            points = sorted((m.step, m.value) for m in self.store.client.get_metric_history(run_id, name))
            if points:
                history[name] = points
        return history

    def log_report(self, selection: Selection, folder: Path) -> str:
        """Log `folder` as `report/` of the sweep's parent run, or of the experiment's report run: one per
        experiment, updated in place (made on the first report; further ones, left by older versions, are
        deleted). What `report/` held before is replaced. Returns the run's id."""
        if selection.parent_run_id:
            replace_report(RunRecorder(selection.parent_run_id, self.store), folder)
            return selection.parent_run_id
        reports = runs_tagged(self.store, selection.experiment_id, KIND_TAG, REPORT_KIND)
        latest = reports[0].run_id if reports else None
        with tracked_run(self.store, selection.experiment_id, f"report-{selection.title}", run_id=latest) as recorder:
            recorder.set_tags({KIND_TAG: REPORT_KIND})
            replace_report(recorder, folder)
        for superseded in reports[1:]:
            self.store.client.delete_run(superseded.run_id)
        return recorder.run_id


def replace_report(recorder: RunRecorder, folder: Path) -> None:
    """`folder` as the run's `report/`, in place of what was there; a warning names old files that stayed."""
    if stale := recorder.replace_artifacts(folder, REPORT_FOLDER):
        log.warning(
            "run %s: its artifact store deleted nothing; files of an older report stay beside the new one: %s",
            recorder.run_id,
            ", ".join(stale),
        )


def descendants(runs: list[RunRecord], parent_run_id: str) -> list[RunRecord]:
    """Runs below `parent_run_id` at any depth, from the runs of its experiment."""
    children: dict[str, list[RunRecord]] = {}
    for run in runs:
        children.setdefault(run.parent_run_id or "", []).append(run)
    found, frontier = [], [parent_run_id]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += [run.run_id for run in below]
    return found
