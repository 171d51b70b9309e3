"""`fit(cfg, store, hooks)`: one tracked training run of a composed config, or the continuation of the
interrupted run `cfg.resume`, and the work after training, one named step each."""

import copy
import json
from collections.abc import Sequence

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig

from fruitlab.data.base import TensorImageDataModule
from fruitlab.errors import ConfigError
from fruitlab.evaluation.gradcam import log_gradcam
from fruitlab.evaluation.held_out import log_test_report, predict
from fruitlab.evaluation.latency import latency_metrics
from fruitlab.models import Probabilities, to_unit_float
from fruitlab.tracking.logged_models import log_torch_model
from fruitlab.tracking.query import RunRecord
from fruitlab.tracking.registry import register_model
from fruitlab.tracking.runs import RunRecorder, tracked_run
from fruitlab.tracking.store import Store
from fruitlab.training.cluster import scheduler_tags
from fruitlab.training.hooks import FitResult, TrainingHooks
from fruitlab.training.loop import (
    Training,
    build_module,
    default_run_name,
    experiment_name,
    log_learning_curves,
    prepare_data,
    train,
)
from fruitlab.training.module import ClassifierModule
from fruitlab.training.record import record_setup
from fruitlab.training.resume import last_checkpoint, resumable_run
from fruitlab.training.speed import peak_rss_mb
from fruitlab.training.transfer import apply_transfer


def fit(cfg: DictConfig, store: Store, hooks: TrainingHooks | None = None, overrides: Sequence[str] = ()) -> FitResult:
    """Train, test and record one run in `store`, or continue the interrupted run `cfg.resume`. `hooks` (a
    sweep trial's) add callbacks and may cut training short; `overrides` (the command's) are recorded."""
    check_fit_config(cfg)
    if rank_zero_only.rank != 0:
        return fit_unrecorded(cfg, store, hooks)
    resumed = resumable_run(cfg, store) if cfg.resume else None
    datamodule = prepare_data(cfg)
    module = build_module(cfg, datamodule)
    experiment_id = store.ensure_experiment(experiment_name(cfg))
    run_name = None if resumed else cfg.tracking.run_name or default_run_name(cfg)
    parent_run_id = cfg.tracking.get("parent_run_id")
    with tracked_run(store, experiment_id, run_name, parent_run_id, resumed and resumed.run_id) as recorder:
        begin_run(recorder, cfg, datamodule, module, resumed, hooks, overrides)
        resume_from = last_checkpoint(store, recorder.run_id) if resumed else None
        directory = store.checkpoint_dir(recorder.run_id)
        training = train(cfg, module, datamodule, directory, recorder, hooks, resume_from)
        metrics = record_training(recorder, cfg, training, module, datamodule)
        metrics |= evaluate_candidate(recorder, cfg, hooks, training, module, datamodule, metrics)
        metrics |= record_peak_memory(recorder)
    return FitResult(training.objective, recorder.run_id, {**training.last_epoch_metrics(), **metrics})


def check_fit_config(cfg: DictConfig) -> None:
    if cfg.tracking.get("register") and not cfg.tracking.log_model:
        raise ConfigError("tracking.register needs tracking.log_model=true: only a logged model can be registered")


def fit_unrecorded(cfg: DictConfig, store: Store, hooks: TrainingHooks | None) -> FitResult:
    """The part of another process of a multi-process run: it trains and tests but never writes to the store."""
    datamodule = prepare_data(cfg)
    module = build_module(cfg, datamodule)
    resume_from = last_checkpoint(store, cfg.resume) if cfg.resume else None
    training = train(cfg, module, datamodule, None, None, hooks, resume_from)
    test_metrics(cfg, training, module, datamodule)  # every process takes part in the distributed test
    return FitResult(training.objective, None)


def begin_run(
    recorder: RunRecorder,
    cfg: DictConfig,
    datamodule: TensorImageDataModule,
    module: ClassifierModule,
    resumed: RunRecord | None,
    hooks: TrainingHooks | None,
    overrides: Sequence[str],
) -> None:
    """What the run records before training (a resumed run has it already), and the transferred weights."""
    if hooks:
        hooks.run_started(recorder)
    if scheduler := scheduler_tags():  # at once, so that a running job is found from its run
        recorder.set_tags(scheduler)
    if not resumed:
        record_setup(recorder, cfg, datamodule, module, overrides)
    elif "error" in resumed.tags:
        recorder.delete_tag("error")  # the interruption is over
    apply_transfer(recorder, cfg.model, module.classifier.backbone)


def record_training(
    recorder: RunRecorder,
    cfg: DictConfig,
    training: Training,
    module: ClassifierModule,
    datamodule: TensorImageDataModule,
) -> dict[str, float]:
    """The device, the test metrics, the learning curves and the history every finished run records; returns
    the metrics."""
    recorder.set_tags({"device": str(training.trainer.strategy.root_device)})
    metrics = test_metrics(cfg, training, module, datamodule)
    recorder.log_metrics(metrics)
    log_learning_curves(recorder, {"": training.curves()}, cfg.objective.checks_per_epoch)
    recorder.log_text(json.dumps(training.history), "history.json")
    return metrics


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


def evaluate_candidate(
    recorder: RunRecorder,
    cfg: DictConfig,
    hooks: TrainingHooks | None,
    training: Training,
    module: ClassifierModule,
    datamodule: TensorImageDataModule,
    metrics: dict[str, float],
) -> dict[str, float]:
    """The evaluation after the test, as deep as the run deserves (see `is_candidate`), and the registered
    model; a pruned trial is no candidate and gets none of it. Returns the latency metrics."""
    if hooks and hooks.stopped_early():
        return {}
    candidate = is_candidate(cfg, hooks, training.objective, metrics)
    latency = evaluate_and_log(recorder, cfg, module, datamodule, candidate)
    if cfg.tracking.get("register") and candidate:  # only a candidate logged a model
        register_model(recorder.store, recorder.run_id, cfg.tracking.register)
    return latency


def is_candidate(cfg: DictConfig, hooks: TrainingHooks | None, objective: float, metrics: dict[str, float]) -> bool:
    """Whether the run gets the full work after training. A sweep trial does when `report.trials` is `all`, or
    when its objective leads the study so far (`leading`): the champion always does, so it is logged and
    registered with its figures, while a trailing trial records its scores and a shorter latency measurement."""
    if hooks is None or cfg.report.trials == "all":
        return True
    return hooks.leads({**metrics, cfg.objective.metric: objective})


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


def record_peak_memory(recorder: RunRecorder) -> dict[str, float]:
    """The process's peak memory after all of the run's work (a sweep worker's after a trial)."""
    peak = {"process_peak_rss_mb": peak_rss_mb()}
    recorder.log_metrics(peak)
    return peak
