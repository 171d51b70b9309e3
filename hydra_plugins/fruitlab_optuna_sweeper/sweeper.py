"""`hydra/sweeper: fruitlab_optuna`: every `-m` run is an Optuna study (see fruitlab.sweeping).

This module only adapts Hydra's Sweeper interface; Optuna, MLflow and torch are imported when a sweep starts,
so that Hydra's plugin scan stays fast."""

import sys
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from fruitlab.sweeping.settings import SweepSettings


@dataclass
class FruitlabOptunaSweeperConf(SweepSettings):
    _target_: str = "hydra_plugins.fruitlab_optuna_sweeper.sweeper.FruitlabOptunaSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="fruitlab_optuna", node=FruitlabOptunaSweeperConf, provider="fruitlab"
)


class FruitlabOptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        plain = {k: OmegaConf.to_container(v) if isinstance(v, DictConfig) else v for k, v in settings.items()}
        self.settings = SweepSettings(**plain)
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def launch(self, overrides: list[str], job_number: int) -> JobReturn:
        self.validate_batch_is_legal([overrides])
        return self.launcher.launch([overrides], initial_job_idx=job_number)[0]

    def sweep(self, arguments: list[str]) -> Any:
        from fruitlab.errors import FruitlabError, print_error
        from fruitlab.signals import interrupts_raise
        from fruitlab.sweeping.sweep import Sweep

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        # The sweep's own params first: the command line wins for a key given in both.
        lines = [f"{key}={value}" for key, value in self.settings.params.items()]
        overrides = {o.get_key_element(): o for o in parser.parse_overrides([*lines, *arguments])}
        with interrupts_raise():  # SIGTERM between trials too ends the sweep's runs and trial cleanly
            try:
                return Sweep(self.settings, self.config, list(overrides.values()), self.launch).run()
            except FruitlabError as error:  # a bad sweep setting (trials' own errors are recorded, not raised)
                print_error(error, self.config.verbose)
                sys.exit(2)
