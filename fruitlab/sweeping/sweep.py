"""A sweep: an Optuna study whose trials are Hydra jobs running fit(), recorded in MLflow as one parent run per
study with a nested child run per trial.

The study lives in persistent storage and its name comes from the command, so running the same command again
resumes it: held points (complete, pruned, running elsewhere) are not run again, failed and interrupted ones are.
"""

import hashlib
import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import optuna
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from fruitlab.errors import ConfigError, RunInterrupted, SweepFailed
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
    failed_here,
    heartbeat,
    join_as_worker,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    running_trials,
    storage_label,
    study_lock,
    unresolved_failures,
    worker_seed,
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
from fruitlab.tracking.links import StoreUI
from fruitlab.tracking.query import SWEEP_PARENT_TAG, runs_tagged
from fruitlab.tracking.registry import CHAMPION, set_champion
from fruitlab.tracking.runs import MAX_PARAM_LENGTH, RunRecorder, create_run, end_lost_run, tracked_run
from fruitlab.tracking.store import Store

log = logging.getLogger(__name__)

Launch = Callable[[list[str], int], JobReturn]  # (overrides, job number) -> the job's result
SearchSpaceExtension = Callable[[DictConfig, optuna.Trial], None]  # custom_search_space: suggests more params

STORAGE_TAG = "sweep.storage"
PARETO_TAG = "pareto"
RESULTS_FILE = "optimization_results.yaml"  # in the sweep folder, as the upstream Optuna sweeper writes it


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    values: list[float] | None = None
    reason: str | None = None


def failure_reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_PARAM_LENGTH]


def end_stale_trial_run(store: Store, study: optuna.Study, trial: FrozenTrial) -> None:
    """A trial went stale (its worker was killed): end its MLflow run KILLED instead of leaving it RUNNING."""
    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if run_id:
        reason = "the worker running this trial stopped (no heartbeat)"
        end_lost_run(store, run_id, reason, {TRIAL_STATE_TAG: TrialState.FAIL.name})
    log.info("trial %d went stale (its worker stopped): it will run again", trial.number)


def directions_of(settings: SweepSettings) -> list[str]:
    """`hydra.sweeper.direction` as a list (upstream accepts one direction or a list)."""
    direction = settings.direction
    if direction is None:
        return []
    return (
        [str(d) for d in direction]
        if isinstance(direction, Sequence) and not isinstance(direction, str)
        else [str(direction)]
    )


def objectives_of(settings: SweepSettings, config: DictConfig) -> list[Objective]:
    """What the sweep optimises: `objectives`, else fruitlab's `objective.metric`, else (any other Hydra task)
    the value(s) the task returns, one per `direction`."""
    directions = directions_of(settings)
    if settings.objectives:
        objectives = [Objective(str(m), str(d)) for m, d in settings.objectives.items()]
    elif OmegaConf.select(config, "objective.metric") is not None:
        objectives = [Objective(str(config.objective.metric), str(config.objective.direction))]
        if len(directions) > 1:
            raise ConfigError(
                f"hydra.sweeper.direction={directions}: name the metric of each direction with "
                "hydra.sweeper.objectives, e.g. {val_acc:maximize,latency_b1_p50_ms:minimize}"
            )
    else:
        directions = directions or ["minimize"]
        names = ["value"] if len(directions) == 1 else [f"value_{i}" for i in range(len(directions))]
        return checked(Objective(n, d) for n, d in zip(names, directions, strict=True))
    if directions and directions != [o.direction for o in objectives]:
        raise ConfigError(
            f"hydra.sweeper.direction={','.join(directions)} disagrees with the objectives "
            f"({', '.join(f'{o.metric}:{o.direction}' for o in objectives)}): fruitlab's trials pick their best "
            "checkpoint by objective.direction, so set that (or hydra.sweeper.objectives) instead"
        )
    return checked(objectives)


def checked(objectives: Iterable[Objective]) -> list[Objective]:
    objectives = list(objectives)
    for objective in objectives:
        if objective.direction not in DIRECTIONS:
            raise ConfigError(
                f"direction '{objective.direction}' of {objective.metric}: use one of {', '.join(DIRECTIONS)}"
            )
    return objectives


def sampler_of(settings: SweepSettings) -> tuple[str | None, int | None, dict]:
    """(name, seed, options) of `hydra.sweeper.sampler`: a name, or the mapping {name, seed, options...} that
    the config group hydra/sweeper/sampler=<name> gives; `sampler_options` add to the options."""
    spec = settings.sampler
    options = dict(settings.sampler_options or {})
    if not isinstance(spec, Mapping):
        return spec, None, options
    spec = dict(spec)
    if "name" not in spec:
        raise ConfigError("hydra.sweeper.sampler: a mapping needs the sampler's name, e.g. {name: tpe, seed: 1}")
    name, seed = spec.pop("name"), spec.pop("seed", None)
    return name, seed, {**spec, **options}


def search_space_extension(path: str | None) -> SearchSpaceExtension | None:
    if path is None:
        return None
    try:
        return get_method(path)
    except Exception as error:
        raise ConfigError(
            f"hydra.sweeper.custom_search_space '{path}' is not an importable function f(cfg, trial): {error}"
        ) from error


def task_values(returned: object, count: int) -> list[float]:
    """The values a task other than fruitlab's training returned: a number, or one per objective."""
    values = list(returned) if isinstance(returned, Sequence) and not isinstance(returned, str) else [returned]
    if len(values) != count:
        raise ValueError(f"the task returned {len(values)} value(s) for {count} objective(s): {returned!r}")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as error:
        raise ValueError(f"the task must return numbers, it returned {returned!r}") from error


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
    def __init__(
        self,
        settings: SweepSettings,
        config: DictConfig,
        overrides: Sequence[Override],
        launch: Launch,
        threads_per_trial: int | None = None,
    ):
        """`launch` runs one trial's job and may be called from `settings.n_jobs` threads at once;
        `threads_per_trial` (torch threads) is set when the trials share this machine."""
        self.settings = settings
        self.config = config
        self.launch = launch
        self.threads_per_trial = threads_per_trial
        self.space = SearchSpace.from_overrides(overrides)
        self.fixed = [o.input_line for o in overrides if not o.is_sweep_override()]
        self.objectives = objectives_of(settings, config)
        multi = len(self.objectives) > 1
        if multi and settings.pruner != "none":
            raise ConfigError("Optuna cannot prune a study with several objectives: use hydra.sweeper.pruner=none")
        if settings.n_jobs < 1:
            raise ConfigError(f"hydra.sweeper.n_jobs={settings.n_jobs}: give how many trials run at once (>= 1)")
        if not 0 <= settings.max_failure_rate <= 1:
            raise ConfigError(f"hydra.sweeper.max_failure_rate={settings.max_failure_rate}: give a fraction in [0, 1]")
        name, self.sampler_seed, self.sampler_options = sampler_of(settings)
        self.sampler = name or ("grid" if self.space.is_comma_grid else "nsga2" if multi else "tpe")
        self.extend_space = search_space_extension(settings.custom_search_space)
        self.grid = self.space.grid() if self.sampler == "grid" else None
        default_budget = len(self.grid) if self.grid is not None else DEFAULT_SAMPLER_TRIALS
        self.budget = settings.n_trials or default_budget
        self.experiment = (
            OmegaConf.select(config, "tracking.experiment")
            or OmegaConf.select(config, "data.name")
            or config.hydra.job.name
        )
        sweep_name = config.hydra.runtime.choices.get("sweep")
        self.study_name = settings.study_name or default_study_name(
            self.experiment, sweep_name, self.fixed, self.space, self.objectives
        )
        if "'" in self.study_name:
            raise ConfigError(f"study name {self.study_name!r}: leave out the quote (MLflow searches by it)")
        self.storage_url = checked_storage_url(settings.storage or default_storage(self.tracking_uri_setting))
        # What this worker's trial slots share.
        self.lock = threading.Lock()
        self.in_flight: dict[int, optuna.Trial] = {}
        self.finished = Counter[TrialState]()
        self.stop_reason: str | None = None
        self.last_failure: str | None = None

    @property
    def tracking_uri_setting(self) -> str | None:
        return OmegaConf.select(self.config, "tracking.uri")

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> optuna.Study:
        started = datetime.now()
        store = Store.open(self.tracking_uri_setting)
        # One worker at a time creates the stores, the study and the parent run.
        with study_lock(self.storage_url, self.study_name):
            on_stale = partial(end_stale_trial_run, store)
            storage = open_storage(
                self.storage_url, self.settings.heartbeat_interval, self.settings.grace_period, on_stale
            )
            study = open_study(
                self.study_name, storage, self.objectives, None, make_pruner(self.settings.pruner, self.pruner_options)
            )
            worker = join_as_worker(study)
            study.sampler = make_sampler(self.sampler, worker_seed(self.seed, worker), self.sampler_options)
            self.tell_trials_what_to_report(study)
            experiment_id = store.ensure_experiment(self.experiment)
            parent_id = self.find_parent(store, experiment_id) or self.create_parent(store, experiment_id)
        log.info(
            "study %s (%s, %s) in %s: %d trials, %d at a time; worker %d; MLflow parent run %s",
            self.study_name,
            self.sampler,
            self.settings.pruner,
            storage_label(self.storage_url),
            self.budget,
            self.settings.n_jobs,
            worker,
            parent_id,
        )
        with tracked_run(store, experiment_id, run_id=parent_id) as parent:
            self.work(study, storage, parent, started)
            with study_lock(self.storage_url, self.study_name):
                self.report(study, parent)
            ui = StoreUI.of(store.uri)
            serve = f" (served by: {ui.command})" if ui.command else ""
            log.info("the sweep in the MLflow UI: %s%s", ui.run_page(experiment_id, parent_id), serve)
            self.raise_if_failed()
        return study

    @property
    def seed(self) -> int | None:
        """The sampler's seed: hydra.sweeper.sampler.seed, else hydra.sweeper.seed, else the run's seed."""
        for seed in (self.sampler_seed, self.settings.seed, self.config.get("seed")):
            if seed is not None:
                return int(seed)
        return None

    @property
    def pruner_options(self) -> dict:
        return dict(self.settings.pruner_options or {})

    def tell_trials_what_to_report(self, study: optuna.Study) -> None:
        """Tell the trials' jobs, through the study, which metric to report each epoch (Optuna records
        intermediate values for one objective only) and how to prune."""
        if len(self.objectives) == 1:
            study.set_user_attr(REPORTED_METRIC_ATTR, self.objectives[0].metric)
        if self.settings.pruner != "none":
            study.set_user_attr(PRUNER_ATTR, {"name": self.settings.pruner, "options": self.pruner_options})

    def work(self, study: optuna.Study, storage: RDBStorage, parent: RunRecorder, started: datetime) -> None:
        """Run trials in `n_jobs` slots: each slot claims a trial, launches its job and, once the trial has
        finished or been pruned, claims the next, so one long trial holds up no other slot."""
        if self.settings.n_jobs == 1:  # in this thread: Ctrl-C and SIGTERM reach the running trial's job
            self.slot(study, storage, parent, started)
            return
        errors: list[BaseException] = []

        def slot() -> None:
            try:
                self.slot(study, storage, parent, started)
            except BaseException as error:
                errors.append(error)
                self.stop_reason = self.stop_reason or failure_reason(error)

        slots = [
            threading.Thread(target=slot, name=f"trial-slot-{i}", daemon=True) for i in range(self.settings.n_jobs)
        ]
        for thread in slots:
            thread.start()
        try:
            for thread in slots:
                while thread.is_alive():
                    thread.join(0.5)  # wakes up, so that a signal reaches this thread
        except (KeyboardInterrupt, SystemExit, RunInterrupted) as interruption:
            self.stop_reason = "interrupted"
            with self.lock:
                in_flight = list(self.in_flight.values())
            for trial in in_flight:
                self.finish(study, trial, parent, Outcome(TrialState.FAIL, reason=str(interruption) or "interrupted"))
            raise
        if errors:
            raise errors[0]

    def slot(self, study: optuna.Study, storage: RDBStorage, parent: RunRecorder, started: datetime) -> None:
        """Claim and run trials until the study is done or the sweep stops; wait while other workers still run
        its last trials (one of them may die and leave its point to this worker)."""
        poll = min(10, self.settings.heartbeat_interval)
        while self.stop_reason is None:
            if self.out_of_time(started):
                log.info("the sweep's time budget (%s s) is spent: no new trial", self.settings.timeout_s)
                return
            with study_lock(self.storage_url, self.study_name):
                trial = claim(study, storage, self.space, self.grid, self.budget, started)
                if trial is not None and self.extend_space is not None:
                    self.extend_space(self.config, trial)
                with self.lock:
                    if trial is not None:
                        self.in_flight[trial.number] = trial
                    elsewhere = running_trials(study) - len(self.in_flight)
            if trial is not None:
                self.run_trial(study, storage, trial, parent)
                self.check_failure_rate(study, started)
            elif elsewhere > 0:
                log.info("waiting for %d trial(s) running in other workers", elsewhere)
                time.sleep(poll)
            else:
                return

    def check_failure_rate(self, study: optuna.Study, started: datetime) -> None:
        """Stop the sweep once more than max_failure_rate x n_trials trials failed in this invocation."""
        failures = sum(failed_here(t, started) for t in study.get_trials(deepcopy=False))
        allowed = self.settings.max_failure_rate * self.budget
        if failures > allowed and self.stop_reason is None:
            self.stop_reason = (
                f"{failures} of n_trials={self.budget} trials failed, more than "
                f"max_failure_rate={self.settings.max_failure_rate} allows"
            )

    def raise_if_failed(self) -> None:
        """A sweep that stopped on failures, or whose trials all failed, ends with one line, non-zero."""
        complete, pruned, failed = (self.finished[s] for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
        if self.stop_reason is not None:
            raise SweepFailed(
                f"sweep {self.study_name} stopped: {self.stop_reason} ({complete} complete, {pruned} pruned)"
            )
        if failed and not complete and not pruned:
            raise SweepFailed(
                f"sweep {self.study_name}: all {failed} trial(s) failed (last: {self.last_failure}); "
                "see fail_reason in the trials (trials.csv on the parent run)"
            )

    def out_of_time(self, started: datetime) -> bool:
        timeout = self.settings.timeout_s
        return timeout is not None and (datetime.now() - started).total_seconds() >= timeout

    def run_trial(self, study: optuna.Study, storage: RDBStorage, trial: optuna.Trial, parent: RunRecorder) -> None:
        # Parameters beyond the command line's were suggested by custom_search_space, named as overrides.
        extra = {name: value for name, value in trial.params.items() if name not in self.space.names}
        swept = [*self.space.overrides(trial.params), *(f"{name}={value}" for name, value in extra.items())]
        identity = TrialIdentity(self.storage_url, self.study_name, trial.number, self.threads_per_trial)
        overrides = [*self.fixed, *swept, *self.parent_override(parent), *identity.overrides()]
        log.info("trial %d: %s", trial.number, " ".join(swept))
        try:
            with heartbeat(storage, trial, self.settings.heartbeat_interval):
                result = self.launch(overrides, trial.number)
            outcome = self.outcome(result)
        # Ctrl-C: Lightning turns it into SystemExit; SIGTERM: RunInterrupted
        except (KeyboardInterrupt, SystemExit, RunInterrupted) as interruption:
            self.finish(study, trial, parent, Outcome(TrialState.FAIL, reason=str(interruption) or "interrupted"))
            raise
        except Exception as error:  # the job's config could not be composed, or its worker process died
            outcome = Outcome(TrialState.FAIL, reason=failure_reason(error))
        self.finish(study, trial, parent, outcome)

    def parent_override(self, parent: RunRecorder) -> list[str]:
        """fruitlab's training nests its run under the sweep's parent run; another task is left alone."""
        return [f"tracking.parent_run_id={parent.run_id}"] if self.is_training else []

    @property
    def is_training(self) -> bool:
        return OmegaConf.select(self.config, "tracking") is not None

    def outcome(self, result: JobReturn) -> Outcome:
        try:
            returned = result.return_value  # raises the job's exception
            if not isinstance(returned, TrialReport):  # another Hydra task: it returns its value(s)
                return self.checked_outcome(task_values(returned, len(self.objectives)))
        except Exception as error:
            return Outcome(TrialState.FAIL, reason=failure_reason(error))
        if returned.pruned_epoch is not None:
            return Outcome(TrialState.PRUNED)
        values = []
        for objective in self.objectives:
            if objective.metric == self.config.objective.metric:
                value = returned.fit.objective  # the best checkpoint's value
            else:
                value = returned.fit.metrics.get(objective.metric)
                if value is None:
                    return Outcome(TrialState.FAIL, reason=f"the trial's run logged no metric {objective.metric}")
            values.append(value)
        return self.checked_outcome(values)

    def checked_outcome(self, values: Sequence[float]) -> Outcome:
        for objective, value in zip(self.objectives, values, strict=True):
            if not math.isfinite(value):
                return Outcome(TrialState.FAIL, reason=f"objective {objective.metric} is {value}")
        return Outcome(TrialState.COMPLETE, [float(v) for v in values])

    def finish(self, study: optuna.Study, trial: optuna.Trial, parent: RunRecorder, outcome: Outcome) -> None:
        with self.lock:
            if self.in_flight.pop(trial.number, None) is None:
                return  # already finished (interrupted while its slot waited)
            self.finished[outcome.state] += 1
            if outcome.reason:
                self.last_failure = outcome.reason
        recorded = study._storage.get_trial(trial._trial_id)  # what the trial's job recorded, in any process
        if recorded.state.is_finished():  # its heartbeat came late and another worker failed it as stale
            log.warning("trial %d was failed meanwhile by another worker (a late heartbeat)", trial.number)
            return
        if outcome.reason:
            trial.set_user_attr(FAIL_REASON, outcome.reason)
        study.tell(trial, outcome.values, state=outcome.state)
        run_id = recorded.user_attrs.get(RUN_ID_ATTR)
        if run_id:
            tags = {TRIAL_STATE_TAG: outcome.state.name}
            if outcome.reason:
                tags[FAIL_REASON] = outcome.reason
            RunRecorder(run_id, parent.store).set_tags(tags)
        pruned_epoch = recorded.user_attrs.get(PRUNED_EPOCH_ATTR)
        detail = outcome.reason or (
            f"at epoch {pruned_epoch}"
            if outcome.state == TrialState.PRUNED
            else ", ".join(f"{o.metric}={v:.4g}" for o, v in zip(self.objectives, outcome.values, strict=True))
        )
        log.info("trial %d %s: %s", trial.number, outcome.state.name, detail)

    # -- MLflow parent run ---------------------------------------------------------------------------------
    def find_parent(self, store: Store, experiment_id: str) -> str | None:
        label = storage_label(self.storage_url)
        runs = runs_tagged(store, experiment_id, SWEEP_PARENT_TAG, self.study_name)
        return next((r.run_id for r in runs if r.tags.get(STORAGE_TAG) == label), None)

    def create_parent(self, store: Store, experiment_id: str) -> str:
        tags = {
            SWEEP_PARENT_TAG: self.study_name,
            STORAGE_TAG: storage_label(self.storage_url),
            STUDY_TAG: self.study_name,
        }
        parent = create_run(store, experiment_id, self.study_name, tags)
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
        failed = len(unresolved_failures(trials))
        redone, counts[TrialState.FAIL] = counts[TrialState.FAIL] - failed, failed
        parent.log_metrics(
            {f"trials_{s.name.lower()}": counts[s] for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
            | {"trials_failed_then_redone": redone}
        )
        if counts[TrialState.COMPLETE]:
            if len(self.objectives) == 1:
                self.report_best(study, parent)
            else:
                self.report_pareto(study, parent)
        log_study_plots(parent, study, self.objectives)
        log_trials_table(parent, study)
        self.save_results(study)
        log.info(
            "study %s: %d complete, %d pruned, %d failed%s",
            self.study_name,
            counts[TrialState.COMPLETE],
            counts[TrialState.PRUNED],
            counts[TrialState.FAIL],
            f" ({redone} failed trials since run again successfully)" if redone else "",
        )

    def save_results(self, study: optuna.Study) -> None:
        """optimization_results.yaml in the sweep folder, as the upstream Optuna sweeper writes it: the best
        params and value, or with several objectives the Pareto front's params and values."""
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            return
        if len(self.objectives) == 1:
            best = study.best_trial
            results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
        else:
            solutions = [{"params": t.params, "values": t.values} for t in study.best_trials]
            results = {"name": "optuna", "solutions": solutions}
        folder = Path(self.config.hydra.sweep.dir)
        folder.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), folder / RESULTS_FILE)
        log.info("best params and values in %s", folder / RESULTS_FILE)

    def report_best(self, study: optuna.Study, parent: RunRecorder) -> None:
        best = study.best_trial
        metric = self.objectives[0].metric
        parent.log_metrics({f"best_{metric}": best.value})
        run_id = best.user_attrs.get(RUN_ID_ATTR)
        parent.set_tags({"best_trial": best.number, **{f"best.{k.lstrip('+')}": v for k, v in best.params.items()}})
        log.info("best: trial %d, %s=%.4g, %s (run %s)", best.number, metric, best.value, best.params, run_id)
        if not self.settings.register:
            return
        if run_id is None:  # a task other than fruitlab's training records no run
            return
        parent.set_tags({"best_run_id": run_id})
        if not self.config.tracking.log_model:
            log.info("no model registered: the best trial logged no model (tracking.log_model=false)")
            return
        name = self.settings.model_name or self.experiment
        version = set_champion(parent.store, run_id, name)
        parent.set_tags({"registered_model": f"{name}@{CHAMPION} (version {version})"})
        log.info("registered model: models:/%s@%s (version %s)", name, CHAMPION, version)

    def report_pareto(self, study: optuna.Study, parent: RunRecorder) -> None:
        front = {t.number for t in study.best_trials}
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            run_id = trial.user_attrs.get(RUN_ID_ATTR)
            if run_id:
                RunRecorder(run_id, parent.store).set_tags({PARETO_TAG: str(trial.number in front).lower()})
        parent.set_tags({"pareto_trials": ",".join(map(str, sorted(front)))})
        log.info("Pareto front: trials %s", sorted(front))
