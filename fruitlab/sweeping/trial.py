"""A sweep trial as its training job sees it: opened from the `TrialIdentity` the sweeper put in the job's config,
whichever process or machine runs the job. It plugs into training through `TrainingHooks`: it tags the run with
the trial, reports each validation check's value to the study's storage (where the pruner reads it) and stops
training when the pruner says so."""

from typing import TYPE_CHECKING

import optuna

from fruitlab.sweeping.identity import (
    PRUNED_CHECK_ATTR,
    PRUNED_EPOCH_ATTR,
    RUN_ID_ATTR,
    STUDY_TAG,
    TRIAL_NUMBER_TAG,
    TRIAL_STATE_TAG,
    TrialIdentity,
)
from fruitlab.sweeping.outcomes import TrialReport
from fruitlab.sweeping.storage import trial_id, trial_storage
from fruitlab.sweeping.study import make_pruner
from fruitlab.training.hooks import FitResult

if TYPE_CHECKING:  # Lightning is imported by the trial's job, not by the sweeper; the recorder is training's
    import lightning.pytorch as pl

    from fruitlab.tracking.runs import RunRecorder


class SweepTrial:
    """The running trial of a sweep, as `TrainingHooks` for `fit`."""

    def __init__(self, identity: TrialIdentity) -> None:
        if identity.threads is not None:  # this job shares the machine with other trials' jobs
            import torch

            torch.set_num_threads(identity.threads)
        storage = trial_storage(identity.storage)
        pruner = make_pruner(identity.pruner, identity.pruner_options)
        study = optuna.load_study(study_name=identity.study, storage=storage, pruner=pruner)
        # A running trial of another process: Optuna's public Trial constructor over its storage id.
        self.trial = optuna.Trial(study, trial_id(storage, identity.study, identity.number))
        self.identity = identity
        self.recorder: RunRecorder | None = None
        self.pruned_epoch: int | None = None

    def callbacks(self) -> list["pl.Callback"]:
        if self.identity.metric is None:
            return []
        from fruitlab.sweeping.pruning import ReportToTrial

        on_pruned = self.mark_pruned if self.identity.prunes else None
        return [ReportToTrial(self.trial, self.identity.metric, on_pruned)]

    def run_started(self, recorder: "RunRecorder") -> None:
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
        value = metrics.get(self.identity.metric) if self.identity.metric else None
        study = self.trial.study
        if value is None or not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            return True
        if self.identity.direction == "minimize":
            return value <= study.best_value
        return value >= study.best_value

    def mark_pruned(self, epoch: int, check: int) -> None:
        """Record where the pruner stopped the trial: the epoch and the check (the step of its last value)."""
        self.pruned_epoch = epoch
        self.trial.set_user_attr(PRUNED_EPOCH_ATTR, epoch)
        self.trial.set_user_attr(PRUNED_CHECK_ATTR, check)
        if self.recorder is not None:
            self.recorder.set_tags({PRUNED_EPOCH_ATTR: epoch, PRUNED_CHECK_ATTR: check})

    def report(self, result: FitResult) -> TrialReport:
        return TrialReport(result, self.pruned_epoch)
