"""An MLflow run's life and what every run records beside its metrics."""

import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param
from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import RunInterrupted

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value
BATCH = 100  # MLflow's limit on parameters per log_batch call


@contextmanager
def tracked_run(
    experiment_id: str, run_name: str | None = None, parent_run_id: str | None = None, run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Start (or reopen `run_id`) and always end the run: FINISHED, KILLED on Ctrl-C or SIGTERM,
    FAILED with the reason as the `error` tag otherwise. A run is never left RUNNING."""
    active = mlflow.start_run(
        run_id=run_id,
        experiment_id=None if run_id else experiment_id,
        run_name=run_name,
        parent_run_id=parent_run_id,
        nested=mlflow.active_run() is not None,
    )
    try:
        yield active
    except (KeyboardInterrupt, RunInterrupted) as interruption:
        mlflow.set_tag("error", str(interruption) or "interrupted")
        mlflow.end_run("KILLED")
        if isinstance(interruption, RunInterrupted):
            interruption.run_id = active.info.run_id
        raise
    except BaseException as error:
        mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:MAX_PARAM_LENGTH])
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


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


def log_params(params: Mapping[str, object]) -> None:
    items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
    client, run_id = mlflow.MlflowClient(), mlflow.active_run().info.run_id
    for start in range(0, len(items), BATCH):
        client.log_batch(run_id, params=items[start : start + BATCH])


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    """All of `metrics` in one request (one store transaction)."""
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=batch)


def log_config(cfg: DictConfig) -> None:
    """The resolved config as flat params and as config.yaml."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    log_params(flatten(resolved))
    mlflow.log_text(OmegaConf.to_yaml(resolved), "config.yaml")


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
