"""What the trial slots of one sweep worker share, in one small object behind one lock: the trials in flight,
how the finished ones ended, the first error of a slot and why the sweep stops. Every read and write holds the
lock, so slot threads and the main thread never see half an update."""

import threading
from collections import Counter
from dataclasses import dataclass

from optuna.trial import TrialState

from fruitlab.sweeping.claims import Claim
from fruitlab.sweeping.outcomes import Outcome


@dataclass(frozen=True)
class Tally:
    """What this invocation's trials came to."""

    complete: int
    pruned: int
    failed: int
    stop_reason: str | None
    last_failure: str | None
    failures_fine: bool = False  # hydra.sweeper.max_failure_rate=1.0: a sweep whose every trial failed succeeds

    def failure(self, study_name: str) -> str | None:
        """Why the sweep failed: it stopped early, or every trial failed (unless failures are fine); None when it
        did not."""
        if self.stop_reason is not None:
            return f"sweep {study_name} stopped: {self.stop_reason} ({self.complete} complete, {self.pruned} pruned)"
        if self.all_failed and not self.failures_fine:
            return (
                f"sweep {study_name}: all {self.failed} trial(s) failed (last: {self.last_failure}); "
                "see fail_reason in the trials (trials.csv on the parent run)"
            )
        return None

    @property
    def all_failed(self) -> bool:
        return bool(self.failed) and not self.complete and not self.pruned


class SlotState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[int, Claim] = {}
        self._finished = Counter[TrialState]()
        self._errors: list[BaseException] = []
        self._stop_reason: str | None = None
        self._last_failure: str | None = None

    def claimed(self, claim: Claim | None) -> int:
        """Note a claimed trial (None: nothing was claimed); returns how many trials this worker runs."""
        with self._lock:
            if claim is not None:
                self._in_flight[claim.trial.number] = claim
            return len(self._in_flight)

    def finished(self, number: int, outcome: Outcome) -> bool:
        """Note that trial `number` ended with `outcome`; False when it had already been noted (a trial
        interrupted while its slot waited is finished by the main thread first)."""
        with self._lock:
            if self._in_flight.pop(number, None) is None:
                return False
            self._finished[outcome.state] += 1
            if outcome.reason:
                self._last_failure = outcome.reason
            return True

    def in_flight(self) -> list[Claim]:
        with self._lock:
            return list(self._in_flight.values())

    def stop(self, reason: str) -> None:
        """Stop claiming trials; the first reason given is the one reported."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason

    @property
    def stopped(self) -> bool:
        with self._lock:
            return self._stop_reason is not None

    def crashed(self, error: BaseException, reason: str) -> None:
        """A slot ended with an error: the sweep stops and the error is raised once the slots have ended."""
        with self._lock:
            self._errors.append(error)
            self._stop_reason = self._stop_reason or reason

    def first_error(self) -> BaseException | None:
        with self._lock:
            return self._errors[0] if self._errors else None

    def tally(self, failures_fine: bool = False) -> Tally:
        with self._lock:
            finished = self._finished
            return Tally(
                finished[TrialState.COMPLETE],
                finished[TrialState.PRUNED],
                finished[TrialState.FAIL],
                self._stop_reason,
                self._last_failure,
                failures_fine,
            )
