"""A sweep trial as its training job sees it: opened from the identity the sweeper puts in the job's config
(`trial.storage`, `trial.study`, `trial.number`), so the same code runs whether the launcher runs the job in
the sweeper's process, a local worker process or a cluster node. It plugs into training through
`TrainingHooks`: it tags the run with the trial, reports each epoch's value to the study's storage (where the
pruner reads it) and stops training when the pruner says so."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna
from omegaconf import DictConfig

from fruitlab.sweeping.study import make_pruner, open_storage
from fruitlab.tracking.runs import RunRecorder
from fruitlab.training.hooks import FitResult

if TYPE_CHECKING:  # Lightning is imported by the trial's job, not by the sweeper
    import lightning.pytorch as pl

TRIAL_NUMBER_TAG = "trial_number"
TRIAL_STATE_TAG = "trial_state"
STUDY_TAG = "sweep.study"
RUN_ID_ATTR = "mlflow_run_id"  # user attribute of a trial: its MLflow run
PRUNED_EPOCH_ATTR = "pruned_epoch"  # user attribute of a pruned trial, and tag of its run
# Study user attributes the sweeper sets so that a trial's job, wherever it runs, prunes as the sweep says.
REPORTED_METRIC_ATTR = "reported_metric"  # the metric reported each epoch; absent for several objectives
PRUNER_ATTR = "pruner"  # {"name": ..., "options": {...}}; absent: the sweep does not prune


@dataclass(frozen=True)
class TrialIdentity:
    storage: str  # the study's RDB URL
    study: str
    number: int
    threads: int | None = None  # torch threads of the trial's job, when several trials share one machine

    def overrides(self) -> list[str]:
        """The job overrides that carry this identity (`trial` is bookkeeping: it is never logged as params)."""
        threads = [] if self.threads is None else [f"+trial.threads={self.threads}"]
        return [
            f"+trial.storage={quote(self.storage)}",
            f"+trial.study={quote(self.study)}",
            f"+trial.number={self.number}",
            *threads,
        ]

    @classmethod
    def of(cls, cfg: DictConfig) -> "TrialIdentity | None":
        """The identity in a job's config; None outside a sweep."""
        trial = cfg.get("trial")
        if trial is None:
            return None
        threads = trial.get("threads")
        return cls(str(trial.storage), str(trial.study), int(trial.number), None if threads is None else int(threads))


def quote(value: str) -> str:
    """`value` as a quoted Hydra override value: any character survives."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


@dataclass
class TrialReport:
    """What a trial's job returns to the sweeper (through whichever launcher ran it)."""

    fit: FitResult
    pruned_epoch: int | None = None


class SweepTrial:
    """The running trial of a sweep, as `TrainingHooks` for `fit`."""

    def __init__(self, identity: TrialIdentity) -> None:
        if identity.threads is not None:  # this job shares the machine with other trials' jobs
            import torch

            torch.set_num_threads(identity.threads)
        storage = open_storage(identity.storage)
        study = optuna.load_study(study_name=identity.study, storage=storage)
        pruner = study.user_attrs.get(PRUNER_ATTR)
        if pruner:
            study.pruner = make_pruner(pruner["name"], pruner["options"])
        self.prunes = pruner is not None
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, identity.number)
        self.trial = optuna.Trial(study, trial_id)
        self.identity = identity
        self.reported_metric: str | None = study.user_attrs.get(REPORTED_METRIC_ATTR)
        self.recorder: RunRecorder | None = None
        self.pruned_epoch: int | None = None

    def callbacks(self) -> list["pl.Callback"]:
        if self.reported_metric is None:
            return []
        from fruitlab.sweeping.pruning import ReportToTrial

        return [ReportToTrial(self.trial, self.reported_metric, self.mark_pruned if self.prunes else None)]

    def run_started(self, recorder: RunRecorder) -> None:
        """Tag the run with its trial and tell the study which run it is (another worker can then end the run
        if this job dies)."""
        self.recorder = recorder
        self.trial.set_user_attr(RUN_ID_ATTR, recorder.run_id)
        recorder.set_tags(
            {TRIAL_NUMBER_TAG: self.trial.number, TRIAL_STATE_TAG: "RUNNING", STUDY_TAG: self.identity.study}
        )

    def stopped_early(self) -> bool:
        return self.pruned_epoch is not None

    def leads(self, metrics: dict[str, float]) -> bool:
        """Whether the reported metric beats every trial completed so far (ties lead); always, with several
        objectives (any trial may join the Pareto front) or before the first trial completes."""
        value = metrics.get(self.reported_metric) if self.reported_metric else None
        study = self.trial.study
        if value is None or not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            return True
        if study.direction == optuna.study.StudyDirection.MINIMIZE:
            return value <= study.best_value
        return value >= study.best_value

    def mark_pruned(self, epoch: int) -> None:
        self.pruned_epoch = epoch
        self.trial.set_user_attr(PRUNED_EPOCH_ATTR, epoch)
        if self.recorder is not None:
            self.recorder.set_tags({PRUNED_EPOCH_ATTR: epoch})

    def report(self, result: FitResult) -> TrialReport:
        return TrialReport(result, self.pruned_epoch)
