"""An MLflow run's life, and the recorder through which every other layer writes to it."""

import contextlib
import json
import logging
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import RunInterrupted, TrackingError
from fruitlab.tracking.store import (
    StoreFile,
    activate_store,
    checkpoint_dir,
    config_copy,
    is_store_fault,
    is_write_conflict,
    store_failure,
)

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value
BATCH = 100  # MLflow's limit on parameters per log_batch call
WRITE_ATTEMPTS = 3  # a write that lost a race to a parallel run's identical insert is redone this often
# Config sections that are bookkeeping of the process, not settings of the experiment: never logged as params.
UNLOGGED_KEYS = ("trial",)


@dataclass(frozen=True)
class InputData:
    """One dataset a run read, as MLflow's dataset tracking records it (the run page's Datasets)."""

    name: str  # one name per split: MLflow keeps one context per (name, digest) in a run
    digest: str  # at most 36 characters
    source: str  # a local folder or file
    context: str  # the split's role: "train", "validation", "test"
    rows: int


@dataclass(frozen=True)
class RunRecorder:
    """Writes to one run of one store; handed to the code that has something to record."""

    run_id: str
    client: mlflow.MlflowClient = field(repr=False)
    config_copy: Path | None = None  # where log_config keeps a copy of the config on this machine
    store_file: StoreFile | None = None  # a SQLite store's file, checked before each epoch's metrics

    def check_store(self) -> None:
        if self.store_file is not None:
            self.store_file.check()

    @classmethod
    def of(cls, uri: str, run_id: str) -> "RunRecorder":
        """A recorder for an existing run of the store at `uri` (MLflow's active run or not)."""
        return cls(run_id, mlflow.MlflowClient(uri), config_copy(uri, run_id), StoreFile.of(uri))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """All of `metrics` in one request (one store transaction)."""
        self.check_store()
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_params(self, params: Mapping[str, object]) -> None:
        items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + BATCH])

    def set_tags(self, tags: Mapping[str, object]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value)[:MAX_PARAM_LENGTH])

    def delete_tag(self, key: str) -> None:
        self.client.delete_tag(self.run_id, key)

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_dict(self, data: Mapping, path: str) -> None:
        self.client.log_dict(self.run_id, dict(data), path)

    def log_figure(self, figure: Figure, path: str, **save_kwargs: object) -> None:
        """Log the figure as an image and close it."""
        try:
            self.client.log_figure(self.run_id, figure, path, save_kwargs=save_kwargs or None)
        finally:
            plt.close(figure)

    def log_artifact(self, file: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(file), folder)

    def log_artifacts(self, folder: Path, path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(folder), path)

    def log_inputs(self, inputs: Iterable[InputData]) -> None:
        """Record the datasets the run read, each with its role as MLflow's dataset context."""
        datasets = []
        for data in inputs:
            source = LocalArtifactDatasetSource(data.source)
            profile = json.dumps({"num_rows": data.rows})
            dataset = Dataset(data.name, data.digest, source._get_source_type(), source.to_json(), profile=profile)
            datasets.append(DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, data.context)]))
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self.client.log_inputs(self.run_id, datasets=datasets)
                return
            except Exception as error:  # a parallel run inserted the same dataset first: its row is found now
                if not is_write_conflict(error) or attempt == WRITE_ATTEMPTS - 1:
                    raise

    def log_config(self, cfg: DictConfig) -> None:
        """The resolved config as flat params and as config.yaml (bookkeeping sections left out); a copy stays
        on this machine, so that the run can be redone should its store be lost."""
        resolved = OmegaConf.to_container(cfg, resolve=True)
        settings = {key: value for key, value in resolved.items() if key not in UNLOGGED_KEYS}
        text = OmegaConf.to_yaml(settings)
        if self.config_copy is not None:
            self.config_copy.parent.mkdir(parents=True, exist_ok=True)
            self.config_copy.write_text(text)
        self.log_params(flatten(settings))
        self.log_text(text, "config.yaml")


@contextmanager
def tracked_run(
    uri: str,
    experiment_id: str,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    run_id: str | None = None,
) -> Iterator[RunRecorder]:
    """Start (or reopen `run_id`) a run in the store at `uri` and always end it: FINISHED, KILLED on Ctrl-C or
    SIGTERM, FAILED with the reason as the `error` tag otherwise. A run is never left RUNNING. The run is also
    MLflow's active run meanwhile, which MLflow's model-logging functions write to.

    A store that fails during the run (deleted, locked, unreachable) ends it with a TrackingError naming the run
    and the folder of its checkpoints and config, which stay on disk."""
    activate_store(uri)
    try:
        active = mlflow.start_run(
            run_id=run_id,
            experiment_id=None if run_id else experiment_id,
            run_name=run_name,
            parent_run_id=parent_run_id,
            nested=mlflow.active_run() is not None,
        )
    except Exception as error:
        if is_store_fault(error):
            raise store_failure(uri, error) from error
        raise
    recorder = RunRecorder.of(uri, active.info.run_id)
    try:
        yield recorder
    except (KeyboardInterrupt, RunInterrupted) as interruption:
        end_run(uri, recorder, "KILLED", str(interruption) or "interrupted")
        if isinstance(interruption, RunInterrupted):
            interruption.run_id = recorder.run_id
        raise
    except BaseException as error:
        if is_store_fault(error):
            raise lost_run(uri, recorder, error) from error
        end_run(uri, recorder, "FAILED", f"{type(error).__name__}: {error}")
        raise
    else:
        end_run(uri, recorder, "FINISHED")


def end_run(uri: str, recorder: RunRecorder, status: str, error: str | None = None) -> None:
    """End the active run with `status` (and the reason as its `error` tag)."""
    try:
        recorder.check_store()
        if error is not None:
            recorder.set_tags({"error": error})
        mlflow.end_run(status)
    except Exception as fault:
        if is_store_fault(fault):
            raise lost_run(uri, recorder, fault) from fault
        raise


def lost_run(uri: str, recorder: RunRecorder, fault: BaseException) -> TrackingError:
    """The one line for a run whose store failed under it; nothing on disk is deleted."""
    store_log = logging.getLogger("mlflow.store")  # it would print a traceback of the failure we report here
    level = store_log.level
    store_log.setLevel(logging.CRITICAL)
    try:
        with contextlib.suppress(Exception):  # the store may not take even this: the run leaves MLflow's stack
            mlflow.end_run("FAILED")
    finally:
        store_log.setLevel(level)
    return TrackingError(
        f"run {recorder.run_id} ended because its store failed ({str(store_failure(uri, fault)).rstrip('.')}). "
        f"Nothing was deleted: its checkpoints are in {checkpoint_dir(uri, recorder.run_id)} and its config in "
        f"{recorder.config_copy}; with the store back, resume it with resume={recorder.run_id}."
    )


def create_run(uri: str, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> RunRecorder:
    """A new run that stays open after this call (a sweep's parent, ended by its last `tracked_run`)."""
    client = mlflow.MlflowClient(uri)
    return RunRecorder(client.create_run(experiment_id, run_name=run_name, tags=dict(tags)).info.run_id, client)


def end_lost_run(uri: str, run_id: str, reason: str, tags: Mapping[str, str]) -> bool:
    """End a run left RUNNING by a process that died: KILLED, with `reason` as its `error` tag and `tags`.
    Returns whether it was still running."""
    recorder = RunRecorder.of(uri, run_id)
    if recorder.client.get_run(run_id).info.status != "RUNNING":
        return False
    recorder.set_tags({**tags, "error": reason})
    recorder.client.set_terminated(run_id, "KILLED")
    return True


def flatten(config: Mapping, prefix: str = "") -> dict[str, object]:
    """{'model': {'name': 'vgg1'}} -> {'model.name': 'vgg1'}; lists stay whole."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def git_commit() -> str:
    """Commit of the fruitlab source tree that ran, with '-dirty' for uncommitted changes."""
    source = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=source, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit
