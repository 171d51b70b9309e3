"""What a sweep optimises: one metric and direction per objective, read from the sweep's settings and the task's
config. Pure: no I/O."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import ConfigError
from fruitlab.sweeping.settings import SweepSettings

DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str


def directions_of(settings: SweepSettings) -> list[str]:
    """`hydra.sweeper.direction` as a list (upstream accepts one direction or a list)."""
    direction = settings.direction
    if direction is None:
        return []
    if isinstance(direction, Sequence) and not isinstance(direction, str):
        return [str(d) for d in direction]
    return [str(direction)]


def objectives_of(settings: SweepSettings, config: DictConfig) -> list[Objective]:
    """What the sweep optimises: `objectives`, else fruitlab's `objective.metric` in the one direction
    `direction` gives (the upstream sweeper's setting wins over objective.direction, see `redirected`), else (any
    other Hydra task) the value(s) the task returns, one per `direction`."""
    directions = directions_of(settings)
    if settings.objectives:
        objectives = [Objective(str(m), str(d)) for m, d in settings.objectives.items()]
        if directions and directions != [o.direction for o in objectives]:
            raise ConfigError(
                f"hydra.sweeper.direction={','.join(directions)} disagrees with hydra.sweeper.objectives "
                f"({', '.join(f'{o.metric}:{o.direction}' for o in objectives)}): give one of them"
            )
    elif OmegaConf.select(config, "objective.metric") is not None:
        if len(directions) > 1:
            raise ConfigError(
                f"hydra.sweeper.direction={directions}: name the metric of each direction with "
                "hydra.sweeper.objectives, e.g. {val_acc:maximize,latency_b1_p50_ms:minimize}"
            )
        direction = directions[0] if directions else str(config.objective.direction)
        objectives = [Objective(str(config.objective.metric), direction)]
    else:
        directions = directions or ["minimize"]
        names = ["value"] if len(directions) == 1 else [f"value_{i}" for i in range(len(directions))]
        objectives = [Objective(n, d) for n, d in zip(names, directions, strict=True)]
    return checked(objectives)


def redirected(settings: SweepSettings, config: DictConfig) -> str | None:
    """The direction `hydra.sweeper.direction` gives the task's objective when it differs from the task's
    `objective.direction` (each trial then runs with it, so that its checkpoint and the study agree); else
    None."""
    directions = directions_of(settings)
    if settings.objectives or len(directions) != 1 or OmegaConf.select(config, "objective.metric") is None:
        return None
    return directions[0] if directions[0] != config.objective.direction else None


def checked(objectives: Iterable[Objective]) -> list[Objective]:
    objectives = list(objectives)
    for objective in objectives:
        if objective.direction not in DIRECTIONS:
            raise ConfigError(
                f"direction '{objective.direction}' of {objective.metric}: use one of {', '.join(DIRECTIONS)}"
            )
    return objectives
