"""What a trial's job returns and how the sweeper reads it: a state for the study (complete, pruned, failed), its
objective values and, for a failure, the reason. Pure: no I/O."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hydra.core.utils import JobReturn
from optuna.trial import TrialState

from fruitlab.sweeping.objectives import Objective

if TYPE_CHECKING:  # the sweeper reads a training result; it does not train
    from fruitlab.training.hooks import FitResult

REASON_LENGTH = 6000  # a reason also tags the trial's MLflow run: MLflow's limit on a parameter value


@dataclass
class TrialReport:
    """What a training trial's job returns to the sweeper (through whichever launcher ran it)."""

    fit: FitResult
    pruned_epoch: int | None = None


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    values: list[float] | None = None
    reason: str | None = None
    lost: bool = False  # the job never reported (cancelled, killed, its node or worker died): run its point again

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls(TrialState.FAIL, reason=reason[:REASON_LENGTH])

    @classmethod
    def lost_job(cls, reason: str) -> Outcome:
        return cls(TrialState.FAIL, reason=reason[:REASON_LENGTH], lost=True)


def failure_reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def task_values(returned: object, count: int) -> list[float]:
    """The values a task other than fruitlab's training returned: a number, or one per objective."""
    values = list(returned) if isinstance(returned, Sequence) and not isinstance(returned, str) else [returned]
    if len(values) != count:
        raise ValueError(f"the task returned {len(values)} value(s) for {count} objective(s): {returned!r}")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError) as error:
        raise ValueError(f"the task must return numbers, it returned {returned!r}") from error


def outcome_of(result: JobReturn, objectives: Sequence[Objective], trained_metric: str | None) -> Outcome:
    """The outcome of a finished job; `trained_metric` is the training's `objective.metric`, whose value is
    the best checkpoint's (None for a task other than fruitlab's training)."""
    try:
        returned = result.return_value  # raises the job's exception
        if not isinstance(returned, TrialReport):  # another Hydra task: it returns its value(s)
            return checked_outcome(objectives, task_values(returned, len(objectives)))
    except Exception as error:
        return Outcome.failed(failure_reason(error))
    if returned.pruned_epoch is not None:
        return Outcome(TrialState.PRUNED)
    values = []
    for objective in objectives:
        if objective.metric == trained_metric:
            value = returned.fit.objective
        else:
            value = returned.fit.metrics.get(objective.metric)
            if value is None:
                return Outcome.failed(f"the trial's run logged no metric {objective.metric}")
        values.append(value)
    return checked_outcome(objectives, values)


def checked_outcome(objectives: Sequence[Objective], values: Sequence[float]) -> Outcome:
    for objective, value in zip(objectives, values, strict=True):
        if not math.isfinite(value):
            return Outcome.failed(f"objective {objective.metric} is {value}")
    return Outcome(TrialState.COMPLETE, [float(v) for v in values])
