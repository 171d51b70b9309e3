"""Intermediate values and pruning inside a Lightning fit: after each validation check (one per epoch, or
`objective.checks_per_epoch`) the trial's metric is reported to the study's storage at step = the check's global
index (Optuna Dashboard plots them as learning curves; pruners compare them), and when the sweep prunes and the
pruner says stop, training ends gracefully, so that fit() still tests the best checkpoint and ends its MLflow run
FINISHED, tagged with the trial state PRUNED and the epoch and check it stopped at."""

from collections.abc import Callable

import lightning.pytorch as pl
import optuna

from fruitlab.training.checks import check_step_of


class ReportToTrial(pl.Callback):
    """Reports `monitor` to `trial` at each validation check; with `on_pruned`, asks the pruner and, when it
    says stop, calls `on_pruned(epoch, check)` and ends training."""

    def __init__(self, trial: optuna.Trial, monitor: str, on_pruned: Callable[[int, int], None] | None) -> None:
        self.trial = trial
        self.monitor = monitor
        self.on_pruned = on_pruned

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or not trainer.is_global_zero:
            return
        check = check_step_of(trainer)
        self.trial.report(float(value), step=check)
        if self.on_pruned is not None and self.trial.should_prune():
            self.on_pruned(trainer.current_epoch, check)
            trainer.should_stop = True
