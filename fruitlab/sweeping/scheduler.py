"""Runs a sweep's trials: `n_jobs` slots each claim a trial under the study's lock, launch its job through the
Hydra launcher (a batch of one, so one long trial holds up no other slot) and tell the study how it ended, until
the budget is spent, the time budget is up, too many trials failed or the sweep is interrupted. The slots share
one `SlotState`; the scheduler records nothing in MLflow itself: `on_finished` does."""

import gc
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import optuna
from hydra.core.utils import JobReturn
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from fruitlab.errors import RunInterrupted
from fruitlab.sweeping.claims import (
    FAIL_REASON,
    LOST_ATTR,
    Claim,
    SuggestMore,
    claim,
    failed_here,
    lost_here,
    running_trials,
)
from fruitlab.sweeping.identity import PRUNED_CHECK_ATTR, PRUNED_EPOCH_ATTR
from fruitlab.sweeping.outcomes import Outcome, failure_reason, outcome_of
from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.slots import SlotState, Tally
from fruitlab.sweeping.storage import heartbeat

log = logging.getLogger(__name__)

Launch = Callable[[list[str], int], JobReturn]  # (overrides, job number) -> the job's result
StudyLock = Callable[[], AbstractContextManager[None]]  # one worker at a time claims or reports
TrialFinished = Callable[[FrozenTrial, Outcome], None]  # (the trial as its job recorded it, how it ended)
INTERRUPTIONS = (KeyboardInterrupt, SystemExit, RunInterrupted)  # Ctrl-C (Lightning: SystemExit), SIGTERM


class Scheduler:
    def __init__(
        self,
        plan: SweepPlan,
        study: optuna.Study,
        storage: BaseStorage,
        lock: StudyLock,
        launch: Launch,
        job_overrides: Callable[[int], list[str]],
        on_finished: TrialFinished,
        suggest_more: SuggestMore | None = None,
    ) -> None:
        """`launch` may be called from `n_jobs` threads at once; `job_overrides(number)` are what trial `number`'s
        job gets besides the command's overrides and its point (its identity, its parent run)."""
        self.plan, self.study, self.storage, self.lock = plan, study, storage, lock
        self.launch, self.job_overrides, self.on_finished = launch, job_overrides, on_finished
        self.suggest_more = suggest_more
        self.state = SlotState()

    def run(self, started: datetime) -> Tally:
        n_jobs = self.plan.settings.n_jobs
        if n_jobs == 1:  # in this thread: Ctrl-C and SIGTERM reach the running trial's job
            self.slot(started)
            return self.tally()
        slots = [
            threading.Thread(target=self.guarded_slot, args=(started,), name=f"trial-slot-{i}", daemon=True)
            for i in range(n_jobs)
        ]
        for thread in slots:
            thread.start()
        try:
            for thread in slots:
                while thread.is_alive():
                    thread.join(0.5)  # wakes up, so that a signal reaches this thread
        except INTERRUPTIONS as interruption:
            self.state.stop("interrupted")
            for claimed in self.state.in_flight():
                self.finish(claimed, Outcome.failed(str(interruption) or "interrupted"))
            raise
        error = self.state.first_error()
        if error is not None:
            raise error
        return self.tally()

    def tally(self) -> Tally:
        return self.state.tally(failures_fine=self.plan.settings.max_failure_rate == 1)

    def guarded_slot(self, started: datetime) -> None:
        try:
            self.slot(started)
        except BaseException as error:
            self.state.crashed(error, failure_reason(error))

    def slot(self, started: datetime) -> None:
        """Claim and run trials until the study is done or the sweep stops; wait while other workers still run
        its last trials (one of them may die and leave its point to this worker)."""
        poll = min(10, self.plan.settings.heartbeat_interval)
        while not self.state.stopped:
            if self.out_of_time(started):
                log.info("the sweep's time budget (%s s) is spent: no new trial", self.plan.settings.timeout_s)
                return
            with self.lock():
                claimed = claim(self.study, self.storage, self.plan.space, self.plan.grid, self.plan.budget, started)
                if claimed is not None and self.suggest_more is not None:
                    self.suggest_more(claimed.trial)
                running = running_trials(self.study)
                here = self.state.claimed(claimed)
            if claimed is not None:
                self.run_trial(claimed)
                collect_finished_trial()
                self.check_failure_rate(started)
            elif running > here:
                log.info("waiting for %d trial(s) running in other workers", running - here)
                time.sleep(poll)
            else:
                return

    def out_of_time(self, started: datetime) -> bool:
        timeout = self.plan.settings.timeout_s
        return timeout is not None and (datetime.now() - started).total_seconds() >= timeout

    def check_failure_rate(self, started: datetime) -> None:
        """Stop the sweep once more than max_failure_rate x n_trials trials failed in this invocation."""
        rate, budget = self.plan.settings.max_failure_rate, self.plan.budget
        if rate is None:
            return
        failures = sum(failed_here(t, started) or lost_here(t, started) for t in self.study.get_trials(deepcopy=False))
        if failures > rate * budget:
            self.state.stop(f"{failures} of n_trials={budget} trials failed, more than max_failure_rate={rate} allows")

    def run_trial(self, claimed: Claim) -> None:
        trial = claimed.trial
        # Parameters beyond the command line's were suggested by custom_search_space, named as overrides.
        extra = {name: value for name, value in trial.params.items() if name not in self.plan.space.names}
        swept = [*self.plan.space.overrides(trial.params), *(f"{name}={value}" for name, value in extra.items())]
        overrides = [*self.plan.fixed, *swept, *self.job_overrides(trial.number)]
        log.info("trial %d: %s", trial.number, " ".join(swept))
        try:
            with heartbeat(self.storage, claimed.trial_id, self.plan.settings.heartbeat_interval):
                result = self.launch(overrides, trial.number)
            outcome = outcome_of(result, self.plan.objectives, self.plan.trained_metric)
        except INTERRUPTIONS as interruption:
            self.finish(claimed, Outcome.failed(str(interruption) or "interrupted"))
            raise
        except Exception as error:  # no result came back: the job was cancelled or killed, or its process died
            outcome = Outcome.lost_job(failure_reason(error))
        self.finish(claimed, outcome)

    def finish(self, claimed: Claim, outcome: Outcome) -> None:
        trial = claimed.trial
        if not self.state.finished(trial.number, outcome):
            return
        recorded = self.storage.get_trial(claimed.trial_id)  # what the trial's job recorded, in any process
        if recorded.state.is_finished():  # its heartbeat came late and another worker failed it as stale
            log.warning("trial %d was failed meanwhile by another worker (a late heartbeat)", trial.number)
            return
        if outcome.reason:
            trial.set_user_attr(FAIL_REASON, outcome.reason)
        if outcome.lost:
            trial.set_user_attr(LOST_ATTR, True)
        self.study.tell(trial, outcome.values, state=outcome.state)
        self.on_finished(recorded, outcome)
        log.info("trial %d %s: %s", trial.number, outcome.state.name, self.detail(recorded, outcome))

    def detail(self, recorded: FrozenTrial, outcome: Outcome) -> str:
        if outcome.reason:
            return outcome.reason
        if outcome.state == TrialState.PRUNED:
            attrs = recorded.user_attrs
            return f"at epoch {attrs.get(PRUNED_EPOCH_ATTR)} (check {attrs.get(PRUNED_CHECK_ATTR)})"
        return ", ".join(f"{o.metric}={v:.4g}" for o, v in zip(self.plan.objectives, outcome.values, strict=True))


def collect_finished_trial() -> None:
    """Free what a trial run in this process left behind, now. Lightning's trainer, the module and the data refer
    to one another, so they wait for Python's cyclic collector, whose full collections come rarely in a process
    holding the large heap of its imports: measured, a worker kept up to five finished trials' trainers with their
    tensors, and its peak memory grew 10 % over 20 short trials. What survives is then frozen out of later
    collections (imports, caches, the study), so that each scans one trial's objects, in milliseconds, instead of
    the whole heap; the few survivors that die later stay (measured: about 250 objects a trial)."""
    gc.collect()
    gc.freeze()
