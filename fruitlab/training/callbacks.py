"""Lightning callbacks that keep a run honest (exact resumption, a stop on divergence) and its console short."""

import math
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from omegaconf import DictConfig

from fruitlab.errors import NonFiniteLossError


class RngStateInCheckpoint(pl.Callback):
    """Stores the random generators' state in every checkpoint and restores it on resume, so that the
    shuffling and dropout of the epochs after a resume are those of an uninterrupted run."""

    def state_dict(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"]:
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class FiniteLossGuard(pl.Callback):
    """Stops the run with NonFiniteLossError the first time a training loss is NaN or infinite."""

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = float(outputs["loss"])
        if math.isfinite(loss):
            return
        optimizer = trainer.optimizers[0]
        raise NonFiniteLossError(
            f"training diverged: train loss is {loss} at epoch {trainer.current_epoch}, batch {batch_idx} "
            f"({type(optimizer).__name__}, lr={optimizer.param_groups[0]['lr']:g}); "
            "lower lr, add a scheduler or change the optimizer."
        )


class TrainingProgressBar(TQDMProgressBar):
    """One progress bar per training epoch; validation and testing show none (their results are the epoch's
    metrics and the run's summary), which keeps a run's console log a few lines long."""

    def init_sanity_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_test_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)


def progress_bars(cfg: DictConfig) -> list[pl.Callback]:
    """The training-only bar, unless the trainer shows none or `verbose` asks for Lightning's own bars."""
    return [TrainingProgressBar()] if cfg.trainer.get("enable_progress_bar", True) and not cfg.verbose else []
