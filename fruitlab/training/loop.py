"""The pieces every training run is made of, whether one fit (fit.py) or a fold of cross-validation (cv.py):
seeded data, the Lightning module, the trainer's fit with its callbacks, and the learning curves."""

import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from fruitlab.data import build_datamodule
from fruitlab.data.augment import build_augmentation
from fruitlab.data.base import TensorImageDataModule
from fruitlab.models import build_classifier
from fruitlab.plotting import History, learning_curves
from fruitlab.tracking.epoch_logger import EpochMetricsLogger
from fruitlab.tracking.runs import RunRecorder
from fruitlab.training.callbacks import FiniteLossGuard, RngStateInCheckpoint, progress_bars
from fruitlab.training.checks import ValidationChecks, check_step_of
from fruitlab.training.cluster import cluster_environment
from fruitlab.training.hooks import TrainingHooks
from fruitlab.training.module import ClassifierModule
from fruitlab.training.speed import wants_channels_last
from fruitlab.training.stopping import build_early_stopping


@dataclass
class Training:
    """A finished `trainer.fit` and what it produced."""

    trainer: pl.Trainer
    checkpoint: ModelCheckpoint  # its best_model_score is the objective
    history: History  # per-epoch metrics, as logged
    fit_time_s: float
    checks: History  # with several validation checks per epoch, the validation metrics of each, as logged

    @property
    def objective(self) -> float:
        return float(self.checkpoint.best_model_score)

    def curves(self) -> History:
        """What the learning curves are drawn from: the per-epoch metrics and the checks' ones."""
        return {**self.history, **self.checks}

    def last_epoch_metrics(self) -> dict[str, float]:
        return {name: points[-1][1] for name, points in self.history.items() if points}


def build_module(cfg: DictConfig, datamodule: TensorImageDataModule) -> ClassifierModule:
    classifier = build_classifier(
        cfg.model, datamodule.num_classes, datamodule.model_input_shape, datamodule.input_transform()
    )
    return ClassifierModule(
        classifier,
        datamodule.num_classes,
        cfg.lr,
        cfg.optim,
        cfg.scheduler,
        monitor=cfg.objective.metric,
        augment=build_augmentation(cfg.get("augment")),
        channels_last=wants_channels_last(cfg.channels_last, classifier, accelerator_of(cfg)),
    )


def accelerator_of(cfg: DictConfig) -> str:
    """The device type the trainer will pick: `trainer.accelerator`, with auto resolved as Lightning does."""
    accelerator = str(cfg.trainer.accelerator)
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return accelerator


def prepare_data(cfg: DictConfig) -> TensorImageDataModule:
    """Seed everything and load the data, split."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    return datamodule


def experiment_name(cfg: DictConfig) -> str:
    return cfg.tracking.experiment or cfg.data.name


def default_run_name(cfg: DictConfig) -> str:
    return f"{cfg.model.name}-{cfg.optim.name}-lr{cfg.lr:g}"


def train(
    cfg: DictConfig,
    module: ClassifierModule,
    datamodule: TensorImageDataModule,
    directory: Path | None,
    recorder: RunRecorder | None,
    hooks: TrainingHooks | None = None,
    resume_from: Path | None = None,
) -> Training:
    """Fit (from `resume_from` if given), keeping checkpoints in `directory` (None on the other processes of a
    multi-process run, which get the first process's from Lightning). Checkpoints load as plain tensors."""
    checks = cfg.objective.checks_per_epoch
    checkpoint, *last = checkpoints(cfg, directory)
    metrics_logger = EpochMetricsLogger(recorder, check_step=check_step_of if checks > 1 else None)
    callbacks = [checkpoint, *last, metrics_logger, RngStateInCheckpoint(), FiniteLossGuard(), *progress_bars(cfg)]
    callbacks += [ValidationChecks(checks, datamodule.validate_on_part)] if checks > 1 else []
    callbacks += hooks.callbacks() if hooks else []
    if (early_stopping := build_early_stopping(cfg.get("early_stopping"), recorder, checks)) is not None:
        callbacks.append(early_stopping)
    plugins = [cluster_environment()]  # chosen here, not probed by Lightning: see training.cluster
    trainer = pl.Trainer(**cfg.trainer, logger=False, callbacks=callbacks, enable_model_summary=False, plugins=plugins)
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    fit_time = time.perf_counter() - started
    return Training(trainer, checkpoint, metrics_logger.history, fit_time, metrics_logger.checks)


def checkpoints(cfg: DictConfig, directory: Path | None) -> list[ModelCheckpoint]:
    """The best checkpoint by the objective (first: the one `ckpt_path="best"` tests) and `last.ckpt`, written
    after each epoch's metrics are logged (what a resumed run continues from). With several validation checks per
    epoch the best is chosen among all of them, while `last.ckpt` stays at epoch ends, written by a second
    callback: Lightning writes a callback's `last.ckpt` when that callback saves."""
    mode = "min" if cfg.objective.direction == "minimize" else "max"
    once = cfg.objective.checks_per_epoch == 1
    best = ModelCheckpoint(
        dirpath=directory, monitor=cfg.objective.metric, mode=mode, save_last=once, save_on_train_epoch_end=once
    )
    if once:
        return [best]
    name = ModelCheckpoint.CHECKPOINT_NAME_LAST
    last = ModelCheckpoint(dirpath=directory, filename=name, enable_version_counter=False, save_on_train_epoch_end=True)
    return [best, last]


def log_learning_curves(recorder: RunRecorder, histories: dict[str, History], checks_per_epoch: int) -> None:
    """The curves of one run, or of several (folds), each validated `checks_per_epoch` times an epoch."""
    figure = learning_curves(histories, dict.fromkeys(histories, checks_per_epoch))
    recorder.log_figure(figure, "plots/learning_curves.png")
