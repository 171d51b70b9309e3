"""An MLflow run's life, and the recorder through which every other layer writes to it."""

import contextlib
import functools
import json
import logging
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import Dataset, DatasetInput, FileInfo, InputTag, Metric, Param
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking.context import registry as run_context
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_PARENT_RUN_ID
from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import RunInterrupted, TrackingError
from fruitlab.tracking.store import Store, StoreFile, is_store_fault, is_write_conflict

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
    store: Store = field(repr=False)
    store_file: StoreFile | None = None  # a running run's SQLite store file, checked before each epoch's metrics

    def check_store(self) -> None:
        if self.store_file is not None:
            self.store_file.check()

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """All of `metrics` in one request (one store transaction)."""
        self.check_store()
        now = int(time.time() * 1000)
        self.store.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def log_params(self, params: Mapping[str, object]) -> None:
        items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for start in range(0, len(items), BATCH):
            self.store.client.log_batch(self.run_id, params=items[start : start + BATCH])

    def set_tags(self, tags: Mapping[str, object]) -> None:
        for key, value in tags.items():
            self.store.client.set_tag(self.run_id, key, str(value)[:MAX_PARAM_LENGTH])

    def delete_tag(self, key: str) -> None:
        self.store.client.delete_tag(self.run_id, key)

    def log_text(self, text: str, path: str) -> None:
        self.store.client.log_text(self.run_id, text, path)

    def log_dict(self, data: Mapping, path: str) -> None:
        self.store.client.log_dict(self.run_id, dict(data), path)

    def log_figure(self, figure: Figure, path: str, **save_kwargs: object) -> None:
        """Log the figure as an image and close it."""
        try:
            self.store.client.log_figure(self.run_id, figure, path, save_kwargs=save_kwargs or None)
        finally:
            plt.close(figure)

    def log_artifact(self, file: Path, folder: str | None = None) -> None:
        self.store.client.log_artifact(self.run_id, str(file), folder)

    def log_artifacts(self, folder: Path, path: str | None = None) -> None:
        self.store.client.log_artifacts(self.run_id, str(folder), path)

    def replace_artifacts(self, folder: Path, path: str) -> list[str]:
        """Log `folder`'s files as `path`, deleting what `path` held first, so that a file the folder no longer has
        does not stay beside the new ones; returns the artifacts of `path` still not from `folder` (an artifact
        store that deletes nothing keeps them)."""
        artifact_uri = self.store.client.get_run(self.run_id).info.artifact_uri
        get_artifact_repository(artifact_uri, tracking_uri=self.store.uri).delete_artifacts(path)
        self.log_artifacts(folder, path)
        new = {f"{path}/{file.relative_to(folder).as_posix()}" for file in folder.rglob("*") if file.is_file()}
        return sorted(artifact.path for artifact in self.list_files(path) if artifact.path not in new)

    def list_files(self, path: str) -> list[FileInfo]:
        """The files under `path` among the run's artifacts, at any depth."""
        files = []
        for artifact in self.store.client.list_artifacts(self.run_id, path):
            files += self.list_files(artifact.path) if artifact.is_dir else [artifact]
        return files

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
                self.store.client.log_inputs(self.run_id, datasets=datasets)
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
        copy = self.store.config_copy(self.run_id)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(text)
        self.log_params(flatten(settings))
        self.log_text(text, "config.yaml")


@contextmanager
def tracked_run(
    store: Store,
    experiment_id: str,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    run_id: str | None = None,
) -> Iterator[RunRecorder]:
    """Start a run of `store` (a child of `parent_run_id` when given; nothing else nests it), or reopen `run_id`,
    and always end it: FINISHED, KILLED on Ctrl-C or SIGTERM, FAILED with the reason as the `error` tag
    otherwise. A run is never left RUNNING.

    A store that fails during the run (deleted, locked, unreachable) ends it with a TrackingError naming the run
    and the folder of its checkpoints and config, which stay on disk."""
    try:
        run_id = reopen_run(store, run_id) if run_id else new_run(store, experiment_id, run_name, parent_run_id)
    except Exception as error:
        if is_store_fault(error):
            raise store.failure(error) from error
        raise
    recorder = RunRecorder(run_id, store, StoreFile.of(store.uri))
    try:
        yield recorder
    except (KeyboardInterrupt, RunInterrupted) as interruption:
        end_run(recorder, "KILLED", str(interruption) or "interrupted")
        if isinstance(interruption, RunInterrupted):
            interruption.run_id = recorder.run_id
        raise
    except BaseException as error:
        if is_store_fault(error):
            raise lost_run(recorder, error) from error
        end_run(recorder, "FAILED", f"{type(error).__name__}: {error}")
        raise
    else:
        end_run(recorder, "FINISHED")


def new_run(store: Store, experiment_id: str, run_name: str | None, parent_run_id: str | None) -> str:
    """A RUNNING run with the tags MLflow gives the runs it starts (user, source, its git commit)."""
    tags = {MLFLOW_PARENT_RUN_ID: parent_run_id} if parent_run_id else {}
    run = store.client.create_run(experiment_id, run_name=run_name, tags=run_context.resolve_tags(tags))
    return run.info.run_id


def reopen_run(store: Store, run_id: str) -> str:
    store.client.update_run(run_id, status="RUNNING")
    return run_id


def end_run(recorder: RunRecorder, status: str, error: str | None = None) -> None:
    """End the run with `status` (and the reason as its `error` tag)."""
    try:
        recorder.check_store()
        if error is not None:
            recorder.set_tags({"error": error})
        recorder.store.client.set_terminated(recorder.run_id, status)
    except Exception as fault:
        if is_store_fault(fault):
            raise lost_run(recorder, fault) from fault
        raise


def lost_run(recorder: RunRecorder, fault: BaseException) -> TrackingError:
    """The one line for a run whose store failed under it; nothing on disk is deleted."""
    store = recorder.store
    store_log = logging.getLogger("mlflow.store")  # it would print a traceback of the failure we report here
    level = store_log.level
    store_log.setLevel(logging.CRITICAL)
    try:
        with contextlib.suppress(Exception):  # the store may not take even this
            recorder.store.client.set_terminated(recorder.run_id, "FAILED")
    finally:
        store_log.setLevel(level)
    return TrackingError(
        f"run {recorder.run_id} ended because its store failed ({str(store.failure(fault)).rstrip('.')}). "
        f"Nothing was deleted: its checkpoints are in {store.checkpoint_dir(recorder.run_id)} and its config in "
        f"{store.config_copy(recorder.run_id)}; with the store back, resume it with resume={recorder.run_id}."
    )


def create_run(store: Store, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> RunRecorder:
    """A new run that stays open after this call (a sweep's parent, ended by its last `tracked_run`)."""
    return RunRecorder(store.client.create_run(experiment_id, run_name=run_name, tags=dict(tags)).info.run_id, store)


def end_lost_run(store: Store, run_id: str, reason: str, tags: Mapping[str, str]) -> bool:
    """End a run left RUNNING by a process that died: KILLED, with `reason` as its `error` tag and `tags`.
    Returns whether it was still running."""
    if store.client.get_run(run_id).info.status != "RUNNING":
        return False
    end_with_reason(store, run_id, reason, tags, "KILLED")
    return True


def fail_run(store: Store, run_id: str, reason: str, tags: Mapping[str, str]) -> None:
    """End a run as FAILED, with `reason` as its `error` tag and `tags`, whatever its process recorded: for a run
    whose job the scheduler cancelled or killed (the job may have ended it KILLED on its way out)."""
    end_with_reason(store, run_id, reason, tags, "FAILED")


def end_with_reason(store: Store, run_id: str, reason: str, tags: Mapping[str, str], status: str) -> None:
    """End the run with `status`, `reason` as its `error` tag and `tags`."""
    RunRecorder(run_id, store).set_tags({**tags, "error": reason})
    store.client.set_terminated(run_id, status)


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


@functools.cache
def git_commit() -> str:
    """Commit of the fruitlab source tree that ran, with '-dirty' for uncommitted changes; asked once per process
    (the source a process runs is the one it imported), not once per run of a sweep worker."""
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
