"""What a caller can add to a training run without the training code knowing who it is: a sweep's trial adds
its pruning callback, tags the run with its identity and may cut training short."""

from dataclasses import dataclass, field
from typing import Protocol

import lightning.pytorch as pl

from fruitlab.tracking.runs import RunRecorder


class TrainingHooks(Protocol):
    def callbacks(self) -> list[pl.Callback]:
        """Extra Lightning callbacks for the run's trainer."""
        ...

    def run_started(self, recorder: RunRecorder) -> None:
        """Called once the run's MLflow run exists (a resumed run included)."""
        ...

    def stopped_early(self) -> bool:
        """Whether the hooks cut training short (a pruned trial): the run is then no candidate, and the work
        after training that only a candidate needs (the report, figures, latency, the model) is skipped."""
        ...

    def leads(self, metrics: dict[str, float]) -> bool:
        """Whether a finished run with these metrics leads its study so far (it may become the champion), or
        the hooks cannot tell; a trailing run skips the figures, latency and the model (`report.trials`)."""
        ...


@dataclass
class FitResult:
    """What a training run returns to its caller."""

    objective: float  # the best checkpoint's value of `objective.metric`
    run_id: str | None  # None on the other processes of a multi-process run, which record nothing
    metrics: dict[str, float] = field(default_factory=dict)  # the run's final metrics, as logged
