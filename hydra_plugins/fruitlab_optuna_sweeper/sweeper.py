"""`hydra/sweeper: fruitlab_optuna`: every `-m` run is an Optuna study (see fruitlab.sweeping).

This module only adapts Hydra's Sweeper interface; Optuna, MLflow and torch are imported when a sweep starts,
so that Hydra's plugin scan stays fast."""

import logging
import os
import sys
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from fruitlab.sweeping.settings import SAMPLER_GROUP, SweepSettings, sampler_entry

log = logging.getLogger(__name__)


@dataclass
class FruitlabOptunaSweeperConf(SweepSettings):
    _target_: str = "hydra_plugins.fruitlab_optuna_sweeper.sweeper.FruitlabOptunaSweeper"
    # the settings reach the sweeper as written: a sampler mapping with an upstream `_target_` is read by
    # fruitlab (which builds the sampler, with a seed per worker), not instantiated by Hydra
    _recursive_: bool = False
    # hydra/sweeper/sampler=<name> fills `sampler` (none chosen by default: fruitlab picks grid or tpe)
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": None}])


ConfigStore.instance().store(
    group="hydra/sweeper", name="fruitlab_optuna", node=FruitlabOptunaSweeperConf, provider="fruitlab"
)

# The upstream plugin's sampler group: hydra/sweeper/sampler=tpe hydra.sweeper.sampler.seed=1. Each entry names its
# sampler instead of a _target_, so that fruitlab builds it (with a seed per worker); its options are null: the
# sampler's default (fruitlab's for TPE).
for _name, _options in SAMPLER_GROUP.items():
    ConfigStore.instance().store(
        group="hydra/sweeper/sampler", name=_name, node=sampler_entry(_name, _options), provider="fruitlab"
    )


def threads_per_trial(launcher: Launcher, n_jobs: int) -> int | None:
    """Torch threads for each trial's job. On this machine (joblib, submitit_local): the cores divided among the
    `n_jobs` trials in flight (joblib's workers would otherwise get one thread each however many trials run).
    On SLURM: the job's CPUs (`cpus_per_task`), since a cluster without CPU binding shows a job every core of its
    node. None (torch's default) when the launcher runs the trial in the sweeper's process, or SLURM's
    `cpus_per_task` is not set."""
    kind = type(launcher).__name__
    if kind == "SlurmLauncher":
        return launcher.params.get("cpus_per_task")
    local = kind in ("JoblibLauncher", "LocalLauncher")  # LocalLauncher: submitit_local
    return max(1, len(os.sched_getaffinity(0)) // n_jobs) if local else None


def concurrency_problem(launcher: Launcher) -> str | None:
    """Why `launcher` cannot run several trials at once, or None. Hydra's basic launcher and joblib with one
    job run the job in the calling thread, where Hydra's global state (HydraConfig, the working directory) is
    one per process, so two trials in threads would share it."""
    kind = type(launcher).__name__
    if kind == "JoblibLauncher":
        from joblib import effective_n_jobs

        if effective_n_jobs(launcher.joblib.get("n_jobs", -1)) > 1:
            return None
        return "hydra.launcher.n_jobs=1 runs every job in the sweeper's process"
    if kind in ("LocalLauncher", "SlurmLauncher"):
        return None
    return f"Hydra's {kind} runs every job in the sweeper's process"


def runnable(settings: SweepSettings, launcher: Launcher) -> SweepSettings:
    """The settings this launcher can run: n_jobs=1, with one warning line, when it runs every job in the
    sweeper's process (the upstream sweeper runs such a batch one job after the other too)."""
    problem = concurrency_problem(launcher) if settings.n_jobs > 1 else None
    if problem is None:
        return settings
    log.warning(
        "hydra.sweeper.n_jobs=%d: %s, so trials run one at a time (for %d at once: hydra/launcher=joblib or "
        "hydra/launcher=submitit_local, pip install fruitlab[launchers])",
        settings.n_jobs,
        problem,
        settings.n_jobs,
    )
    return replace(settings, n_jobs=1)


class FruitlabOptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        plain = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for k, v in settings.items()}
        self.settings = SweepSettings(**plain)
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.validating = threading.Lock()  # config loading is not known to be thread-safe

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def launch(self, overrides: list[str], job_number: int) -> JobReturn:
        """One trial's job: a batch of one, so each trial slot waits for its own trial only. Its config is checked
        to compose before it is sent, except on Hydra's basic launcher, which composes it here at once (the same
        error, without composing the config twice per trial)."""
        if type(self.launcher).__name__ != "BasicLauncher":
            with self.validating:
                self.validate_batch_is_legal([overrides])
        return self.launcher.launch([overrides], initial_job_idx=job_number)[0]

    def sweep(self, arguments: list[str]) -> Any:
        from fruitlab.errors import FruitlabError, SweepFailed, print_error
        from fruitlab.signals import interrupts_raise
        from fruitlab.sweeping.sweep import run_sweep

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        # The sweep's own params first: the command line wins for a key given in both.
        lines = [f"{key}={value}" for key, value in self.settings.params.items()]
        overrides = {o.get_key_element(): o for o in parser.parse_overrides([*lines, *arguments])}
        with interrupts_raise():  # SIGTERM between trials too ends the sweep's runs and trial cleanly
            try:
                settings = runnable(self.settings, self.launcher)
                threads = threads_per_trial(self.launcher, settings.n_jobs)
                return run_sweep(settings, self.config, list(overrides.values()), self.launch, threads)
            except SweepFailed as error:  # its trials failed: recorded, the sweep ended
                print_error(error, self.config.get("verbose", False))
                sys.exit(1)
            except FruitlabError as error:  # a bad sweep setting (trials' own errors are recorded, not raised)
                print_error(error, self.config.get("verbose", False))
                sys.exit(2)
