"""`fit(cfg)`: one tracked training run from a composed config, built from small pieces that cross-validation
(cv.py) composes too."""

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig

from fruitlab.data import build_datamodule
from fruitlab.data.augment import build_augmentation
from fruitlab.data.base import TensorImageDataModule
from fruitlab.errors import ConfigError
from fruitlab.evaluation.gradcam import log_gradcam
from fruitlab.evaluation.held_out import log_test_report, predict
from fruitlab.evaluation.latency import latency_metrics
from fruitlab.models import Probabilities, build_classifier, to_unit_float
from fruitlab.plotting import History, learning_curves
from fruitlab.signals import interrupts_raise
from fruitlab.tracking.epoch_logger import EpochMetricsLogger
from fruitlab.tracking.logged_models import log_torch_model
from fruitlab.tracking.registry import register_model
from fruitlab.tracking.runs import RunRecorder, tracked_run
from fruitlab.tracking.store import checkpoint_dir, ensure_experiment, use_store
from fruitlab.training.callbacks import FiniteLossGuard, RngStateInCheckpoint, progress_bars
from fruitlab.training.cluster import cluster_environment, scheduler_tags
from fruitlab.training.hooks import FitResult, TrainingHooks
from fruitlab.training.module import ClassifierModule
from fruitlab.training.record import record_setup
from fruitlab.training.resume import last_checkpoint, resumable_run
from fruitlab.training.speed import peak_rss_mb, set_threads, wants_channels_last
from fruitlab.training.stopping import build_early_stopping
from fruitlab.training.transfer import apply_transfer


@dataclass
class Training:
    """A finished `trainer.fit` and what it produced."""

    trainer: pl.Trainer
    checkpoint: ModelCheckpoint  # its best_model_score is the objective
    history: History  # per-epoch metrics, as logged
    fit_time_s: float

    @property
    def objective(self) -> float:
        return float(self.checkpoint.best_model_score)

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
    multi-process run, which get the first process's from Lightning). Checkpoints load as plain tensors;
    `last.ckpt` is written after each epoch's metrics are logged."""
    mode = "min" if cfg.objective.direction == "minimize" else "max"
    checkpoint = ModelCheckpoint(
        dirpath=directory, monitor=cfg.objective.metric, mode=mode, save_last=True, save_on_train_epoch_end=True
    )
    metrics_logger = EpochMetricsLogger(recorder)
    callbacks = [checkpoint, metrics_logger, RngStateInCheckpoint(), FiniteLossGuard(), *progress_bars(cfg)]
    callbacks += hooks.callbacks() if hooks else []
    if (early_stopping := build_early_stopping(cfg.get("early_stopping"), recorder)) is not None:
        callbacks.append(early_stopping)
    trainer = pl.Trainer(
        **cfg.trainer, logger=False, callbacks=callbacks, enable_model_summary=False, plugins=[cluster_environment()]
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    return Training(trainer, checkpoint, metrics_logger.history, time.perf_counter() - started)


def log_learning_curves(recorder: RunRecorder, histories: dict[str, History]) -> None:
    recorder.log_figure(learning_curves(histories), "plots/learning_curves.png")


def evaluate_and_log(
    recorder: RunRecorder,
    cfg: DictConfig,
    module: ClassifierModule,
    datamodule: TensorImageDataModule,
    candidate: bool = True,
) -> dict[str, float]:
    """The test report, latency and, for a `candidate` (any run but a sweep trial that trails its study), the
    figures, Grad-CAM and the deployable model; returns the latency metrics. A trailing trial's latency is
    measured with `latency.trial_repeats`: enough to compare trials, a fraction of the full measurement's time."""
    probabilities, labels = predict(module.classifier, datamodule.test_dataloader())
    figures = candidate and cfg.report.figures
    log_test_report(recorder, datamodule.test.images, labels, probabilities, datamodule.classes, figures)
    if candidate and cfg.report.gradcam:
        log_gradcam(
            recorder,
            module.classifier,
            datamodule.test.images,
            labels,
            probabilities,
            datamodule.classes,
            count=cfg.report.gradcam_images,
        )
    # The logged model keeps the standard memory layout, whatever the layout it trained in.
    deployable = Probabilities(copy.deepcopy(module.classifier).cpu().to(memory_format=torch.contiguous_format))
    deployable = deployable.eval()
    latency = cfg.latency
    repeats = latency.repeats if candidate else latency.trial_repeats
    metrics = latency_metrics(deployable, datamodule.image_shape, latency.batch_sizes, repeats, latency.warmup)
    recorder.log_metrics({**metrics, "latency_repeats": repeats})
    if candidate and cfg.tracking.log_model:
        # Two examples: torch.export keeps the batch dimension dynamic only when its example size is not 1.
        example = to_unit_float(datamodule.test.images[:2]).numpy()
        log_torch_model(recorder, deployable, example, metadata={"classes": datamodule.classes})
    return metrics


def is_candidate(cfg: DictConfig, hooks: TrainingHooks | None, objective: float, metrics: dict[str, float]) -> bool:
    """Whether the run gets the full work after training. A sweep trial does when `report.trials` is `all`, or
    when its objective leads the study so far (`leading`): the champion always does, so it is logged and
    registered with its figures, while a trailing trial records its scores and a shorter latency measurement."""
    if hooks is None or cfg.report.trials == "all":
        return True
    return hooks.leads({**metrics, cfg.objective.metric: objective})


def test_metrics(
    cfg: DictConfig, training: Training, module: ClassifierModule, datamodule: TensorImageDataModule
) -> dict[str, float]:
    """Test the best checkpoint; the metrics every finished run records."""
    trainer = training.trainer
    trainer.test(module, datamodule=datamodule, ckpt_path="best", verbose=False, weights_only=True)
    test_acc = float(trainer.callback_metrics["test_acc"])
    return {
        "test_acc": test_acc,
        "test_loss": float(trainer.callback_metrics["test_loss"]),
        "test_zero_one_loss": 1.0 - test_acc,
        "fit_time_s": training.fit_time_s,
        "epochs": trainer.current_epoch,
        f"best_{cfg.objective.metric}": training.objective,
    }


def check_fit_config(cfg: DictConfig) -> None:
    if cfg.tracking.get("register") and not cfg.tracking.log_model:
        raise ConfigError("tracking.register needs tracking.log_model=true: only a logged model can be registered")


@interrupts_raise()
def fit(cfg: DictConfig, hooks: TrainingHooks | None = None) -> FitResult:
    """Train, test and record one run, or continue the interrupted run `cfg.resume`. With `cv.folds` set,
    cross-validate instead. `hooks` (a sweep trial's) add callbacks and may cut training short."""
    set_threads(cfg.get("threads"))
    if cfg.cv.folds:
        from fruitlab.training.cv import cross_validate  # cv.py builds on this module

        return cross_validate(cfg, hooks)
    check_fit_config(cfg)
    if rank_zero_only.rank != 0:  # the other processes of a multi-process run train but never touch MLflow
        datamodule = prepare_data(cfg)
        module = build_module(cfg, datamodule)
        resume_from = last_checkpoint(use_store(cfg.tracking.uri), cfg.resume) if cfg.resume else None
        training = train(cfg, module, datamodule, None, None, hooks, resume_from)
        test_metrics(cfg, training, module, datamodule)  # every process takes part in the distributed test
        return FitResult(training.objective, None)

    uri = use_store(cfg.tracking.uri)  # before the data is loaded, so that a wrong address fails at once
    resumed = resumable_run(cfg, uri) if cfg.resume else None
    datamodule = prepare_data(cfg)
    module = build_module(cfg, datamodule)
    experiment_id = ensure_experiment(experiment_name(cfg), uri)
    run_name = None if resumed else cfg.tracking.run_name or default_run_name(cfg)
    parent_run_id = cfg.tracking.get("parent_run_id")
    with tracked_run(uri, experiment_id, run_name, parent_run_id, resumed and resumed.run_id) as recorder:
        if hooks:
            hooks.run_started(recorder)
        if not resumed:
            record_setup(recorder, cfg, datamodule, module)
        elif "error" in resumed.tags:
            recorder.delete_tag("error")  # the interruption is over
        apply_transfer(recorder, cfg.model, module.classifier.backbone)
        resume_from = last_checkpoint(uri, recorder.run_id) if resumed else None
        directory = checkpoint_dir(uri, recorder.run_id)
        training = train(cfg, module, datamodule, directory, recorder, hooks, resume_from)
        recorder.set_tags({"device": str(training.trainer.strategy.root_device), **scheduler_tags()})
        metrics = test_metrics(cfg, training, module, datamodule)
        recorder.log_metrics(metrics)
        log_learning_curves(recorder, {"": training.history})
        recorder.log_text(json.dumps(training.history), "history.json")
        candidate = False
        if not (hooks and hooks.stopped_early()):  # a pruned trial is no candidate: no figures, latency or model
            candidate = is_candidate(cfg, hooks, training.objective, metrics)
            metrics |= evaluate_and_log(recorder, cfg, module, datamodule, candidate)
        if cfg.tracking.get("register") and candidate:  # only a candidate logged a model
            register_model(recorder.run_id, cfg.tracking.register)
        metrics["process_peak_rss_mb"] = peak_rss_mb()  # after all of the run's work: a sweep worker's after a trial
        recorder.log_metrics({"process_peak_rss_mb": metrics["process_peak_rss_mb"]})
    return FitResult(training.objective, recorder.run_id, {**training.last_epoch_metrics(), **metrics})
