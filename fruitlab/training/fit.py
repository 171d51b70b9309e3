"""`fit(cfg, store, hooks)`: one tracked training run of a composed config, or the continuation of the
interrupted run `cfg.resume`, and the work after training, one named step each."""

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig

from fruitlab.data.base import TensorImageDataModule
from fruitlab.errors import ConfigError
from fruitlab.evaluation.gradcam import log_gradcam
from fruitlab.evaluation.held_out import held_out_scores, limited_batches, log_test_report, predict_logits
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
        tested = held_out_pass(training, module, datamodule)
        metrics = record_training(recorder, cfg, training, tested)
        metrics |= evaluate_candidate(recorder, cfg, hooks, training, module, datamodule, tested, metrics)
        metrics |= record_peak_memory(recorder)
    return FitResult(training.objective, recorder.run_id, {**training.last_epoch_metrics(), **metrics})


def check_fit_config(cfg: DictConfig) -> None:
    if cfg.tracking.get("register") and not cfg.tracking.log_model:
        raise ConfigError("tracking.register needs tracking.log_model=true: only a logged model can be registered")


def fit_unrecorded(cfg: DictConfig, store: Store, hooks: TrainingHooks | None) -> FitResult:
    """The part of another process of a multi-process run: it trains but never writes to the store. The first
    process tests alone, outside the distributed strategy."""
    datamodule = prepare_data(cfg)
    module = build_module(cfg, datamodule)
    resume_from = last_checkpoint(store, cfg.resume) if cfg.resume else None
    training = train(cfg, module, datamodule, None, None, hooks, resume_from)
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


@dataclass
class HeldOutPass:
    """The one pass of the best checkpoint over the test set that every finished run makes: the test scores,
    the report and a candidate's figures all come from it."""

    logits: torch.Tensor
    labels: torch.Tensor

    @property
    def probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=1)


def held_out_pass(training: Training, module: ClassifierModule, datamodule: TensorImageDataModule) -> HeldOutPass:
    """Load the best checkpoint's weights into `module` (what `trainer.test(ckpt_path="best")` tests, and what a
    candidate logs) and predict the test set once, on the training device, in full precision (the logged model's),
    over the batches `trainer.limit_test_batches` allows. The module is left on the CPU, as Lightning leaves it."""
    load_best_weights(training, module)
    loader = datamodule.test_dataloader()
    batches = limited_batches(training.trainer.limit_test_batches, len(loader))
    try:
        logits, labels = predict_logits(module.classifier.to(training.trainer.strategy.root_device), loader, batches)
    finally:
        module.cpu()
    return HeldOutPass(logits, labels)


def load_best_weights(training: Training, module: ClassifierModule) -> None:
    path = training.checkpoint.best_model_path
    if not path:
        raise ValueError("no best checkpoint to test: the objective metric was never logged")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(checkpoint["state_dict"])


def record_training(
    recorder: RunRecorder, cfg: DictConfig, training: Training, tested: HeldOutPass
) -> dict[str, float]:
    """The device, the test scores and the history every finished run records; returns the metrics."""
    recorder.set_tags({"device": str(training.trainer.strategy.root_device)})
    metrics = {
        **held_out_scores(tested.logits, tested.labels),
        "fit_time_s": training.fit_time_s,
        "epochs": training.trainer.current_epoch,
        f"best_{cfg.objective.metric}": training.objective,
    }
    recorder.log_metrics(metrics)
    recorder.log_text(json.dumps(training.history), "history.json")
    return metrics


def evaluate_candidate(
    recorder: RunRecorder,
    cfg: DictConfig,
    hooks: TrainingHooks | None,
    training: Training,
    module: ClassifierModule,
    datamodule: TensorImageDataModule,
    tested: HeldOutPass,
    metrics: dict[str, float],
) -> dict[str, float]:
    """The work after the test, as deep as the run deserves (see `is_candidate`), and the registered model; a
    pruned trial is no candidate and gets none of it. Returns the latency metrics."""
    if hooks and hooks.stopped_early():
        return {}
    candidate = is_candidate(cfg, hooks, training.objective, metrics)
    if candidate:
        log_learning_curves(recorder, {"": training.curves()}, cfg.objective.checks_per_epoch)
    latency = evaluate_and_log(recorder, cfg, module, datamodule, tested, candidate)
    if cfg.tracking.get("register") and candidate:  # only a candidate logged a model
        register_model(recorder.store, recorder.run_id, cfg.tracking.register)
    return latency


def is_candidate(cfg: DictConfig, hooks: TrainingHooks | None, objective: float, metrics: dict[str, float]) -> bool:
    """Whether the run gets the full work after training. A sweep trial does when `report.trials` is `all`, or
    when its objective leads the study so far (`leading`): the champion always does, so it is logged and
    registered with its figures, while a trailing trial records its scores and curves (as metrics) only."""
    if hooks is None or cfg.report.trials == "all":
        return True
    return hooks.leads({**metrics, cfg.objective.metric: objective})


def evaluate_and_log(
    recorder: RunRecorder,
    cfg: DictConfig,
    module: ClassifierModule,
    datamodule: TensorImageDataModule,
    tested: HeldOutPass,
    candidate: bool = True,
) -> dict[str, float]:
    """The test report and, for a `candidate` (any run but a sweep trial that trails its study), the figures,
    Grad-CAM, latency and the deployable model; returns the latency metrics. A trailing trial measures latency
    only when `latency.trial_repeats` asks (0 by default), with that many repeats."""
    probabilities, labels = tested.probabilities, tested.labels
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
    repeats = cfg.latency.repeats if candidate else cfg.latency.trial_repeats
    if not repeats and not (candidate and cfg.tracking.log_model):
        return {}  # a trailing trial: no copy of the model to time or to log
    # The logged model keeps the standard memory layout, whatever the layout it trained in.
    deployable = Probabilities(copy.deepcopy(module.classifier).cpu().to(memory_format=torch.contiguous_format))
    deployable = deployable.eval()
    metrics = {}
    if repeats:
        latency = cfg.latency
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
