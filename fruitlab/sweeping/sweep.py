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
from functools import partial

import optuna
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn
from omegaconf import DictConfig
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from fruitlab.errors import ConfigError, RunInterrupted
from fruitlab.sweeping.plots import log_study_plots, log_trials_table
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
from fruitlab.sweeping.trial import (
    PRUNED_EPOCH_ATTR,
    PRUNER_ATTR,
    REPORTED_METRIC_ATTR,
    RUN_ID_ATTR,
    STUDY_TAG,
    TRIAL_STATE_TAG,
    TrialIdentity,
    TrialReport,
)
from fruitlab.tracking.query import runs_tagged
from fruitlab.tracking.registry import CHAMPION, set_champion
from fruitlab.tracking.runs import MAX_PARAM_LENGTH, RunRecorder, create_run, end_lost_run, tracked_run
from fruitlab.tracking.store import ensure_experiment, use_store

log = logging.getLogger(__name__)

Launch = Callable[[list[str], int], JobReturn]  # (overrides, job number) -> the job's result

PARENT_TAG = "sweep.parent"
STORAGE_TAG = "sweep.storage"
PARETO_TAG = "pareto"


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    values: list[float] | None = None
    reason: str | None = None


def failure_reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_PARAM_LENGTH]


def end_stale_trial_run(tracking_uri: str, study: optuna.Study, trial: FrozenTrial) -> None:
    """A trial went stale (its worker was killed): end its MLflow run KILLED instead of leaving it RUNNING."""
    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if run_id:
        reason = "the worker running this trial stopped (no heartbeat)"
        end_lost_run(tracking_uri, run_id, reason, {TRIAL_STATE_TAG: TrialState.FAIL.name})
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
        tracking_uri = use_store(self.config.tracking.uri)
        # One worker at a time creates the stores, the study and the parent run.
        with study_lock(self.storage_url, self.study_name):
            on_stale = partial(end_stale_trial_run, tracking_uri)
            storage = open_storage(
                self.storage_url, self.settings.heartbeat_interval, self.settings.grace_period, on_stale
            )
            seed = self.settings.seed if self.settings.seed is not None else self.config.seed
            study = open_study(
                self.study_name,
                storage,
                self.objectives,
                make_sampler(self.sampler, seed, dict(self.settings.sampler_options or {})),
                make_pruner(self.settings.pruner, dict(self.settings.pruner_options or {})),
            )
            self.tell_trials_what_to_report(study)
            experiment_id = ensure_experiment(self.experiment, tracking_uri)
            parent_id = self.find_parent(tracking_uri, experiment_id) or self.create_parent(tracking_uri, experiment_id)
        log.info(
            "study %s (%s, %s) in %s: %d trials; MLflow parent run %s",
            self.study_name,
            self.sampler,
            self.settings.pruner,
            storage_label(self.storage_url),
            self.budget,
            parent_id,
        )
        with tracked_run(tracking_uri, experiment_id, run_id=parent_id) as parent:
            self.work(study, storage, parent, started)
            with study_lock(self.storage_url, self.study_name):
                self.report(study, parent)
        return study

    def tell_trials_what_to_report(self, study: optuna.Study) -> None:
        """Tell the trials' jobs, through the study, which metric to report each epoch (Optuna records
        intermediate values for one objective only) and how to prune."""
        if len(self.objectives) == 1:
            study.set_user_attr(REPORTED_METRIC_ATTR, self.objectives[0].metric)
        if self.settings.pruner != "none":
            pruner = {"name": self.settings.pruner, "options": dict(self.settings.pruner_options or {})}
            study.set_user_attr(PRUNER_ATTR, pruner)

    def work(self, study: optuna.Study, storage: RDBStorage, parent: RunRecorder, started: datetime) -> None:
        """Claim and run trials until the study is done; wait while other workers still run its last trials
        (one of them may die and leave its point to this worker)."""
        poll = min(10, self.settings.heartbeat_interval)
        while True:
            if self.out_of_time(started):
                log.info("the sweep's time budget (%s s) is spent: no new trial", self.settings.timeout_s)
                return
            with study_lock(self.storage_url, self.study_name):
                trial = claim(study, storage, self.space, self.grid, self.budget, started)
                elsewhere = 0 if trial else running_trials(study)
            if trial is not None:
                self.run_trial(study, storage, trial, parent)
            elif elsewhere:
                log.info("waiting for %d trial(s) running in other workers", elsewhere)
                time.sleep(poll)
            else:
                return

    def out_of_time(self, started: datetime) -> bool:
        timeout = self.settings.timeout_s
        return timeout is not None and (datetime.now() - started).total_seconds() >= timeout

    def run_trial(self, study: optuna.Study, storage: RDBStorage, trial: optuna.Trial, parent: RunRecorder) -> None:
        swept = list(self.space.overrides(trial.params))
        identity = TrialIdentity(self.storage_url, self.study_name, trial.number)
        overrides = [*self.fixed, *swept, f"tracking.parent_run_id={parent.run_id}", *identity.overrides()]
        log.info("trial %d: %s", trial.number, " ".join(swept))
        try:
            with heartbeat(storage, trial, self.settings.heartbeat_interval):
                result = self.launch(overrides, trial.number)
            outcome = self.outcome(result)
        # Ctrl-C: Lightning turns it into SystemExit; SIGTERM: RunInterrupted
        except (KeyboardInterrupt, SystemExit, RunInterrupted) as interruption:
            self.finish(study, trial, parent, Outcome(TrialState.FAIL, reason=str(interruption) or "interrupted"))
            raise
        except Exception as error:  # the job's config could not be composed
            outcome = Outcome(TrialState.FAIL, reason=failure_reason(error))
        self.finish(study, trial, parent, outcome)

    def outcome(self, result: JobReturn) -> Outcome:
        try:
            report: TrialReport = result.return_value  # raises the job's exception
        except Exception as error:
            return Outcome(TrialState.FAIL, reason=failure_reason(error))
        if report.pruned_epoch is not None:
            return Outcome(TrialState.PRUNED)
        values = []
        for objective in self.objectives:
            if objective.metric == self.config.objective.metric:
                value = report.fit.objective  # the best checkpoint's value
            else:
                value = report.fit.metrics.get(objective.metric)
                if value is None:
                    return Outcome(TrialState.FAIL, reason=f"the trial's run logged no metric {objective.metric}")
            if not math.isfinite(value):
                return Outcome(TrialState.FAIL, reason=f"objective {objective.metric} is {value}")
            values.append(float(value))
        return Outcome(TrialState.COMPLETE, values)

    def finish(self, study: optuna.Study, trial: optuna.Trial, parent: RunRecorder, outcome: Outcome) -> None:
        if outcome.reason:
            trial.set_user_attr(FAIL_REASON, outcome.reason)
        study.tell(trial, outcome.values, state=outcome.state)
        recorded = study._storage.get_trial(trial._trial_id)  # what the trial's job recorded, in any process
        run_id = recorded.user_attrs.get(RUN_ID_ATTR)
        if run_id:
            tags = {TRIAL_STATE_TAG: outcome.state.name}
            if outcome.reason:
                tags[FAIL_REASON] = outcome.reason
            RunRecorder(run_id, parent.client).set_tags(tags)
        pruned_epoch = recorded.user_attrs.get(PRUNED_EPOCH_ATTR)
        detail = outcome.reason or (
            f"at epoch {pruned_epoch}"
            if outcome.state == TrialState.PRUNED
            else ", ".join(f"{o.metric}={v:.4g}" for o, v in zip(self.objectives, outcome.values, strict=True))
        )
        log.info("trial %d %s: %s", trial.number, outcome.state.name, detail)

    # -- MLflow parent run ---------------------------------------------------------------------------------
    def find_parent(self, tracking_uri: str, experiment_id: str) -> str | None:
        label = storage_label(self.storage_url)
        runs = runs_tagged(tracking_uri, experiment_id, PARENT_TAG, self.study_name)
        return next((r.info.run_id for r in runs if r.data.tags.get(STORAGE_TAG) == label), None)

    def create_parent(self, tracking_uri: str, experiment_id: str) -> str:
        tags = {PARENT_TAG: self.study_name, STORAGE_TAG: storage_label(self.storage_url), STUDY_TAG: self.study_name}
        parent = create_run(tracking_uri, experiment_id, self.study_name, tags)
        parent.log_params(
            {
                "study_name": self.study_name,
                "sampler": self.sampler,
                "pruner": self.settings.pruner,
                "search_space": self.space.as_text(),
                "objectives": ", ".join(f"{o.metric}:{o.direction}" for o in self.objectives),
                "direction": ",".join(o.direction for o in self.objectives),
                "n_trials": self.budget,
                "storage": storage_label(self.storage_url),
                "fixed_overrides": " ".join(self.fixed),
            }
        )
        return parent.run_id

    def report(self, study: optuna.Study, parent: RunRecorder) -> None:
        """The study's outcome on the parent run: counts, best trial (or Pareto front), plots, the trials
        table, and the champion model."""
        trials = study.get_trials(deepcopy=False)
        counts = Counter(t.state for t in trials)
        parent.log_metrics(
            {f"trials_{s.name.lower()}": counts[s] for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        )
        if counts[TrialState.COMPLETE]:
            if len(self.objectives) == 1:
                self.report_best(study, parent)
            else:
                self.report_pareto(study, parent)
        log_study_plots(parent, study, self.objectives)
        log_trials_table(parent, study)
        log.info(
            "study %s: %d complete, %d pruned, %d failed",
            self.study_name,
            counts[TrialState.COMPLETE],
            counts[TrialState.PRUNED],
            counts[TrialState.FAIL],
        )

    def report_best(self, study: optuna.Study, parent: RunRecorder) -> None:
        best = study.best_trial
        metric = self.objectives[0].metric
        parent.log_metrics({f"best_{metric}": best.value})
        run_id = best.user_attrs.get(RUN_ID_ATTR)
        parent.set_tags({"best_trial": best.number, **{f"best.{k}": v for k, v in best.params.items()}})
        log.info("best: trial %d, %s=%.4g, %s (run %s)", best.number, metric, best.value, best.params, run_id)
        if not self.settings.register:
            return
        if run_id:
            parent.set_tags({"best_run_id": run_id})
        if run_id is None or not self.config.tracking.log_model:
            log.info("no model registered: the best trial logged no model (tracking.log_model=false)")
            return
        name = self.settings.model_name or self.experiment
        version = set_champion(run_id, name)
        parent.set_tags({"registered_model": f"{name}@{CHAMPION} (version {version})"})
        log.info("registered model: models:/%s@%s (version %s)", name, CHAMPION, version)

    def report_pareto(self, study: optuna.Study, parent: RunRecorder) -> None:
        front = {t.number for t in study.best_trials}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            run_id = trial.user_attrs.get(RUN_ID_ATTR)
            if run_id:
                RunRecorder(run_id, parent.client).set_tags({PARETO_TAG: str(trial.number in front).lower()})
        parent.set_tags({"pareto_trials": ",".join(map(str, sorted(front)))})
        log.info("Pareto front: trials %s", sorted(front))
