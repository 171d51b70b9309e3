"""Lightning callbacks that feed MLflow."""

import time
from collections.abc import Callable

import lightning.pytorch as pl

from fruitlab.plotting import CHECK_PREFIX, History
from fruitlab.tracking.runs import RunRecorder


class EpochMetricsLogger(pl.Callback):
    """Logs the epoch's metrics to the run with step = epoch, in one request per epoch, and keeps them as
    `history` for the learning-curve plots. `recorder` is None on the other processes of a multi-process run.
    `elapsed_s` is the training time (train and validation) from the first epoch's start to this epoch's end:
    what the time to reach an accuracy is read from.

    With `check_step` (several validation checks per epoch), each check's validation metrics are logged too, as
    `check_<name>` with step = the check's global index (`check_step(trainer)`); the epoch-end curves stay as
    they are, and the checks' metrics are kept as `checks`."""

    def __init__(
        self,
        recorder: RunRecorder | None,
        names: tuple[str, ...] = ("train_loss", "train_acc", "val_loss", "val_acc"),
        check_step: Callable[[pl.Trainer], int] | None = None,
    ) -> None:
        self.recorder = recorder
        self.names = names
        self.check_step = check_step
        self.history: History = {}
        self.checks: History = {}  # check_<name>: [(check's step, value)], as logged
        self._started = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        done = self.history.get("elapsed_s", [])  # a resumed run counts on from its last checkpointed epoch
        self._started = time.perf_counter() - (done[-1][1] if done else 0.0)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        metrics = {n: float(trainer.callback_metrics[n]) for n in self.names if n in trainer.callback_metrics}
        metrics["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        metrics["elapsed_s"] = time.perf_counter() - self._started
        for name, value in metrics.items():
            self.history.setdefault(name, []).append((epoch, value))
        if self.recorder is not None and trainer.is_global_zero:
            self.recorder.log_metrics(metrics, step=epoch)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.check_step is None or trainer.sanity_checking or self.recorder is None or not trainer.is_global_zero:
            return
        metrics = {f"{CHECK_PREFIX}{n}": float(v) for n, v in trainer.callback_metrics.items() if n.startswith("val_")}
        step = self.check_step(trainer)
        for name, value in metrics.items():
            self.checks.setdefault(name, []).append((step, value))
        self.recorder.log_metrics(metrics, step=step)

    # The history travels in checkpoints so that a resumed run plots all its epochs (and checks: a checkpoint
    # from before they were kept has none).
    def state_dict(self) -> dict[str, History]:
        return {"history": self.history, "checks": self.checks}

    def load_state_dict(self, state_dict: dict[str, History]) -> None:
        self.history = state_dict["history"]
        self.checks = state_dict.get("checks", {})
