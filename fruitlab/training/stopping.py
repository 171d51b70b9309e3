"""Early stopping from the `early_stopping` config section, recorded in the MLflow run."""

from collections.abc import Mapping

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from fruitlab.errors import ConfigError
from fruitlab.tracking.runs import RunRecorder


class LoggedEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping that logs, when training ends, `early_stopped` (1 when it cut training
    short) and `stopped_epoch` (the last epoch trained, counted from 0 like the per-epoch steps).
    `recorder` is None on the other processes of a multi-process run."""

    def __init__(self, recorder: RunRecorder | None, **options: object) -> None:
        super().__init__(**options)
        self.recorder = recorder

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        stopped = self.stopping_reason != EarlyStoppingReason.NOT_STOPPED
        last_epoch = self.stopped_epoch if stopped else trainer.current_epoch - 1
        if self.recorder is None or not trainer.is_global_zero:
            return
        self.recorder.log_metrics({"early_stopped": float(stopped), "stopped_epoch": last_epoch})
        if stopped:
            self.recorder.set_tags({"early_stopping_reason": self.stopping_reason_message or self.stopping_reason.name})


def build_early_stopping(
    config: Mapping | None, recorder: RunRecorder | None, checks_per_epoch: int = 1
) -> LoggedEarlyStopping | None:
    """The callback for `early_stopping` (enabled, monitor, mode, patience, min_delta); None when off. With
    several validation checks per epoch it checks after each of them (patience then counts checks)."""
    if not config or not config.get("enabled"):
        return None
    if config["mode"] not in ("min", "max"):
        raise ConfigError(f"early_stopping.mode={config['mode']} is not valid: use min or max")
    return LoggedEarlyStopping(
        recorder,
        monitor=config["monitor"],
        mode=config["mode"],
        patience=config["patience"],
        min_delta=config["min_delta"],
        check_on_train_epoch_end=checks_per_epoch == 1,
    )
