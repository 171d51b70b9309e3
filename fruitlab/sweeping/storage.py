"""Where a study lives: its RDB storage, opened through Optuna's public storage API, the lock that lets one
worker at a time claim a trial (a lock file beside a SQLite database, an advisory lock on PostgreSQL or MySQL),
and the heartbeats that tell a live trial from one whose worker was killed."""

import fcntl
import hashlib
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url

from fruitlab.errors import ConfigError

# What a wrong, unreachable or driverless storage URL raises.
STORAGE_ERRORS = (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.OperationalError, ImportError)


def checked_storage_url(url: str) -> str:
    try:
        make_url(url)
    except sqlalchemy.exc.ArgumentError as error:
        raise ConfigError(
            f"hydra.sweeper.storage '{url}' is not a database URL: give one such as sqlite:///path/optuna.db "
            "or postgresql+psycopg2://user@host/db"
        ) from error
    return url


def storage_label(url: str) -> str:
    """The storage URL without its password, fit for tags and logs."""
    return make_url(url).render_as_string(hide_password=True)


def open_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    on_stale: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> RDBStorage:
    """The study's storage; `on_stale` is called for each trial this worker finds stale and fails. A trial's
    job opens it without heartbeats: the sweeper keeps them."""
    # SQLite: several processes wait for each other's writes instead of failing after 5 s.
    engine_kwargs = {"connect_args": {"timeout": 120}} if make_url(url).get_backend_name() == "sqlite" else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=on_stale,
            )
    except STORAGE_ERRORS as error:
        raise storage_error(url, error) from error


@cache
def trial_storage(url: str) -> RDBStorage:
    """The study's storage as the trial jobs of this process open it: once per process and URL, so that a
    worker running trial after trial reuses one engine instead of paying a new engine, its schema and version
    checks, and keeping it open, for every trial."""
    return open_storage(url)


def storage_error(url: str, error: BaseException) -> ConfigError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    return ConfigError(
        f"cannot open Optuna storage '{storage_label(url)}' ({reason}); give a reachable RDB URL such as "
        "sqlite:///path/optuna.db or postgresql+psycopg2://user@host/db as hydra.sweeper.storage"
    )


def trial_id(storage: BaseStorage, study_name: str, number: int) -> int:
    """The storage's id of trial `number` of the study, by the storage's public look-ups."""
    # A Trial's own id is private in Optuna (no public property); these public storage methods give it.
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)


def record_heartbeat(storage: BaseStorage, trial: int) -> None:
    """One heartbeat of trial id `trial`; only an RDB storage keeps them (an in-memory study has one worker)."""
    if isinstance(storage, RDBStorage):
        storage.record_heartbeat(trial)


@contextmanager
def heartbeat(storage: BaseStorage, trial: int, interval: float) -> Iterator[None]:
    """Record trial id `trial`'s heartbeat every `interval` seconds while it runs, so that other workers can
    tell a live trial from one whose worker was killed."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            record_heartbeat(storage, trial)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _lock_key(study_name: str) -> int:
    return int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)


@cache
def _engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)


@contextmanager
def study_lock(url: str, study_name: str) -> Iterator[None]:
    """Held while a worker claims a trial or reports on the study: one worker at a time per study."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):  # private to this process
            yield
            return
        database = Path(parsed.database)
        database.parent.mkdir(parents=True, exist_ok=True)
        lock_path = database.with_name(database.name + ".lock")
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif backend in ("postgresql", "mysql"):
        acquire, release, key = {
            "postgresql": ("SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)", _lock_key(study_name)),
            "mysql": ("SELECT GET_LOCK(:key, -1)", "SELECT RELEASE_LOCK(:key)", f"optuna-{_lock_key(study_name)}"),
        }[backend]
        try:
            connection = _engine(url).connect()
        except STORAGE_ERRORS as error:
            raise storage_error(url, error) from error
        with connection:
            connection.execute(sqlalchemy.text(acquire), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text(release), {"key": key})
    else:
        raise ConfigError(
            f"several workers cannot share a study on '{backend}': use SQLite, PostgreSQL or MySQL storage"
        )
