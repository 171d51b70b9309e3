"""Sweep plans for the unit tests: task configs as Hydra hands them to the sweeper, a command line, and the sweeper
as Hydra builds it from fruitlab's composed config."""

from typing import Any

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from fruitlab.config import config_dir, prepare_hydra
from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.settings import SweepSettings
from hydra_plugins.fruitlab_optuna_sweeper.sweeper import FruitlabOptunaSweeper

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


def sweeper_of(overrides: list[str]) -> FruitlabOptunaSweeper:
    """The sweeper as Hydra builds it from fruitlab's config composed for `-m` with `overrides`."""
    prepare_hydra()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        cfg = hydra.compose_config("config", overrides, run_mode=RunMode.MULTIRUN, with_log_configuration=False)
    resolved = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)  # as Hydra's instantiate resolves it
    settings = {k: v for k, v in resolved.items() if k not in ("_target_", "_recursive_", "defaults")}
    return FruitlabOptunaSweeper(**settings)
