"""What a sweep can be told (`hydra.sweeper.*`). Kept free of heavy imports: Hydra reads it at start-up."""

from dataclasses import dataclass, field
from typing import Any

# The mappings below are typed Any (default null) so that a whole mapping can be given on the command line,
# e.g. hydra.sweeper.pruner_options={n_startup_trials:2}; Hydra cannot merge one into a typed empty mapping.


@dataclass
class SweepSettings:
    # grid | tpe | random | nsga2 | cmaes | gp | qmc | bruteforce | auto; null: grid when every swept key is a
    # comma list, else tpe (nsga2 for several objectives). auto: the rule of Optuna's AutoSampler (gp for a small
    # all-numeric space, else tpe; see fruitlab.sweeping.study.auto_sampler). Also a mapping {name: tpe, seed: 1,
    # <option>: ...}, which is what the config group hydra/sweeper/sampler=<name> puts here.
    sampler: Any = None
    # keyword arguments of the Optuna sampler, e.g. {n_startup_trials: 5, multivariate: true, group: true,
    # constant_liar: true} for tpe
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
    # the task returns; for fruitlab's training it must agree with objective.direction / objectives
    direction: Any = None
    # how many trials one invocation finishes (complete, pruned or failed; with those of earlier invocations
    # that hold their point); null: the grid's size, or 20
    n_trials: int | None = None
    # trials in flight at once through the Hydra launcher (hydra/launcher=joblib or submitit_*)
    n_jobs: int = 1
    # stop the sweep (non-zero exit) once more than this fraction of n_trials has failed in this invocation
    max_failure_rate: float = 1.0
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
