"""A sweep: an Optuna study whose trials are Hydra jobs running fit(), recorded in MLflow as one parent run per
study with a nested child run per trial.

The study lives in persistent storage and its name comes from the command, so running the same command again
resumes it: held points (complete, pruned, running elsewhere) are not run again, failed and interrupted ones are.
"""

import hashlib
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import mlflow
import optuna
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn
from omegaconf import DictConfig
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from fruitlab.errors import ConfigError, RunInterrupted
from fruitlab.sweeping import context as trial_context
from fruitlab.sweeping.report import log_study_plots, log_trials_table
from fruitlab.sweeping.settings import SweepSettings
from fruitlab.sweeping.space import SearchSpace
from fruitlab.sweeping.study import (
    DEFAULT_SAMPLER_TRIALS,
    DIRECTIONS,
    FAIL_REASON,
    Objective,
    checked_storage_url,
    claim,
    default_storage,
    heartbeat,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    running_trials,
    storage_label,
    study_lock,
)
from fruitlab.tracking.registry import CHAMPION, crown
from fruitlab.tracking.runs import MAX_PARAM_LENGTH, log_metrics, tracked_run
from fruitlab.tracking.store import ensure_experiment, normalize_uri

log = logging.getLogger(__name__)

Launch = Callable[[list[str], int], JobReturn]  # (overrides, job number) -> the job's result

PARENT_TAG = "sweep.parent"
STORAGE_TAG = "sweep.storage"
PRUNED_EPOCH_ATTR = "pruned_epoch"
PARETO_TAG = "pareto"


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    values: list[float] | None = None
    reason: str | None = None


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_PARAM_LENGTH]


def end_lost_run(study: optuna.Study, trial: FrozenTrial) -> None:
    """A trial went stale (its worker was killed): end its MLflow run KILLED instead of leaving it RUNNING."""
    run_id = trial.user_attrs.get(trial_context.RUN_ID_ATTR)
    client = mlflow.MlflowClient()
    if run_id and client.get_run(run_id).info.status == "RUNNING":
        client.set_tag(run_id, trial_context.TRIAL_STATE_TAG, TrialState.FAIL.name)
        client.set_tag(run_id, "error", "the worker running this trial stopped (no heartbeat)")
        client.set_terminated(run_id, "KILLED")
    log.info("trial %d went stale (its worker stopped): it will run again", trial.number)


def objectives_of(settings: SweepSettings, config: DictConfig) -> list[Objective]:
    pairs = (
        settings.objectives.items() if settings.objectives else [(config.objective.metric, config.objective.direction)]
    )
    objectives = [Objective(str(metric), str(direction)) for metric, direction in pairs]
    for objective in objectives:
        if objective.direction not in DIRECTIONS:
            raise ConfigError(
                f"direction '{objective.direction}' of {objective.metric}: use one of {', '.join(DIRECTIONS)}"
            )
    return objectives


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


class Sweep:
    def __init__(self, settings: SweepSettings, config: DictConfig, overrides: Sequence[Override], launch: Launch):
        self.settings = settings
        self.config = config
        self.launch = launch
        self.space = SearchSpace.from_overrides(overrides)
        self.fixed = [o.input_line for o in overrides if not o.is_sweep_override()]
        self.objectives = objectives_of(settings, config)
        multi = len(self.objectives) > 1
        if multi and settings.pruner != "none":
            raise ConfigError("Optuna cannot prune a study with several objectives: use hydra.sweeper.pruner=none")
        self.sampler = settings.sampler or ("grid" if self.space.is_comma_grid else "nsga2" if multi else "tpe")
        self.grid = self.space.grid() if self.sampler == "grid" else None
        default_budget = len(self.grid) if self.grid is not None else DEFAULT_SAMPLER_TRIALS
        self.budget = settings.n_trials or default_budget
        self.tracking_uri = normalize_uri(config.tracking.uri)
        self.experiment = config.tracking.experiment or config.data.name
        sweep_name = config.hydra.runtime.choices.get("sweep")
        self.study_name = settings.study_name or default_study_name(
            self.experiment, sweep_name, self.fixed, self.space, self.objectives
        )
        if "'" in self.study_name:
            raise ConfigError(f"study name {self.study_name!r}: leave out the quote (MLflow searches by it)")
        self.storage_url = checked_storage_url(settings.storage or default_storage(config.tracking.uri))

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> optuna.Study:
        started = datetime.now()
        mlflow.set_tracking_uri(self.tracking_uri)
        # One worker at a time creates the stores, the study and the parent run.
        with study_lock(self.storage_url, self.study_name):
            storage = open_storage(
                self.storage_url, self.settings.heartbeat_interval, self.settings.grace_period, end_lost_run
            )
            seed = self.settings.seed if self.settings.seed is not None else self.config.seed
            study = open_study(
                self.study_name,
                storage,
                self.objectives,
                make_sampler(self.sampler, seed, dict(self.settings.sampler_options or {})),
                make_pruner(self.settings.pruner, dict(self.settings.pruner_options or {})),
            )
            experiment_id = ensure_experiment(self.experiment, self.tracking_uri)
            parent_id = self.find_parent(experiment_id) or self.create_parent(experiment_id)
        log.info(
            "study %s (%s, %s) in %s: %d trials; MLflow parent run %s",
            self.study_name,
            self.sampler,
            self.settings.pruner,
            storage_label(self.storage_url),
            self.budget,
            parent_id,
        )
        with tracked_run(experiment_id, run_id=parent_id):
            self.work(study, storage, parent_id, started)
            with study_lock(self.storage_url, self.study_name):
                self.report(study)
        return study

    def work(self, study: optuna.Study, storage: RDBStorage, parent_id: str, started: datetime) -> None:
        """Claim and run trials until the study is done; wait while other workers still run its last trials
        (one of them may die and leave its point to this worker)."""
        poll = min(10, self.settings.heartbeat_interval)
        while True:
            with study_lock(self.storage_url, self.study_name):
                trial = claim(study, storage, self.space, self.grid, self.budget, started)
                elsewhere = 0 if trial else running_trials(study)
            if trial is not None:
                self.run_trial(study, storage, trial, parent_id)
            elif elsewhere:
                log.info("waiting for %d trial(s) running in other workers", elsewhere)
                time.sleep(poll)
            else:
                return

    def run_trial(self, study: optuna.Study, storage: RDBStorage, trial: optuna.Trial, parent_id: str) -> None:
        swept = list(self.space.overrides(trial.params))
        overrides = [*self.fixed, *swept, f"tracking.parent_run_id={parent_id}"]
        prune_on = self.objectives[0].metric if self.settings.pruner != "none" else None
        context = trial_context.TrialContext(trial, self.study_name, prune_on)
        log.info("trial %d: %s", trial.number, " ".join(swept))
        try:
            with heartbeat(storage, trial, self.settings.heartbeat_interval), trial_context.running(context):
                result = self.launch(overrides, trial.number)
            outcome = self.outcome(result, context)
        # Ctrl-C: Lightning turns it into SystemExit; SIGTERM: RunInterrupted
        except (KeyboardInterrupt, SystemExit, RunInterrupted) as interruption:
            self.finish(study, trial, context, Outcome(TrialState.FAIL, reason=str(interruption) or "interrupted"))
            raise
        except Exception as error:  # the job's config could not be composed
            outcome = Outcome(TrialState.FAIL, reason=describe(error))
        self.finish(study, trial, context, outcome)

    def outcome(self, result: JobReturn, context: trial_context.TrialContext) -> Outcome:
        try:
            returned = result.return_value  # raises the job's exception
        except Exception as error:
            return Outcome(TrialState.FAIL, reason=describe(error))
        if context.pruned_epoch is not None:
            return Outcome(TrialState.PRUNED)
        values = []
        for objective in self.objectives:
            if objective.metric == self.config.objective.metric:
                value = returned  # the best checkpoint's value, which fit() returns
            else:
                value = self.run_metric(context.run_id, objective.metric)
                if value is None:
                    return Outcome(TrialState.FAIL, reason=f"the trial's run logged no metric {objective.metric}")
            if not math.isfinite(value):
                return Outcome(TrialState.FAIL, reason=f"objective {objective.metric} is {value}")
            values.append(float(value))
        return Outcome(TrialState.COMPLETE, values)

    @staticmethod
    def run_metric(run_id: str | None, metric: str) -> float | None:
        return mlflow.MlflowClient().get_run(run_id).data.metrics.get(metric) if run_id else None

    def finish(
        self, study: optuna.Study, trial: optuna.Trial, context: trial_context.TrialContext, outcome: Outcome
    ) -> None:
        if outcome.reason:
            trial.set_user_attr(FAIL_REASON, outcome.reason)
        if context.pruned_epoch is not None:
            trial.set_user_attr(PRUNED_EPOCH_ATTR, context.pruned_epoch)
        study.tell(trial, outcome.values, state=outcome.state)
        if context.run_id:
            tags = {trial_context.TRIAL_STATE_TAG: outcome.state.name}
            if outcome.reason:
                tags[FAIL_REASON] = outcome.reason
            client = mlflow.MlflowClient()
            for key, value in tags.items():
                client.set_tag(context.run_id, key, value)
        detail = outcome.reason or (
            f"at epoch {context.pruned_epoch}"
            if context.pruned_epoch is not None
            else ", ".join(f"{o.metric}={v:.4g}" for o, v in zip(self.objectives, outcome.values, strict=True))
        )
        log.info("trial %d %s: %s", trial.number, outcome.state.name, detail)

    # -- MLflow parent run ---------------------------------------------------------------------------------
    def find_parent(self, experiment_id: str) -> str | None:
        runs = mlflow.MlflowClient().search_runs(
            [experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{self.study_name}'",
            max_results=10,
        )
        label = storage_label(self.storage_url)
        return next((r.info.run_id for r in runs if r.data.tags.get(STORAGE_TAG) == label), None)

    def create_parent(self, experiment_id: str) -> str:
        client = mlflow.MlflowClient()
        run = client.create_run(
            experiment_id,
            run_name=self.study_name,
            tags={
                PARENT_TAG: self.study_name,
                STORAGE_TAG: storage_label(self.storage_url),
                trial_context.STUDY_TAG: self.study_name,
            },
        )
        params = {
            "study_name": self.study_name,
            "sampler": self.sampler,
            "pruner": self.settings.pruner,
            "search_space": self.space.describe(),
            "objectives": ", ".join(f"{o.metric}:{o.direction}" for o in self.objectives),
            "direction": ",".join(o.direction for o in self.objectives),
            "n_trials": self.budget,
            "storage": storage_label(self.storage_url),
            "fixed_overrides": " ".join(self.fixed),
        }
        for key, value in params.items():
            client.log_param(run.info.run_id, key, str(value)[:MAX_PARAM_LENGTH])
        return run.info.run_id

    def report(self, study: optuna.Study) -> None:
        """The study's outcome on the active parent run: counts, best trial (or Pareto front), plots, the
        trials table, and the champion model."""
        trials = study.get_trials(deepcopy=False)
        counts = Counter(t.state for t in trials)
        log_metrics(
            {f"trials_{s.name.lower()}": counts[s] for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        )
        if counts[TrialState.COMPLETE]:
            if len(self.objectives) == 1:
                self.report_best(study)
            else:
                self.report_pareto(study)
        log_study_plots(study, self.objectives)
        log_trials_table(study)
        log.info(
            "study %s: %d complete, %d pruned, %d failed",
            self.study_name,
            counts[TrialState.COMPLETE],
            counts[TrialState.PRUNED],
            counts[TrialState.FAIL],
        )

    def report_best(self, study: optuna.Study) -> None:
        best = study.best_trial
        metric = self.objectives[0].metric
        log_metrics({f"best_{metric}": best.value})
        run_id = best.user_attrs.get(trial_context.RUN_ID_ATTR)
        mlflow.set_tags({"best_trial": best.number, **{f"best.{k}": v for k, v in best.params.items()}})
        log.info("best: trial %d, %s=%.4g, %s (run %s)", best.number, metric, best.value, best.params, run_id)
        if not self.settings.register:
            return
        if run_id:
            mlflow.set_tag("best_run_id", run_id)
        if run_id is None or not self.config.tracking.log_model:
            log.info("no model registered: the best trial logged no model (tracking.log_model=false)")
            return
        name = self.settings.model_name or self.experiment
        version = crown(run_id, name)
        mlflow.set_tag("registered_model", f"{name}@{CHAMPION} (version {version})")
        log.info("registered model: models:/%s@%s (version %s)", name, CHAMPION, version)

    def report_pareto(self, study: optuna.Study) -> None:
        front = {t.number for t in study.best_trials}
        client = mlflow.MlflowClient()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            run_id = trial.user_attrs.get(trial_context.RUN_ID_ATTR)
            if run_id:
                client.set_tag(run_id, PARETO_TAG, str(trial.number in front).lower())
        mlflow.set_tag("pareto_trials", ",".join(map(str, sorted(front))))
        log.info("Pareto front: trials %s", sorted(front))
