"""The sweep trial running in this process, for `fit()` to see.

Hydra's launcher runs each trial in the sweeper's own process, so the sweeper hands the Optuna trial to `fit()`
here (a Trial cannot travel in the config). Outside a sweep there is no trial and both hooks do nothing.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow
import optuna

if TYPE_CHECKING:  # Lightning is imported by the trial itself, not by the sweeper
    import lightning.pytorch as pl

TRIAL_NUMBER_TAG = "trial_number"
TRIAL_STATE_TAG = "trial_state"
STUDY_TAG = "sweep.study"
RUN_ID_ATTR = "mlflow_run_id"  # user attribute of a trial: its MLflow run


@dataclass
class TrialContext:
    trial: optuna.Trial
    study_name: str
    prune_on: str | None  # the metric reported to the pruner each epoch; None: no pruning
    run_id: str | None = None  # the trial's MLflow run, once fit() has started it
    pruned_epoch: int | None = None  # set when the pruner stopped training


_current: TrialContext | None = None


@contextmanager
def running(context: TrialContext) -> Iterator[TrialContext]:
    global _current
    _current = context
    try:
        yield context
    finally:
        _current = None


def attach(run_id: str) -> None:
    """Called by fit() in its MLflow run: tag the run with its trial and tell the sweeper which run it is."""
    if _current is None:
        return
    _current.run_id = run_id
    _current.trial.set_user_attr(RUN_ID_ATTR, run_id)  # lets another worker end the run if this one dies
    mlflow.set_tags(
        {
            TRIAL_NUMBER_TAG: _current.trial.number,
            TRIAL_STATE_TAG: "RUNNING",
            STUDY_TAG: _current.study_name,
        }
    )


def pruned() -> bool:
    """Whether the pruner stopped the running trial."""
    return _current is not None and _current.pruned_epoch is not None


def callbacks() -> list["pl.Callback"]:
    """The Lightning callbacks the running trial needs: the pruning callback when the sweep prunes."""
    if _current is None or _current.prune_on is None:
        return []
    from fruitlab.sweeping.pruning import StopWhenPruned

    return [StopWhenPruned(_current)]
