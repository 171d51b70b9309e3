"""A sweep's record: its MLflow parent run (found again when the study resumes), each trial run's final state,
the study's outcome on the parent run (counts, best trial or Pareto front, plots, trials table), the champion
model, and `optimization_results.yaml` in the sweep's folder.

The only sweeping module that calls fruitlab.tracking, and only these, all through one `Store`:
    store.Store.open(uri) -> Store (.uri, .root, .ensure_experiment(name) -> id)
    store.resolve_uri(uri) -> uri, store.store_root(uri) -> Path (both pure)
    query.runs_tagged(store, experiment_id, key, value) -> [RunRecord]
    query.runs_under(store, name_or_id) -> [RunRecord] | None
    query.StoreReader(store).read_history(run_id, names) -> {name: [(step, value)]}
    runs.create_run(store, experiment_id, run_name, tags) -> RunRecorder
    runs.tracked_run(store, experiment_id, run_id=...) -> context of a RunRecorder
    runs.RunRecorder(run_id, store)                  runs.end_lost_run(store, run_id, reason, tags) -> bool
    runs.fail_run(store, run_id, reason, tags)
    registry.set_champion(store, run_id, name) -> version   links.StoreUI.of(uri) -> StoreUI
"""

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import optuna
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

from fruitlab.errors import ConfigError
from fruitlab.plotting import CHECK_PREFIX
from fruitlab.sweeping.claims import FAIL_REASON
from fruitlab.sweeping.identity import RUN_ID_ATTR, STUDY_TAG, TRIAL_STATE_TAG
from fruitlab.sweeping.outcomes import Outcome
from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.plots import study_plots, trials_table
from fruitlab.sweeping.results import Best, TrialCounts, best_of, optimization_results, pareto_front
from fruitlab.sweeping.storage import storage_label
from fruitlab.sweeping.warm_start import RecordedRun, Seed, Seeding, curve_in_study_steps
from fruitlab.tracking.links import StoreUI
from fruitlab.tracking.query import SWEEP_PARENT_TAG, StoreReader, runs_tagged, runs_under
from fruitlab.tracking.registry import CHAMPION, set_champion
from fruitlab.tracking.runs import RunRecorder, create_run, end_lost_run, fail_run, tracked_run
from fruitlab.tracking.store import Store, resolve_uri, store_root

log = logging.getLogger(__name__)

STORAGE_TAG = "sweep.storage"
PARETO_TAG = "pareto"
WARM_START_TAG = "warm_start.runs"  # the parent run's tag: the runs that seeded the study
WARM_START_FILE = "warm_start_runs.txt"
MAX_TAG_LENGTH = 5000  # MLflow caps a tag's value; a longer list of runs is in WARM_START_FILE only
RESULTS_FILE = "optimization_results.yaml"  # in the sweep folder, as the upstream Optuna sweeper writes it


class SweepRecorder:
    def __init__(self, plan: SweepPlan, store: Store) -> None:
        self.plan = plan
        self.store = store
        self.experiment_id = ""
        self.parent_id = ""
        self.parent: RunRecorder | None = None  # while the parent run is open

    @classmethod
    def open(cls, plan: SweepPlan) -> "SweepRecorder":
        """The recorder of the plan's MLflow store, checked to answer."""
        return cls(plan, Store.open(plan.tracking_uri))

    @staticmethod
    def default_storage(plan: SweepPlan) -> str:
        """The study's storage when none is given: optuna.db beside the local MLflow store (known before the
        store is opened: the study's lock, which guards the store's creation, is named by it)."""
        return f"sqlite:///{store_root(resolve_uri(plan.tracking_uri)) / 'optuna.db'}"

    def end_stale_trial_run(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """A trial went stale (its worker was killed): end its MLflow run KILLED instead of leaving it RUNNING."""
        run_id = trial.user_attrs.get(RUN_ID_ATTR)
        if run_id:
            reason = "the worker running this trial stopped (no heartbeat)"
            end_lost_run(self.store, run_id, reason, {TRIAL_STATE_TAG: TrialState.FAIL.name})
        log.info("trial %d went stale (its worker stopped): it will run again", trial.number)

    def find_or_create_parent(self, storage_url: str) -> str:
        """The study's parent run in this store, created by the first worker. Call under the study's lock."""
        self.experiment_id = self.store.ensure_experiment(self.plan.experiment)
        label = storage_label(storage_url)
        runs = runs_tagged(self.store, self.experiment_id, SWEEP_PARENT_TAG, self.plan.study_name)
        found = next((r.run_id for r in runs if r.tags.get(STORAGE_TAG) == label), None)
        self.parent_id = found or self.create_parent(label)
        return self.parent_id

    def create_parent(self, storage: str) -> str:
        plan = self.plan
        tags = {SWEEP_PARENT_TAG: plan.study_name, STORAGE_TAG: storage, STUDY_TAG: plan.study_name}
        parent = create_run(self.store, self.experiment_id, plan.study_name, tags)
        parent.log_params(
            {
                "study_name": plan.study_name,
                "sampler": plan.sampler,
                "sampler_options": json.dumps(plan.sampler_options, sort_keys=True),
                "sampler_seed": plan.seed,
                "pruner": plan.settings.pruner,
                "search_space": plan.space.as_text(),
                "objectives": ", ".join(f"{o.metric}:{o.direction}" for o in plan.objectives),
                "direction": ",".join(o.direction for o in plan.objectives),
                "n_trials": plan.budget,
                "storage": storage,
                "fixed_overrides": " ".join(plan.fixed),
            }
        )
        return parent.run_id

    def runs_to_start_from(self, sources: Sequence[str]) -> list[RecordedRun]:
        """The runs of each warm-start source, sweep parent runs left out (they summarise their trials)."""
        runs: list[RecordedRun] = []
        for source in sources:
            found = runs_under(self.store, source)
            if found is None:
                raise ConfigError(
                    f"hydra.sweeper.warm_start: no experiment, sweep or run named '{source}' in {self.store.uri}"
                )
            runs += [
                RecordedRun(r.run_id, r.status, r.params, r.metrics, r.tags)
                for r in found
                if SWEEP_PARENT_TAG not in r.tags
            ]
        return runs

    def objective_curves(self, seeds: Sequence[Seed], metric: str, checks: int) -> dict[str, dict[int, float]]:
        """Each seed's run's history of `metric` at the steps of trials that validate `checks` times per epoch."""
        reader = StoreReader(self.store)
        curves = {}
        names = (f"{CHECK_PREFIX}{metric}", metric)  # at each check, at each epoch's end
        for seed in seeds:
            history = reader.read_history(seed.run_id, names)
            by_check, by_epoch = (dict(history.get(name, [])) for name in names)
            curves[seed.run_id] = curve_in_study_steps(seed, by_check, by_epoch, checks)
        return curves

    def record_warm_start(self, seeding: Seeding) -> None:
        """Name the runs that seeded the study on its parent run: a tag (the full list in a file when long)."""
        ids = [seed.run_id for seed in seeding.seeds]
        joined = ",".join(ids)
        parent = RunRecorder(self.parent_id, self.store)
        parent.log_metrics({"warm_start_trials": len(ids)})
        parent.log_text("\n".join(ids), WARM_START_FILE)
        tag = joined if len(joined) <= MAX_TAG_LENGTH else f"{len(ids)} runs: see {WARM_START_FILE}"
        parent.set_tags({WARM_START_TAG: tag})

    @contextmanager
    def parent_run(self) -> Iterator[None]:
        """The parent run, open meanwhile and always ended (KILLED when interrupted, FAILED on an error)."""
        with tracked_run(self.store, self.experiment_id, run_id=self.parent_id) as parent:
            self.parent = parent
            yield

    def parent_overrides(self) -> list[str]:
        """fruitlab's training nests its run under the sweep's parent run; another task is left alone."""
        return [f"tracking.parent_run_id={self.parent_id}"] if self.plan.is_training else []

    def trial_finished(self, recorded: FrozenTrial, outcome: Outcome) -> None:
        """Tag the trial's run (if its job recorded one) with how the trial ended."""
        run_id = recorded.user_attrs.get(RUN_ID_ATTR)
        if run_id:
            tags = {TRIAL_STATE_TAG: outcome.state.name}
            if outcome.reason:
                tags[FAIL_REASON] = outcome.reason
            if outcome.lost:
                fail_run(self.store, run_id, outcome.reason or "the trial's job was lost", tags)
            else:
                RunRecorder(run_id, self.store).set_tags(tags)

    def report(self, study: optuna.Study) -> None:
        """The study's outcome on the parent run and in the results file. Call under the study's lock."""
        counts = TrialCounts.of(study.get_trials(deepcopy=False))
        self.parent.log_metrics(counts.metrics())
        if counts.complete and len(self.plan.objectives) == 1:
            self.report_best(best_of(study))
        elif counts.complete:
            self.report_pareto(study)
        for name, figure in study_plots(study, self.plan.objectives):
            self.parent.log_figure(figure, f"plots/{name}.png", bbox_inches="tight")
        self.parent.log_text(trials_table(study), "trials.csv")
        self.save_results(study)
        redone = f" ({counts.redone} failed trials since run again successfully)" if counts.redone else ""
        name = self.plan.study_name
        log.info(
            "study %s: %d complete, %d pruned, %d failed%s", name, counts.complete, counts.pruned, counts.failed, redone
        )

    def report_best(self, best: Best) -> None:
        metric = self.plan.objectives[0].metric
        self.parent.log_metrics({f"best_{metric}": best.value})
        self.parent.set_tags(best.tags())
        run = best.run_id or (best.seeded_from and f"{best.seeded_from}, seeded from an earlier sweep")
        log.info("best: trial %d, %s=%.4g, %s (run %s)", best.number, metric, best.value, best.params, run)
        # another task than training records no run; a warm start's run was recorded by another sweep
        if not self.plan.settings.register or best.run_id is None:
            return
        if not self.plan.log_model:
            log.info("no model registered: the best trial logged no model (tracking.log_model=false)")
            return
        name = self.plan.settings.model_name or self.plan.experiment
        version = set_champion(self.store, best.run_id, name)
        self.parent.set_tags({"registered_model": f"{name}@{CHAMPION} (version {version})"})
        log.info("registered model: models:/%s@%s (version %s)", name, CHAMPION, version)

    def report_pareto(self, study: optuna.Study) -> None:
        front = pareto_front(study)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            run_id = trial.user_attrs.get(RUN_ID_ATTR)
            if run_id:
                RunRecorder(run_id, self.store).set_tags({PARETO_TAG: str(trial.number in front).lower()})
        self.parent.set_tags({"pareto_trials": ",".join(map(str, front))})
        log.info("Pareto front: trials %s", front)

    def save_results(self, study: optuna.Study) -> None:
        results = optimization_results(study)
        if results is None:
            return
        folder = self.plan.results_dir
        folder.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), folder / RESULTS_FILE)
        log.info("best params and values in %s", folder / RESULTS_FILE)

    def log_link(self) -> None:
        ui = StoreUI.of(self.store.uri)
        serve = f" (served by: {ui.command})" if ui.command else ""
        log.info("the sweep in the MLflow UI: %s%s", ui.run_page(self.experiment_id, self.parent_id), serve)
