"""Where runs are recorded: the one rule that resolves the MLflow tracking store, its local root and experiments."""

import os
import re
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from fruitlab.errors import TrackingError

DEFAULT_STORE = Path("mlruns")
DEFAULT_URI = f"sqlite:///{DEFAULT_STORE / 'mlflow.db'}"
REACH_TIMEOUT_S = 10  # one quick look instead of MLflow's retries, which last minutes on a dead address
# MLflow 3's declared kind of an experiment: a model-training ("Machine learning") one, not a GenAI one.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"


def resolve_uri(uri: str | None = None) -> str:
    """The tracking store, by one rule for every command: `uri` when given, else $MLFLOW_TRACKING_URI, else
    sqlite:///mlruns/mlflow.db in the working directory. A relative SQLite path is made absolute (and its
    folder created) so that the store does not depend on the working directory of whoever opens it later."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        path = path.expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TrackingError(
                f"cannot create the MLflow store folder {path.parent} for tracking.uri={uri} "
                f"({error.strerror}); choose a writable path."
            ) from error
        return f"sqlite:///{path}"
    return uri


def check_reachable(uri: str) -> None:
    """Fail at once, in one line, when a tracking server or database does not answer."""
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            answer = requests.get(f"{uri.rstrip('/')}/health", timeout=REACH_TIMEOUT_S)
        except requests.RequestException as error:
            raise TrackingError(
                f"cannot reach the MLflow tracking server at tracking.uri={uri} ({type(error).__name__}); "
                "start it (see README, 'Running on shared infrastructure') or set tracking.uri to a local store."
            ) from error
        if answer.status_code != 200:
            raise TrackingError(
                f"tracking.uri={uri} answers HTTP {answer.status_code} at /health: not an MLflow tracking server."
            )
    elif "://" in uri and not uri.startswith(("sqlite:", "file:")):
        import sqlalchemy

        shown = shown_uri(uri)
        try:
            sqlalchemy.create_engine(uri, connect_args=_connect_timeout(uri)).connect().close()
        except ImportError as error:
            raise TrackingError(
                f"no database driver for tracking.uri={shown} ({error}); name an installed one in the URI, "
                "e.g. postgresql+psycopg2://USER@HOST:PORT/DB."
            ) from error
        except sqlalchemy.exc.SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise TrackingError(
                f"cannot connect to the tracking database tracking.uri={shown} ({reason}); "
                "check the server, the database name and the credentials."
            ) from error


def shown_uri(uri: str) -> str:
    """`uri` as it may be printed: a database password is masked."""
    if "://" not in uri or uri.startswith(("sqlite:", "file:", "http://", "https://")):
        return uri
    import sqlalchemy

    return sqlalchemy.engine.make_url(uri).render_as_string(hide_password=True)


def _connect_timeout(uri: str) -> dict[str, int]:
    return {"connect_timeout": REACH_TIMEOUT_S} if uri.startswith(("postgresql", "mysql")) else {}


def checkpoint_dir(uri: str, run_id: str) -> Path:
    """Where the checkpoints of run `run_id` live: `<store>/checkpoints/<run_id>`."""
    return store_root(uri) / "checkpoints" / run_id


def store_root(uri: str) -> Path:
    """The local folder that holds this store's files: the SQLite file's folder, else ./mlruns."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent
    return DEFAULT_STORE.resolve()


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


def use_store(uri: str | None) -> str:
    """Resolve the store, check that it answers and make it the store MLflow's model and artifact functions
    write to; the only place fruitlab sets MLflow's process-wide tracking URI. Returns the resolved URI."""
    resolved = resolve_uri(uri)
    check_reachable(resolved)
    activate_store(resolved)
    return resolved


def activate_store(uri: str) -> None:
    """Make `uri` the store MLflow's fluent functions (start_run, log_model) write to."""
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)


def ensure_experiment(name: str, uri: str) -> str:
    """Id of experiment `name`, created if needed, as a model-training experiment (MLflow 3's experiment-kind
    tag; an existing experiment is left as it is). Local stores keep its artifacts under <store>/artifacts;
    a tracking server chooses its own artifact root."""
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (store_root(uri) / "artifacts" / slug(name)).as_uri()
    try:
        return client.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}
        )
    except MlflowException:  # created meanwhile by a concurrent worker
        return client.get_experiment_by_name(name).experiment_id
