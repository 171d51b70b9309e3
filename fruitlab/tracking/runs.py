"""An MLflow run's life, and the recorder through which every other layer writes to it."""

import json
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

from fruitlab.errors import RunInterrupted
from fruitlab.tracking.store import activate_store

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value
BATCH = 100  # MLflow's limit on parameters per log_batch call
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

    @classmethod
    def of(cls, uri: str, run_id: str) -> "RunRecorder":
        """A recorder for an existing run of the store at `uri` (MLflow's active run or not)."""
        return cls(run_id, mlflow.MlflowClient(uri))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """All of `metrics` in one request (one store transaction)."""
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
        self.client.log_inputs(self.run_id, datasets=datasets)

    def log_config(self, cfg: DictConfig) -> None:
        """The resolved config as flat params and as config.yaml (bookkeeping sections left out)."""
        resolved = OmegaConf.to_container(cfg, resolve=True)
        settings = {key: value for key, value in resolved.items() if key not in UNLOGGED_KEYS}
        self.log_params(flatten(settings))
        self.log_text(OmegaConf.to_yaml(settings), "config.yaml")


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
    MLflow's active run meanwhile, which MLflow's model-logging functions write to."""
    activate_store(uri)
    active = mlflow.start_run(
        run_id=run_id,
        experiment_id=None if run_id else experiment_id,
        run_name=run_name,
        parent_run_id=parent_run_id,
        nested=mlflow.active_run() is not None,
    )
    recorder = RunRecorder(active.info.run_id, mlflow.MlflowClient(uri))
    try:
        yield recorder
    except (KeyboardInterrupt, RunInterrupted) as interruption:
        recorder.set_tags({"error": str(interruption) or "interrupted"})
        mlflow.end_run("KILLED")
        if isinstance(interruption, RunInterrupted):
            interruption.run_id = recorder.run_id
        raise
    except BaseException as error:
        recorder.set_tags({"error": f"{type(error).__name__}: {error}"})
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


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
