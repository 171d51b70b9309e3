"""The scheduler over a real in-memory Optuna study, with trial jobs run in memory: budgets, failures, stops,
parallel slots and interruptions. No process, store or training."""

import threading
from contextlib import nullcontext
from datetime import datetime

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

from fruitlab.sweeping.outcomes import Outcome
from fruitlab.sweeping.plan import SweepPlan
from fruitlab.sweeping.scheduler import Launch, Scheduler
from fruitlab.sweeping.slots import Tally
from fruitlab.sweeping.study import make_pruner, make_sampler, open_study

from .sweep_config import plan_of


def x_squared(overrides: list[str], number: int) -> JobReturn:
    """A task returning x², x from its overrides; x=bad... fails the job as a raising task would."""
    values = dict(o.split("=", 1) for o in overrides if "=" in o)
    if values["x"].startswith("bad"):
        return JobReturn(overrides, status=JobStatus.FAILED, _return_value=ValueError(f"trial {number} failed"))
    return JobReturn(overrides, status=JobStatus.COMPLETED, _return_value=float(values["x"]) ** 2)


class Sweep:
    """A plan's study in memory and the scheduler that runs it; what the recorder would be told."""

    def __init__(self, plan: SweepPlan) -> None:
        storage = InMemoryStorage()
        sampler = make_sampler(plan.sampler, 0, {})
        self.study = open_study(plan.study_name, storage, plan.objectives, sampler, make_pruner("none", {}))
        self.plan, self.storage = plan, storage
        self.finished: list[tuple[FrozenTrial, Outcome]] = []

    def run(self, launch: Launch = x_squared) -> Tally:
        def identity(number: int) -> list[str]:
            return [f"+trial.number={number}"]

        def recorded(trial: FrozenTrial, outcome: Outcome) -> None:
            self.finished.append((trial, outcome))

        scheduler = Scheduler(self.plan, self.study, self.storage, nullcontext, launch, identity, recorded)
        return scheduler.run(datetime.now())

    def states(self) -> list[TrialState]:
        return [t.state for t in self.study.trials]


def test_a_grid_runs_every_point_once_and_hands_each_job_its_overrides():
    sweep = Sweep(plan_of("x=1,2,3", "n=8"))
    launched: list[list[str]] = []
    tally = sweep.run(lambda overrides, number: launched.append(overrides) or x_squared(overrides, number))
    assert sweep.states() == [TrialState.COMPLETE] * 3
    assert [t.value for t in sweep.study.trials] == [1.0, 4.0, 9.0]
    assert launched == [["n=8", f"x={x}", f"+trial.number={i}"] for i, x in enumerate((1, 2, 3))]
    assert [outcome.state for _, outcome in sweep.finished] == [TrialState.COMPLETE] * 3
    assert tally == Tally(3, 0, 0, None, None) and tally.failure("toy") is None


def test_a_sampler_stops_at_the_budget():
    sweep = Sweep(plan_of("x=interval(-1,1)", sampler="random", n_trials=4))
    assert sweep.run().complete == 4
    assert len(sweep.study.trials) == 4


def test_too_many_failures_stop_the_sweep_before_the_good_point():
    sweep = Sweep(plan_of("x=bad1,bad2,bad3,2", max_failure_rate=0.5))
    tally = sweep.run()
    assert [(t.params["x"], t.state) for t in sweep.study.trials] == [(f"bad{i}", TrialState.FAIL) for i in (1, 2, 3)]
    assert tally.stop_reason == "3 of n_trials=4 trials failed, more than max_failure_rate=0.5 allows"


def test_more_failures_than_max_failure_rate_allows_stop_the_sweep():
    sweep = Sweep(plan_of("x=interval(-1,1)", sampler="random", n_trials=4, max_failure_rate=0.5))
    tally = sweep.run(lambda overrides, number: x_squared(["x=bad"], number))
    assert sweep.states() == [TrialState.FAIL] * 3  # the third failure is more than half of 4
    assert [t.user_attrs["fail_reason"] for t in sweep.study.trials] == [
        f"ValueError: trial {n} failed" for n in range(3)
    ]
    assert tally.failure("toy") == (
        "sweep toy stopped: 3 of n_trials=4 trials failed, more than max_failure_rate=0.5 allows (0 complete, 0 pruned)"
    )


def test_a_sweep_whose_trials_all_fail_ends_after_its_budget_and_fails():
    sweep = Sweep(plan_of("x=interval(-1,1)", sampler="random", n_trials=3))
    tally = sweep.run(lambda overrides, number: x_squared(["x=bad"], number))
    assert sweep.states() == [TrialState.FAIL] * 3
    assert tally.failure("toy") == (
        "sweep toy: all 3 trial(s) failed (last: ValueError: trial 2 failed); "
        "see fail_reason in the trials (trials.csv on the parent run)"
    )


def test_max_failure_rate_one_accepts_a_sweep_whose_every_trial_failed_and_zero_stops_at_the_first():
    accepting = Sweep(plan_of("x=interval(-1,1)", sampler="random", n_trials=3, max_failure_rate=1.0))
    tally = accepting.run(lambda overrides, number: x_squared(["x=bad"], number))
    assert accepting.states() == [TrialState.FAIL] * 3
    assert tally.all_failed and tally.failure("toy") is None
    strict = Sweep(plan_of("x=interval(-1,1)", sampler="random", n_trials=3, max_failure_rate=0.0))
    tally = strict.run(lambda overrides, number: x_squared(["x=bad"], number))
    assert strict.states() == [TrialState.FAIL]
    assert tally.failure("toy").startswith("sweep toy stopped: 1 of n_trials=3 trials failed")


def test_a_spent_time_budget_starts_no_trial():
    sweep = Sweep(plan_of("x=1,2", timeout_s=0))
    assert sweep.run() == Tally(0, 0, 0, None, None)
    assert sweep.study.trials == []


def test_two_slots_run_two_trials_at_once_and_each_point_once():
    both_running = threading.Barrier(2, timeout=10)  # broken, and the trials failed, unless two run at once

    def side_by_side(overrides: list[str], number: int) -> JobReturn:
        if number < 2:
            both_running.wait()
        return x_squared(overrides, number)

    sweep = Sweep(plan_of("x=1,2,3,4", n_jobs=2))
    assert sweep.run(side_by_side).complete == 4
    assert sorted(t.params["x"] for t in sweep.study.trials) == [1, 2, 3, 4]


def test_an_interrupted_trial_fails_and_the_interruption_ends_the_sweep():
    def interrupted(overrides: list[str], number: int) -> JobReturn:
        raise KeyboardInterrupt

    sweep = Sweep(plan_of("x=1,2"))
    with pytest.raises(KeyboardInterrupt):
        sweep.run(interrupted)
    (trial,) = sweep.study.trials
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == "interrupted"


def test_a_task_returning_no_number_fails_its_trial_with_the_reason():
    sweep = Sweep(plan_of("x=1"))
    sweep.run(lambda overrides, number: JobReturn(overrides, status=JobStatus.COMPLETED, _return_value="high"))
    (trial,) = sweep.study.trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "ValueError: the task must return numbers, it returned 'high'"


optuna.logging.set_verbosity(optuna.logging.WARNING)
