"""What a sweep can be told (`hydra.sweeper.*`). Kept free of heavy imports: Hydra reads it at start-up."""

from dataclasses import dataclass, field
from typing import Any

# The mappings below are typed Any (default null) so that a whole mapping can be given on the command line,
# e.g. hydra.sweeper.pruner_options={n_startup_trials:2}; Hydra cannot merge one into a typed empty mapping.

# The options of each entry of the config group hydra/sweeper/sampler, null by default (the sampler's default):
# Optuna 5's keyword arguments and those of the upstream Optuna sweeper's entries, so that its configs merge.
# Options that take a Python object are listed so that a config naming them null merges; fruitlab builds none.
TPE_OPTIONS = (
    "n_startup_trials",
    "n_ei_candidates",
    "multivariate",
    "group",
    "constant_liar",
    "consider_prior",
    "prior_weight",
    "consider_magic_clip",
    "consider_endpoints",
    "warn_independent_sampling",
)
NSGA2_OPTIONS = ("population_size", "mutation_prob", "crossover_prob", "swapping_prob", "constraints_func")
SAMPLER_GROUP: dict[str, tuple[str, ...]] = {
    "tpe": TPE_OPTIONS,
    "random": (),
    "grid": (),
    "nsga2": NSGA2_OPTIONS,
    "nsgaii": NSGA2_OPTIONS,  # upstream's name
    "motpe": (  # upstream's; Optuna 5's TPE handles several objectives
        "n_startup_trials",
        "n_ehvi_candidates",
        "consider_prior",
        "prior_weight",
        "consider_magic_clip",
        "consider_endpoints",
    ),
    "cmaes": (
        "x0",
        "sigma0",
        "n_startup_trials",
        "independent_sampler",
        "warn_independent_sampling",
        "consider_pruned_trials",
        "restart_strategy",
        "popsize",
        "inc_popsize",
        "use_separable_cma",
        "with_margin",
        "lr_adapt",
        "source_trials",
    ),
    "gp": ("n_startup_trials", "deterministic_objective", "independent_sampler", "warn_independent_sampling"),
    "qmc": ("qmc_type", "scramble", "independent_sampler", "warn_asynchronous_seeding", "warn_independent_sampling"),
    "bruteforce": ("avoid_premature_stop",),
    "auto": (),  # fruitlab's rule of Optuna's AutoSampler picks gp, tpe or nsga2
}


def sampler_entry(name: str | None, options: tuple[str, ...]) -> dict[str, Any]:
    """An entry of the sampler group: its name, seed and options, all null but the name."""
    return {"name": name, "seed": None, **dict.fromkeys(options)}


@dataclass
class SweepSettings:
    # grid | tpe | random | nsga2 | cmaes | gp | qmc | bruteforce | auto; null: grid when every swept key is a
    # comma list, else tpe (nsga2 for several objectives). auto: the rule of Optuna's AutoSampler (gp for a small
    # all-numeric space, else tpe; see fruitlab.sweeping.study.auto_sampler). Also a mapping {name: tpe, seed: 1,
    # <option>: ...}, which is what the config group hydra/sweeper/sampler=<name> puts here; by default the
    # mapping of no name (the sampler above) with TPE's options, so that hydra.sweeper.sampler.seed=1 and
    # hydra.sweeper.sampler.n_startup_trials=5 work without choosing a group, as upstream (whose default is tpe).
    sampler: Any = field(default_factory=lambda: sampler_entry(None, TPE_OPTIONS))
    # keyword arguments of the Optuna sampler, e.g. {n_startup_trials: 5, multivariate: false} for tpe; an option
    # given here or in the sampler mapping wins over fruitlab's default (fruitlab.sweeping.study.tpe_options)
    sampler_options: Any = None
    # the sampler's seed; null: the run's `seed`
    seed: int | None = None
    # none | median | successive_halving (asynchronous; also spelt sha) | hyperband
    pruner: str = "none"
    # keyword arguments of the Optuna pruner, e.g. {n_startup_trials: 2, n_warmup_steps: 1} for median,
    # {min_resource: 1, reduction_factor: 3, min_early_stopping_rate: 0, bootstrap_count: 0} for successive_halving
    pruner_options: Any = None
    # several objectives, metric name -> minimize | maximize, read from each trial's MLflow run
    # (e.g. {val_acc: maximize, latency_b1_p50_ms: minimize}); null: the one objective `objective.metric`
    objectives: Any = None
    # minimize | maximize, or a list of them (as the upstream Optuna sweeper): the direction of each value
    # the task returns; for fruitlab's training one direction wins over objective.direction (each trial gets it)
    direction: Any = None
    # how many trials one invocation finishes (complete, pruned or failed; with those of earlier invocations
    # that hold their point); null: the grid's size, or 20
    n_trials: int | None = None
    # trials in flight at once through the Hydra launcher (hydra/launcher=joblib or submitit_*); a launcher that
    # runs jobs in the sweeper's process (Hydra's basic one) runs them one at a time
    n_jobs: int = 1
    # stop the sweep (exit 1) once more than this fraction of n_trials has failed in this invocation; 1.0:
    # failures are fine (exit 0 even when every trial failed, as upstream); null: no stop, but exit 1 when
    # every trial of this invocation failed
    max_failure_rate: float | None = None
    # dotted path of a function f(cfg, trial) that suggests further parameters, e.g. conditional ones
    custom_search_space: str | None = None
    # stop claiming new trials once this many seconds have passed since this invocation started (a wall-clock
    # budget; the trial running then finishes); null: no limit
    timeout_s: float | None = None
    # null: <experiment>-<sweep name or swept keys>-<hash of the command>, so the same command resumes
    study_name: str | None = None
    # an Optuna RDB URL (sqlite:///..., postgresql://...); null: optuna.db beside the MLflow store
    storage: str | None = None
    # seconds between a running trial's heartbeats; a trial silent for grace_period (null: twice the
    # interval) is failed by the next worker that looks, and run again
    heartbeat_interval: int = 60
    grace_period: int | None = None
    # register the best trial's model with the alias `champion` under model_name (null: the experiment name)
    register: bool = True
    model_name: str | None = None
    # points tried first, in order, before any sampled one: a list of mappings of every swept key to a value,
    # e.g. [{lr: 0.01, optim: adam}]; a point the study already holds is not enqueued again
    enqueue: Any = None
    # MLflow experiment names, sweep (parent run) names or run ids whose finished runs become complete trials of
    # a new study before any trial runs (once per study; they do not count toward n_trials)
    warm_start: list[str] = field(default_factory=list)
    # the sweep's parameters, as on the command line: {lr: "tag(log, interval(1e-4, 1e-1))", optim: "sgd,adam"}
    params: dict[str, str] = field(default_factory=dict)
