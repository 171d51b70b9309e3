"""The Optuna study of a sweep: its sampler and pruner by name, their options checked before anything opens, the
rule of `sampler=auto`, the study opened (created or loaded) in its storage, and each worker's index and sampler
seed."""

import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
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
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,  # asynchronous (ASHA)
    "sha": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}
AUTO = "auto"  # hydra.sweeper.sampler=auto: the plan picks a sampler with `auto_sampler`
# AutoSampler's limits: GP up to this many trials of one objective (and of several, at most
# AUTO_GP_MAX_OBJECTIVES of them), TPE up to AUTO_TPE_MAX_TRIALS of several objectives, NSGA-II beyond.
AUTO_GP_MAX_TRIALS = 250
AUTO_GP_MAX_OBJECTIVES = 3
AUTO_TPE_MAX_TRIALS = 1000
# fruitlab's TPE (for the default sampler, tpe and auto alike; options given win): one joint model over the
# parameters (multivariate), one per set of parameters that occur together (group: a conditional space), running
# trials of other slots and workers counted as bad (constant liar), and random start-up trials for a share of the
# budget: a tenth, at least TPE_STARTUP_MIN and at most Optuna's default (see tpe_startup_trials).
TPE_STARTUP_MIN = 3
TPE_STARTUP_MAX = 10

Rule = tuple[Callable[[object], bool], str]  # (accepts the value, what is allowed)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def at_least(low: int, *also: str) -> Rule:
    """An integer >= `low`, or one of the words `also`."""
    allowed = " or ".join([f"an integer >= {low}", *also])
    return (lambda value: value in also or (is_int(value) and value >= low)), allowed


FLAG: Rule = (lambda value: isinstance(value, bool)), "true or false"
# Values checked before anything opens, with what is allowed; other options are checked by their class.
SUCCESSIVE_HALVING_RULES: dict[str, Rule] = {
    "min_resource": at_least(1, "auto"),
    "reduction_factor": at_least(2),
    "min_early_stopping_rate": at_least(0),
    "bootstrap_count": at_least(0),
}
PRUNER_RULES: dict[str, dict[str, Rule]] = {
    "successive_halving": SUCCESSIVE_HALVING_RULES,
    "sha": SUCCESSIVE_HALVING_RULES,
}
SAMPLER_RULES: dict[str, dict[str, Rule]] = {
    "tpe": {
        "n_startup_trials": at_least(0),
        "n_ei_candidates": at_least(1),
        "multivariate": FLAG,
        "group": FLAG,
        "constant_liar": FLAG,
    },
    "gp": {"n_startup_trials": at_least(0), "deterministic_objective": FLAG},
}
WORKERS_ATTR = "workers"  # study user attribute: how many workers (sweep invocations) have joined the study


def registered(kind: str, registry: Mapping[str, T], name: str) -> T:
    """`registry[name]`, or the ConfigError that lists the valid names of this `kind`."""
    if name not in registry:
        raise unknown(kind, name, list(registry))
    return registry[name]


def tpe_startup_trials(budget: int) -> int:
    """TPE's random start-up trials for a sweep of `budget` trials: a tenth of it (rounded down), at least 3, at
    most 10 (Optuna's default, from 100 trials on). Start-up trials learn nothing from the trials before them: on
    small budgets Optuna's 10 leave TPE too few trials to use what it learns (docs/sweeps.md, measured with
    benchmarks/bench_tpe_startup.py)."""
    return max(TPE_STARTUP_MIN, min(TPE_STARTUP_MAX, budget // 10))


def tpe_options(budget: int, given: Mapping[str, object]) -> dict[str, object]:
    """fruitlab's TPE options for a sweep of `budget` trials, the `given` ones winning (group only with
    multivariate: when multivariate is given false, group defaults to false)."""
    multivariate = given.get("multivariate", True)
    defaults = {
        "multivariate": True,
        "group": multivariate,
        "constant_liar": True,
        "n_startup_trials": tpe_startup_trials(budget),
    }
    return {**defaults, **given}


def auto_sampler(distributions: Sequence[BaseDistribution], n_objectives: int, n_trials: int, conditional: bool) -> str:
    """The sampler that `hydra.sweeper.sampler=auto` runs: the rule of Optuna's published AutoSampler
    (optunahub `samplers/auto_sampler`), decided once from the declared space and the trial budget, since
    fruitlab knows both before the first trial (AutoSampler decides again before each trial from the trials
    completed so far):
    - one objective: GP when every parameter is numeric (float or int), none is conditional (`conditional`:
      custom_search_space may add some) and n_trials <= 250; else TPE (fruitlab's, see tpe_options). Beyond 250
      trials AutoSampler moves a numeric space of several parameters to CMA-ES; fruitlab keeps TPE, which needs
      no extra package.
    - several objectives: GP as above when there are at most 3; TPE up to 1000 trials; NSGA-II beyond."""
    numeric = not conditional and not any(isinstance(d, CategoricalDistribution) for d in distributions)
    if numeric and n_objectives <= AUTO_GP_MAX_OBJECTIVES and n_trials <= AUTO_GP_MAX_TRIALS:
        return "gp"
    if n_objectives > 1 and n_trials > AUTO_TPE_MAX_TRIALS:
        return "nsga2"
    return "tpe"


def check_options(kind: str, name: str, options: Mapping, rules: Mapping[str, Rule], allowed: Sequence[str]) -> None:
    """ConfigError for the first option of `kind` `name` that it does not take (`allowed`), or whose value breaks
    its rule."""
    for key, value in options.items():
        if key not in allowed:
            raise ConfigError(
                f"hydra.sweeper.{kind}_options.{key}: {kind} {name} takes {', '.join(sorted(allowed)) or 'no option'}"
            )
        accepts, what = rules.get(key, (None, ""))
        if accepts is not None and not accepts(value):
            raise ConfigError(f"hydra.sweeper.{kind}_options.{key}={value}: {kind} {name} needs {what}")


def keywords(cls: type) -> list[str]:
    """The keyword arguments `cls(...)` takes (but the seed, which the sweep sets)."""
    parameters = inspect.signature(cls).parameters.values()
    return [p.name for p in parameters if p.name != "seed" and p.kind is not inspect.Parameter.VAR_KEYWORD]


def check_sampler_options(name: str, options: Mapping) -> None:
    """ConfigError for an option that sampler `name` does not take or a value out of its range; nothing built."""
    if name == "grid":
        if options:
            raise ConfigError("hydra.sweeper.sampler_options do not apply to a grid")
        return
    check_options("sampler", name, options, SAMPLER_RULES.get(name, {}), keywords(SAMPLERS[name]))
    if name == "tpe" and options.get("group") and options.get("multivariate") is False:
        raise ConfigError("hydra.sweeper.sampler_options.group=true: tpe needs multivariate=true with it")


def check_pruner_options(name: str, options: Mapping) -> None:
    """ConfigError for an option that pruner `name` does not take or a value it refuses."""
    rules = PRUNER_RULES.get(name, {})
    check_options("pruner", name, options, rules, keywords(PRUNERS[name]))
    automatic_min_resource = options.get("min_resource", "auto") == "auto"
    if rules is SUCCESSIVE_HALVING_RULES and options.get("bootstrap_count") and automatic_min_resource:
        raise ConfigError(
            f"hydra.sweeper.pruner_options.bootstrap_count={options['bootstrap_count']}: {name} needs an integer "
            "min_resource with it (not auto)"
        )
    make_pruner(name, options)  # the class's own checks, e.g. of two options together


def make_sampler(name: str, seed: int | None, options: Mapping) -> optuna.samplers.BaseSampler:
    sampler = registered("sampler", SAMPLERS, name)
    with warnings.catch_warnings():
        # Optuna marks some options experimental (TPE's group, on by default here): chosen, so not warned about.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return sampler(seed=seed, **options)
        except TypeError as error:  # an option this sampler does not take
            raise ConfigError(f"sampler {name}: {error}") from error


def make_pruner(name: str, options: Mapping) -> optuna.pruners.BasePruner:
    pruner = registered("pruner", PRUNERS, name)
    try:
        return pruner(**options)
    except (TypeError, ValueError) as error:  # an option this pruner does not take, or a value it refuses
        raise ConfigError(f"hydra.sweeper.pruner_options of pruner {name}: {error}") from error


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
