"""Where runs are recorded: the MLflow tracking URI, the local store root and experiments."""

import re
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

DEFAULT_STORE = Path("mlruns")


def normalize_uri(uri: str | None) -> str:
    """An absolute tracking URI. A relative SQLite path is made absolute (and its folder created) so that
    the store does not depend on the working directory of whoever opens it later."""
    if not uri:
        uri = f"sqlite:///{DEFAULT_STORE / 'mlflow.db'}"
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        path = path.expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return uri


def store_root(uri: str) -> Path:
    """The local folder that holds this store's files: the SQLite file's folder, else ./mlruns."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent
    return DEFAULT_STORE.resolve()


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


def ensure_experiment(name: str, uri: str) -> str:
    """Id of experiment `name`, created if needed. Local stores keep its artifacts under <store>/artifacts;
    a tracking server chooses its own artifact root."""
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (store_root(uri) / "artifacts" / slug(name)).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # created meanwhile by a concurrent worker
        return client.get_experiment_by_name(name).experiment_id
