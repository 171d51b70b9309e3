"""What `hydra.sweeper.sampler` and `hydra.sweeper.sampler_options` ask for: a sampler's name, seed and options.
The sampler is a name, or the mapping that the config group hydra/sweeper/sampler=<name> gives, or a mapping
written for the upstream Optuna sweeper (its `_target_`, its sampler names nsgaii and motpe). Pure: no I/O; a bad
value raises ConfigError."""

from collections.abc import Mapping
from dataclasses import dataclass

from fruitlab.errors import ConfigError

# The upstream sweeper's names of samplers that fruitlab names otherwise. Optuna 5 removed MOTPESampler: its TPE
# handles several objectives, and MOTPE's n_ehvi_candidates is TPE's n_ei_candidates.
UPSTREAM_NAMES = {"nsgaii": "nsga2", "motpe": "tpe"}
RENAMED_OPTIONS = {"motpe": {"n_ehvi_candidates": "n_ei_candidates"}}
# `_target_` of an upstream sampler config -> fruitlab's sampler (which fruitlab builds, with a seed per worker).
TARGETS = {
    "optuna.samplers.TPESampler": "tpe",
    "optuna.samplers.MOTPESampler": "tpe",
    "optuna.samplers.RandomSampler": "random",
    "optuna.samplers.GridSampler": "grid",
    "optuna.samplers.NSGAIISampler": "nsga2",
    "optuna.samplers.CmaEsSampler": "cmaes",
    "optuna.samplers.GPSampler": "gp",
    "optuna.samplers.QMCSampler": "qmc",
    "optuna.samplers.BruteForceSampler": "bruteforce",
}
INSTANTIATE_KEYS = ("_partial_",)  # Hydra's, in upstream's grid entry: not the sampler's
# Options whose value is a Python object (a sampler, a function, trials): a config can only name them null.
OBJECT_OPTIONS = ("independent_sampler", "constraints_func", "source_trials", "gamma", "weights")


@dataclass(frozen=True)
class SamplerSpec:
    name: str | None  # None: fruitlab picks (grid for comma lists, else tpe, nsga2 for several objectives)
    seed: int | None  # None: hydra.sweeper.seed, else the run's seed
    options: dict[str, object]  # given ones only: an option given null is the sampler's default

    @classmethod
    def of(cls, sampler: object, sampler_options: Mapping | None) -> "SamplerSpec":
        """The spec of `hydra.sweeper.sampler` (a name or a mapping) with `sampler_options` added (they win)."""
        if sampler is None or isinstance(sampler, str):
            name, seed, given = sampler, None, {}
        elif isinstance(sampler, Mapping):
            given = {str(k): v for k, v in sampler.items() if k not in INSTANTIATE_KEYS}
            name = named(given.pop("name", None), given.pop("_target_", None))
            seed = given.pop("seed", None)
        else:
            raise ConfigError(f"hydra.sweeper.sampler={sampler!r}: give a sampler's name or a mapping {{name: tpe}}")
        renamed = RENAMED_OPTIONS.get(str(name), {})
        options = {renamed.get(k, k): v for k, v in {**given, **(sampler_options or {})}.items() if v is not None}
        for key in OBJECT_OPTIONS:
            if key in options:
                raise ConfigError(
                    f"hydra.sweeper.sampler.{key}={options[key]}: this option takes a Python object, which fruitlab "
                    "does not build from a config; leave it null"
                )
        return cls(UPSTREAM_NAMES.get(name, name), seed, options)


def named(name: str | None, target: str | None) -> str | None:
    """The sampler a mapping names by `name` (fruitlab's group) or `_target_` (upstream's): they must agree."""
    if target is None:
        return name
    if target not in TARGETS:
        raise ConfigError(f"hydra.sweeper.sampler._target_={target}: fruitlab builds {', '.join(TARGETS)}")
    if name is not None and UPSTREAM_NAMES.get(name, name) != TARGETS[target]:
        raise ConfigError(f"hydra.sweeper.sampler names two samplers, {name} and _target_={target}: give one of them")
    return TARGETS[target]
