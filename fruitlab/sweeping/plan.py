"""A sweep's plan, made from its settings, the task's config and the command line before anything is opened:
what it optimises, its search space and fixed overrides, sampler, pruner and budget, and the study's identity.
Pure: no I/O; a bad setting raises ConfigError here."""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from fruitlab.errors import ConfigError
from fruitlab.sweeping.identity import TrialIdentity
from fruitlab.sweeping.objectives import Objective, objectives_of, redirected
from fruitlab.sweeping.sampler_spec import SamplerSpec
from fruitlab.sweeping.settings import SweepSettings
from fruitlab.sweeping.space import Point, SearchSpace
from fruitlab.sweeping.storage import checked_storage_url
from fruitlab.sweeping.study import (
    AUTO,
    PRUNERS,
    SAMPLERS,
    auto_sampler,
    check_pruner_options,
    check_sampler_options,
    registered,
    tpe_options,
)
from fruitlab.sweeping.warm_start import enqueued_points, warm_start_sources

DEFAULT_SAMPLER_TRIALS = 20


@dataclass(frozen=True)
class SweepPlan:
    settings: SweepSettings
    space: SearchSpace
    fixed: tuple[str, ...]  # the command's overrides that are not swept, as written
    objectives: tuple[Objective, ...]
    sampler: str  # the sampler that runs (for hydra.sweeper.sampler=auto, the one its rule picked)
    sampler_options: Mapping[str, object]
    seed: int | None  # the first worker's sampler seed
    grid: tuple[Point, ...] | None  # every point, when the sampler is a grid
    budget: int  # n_trials
    experiment: str
    study_name: str
    storage: str | None  # hydra.sweeper.storage; None: beside the MLflow store
    tracking_uri: str | None  # the task's tracking.uri
    trained_metric: str | None  # fruitlab's training: objective.metric; None for another Hydra task
    log_model: bool  # whether the trials log their model (which the champion needs)
    results_dir: Path  # the sweep's folder
    enqueue: tuple[Point, ...] = ()  # points tried first, in order
    # the direction hydra.sweeper.direction gives the task's objective, when it differs from objective.direction
    redirected: str | None = None
    warm_start: tuple[str, ...] = ()  # experiments, sweeps or runs whose finished runs seed the study
    checks_per_epoch: int = 1  # the trials' validation checks per epoch: the steps of their curves

    @classmethod
    def of(cls, settings: SweepSettings, config: DictConfig, overrides: Sequence[Override]) -> "SweepPlan":
        space = SearchSpace.from_overrides(overrides)
        fixed = tuple(o.input_line for o in overrides if not o.is_sweep_override())
        objectives = tuple(objectives_of(settings, config))
        check_settings(settings, len(objectives))
        spec = SamplerSpec.of(settings.sampler, settings.sampler_options)
        sampler = spec.name or ("grid" if space.is_comma_grid else "nsga2" if len(objectives) > 1 else "tpe")
        registered("sampler", {**SAMPLERS, AUTO: None}, sampler)
        if sampler == AUTO:
            distributions = [p.distribution for p in space.parameters]
            conditional = settings.custom_search_space is not None
            n_trials = settings.n_trials or DEFAULT_SAMPLER_TRIALS
            sampler = auto_sampler(distributions, len(objectives), n_trials, conditional)
        grid = tuple(space.grid()) if sampler == "grid" else None
        budget = settings.n_trials or (len(grid) if grid is not None else DEFAULT_SAMPLER_TRIALS)
        # fruitlab's TPE defaults for the budget, whichever way TPE was picked; the options given win
        sampler_options = tpe_options(budget, spec.options) if sampler == "tpe" else spec.options
        check_sampler_options(sampler, sampler_options)
        experiment = str(
            OmegaConf.select(config, "tracking.experiment")
            or OmegaConf.select(config, "data.name")
            or config.hydra.job.name
        )
        study_name = settings.study_name or default_study_name(
            experiment, config.hydra.runtime.choices.get("sweep"), fixed, space, objectives
        )
        if "'" in study_name:
            raise ConfigError(f"study name {study_name!r}: leave out the quote (MLflow searches by it)")
        enqueue = enqueued_points(settings.enqueue, space)
        if len(enqueue) > budget:
            raise ConfigError(
                f"hydra.sweeper.enqueue has {len(enqueue)} points but n_trials={budget}: enqueue at most n_trials"
            )
        warm_start = warm_start_sources(settings.warm_start)
        if warm_start and "tracking" not in config:
            raise ConfigError(
                f"hydra.sweeper.warm_start={list(warm_start)}: only fruitlab's training records runs to start from"
            )
        return cls(
            settings=settings,
            space=space,
            fixed=fixed,
            objectives=objectives,
            sampler=sampler,
            sampler_options=sampler_options,
            seed=first_seed(spec.seed, settings.seed, config.get("seed")),
            grid=grid,
            budget=budget,
            experiment=experiment,
            study_name=study_name,
            storage=None if settings.storage is None else checked_storage_url(settings.storage),
            tracking_uri=OmegaConf.select(config, "tracking.uri"),
            trained_metric=OmegaConf.select(config, "objective.metric") if "tracking" in config else None,
            log_model=bool(OmegaConf.select(config, "tracking.log_model")),
            checks_per_epoch=int(OmegaConf.select(config, "objective.checks_per_epoch", default=1)),
            results_dir=Path(config.hydra.sweep.dir),
            enqueue=enqueue,
            warm_start=warm_start,
            redirected=redirected(settings, config),
        )

    @property
    def is_training(self) -> bool:
        """Whether the task is fruitlab's training (which nests its run under the sweep's parent run)."""
        return self.trained_metric is not None

    @property
    def task_overrides(self) -> list[str]:
        """What every trial's job gets besides the command line: the direction the sweeper gives the objective."""
        return [] if self.redirected is None else [f"objective.direction={self.redirected}"]

    @property
    def pruner_options(self) -> dict:
        return dict(self.settings.pruner_options or {})

    def trial_identity(self, storage: str, number: int, threads: int | None = None) -> TrialIdentity:
        """What trial `number`'s job needs: Optuna reports intermediate values of one objective only."""
        single = self.objectives[0] if len(self.objectives) == 1 else None
        return TrialIdentity(
            storage=storage,
            study=self.study_name,
            number=number,
            metric=None if single is None else single.metric,
            direction=None if single is None else single.direction,
            pruner=self.settings.pruner,
            pruner_options=self.pruner_options,
            threads=threads,
        )


def check_settings(settings: SweepSettings, n_objectives: int) -> None:
    registered("pruner", PRUNERS, settings.pruner)
    check_pruner_options(settings.pruner, dict(settings.pruner_options or {}))
    if n_objectives > 1 and settings.pruner != "none":
        raise ConfigError("Optuna cannot prune a study with several objectives: use hydra.sweeper.pruner=none")
    if settings.n_jobs < 1:
        raise ConfigError(f"hydra.sweeper.n_jobs={settings.n_jobs}: give how many trials run at once (>= 1)")
    if settings.max_failure_rate is not None and not 0 <= settings.max_failure_rate <= 1:
        raise ConfigError(f"hydra.sweeper.max_failure_rate={settings.max_failure_rate}: give a fraction in [0, 1]")


def first_seed(*seeds: object) -> int | None:
    """The sampler's seed: hydra.sweeper.sampler.seed, else hydra.sweeper.seed, else the run's seed."""
    return next((int(seed) for seed in seeds if seed is not None), None)


def default_study_name(
    experiment: str, sweep_name: str | None, fixed: Sequence[str], space: SearchSpace, objectives: Sequence[Objective]
) -> str:
    """<experiment>-<sweep name or swept keys>-<hash of what defines the study>: the same command gives the
    same name (and resumes the study), another command another study."""
    definition = json.dumps(
        {
            "fixed": sorted(fixed),
            "space": sorted(f"{p.key}={p.spec}" for p in space.parameters),
            "objectives": [[o.metric, o.direction] for o in objectives],
        },
    )
    digest = hashlib.sha256(definition.encode()).hexdigest()[:8]
    label = sweep_name or "+".join(sorted(space.names)) or "single"
    return f"{experiment}-{label}-{digest}"
