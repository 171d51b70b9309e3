"""Pruning inside a Lightning fit: optuna-integration's callback reports the metric each epoch; this subclass
turns its TrialPruned into a graceful stop, so that fit() still tests the best checkpoint and ends its MLflow
run FINISHED, tagged with the trial state PRUNED and the epoch it stopped at."""

import lightning.pytorch as pl
import mlflow
import optuna
from optuna_integration import PyTorchLightningPruningCallback

from fruitlab.sweeping.context import TrialContext

PRUNED_EPOCH_TAG = "pruned_epoch"


class StopWhenPruned(PyTorchLightningPruningCallback):
    def __init__(self, context: TrialContext) -> None:
        super().__init__(context.trial, monitor=context.prune_on)
        self.context = context

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        try:
            super().on_validation_end(trainer, pl_module)
        except optuna.TrialPruned:
            self.context.pruned_epoch = pl_module.current_epoch
            mlflow.set_tag(PRUNED_EPOCH_TAG, pl_module.current_epoch)
            trainer.should_stop = True
