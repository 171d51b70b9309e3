"""Where runs are recorded: the one rule that resolves the MLflow tracking store's URI, and `Store`, the handle
every read and write of fruitlab goes through (made once per command, handed down).

Nothing here relies on MLflow's process-wide tracking URI: a store's client is bound to its URI. MLflow's fluent
functions that read only the process-wide URI (logging and describing a model) run inside `Store.fluent()`,
which points that URI at the store for one block, under a lock, and restores it.
"""

import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
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
LOCK_TIMEOUT_S = 15  # how long a SQLite store may stay locked by another process before that is reported
CREDENTIALS = "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
# MLflow's fluent functions read one process-wide tracking URI: the stores of one process take turns holding it.
FLUENT_LOCK = threading.RLock()


def resolve_uri(uri: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The tracking store, by one rule for every command: `uri` when given, else $MLFLOW_TRACKING_URI (read from
    `environ`, default os.environ), else sqlite:///mlruns/mlflow.db in the working directory. A relative SQLite
    path is made absolute, so that the store does not depend on the working directory of whoever opens it
    later. Pure: nothing is created or contacted."""
    environ = os.environ if environ is None else environ
    uri = uri or environ.get(TRACKING_URI_ENV) or DEFAULT_URI
    if uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).expanduser().resolve()}"
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The file of a SQLite store, None for a server or another database."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def store_root(uri: str) -> Path:
    """The local folder that holds the files of the store at `uri` (checkpoints, config copies, a sweep's Optuna
    storage): the SQLite file's folder, else ./mlruns."""
    path = sqlite_path(uri)
    return path.parent if path is not None else DEFAULT_STORE.resolve()


def make_store_folder(uri: str) -> None:
    """Create the folder of a SQLite store's file (its first write creates the file)."""
    path = sqlite_path(uri)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrackingError(
            f"cannot create the MLflow store folder {path.parent} for tracking.uri={uri} "
            f"({error.strerror}); choose a writable path."
        ) from error


def check_reachable(uri: str) -> None:
    """Fail at once, in one line, when a tracking server or database does not answer, or a SQLite store cannot
    be written."""
    if uri.startswith("sqlite:///"):
        check_sqlite_writable(Path(uri.removeprefix("sqlite:///")))
    elif uri.startswith(("http://", "https://")):
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
        check_credentials(uri)
    elif "://" in uri and not uri.startswith(("sqlite:", "file:")):
        import sqlalchemy

        hidden = shown_uri(uri)
        try:
            sqlalchemy.create_engine(uri, connect_args=_connect_timeout(uri)).connect().close()
        except ImportError as error:
            raise TrackingError(
                f"no database driver for tracking.uri={hidden} ({error}); name an installed one in the URI, "
                "e.g. postgresql+psycopg2://USER@HOST:PORT/DB."
            ) from error
        except sqlalchemy.exc.SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise TrackingError(
                f"cannot connect to the tracking database tracking.uri={hidden} ({reason}); "
                "check the server, the database name and the credentials."
            ) from error


def shown_uri(uri: str) -> str:
    """`uri` as it may be printed: any password in it is masked."""
    if "@" not in uri:
        return uri
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(uri).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:  # not a database URL (an http:// server with user:password@)
        return re.sub(r"//[^@/]*@", "//***@", uri)


def check_sqlite_writable(path: Path) -> None:
    """A SQLite store that is not a database, is locked by another process or cannot be written (a read-only
    file or folder) fails here in one line, before a run starts, instead of in the middle of one."""
    try:
        connection = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S)
        try:
            # The whole-file check reads only: parallel workers' writes go on meanwhile.
            (verdict,) = connection.execute("PRAGMA quick_check(1)").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
            connection.execute("BEGIN IMMEDIATE")  # takes the write lock, as MLflow's first write would
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            connection.execute(f"PRAGMA user_version = {int(version)}")  # a write (to the journal), undone below
            connection.rollback()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise TrackingError(f"the MLflow store tracking.uri=sqlite:///{path} {sqlite_problem(error)}") from error


def sqlite_problem(error: BaseException) -> str:
    """What a SQLite error means for the user, ending with what to do."""
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return (
            "is not an intact SQLite database (truncated, damaged, or another kind of file); restore it from a "
            "backup or point tracking.uri at another store."
        )
    if "locked" in text:
        return f"is locked by another process for more than {LOCK_TIMEOUT_S} s; close it or wait, then try again."
    if "readonly" in text or "unable to open" in text or "read-only" in text:
        return "cannot be written (a read-only file or folder); make it writable or choose another tracking.uri."
    return f"cannot be used ({text}); check the file or choose another tracking.uri."


def check_credentials(uri: str) -> None:
    """One authenticated request: a server with authentication refuses missing or wrong credentials here."""
    try:
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except MlflowException as error:
        raise store_failure(uri, error) from error


def store_failure(uri: str, error: BaseException) -> TrackingError:
    """The error a store fault is reported as: one line naming the store and what to do."""
    code = getattr(error, "error_code", "")
    if code == "UNAUTHENTICATED":
        return TrackingError(f"tracking.uri={shown_uri(uri)} refused the credentials: set {CREDENTIALS} to a user's.")
    if code == "PERMISSION_DENIED":
        return TrackingError(f"tracking.uri={shown_uri(uri)} denies this user the request; ask its admin for access.")
    cause = store_cause(error)
    if isinstance(cause, sqlite3.Error) and uri.startswith("sqlite:///"):
        if not Path(uri.removeprefix("sqlite:///")).exists():
            return TrackingError(f"the MLflow store tracking.uri={uri} is gone: its file was deleted or moved.")
        return TrackingError(f"the MLflow store tracking.uri={uri} {sqlite_problem(cause)}")
    reason = str(cause or error).strip().splitlines()[0] if str(cause or error).strip() else type(error).__name__
    return TrackingError(f"the MLflow store tracking.uri={shown_uri(uri)} failed: {reason}")


def store_cause(error: BaseException) -> BaseException | None:
    """The database or connection error behind `error` (itself, or in its chain), None for another error."""
    import requests
    import sqlalchemy

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.SQLAlchemyError):
            return getattr(seen, "orig", None) or seen
        if isinstance(seen, sqlite3.Error | requests.RequestException):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def is_store_fault(error: BaseException) -> bool:
    """Whether `error` comes from the store (its database, its server or its credentials), not from fruitlab.
    A write that lost a race with another process's (a unique key both inserted) is not a fault of the store."""
    code = getattr(error, "error_code", "")
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return True
    return store_cause(error) is not None and not is_write_conflict(error)


def is_write_conflict(error: BaseException) -> bool:
    """Whether `error` is a unique key inserted by two writers at once: MLflow checks, then inserts, so
    parallel runs of one experiment that log the same dataset can both insert it. Redoing the write
    finds the other's row."""
    cause = store_cause(error)
    # Every DB-API driver (sqlite3, psycopg2, pymysql) and SQLAlchemy name this class IntegrityError.
    return cause is not None and any(kind.__name__ == "IntegrityError" for kind in type(cause).__mro__)


def _connect_timeout(uri: str) -> dict[str, int]:
    return {"connect_timeout": REACH_TIMEOUT_S} if uri.startswith(("postgresql", "mysql")) else {}


@dataclass(frozen=True)
class StoreFile:
    """A SQLite store's file as it was when a run started. SQLite keeps writing to a file deleted under it, so a
    run checks that its store is still this file, or its record would be lost without a word."""

    path: Path
    inode: int

    @classmethod
    def of(cls, uri: str) -> "StoreFile | None":
        path = Path(uri.removeprefix("sqlite:///"))
        return cls(path, path.stat().st_ino) if uri.startswith("sqlite:///") and path.exists() else None

    def check(self) -> None:
        """Raise a SQLite error when the file was deleted or replaced."""
        try:
            same = self.path.stat().st_ino == self.inode
        except FileNotFoundError:
            same = False
        if not same:
            raise sqlite3.OperationalError(f"its file {self.path} was deleted or replaced during the run")


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"


@dataclass(frozen=True)
class Store:
    """One MLflow tracking store: its resolved URI, its local folder, its experiments, and the client bound to its
    URI through which tracking's modules read and write it (callers outside tracking use methods, never it)."""

    uri: str
    client: mlflow.MlflowClient = field(repr=False, compare=False)

    @classmethod
    def open(cls, uri: str | None = None, existing: bool = False) -> "Store":
        """The store `uri` names, resolved by `resolve_uri`. A store to write is checked to answer (a local one
        to be writable, its folder created); with `existing` (a reader), a local store must exist already."""
        resolved = resolve_uri(uri)
        path = sqlite_path(resolved)
        if existing:
            if path is not None and not path.is_file():
                raise TrackingError(f"no MLflow store at {resolved}: train first, or name the store holding the runs")
        else:
            make_store_folder(resolved)
            check_reachable(resolved)
        # The store's Model Registry is the store itself (MLflow would otherwise read the process-wide default).
        return cls(resolved, mlflow.MlflowClient(resolved, registry_uri=resolved))

    @property
    def root(self) -> Path:
        return store_root(self.uri)

    def checkpoint_dir(self, run_id: str) -> Path:
        """Where the checkpoints of run `run_id` live: `<root>/checkpoints/<run_id>`."""
        return self.root / "checkpoints" / run_id

    def config_copy(self, run_id: str) -> Path:
        """Where a copy of run `run_id`'s config is kept on this machine: `<root>/configs/<run_id>.yaml`."""
        return self.root / "configs" / f"{run_id}.yaml"

    def failure(self, error: BaseException) -> TrackingError:
        return store_failure(self.uri, error)

    def ensure_experiment(self, name: str) -> str:
        """Id of experiment `name`, created if needed, as a model-training experiment (MLflow 3's experiment-kind
        tag; an existing experiment is left as it is). Local stores keep its artifacts under <root>/artifacts;
        a tracking server chooses its own artifact root."""
        try:
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                return experiment.experiment_id
            location = (self.root / "artifacts" / slug(name)).as_uri() if sqlite_path(self.uri) else None
            try:
                return self.client.create_experiment(
                    name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}
                )
            except MlflowException as error:  # created meanwhile by a concurrent worker
                if is_store_fault(error):
                    raise
                return self.client.get_experiment_by_name(name).experiment_id
        except Exception as error:
            if is_store_fault(error):
                raise self.failure(error) from error
            raise

    def download_artifact(self, run_id: str, path: str, folder: Path) -> Path:
        """The run's artifact `path`, downloaded into `folder`."""
        return Path(self.client.download_artifacts(run_id, path, str(folder)))

    @contextmanager
    def fluent(self) -> Iterator[None]:
        """MLflow's fluent functions write to and read from this store inside the block: its URI is MLflow's
        process-wide tracking URI meanwhile (other threads' fluent blocks wait), and the previous one after."""
        with FLUENT_LOCK:
            # MLflow mirrors its process-wide URI in $MLFLOW_TRACKING_URI: that is what is restored.
            previous = os.environ.get(TRACKING_URI_ENV)
            mlflow.set_tracking_uri(self.uri)
            try:
                yield
            finally:
                mlflow.set_tracking_uri(previous)  # None: unset, as before
