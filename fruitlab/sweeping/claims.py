"""How a worker claims its next trial. Several workers (processes, machines) may run one sweep against one
storage; under the study's lock a worker fails stale trials (heartbeat), counts what the study holds and takes a
waiting trial, a pending grid point or a failed point to retry, or a new sample. No grid point is handed out
twice."""

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import optuna
from hydra.utils import get_method
from omegaconf import DictConfig
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from fruitlab.errors import ConfigError
from fruitlab.sweeping.space import Point, SearchSpace, point_key
from fruitlab.sweeping.storage import record_heartbeat, trial_id
from fruitlab.sweeping.warm_start import SEEDED_ATTR, WARM_STARTED_ATTR, Seed

# A trial in one of these states holds its point: it is not run again.
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
FAIL_REASON = "fail_reason"  # user attribute of a trial that failed by itself (not interrupted)
LOST_ATTR = "lost"  # user attribute of a failed trial whose job never reported (cancelled, killed)
SuggestMore = Callable[[optuna.Trial], None]  # custom_search_space, bound to the sweep's config


@dataclass(frozen=True)
class Claim:
    trial: optuna.Trial
    trial_id: int  # the storage's id of the trial: its heartbeats and what its job recorded are read by it


def load_extension(path: str | None, config: DictConfig) -> SuggestMore | None:
    """`hydra.sweeper.custom_search_space`: a function f(cfg, trial) that suggests further parameters."""
    if path is None:
        return None
    try:
        return partial(get_method(path), config)
    except Exception as error:
        raise ConfigError(
            f"hydra.sweeper.custom_search_space '{path}' is not an importable function f(cfg, trial): {error}"
        ) from error


def retryable(trial: FrozenTrial, started: datetime) -> bool:
    """A failed trial is run again by a later invocation of the sweep; an interrupted one (its worker died
    and the trial went stale, so no failure reason was recorded) or a lost one (its job was cancelled or
    killed: the cluster's failure, not the configuration's) at once."""
    attrs = trial.user_attrs
    return FAIL_REASON not in attrs or attrs.get(LOST_ATTR, False) or trial.datetime_start < started


def lost_here(trial: FrozenTrial, started: datetime) -> bool:
    """The trial's job was lost in this invocation: its point runs again, but the loss counts toward
    max_failure_rate, so that a sweep whose jobs are always lost ends."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get(LOST_ATTR, False) and trial.datetime_start >= started


def failed_here(trial: FrozenTrial, started: datetime) -> bool:
    """The trial failed by itself in this invocation of the sweep: it counts toward n_trials."""
    return trial.state == TrialState.FAIL and not retryable(trial, started)


def seeded(trial: FrozenTrial) -> bool:
    """The trial was made from a finished MLflow run (warm start): it holds its point but ran in no sweep."""
    return SEEDED_ATTR in trial.user_attrs


def counted(trials: Sequence[FrozenTrial], started: datetime) -> list[FrozenTrial]:
    """The trials that count toward the budget: those that hold their point and those failed in this
    invocation (so a sweep whose trials keep failing ends); warm-start trials cost nothing and do not count."""
    return [t for t in trials if (t.state in TAKEN and not seeded(t)) or failed_here(t, started)]


def unresolved_failures(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The failed trials whose point no trial has since completed or pruned: a failed point that a later
    invocation ran again successfully is no longer a failure of the study."""
    done = {point_key(t.params) for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    return [t for t in trials if t.state == TrialState.FAIL and point_key(t.params) not in done]


def pending_points(candidates: Sequence[Point], trials: Sequence[FrozenTrial], started: datetime) -> list[Point]:
    """The candidates that no trial holds, nor failed in this invocation, without repeats."""
    held = {point_key(t.params) for t in [*counted(trials, started), *filter(seeded, trials)]}
    pending: list[Point] = []
    for point in candidates:
        if point_key(point) not in held:
            held.add(point_key(point))
            pending.append(point)
    return pending


def enqueue_points(study: optuna.Study, points: Sequence[Point]) -> int:
    """Enqueue `points` in order, but none the study already holds (a resumed sweep enqueued them before);
    returns how many were enqueued. Call under `study_lock`."""
    # A waiting trial's point is in its fixed params until a worker takes it.
    held = {point_key(t.system_attrs.get("fixed_params") or t.params) for t in study.get_trials(deepcopy=False)}
    enqueued = 0
    for point in points:
        if point_key(point) not in held:
            held.add(point_key(point))
            study.enqueue_trial(point)
            enqueued += 1
    return enqueued


def is_warm_started(study: optuna.Study) -> bool:
    return WARM_STARTED_ATTR in study.user_attrs


def add_seeded_trials(
    study: optuna.Study, space: SearchSpace, seeds: Sequence[Seed], curves: Mapping[str, Mapping[int, float]]
) -> None:
    """Each seed as a complete trial, with its run's curve (`curves[run_id]`, step -> objective) as intermediate
    values; then mark the study warm-started, so that this happens once. Call under `study_lock`."""
    distributions = {p.name: p.distribution for p in space.parameters}
    for seed in seeds:
        study.add_trial(
            optuna.trial.create_trial(
                params=seed.params,
                distributions=distributions,
                values=list(seed.values),
                intermediate_values=dict(curves.get(seed.run_id, {})),
                user_attrs={SEEDED_ATTR: seed.run_id},
            )
        )
    study.set_user_attr(WARM_STARTED_ATTR, len(seeds))


def claim(
    study: optuna.Study,
    storage: BaseStorage,
    space: SearchSpace,
    grid: Sequence[Point] | None,
    budget: int,
    started: datetime,
) -> Claim | None:
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
    with warnings.catch_warnings():  # heartbeats are kept by the scheduler, not by Study.optimize
        warnings.simplefilter("ignore")
        trial = study.ask()
    space.suggest(trial)
    claimed = Claim(trial, trial_id(storage, study.study_name, trial.number))
    record_heartbeat(storage, claimed.trial_id)
    return claimed


def running_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
