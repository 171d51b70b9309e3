"""Warm starts: points tried first (`hydra.sweeper.enqueue`) and finished MLflow runs that become complete trials
of a new study (`hydra.sweeper.warm_start`), so that its sampler starts from what is already known. Pure: a run
comes in as plain mappings (what MLflow recorded) and leaves as a trial's params and values, or a skip reason."""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fruitlab.errors import ConfigError
from fruitlab.sweeping.identity import TRIAL_STATE_TAG
from fruitlab.sweeping.objectives import Objective
from fruitlab.sweeping.space import Point, SearchSpace

SEEDED_ATTR = "warm_start_run_id"  # user attribute of a trial made from a finished run: that run
WARM_STARTED_ATTR = "warm_started"  # study user attribute: how many trials seeded it (set once per study)
CHECKS_PARAM = "objective.checks_per_epoch"  # as a run records it


@dataclass(frozen=True)
class RecordedRun:
    """A run as its store recorded it: flattened config params (as text), final metrics and tags."""

    run_id: str
    status: str
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seed:
    """A finished run as a complete trial: its point in the search space and its objective values."""

    run_id: str
    params: Point
    values: tuple[float, ...]
    checks_per_epoch: int = 1  # its run's validation checks per epoch


def recorded_value(params: Mapping[str, str], name: str) -> str | None:
    """What a run recorded for a swept key: the key itself (`lr`, `optim.weight_decay`), or for a config group
    (`model`, `optim`) its option's name (`model.name`)."""
    return params.get(name, params.get(f"{name}.name"))


def objective_value(metrics: Mapping[str, float], metric: str) -> float | None:
    """A run's objective: `best_<metric>` (the best checkpoint's, what a trial reports), else `<metric>`."""
    return metrics.get(f"best_{metric}", metrics.get(metric))


def seed_of(run: RecordedRun, space: SearchSpace, objectives: Sequence[Objective]) -> Seed | str:
    """The trial `run` becomes, or why it cannot become one."""
    if run.status != "FINISHED":
        return f"not finished ({run.status})"
    if run.tags.get(TRIAL_STATE_TAG) == "PRUNED":
        return "pruned"
    params: Point = {}
    for parameter in space.parameters:
        recorded = recorded_value(run.params, parameter.name)
        if recorded is None:
            return f"no {parameter.name} recorded"
        value = parameter.value_of(recorded)
        if value is None:
            return f"{parameter.name} outside the search space"
        params[parameter.name] = value
    values = [objective_value(run.metrics, o.metric) for o in objectives]
    if any(v is None for v in values):
        return "no objective metric"
    return Seed(run.run_id, params, tuple(values), int(run.params.get(CHECKS_PARAM, "1")))


def curve_in_study_steps(
    seed: Seed, by_check: Mapping[int, float], by_epoch: Mapping[int, float], checks: int
) -> dict[int, float]:
    """A seed's objective curve at the steps of a study whose trials validate `checks` times per epoch: its
    check-by-check values when its run validated as often, else each epoch's value at that epoch's last check."""
    if seed.checks_per_epoch == checks and by_check:
        return dict(by_check)
    return {epoch * checks + checks - 1: value for epoch, value in by_epoch.items()}


@dataclass(frozen=True)
class Seeding:
    seeds: tuple[Seed, ...]
    skipped: Counter  # reason -> how many runs

    @classmethod
    def of(cls, runs: Sequence[RecordedRun], space: SearchSpace, objectives: Sequence[Objective]) -> "Seeding":
        """The trials made from `runs` (each run once), and the reasons the others were skipped."""
        seeds: list[Seed] = []
        skipped: Counter = Counter()
        seen: set[str] = set()
        for run in runs:
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            seed = seed_of(run, space, objectives)
            if isinstance(seed, Seed):
                seeds.append(seed)
            else:
                skipped[seed] += 1
        return cls(tuple(seeds), skipped)

    def summary(self) -> str:
        """One line: how many runs seeded the study, how many were skipped and why."""
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        skipped = f"; {sum(self.skipped.values())} runs skipped ({reasons})" if self.skipped else ""
        return f"warm start: {len(self.seeds)} finished runs became complete trials{skipped}"


def enqueued_points(points: object, space: SearchSpace) -> tuple[Point, ...]:
    """`hydra.sweeper.enqueue` as points of the space: a list of mappings, each giving every swept key (as
    written, or without its '+') a value inside its distribution."""
    if points is None:
        return ()
    if not isinstance(points, Sequence) or isinstance(points, str):
        raise ConfigError(f"hydra.sweeper.enqueue={points!r}: give a list of points, e.g. [{{lr: 0.01}}]")
    return tuple(enqueued_point(point, space) for point in points)


def enqueued_point(point: object, space: SearchSpace) -> Point:
    names = ", ".join(space.names)
    if not isinstance(point, Mapping):
        raise ConfigError(f"hydra.sweeper.enqueue point {point!r}: give a mapping of the swept keys ({names})")
    given = {str(key).lstrip("+"): value for key, value in point.items()}
    if set(given) != set(space.names):
        raise ConfigError(f"hydra.sweeper.enqueue point {dict(point)}: give exactly the swept keys ({names})")
    values: Point = {}
    for parameter in space.parameters:
        value = parameter.value_of(given[parameter.name])
        if value is None:
            raise ConfigError(
                f"hydra.sweeper.enqueue point {dict(point)}: {parameter.name}={given[parameter.name]!r} is outside "
                f"{parameter.key}={parameter.spec}"
            )
        values[parameter.name] = value
    return values


def warm_start_sources(sources: object) -> tuple[str, ...]:
    """`hydra.sweeper.warm_start`: MLflow experiment names, sweep (parent run) names or run ids."""
    if sources is None:
        return ()
    if isinstance(sources, str) or not isinstance(sources, Sequence):
        sources = [sources]
    names = tuple(str(source) for source in sources)
    for name in names:
        if not name or "'" in name:
            raise ConfigError(
                f"hydra.sweeper.warm_start={list(names)}: give MLflow experiment names, sweep names or run ids "
                "(not empty, without a quote)"
            )
    return names
