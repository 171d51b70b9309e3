"""Intermediate values and pruning inside a Lightning fit: after each validation the trial's metric is reported
to the study's storage (Optuna Dashboard plots them as learning curves; pruners compare them), and when the
sweep prunes and the pruner says stop, training ends gracefully, so that fit() still tests the best checkpoint
and ends its MLflow run FINISHED, tagged with the trial state PRUNED and the epoch it stopped at."""

from collections.abc import Callable

import lightning.pytorch as pl
import optuna


class ReportToTrial(pl.Callback):
    """Reports `monitor` to `trial` at each epoch's validation; with `on_pruned`, asks the pruner and, when it
    says stop, calls `on_pruned(epoch)` and ends training."""

    def __init__(self, trial: optuna.Trial, monitor: str, on_pruned: Callable[[int], None] | None) -> None:
        self.trial = trial
        self.monitor = monitor
        self.on_pruned = on_pruned

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or not trainer.is_global_zero:
            return
        epoch = pl_module.current_epoch
        self.trial.report(float(value), step=epoch)
        if self.on_pruned is not None and self.trial.should_prune():
            self.on_pruned(epoch)
            trainer.should_stop = True
