"""The Optuna study of a sweep: its sampler and pruner by name, the study opened (created or loaded) in its
storage, and each worker's index and sampler seed."""

import warnings
from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np
import optuna
from optuna.storages import BaseStorage

from fruitlab.errors import ConfigError, unknown
from fruitlab.sweeping.objectives import Objective

T = TypeVar("T")

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
WORKERS_ATTR = "workers"  # study user attribute: how many workers (sweep invocations) have joined the study


def registered(kind: str, registry: Mapping[str, T], name: str) -> T:
    """`registry[name]`, or the ConfigError that lists the valid names of this `kind`."""
    if name not in registry:
        raise unknown(kind, name, list(registry))
    return registry[name]


def make_sampler(name: str, seed: int | None, options: Mapping) -> optuna.samplers.BaseSampler:
    sampler = registered("sampler", SAMPLERS, name)
    if name == "grid" and options:
        raise ConfigError("hydra.sweeper.sampler_options do not apply to a grid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return sampler(seed=seed, **options)
        except TypeError as error:  # an option this sampler does not take
            raise ConfigError(f"sampler {name}: {error}") from error


def make_pruner(name: str, options: Mapping) -> optuna.pruners.BasePruner:
    return registered("pruner", PRUNERS, name)(**options)


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


def open_study(
    name: str,
    storage: BaseStorage,
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
