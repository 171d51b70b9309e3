"""The Optuna side of a sweep: storage, study, sampler and pruner, and how a worker claims its next trial.

Several workers (processes, machines) may run the same sweep against one storage. Claims are serialised by a
lock on the storage (a lock file beside a SQLite database, an advisory lock on PostgreSQL or MySQL), so that no
grid point is handed out twice: under the lock a worker fails stale trials (heartbeat), counts what the study
holds and takes a waiting trial, a pending grid point or a failed point to retry, or a new sample.
"""

import fcntl
import hashlib
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from fruitlab.errors import ConfigError, unknown
from fruitlab.sweeping.space import Point, SearchSpace, point_key
from fruitlab.tracking.store import resolve_uri, store_root

DIRECTIONS = ("minimize", "maximize")
# A trial in one of these states holds its point: it is not run again.
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
FAIL_REASON = "fail_reason"  # user attribute of a trial that failed by itself (not interrupted)
DEFAULT_SAMPLER_TRIALS = 20
T = TypeVar("T")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str


def default_storage(tracking_uri: str | None) -> str:
    """optuna.db beside the local MLflow store."""
    return f"sqlite:///{store_root(resolve_uri(tracking_uri)) / 'optuna.db'}"


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


# What a wrong, unreachable or driverless storage URL raises.
STORAGE_ERRORS = (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.OperationalError, ImportError)


def storage_error(url: str, error: BaseException) -> ConfigError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    return ConfigError(
        f"cannot open Optuna storage '{storage_label(url)}' ({reason}); give a reachable RDB URL such as "
        "sqlite:///path/optuna.db or postgresql+psycopg2://user@host/db as hydra.sweeper.storage"
    )


# A grid is enumerated by `claim` (safe with several workers), so its sampler never samples.
SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "grid": optuna.samplers.RandomSampler,
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "cmaes": optuna.samplers.CmaEsSampler,  # needs the cmaes package
    "gp": optuna.samplers.GPSampler,  # needs torch and scipy
    "qmc": optuna.samplers.QMCSampler,  # needs scipy
    "bruteforce": optuna.samplers.BruteForceSampler,
}
PRUNERS: dict[str, type[optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "sha": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}


def registered(kind: str, registry: Mapping[str, T], name: str) -> T:
    """`registry[name]`, or the ConfigError that lists the valid names of this `kind`."""
    if name not in registry:
        raise unknown(kind, name, list(registry))
    return registry[name]


def make_sampler(name: str, seed: int | None, options: dict) -> optuna.samplers.BaseSampler:
    sampler = registered("sampler", SAMPLERS, name)
    if name == "grid" and options:
        raise ConfigError("hydra.sweeper.sampler_options do not apply to a grid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return sampler(seed=seed, **options)
        except TypeError as error:  # an option this sampler does not take
            raise ConfigError(f"sampler {name}: {error}") from error


WORKERS_ATTR = "workers"  # study user attribute: how many workers (sweep invocations) have joined the study


def join_as_worker(study: optuna.Study) -> int:
    """This worker's index in the study: 0 for the first worker that joins it, then 1, 2, ... Call under
    `study_lock`."""
    index = int(study.user_attrs.get(WORKERS_ATTR, 0))
    study.set_user_attr(WORKERS_ATTR, index + 1)
    return index


def worker_seed(seed: int | None, worker: int) -> int | None:
    """The sampler seed of worker `worker`: the sweep's seed for the first worker (so one worker is
    reproducible), another seed drawn from (seed, worker) for each other one (so workers sample apart)."""
    if worker == 0:
        return seed
    entropy = [worker] if seed is None else [seed, worker]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def make_pruner(name: str, options: dict) -> optuna.pruners.BasePruner:
    return registered("pruner", PRUNERS, name)(**options)


def open_study(
    name: str,
    storage: RDBStorage,
    objectives: Sequence[Objective],
    sampler: optuna.samplers.BaseSampler | None,
    pruner: optuna.pruners.BasePruner,
) -> optuna.Study:
    """The study, created or loaded; without `sampler`, the caller sets `study.sampler` afterwards."""
    directions = [o.direction for o in objectives]
    try:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            directions=directions,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
    except ValueError as error:  # the stored study optimises in other directions
        raise ConfigError(f"study '{name}': {error}; choose another hydra.sweeper.study_name") from error
    metrics = [o.metric for o in objectives]
    if study.metric_names != metrics:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(metrics)
    return study


# -- several workers -----------------------------------------------------------------------------------------


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


def retryable(trial: FrozenTrial, started: datetime) -> bool:
    """A failed trial is run again by a later invocation of the sweep; an interrupted one (its worker died
    and the trial went stale, so no failure reason was recorded) at once."""
    return FAIL_REASON not in trial.user_attrs or trial.datetime_start < started


def failed_here(trial: FrozenTrial, started: datetime) -> bool:
    """The trial failed by itself in this invocation of the sweep: it counts toward n_trials."""
    return trial.state == TrialState.FAIL and not retryable(trial, started)


def counted(trials: Sequence[FrozenTrial], started: datetime) -> list[FrozenTrial]:
    """The trials that count toward the budget: those that hold their point and those failed in this
    invocation (so a sweep whose trials keep failing ends)."""
    return [t for t in trials if t.state in TAKEN or failed_here(t, started)]


def unresolved_failures(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The failed trials whose point no trial has since completed or pruned: a failed point that a later
    invocation ran again successfully is no longer a failure of the study."""
    done = {point_key(t.params) for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    return [t for t in trials if t.state == TrialState.FAIL and point_key(t.params) not in done]


def pending_points(candidates: Sequence[Point], trials: Sequence[FrozenTrial], started: datetime) -> list[Point]:
    """The candidates that no trial holds, nor failed in this invocation, without repeats."""
    held = {point_key(t.params) for t in counted(trials, started)}
    pending: list[Point] = []
    for point in candidates:
        if point_key(point) not in held:
            held.add(point_key(point))
            pending.append(point)
    return pending


def claim(
    study: optuna.Study,
    storage: RDBStorage,
    space: SearchSpace,
    grid: list[Point] | None,
    budget: int,
    started: datetime,
) -> optuna.Trial | None:
    """The next trial for this worker, its parameters suggested and its first heartbeat recorded; None when
    `budget` trials count (see `counted`) or, for a grid, every point is held or failed in this invocation.
    Call under `study_lock`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.WAITING for t in trials):
        if len(counted(trials, started)) >= budget:
            return None
        candidates = grid if grid is not None else [t.params for t in trials if t.state == TrialState.FAIL]
        pending = pending_points(candidates, trials, started)
        if pending:
            study.enqueue_trial(pending[0])
        elif grid is not None:
            return None
    with warnings.catch_warnings():  # heartbeats are kept by `heartbeat` below, not by Study.optimize
        warnings.simplefilter("ignore")
        trial = study.ask()
    space.suggest(trial)
    storage.record_heartbeat(trial._trial_id)
    return trial


def running_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


@contextmanager
def heartbeat(storage: RDBStorage, trial: optuna.Trial, interval: float) -> Iterator[None]:
    """Record the trial's heartbeat every `interval` seconds while it runs, so that other workers can tell
    a live trial from one whose worker was killed."""
    trial_id = trial._trial_id
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
