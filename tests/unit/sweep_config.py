"""Sweep plans for the unit tests: task configs as Hydra hands them to the sweeper, and a command line."""

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.settings import SweepSettings

# The keys of fruitlab's training config that the sweeper reads.
TRAINING = {
    "objective": {"metric": "val_loss", "direction": "minimize"},
    "tracking": {"uri": None, "experiment": None, "log_model": True},
    "data": {"name": "fruits360"},
    "seed": 42,
}


def task_config(task: dict[str, Any] | None = None, sweep: str | None = None) -> DictConfig:
    """A task's config with Hydra's node: another Hydra task (`{}`) or fruitlab's training (TRAINING)."""
    hydra = {"job": {"name": "toy"}, "runtime": {"choices": {"sweep": sweep}}, "sweep": {"dir": "multirun/x"}}
    return OmegaConf.create({**(task or {}), "hydra": hydra})


def plan_of(*command: str, config: DictConfig | None = None, **settings: Any) -> SweepPlan:
    """The plan of `python app.py -m COMMAND` with `hydra.sweeper.*` = `settings`."""
    overrides = OverridesParser.create().parse_overrides(list(command))
    return SweepPlan.of(SweepSettings(**settings), config or task_config(), overrides)
