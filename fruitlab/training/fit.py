"""`fit(cfg)`: one tracked training run from a composed config; returns the objective for sweepers."""

import copy
import json
import time
from pathlib import Path

import lightning.pytorch as pl
import mlflow
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from matplotlib import pyplot as plt
from mlflow.models import infer_signature
from omegaconf import DictConfig

from fruitlab.data import build_datamodule
from fruitlab.data.augment import build_augmentation, log_augmentation
from fruitlab.data.base import TensorImageDataModule
from fruitlab.errors import ConfigError
from fruitlab.models import count_parameters, get_model
from fruitlab.reporting.figures import learning_curves
from fruitlab.reporting.gradcam import log_gradcam
from fruitlab.signals import interrupts_raise
from fruitlab.sweeping import context as sweep_trial
from fruitlab.tracking.callbacks import EpochMetricsLogger
from fruitlab.tracking.registry import register_model
from fruitlab.tracking.runs import git_commit, log_config, log_metrics, tracked_run
from fruitlab.tracking.store import check_reachable, checkpoint_dir, ensure_experiment, normalize_uri
from fruitlab.training.callbacks import FiniteLossGuard, RngStateInCheckpoint
from fruitlab.training.evaluate import log_test_report, predict, spread_sample
from fruitlab.training.latency import latency_metrics
from fruitlab.training.module import ClassifierModule, ImageClassifier, Probabilities, to_unit_float
from fruitlab.training.resume import last_checkpoint, resumable_run
from fruitlab.training.stopping import build_early_stopping
from fruitlab.training.transfer import apply_transfer

# Keys of the `model` group that configure fruitlab, not the architecture's factory.
MODEL_SETTINGS = ("name", "init_from", "freeze")


def build_module(cfg: DictConfig, datamodule: TensorImageDataModule) -> ClassifierModule:
    options = {k: v for k, v in cfg.model.items() if k not in MODEL_SETTINGS}
    backbone = get_model(cfg.model.name, datamodule.num_classes, datamodule.model_input_shape, **options)
    classifier = ImageClassifier(datamodule.input_transform(), backbone)
    return ClassifierModule(
        classifier,
        datamodule.num_classes,
        cfg.lr,
        cfg.optim,
        cfg.scheduler,
        monitor=cfg.objective.metric,
        augment=build_augmentation(cfg.get("augment")),
    )


def build_trainer(cfg: DictConfig, directory: Path | None) -> tuple[pl.Trainer, ModelCheckpoint, EpochMetricsLogger]:
    """`directory` holds the checkpoints; None on the other processes of a multi-process run, which get
    the first process's from Lightning. `last.ckpt` is written after each epoch's metrics are logged."""
    mode = "min" if cfg.objective.direction == "minimize" else "max"
    checkpoint = ModelCheckpoint(
        dirpath=directory, monitor=cfg.objective.metric, mode=mode, save_last=True, save_on_train_epoch_end=True
    )
    metrics_logger = EpochMetricsLogger()
    callbacks = [checkpoint, metrics_logger, RngStateInCheckpoint(), FiniteLossGuard(), *sweep_trial.callbacks()]
    if (early_stopping := build_early_stopping(cfg.get("early_stopping"))) is not None:
        callbacks.append(early_stopping)
    trainer = pl.Trainer(**cfg.trainer, logger=False, callbacks=callbacks, enable_model_summary=False)
    return trainer, checkpoint, metrics_logger


def default_run_name(cfg: DictConfig) -> str:
    return f"{cfg.model.name}-{cfg.optim.name}-lr{cfg.lr:g}"


def command_overrides() -> str:
    """The command-line overrides of this Hydra job ('' outside Hydra)."""
    return " ".join(HydraConfig.get().overrides.task) if HydraConfig.initialized() else ""


def record_setup(cfg: DictConfig, datamodule: TensorImageDataModule, module: ClassifierModule) -> None:
    log_config(cfg)
    mlflow.log_params(datamodule.describe())
    mlflow.set_tags({"git_commit": git_commit(), "overrides": command_overrides()})
    mlflow.log_dict({"classes": datamodule.classes}, "classes.json")
    log_metrics(
        {
            "num_parameters": count_parameters(module.classifier.backbone),
            "num_classes": datamodule.num_classes,
            "train_size": len(datamodule.train.labels),
            "val_size": len(datamodule.val.labels),
            "test_size": len(datamodule.test.labels),
            **datamodule.summary_metrics(),
        }
    )
    if module.augment is not None:
        log_augmentation(module.augment, datamodule.train.images[spread_sample(6, len(datamodule.train.labels))])


def evaluate_and_log(cfg: DictConfig, module: ClassifierModule, datamodule: TensorImageDataModule) -> None:
    probabilities, labels = predict(module.classifier, datamodule.test_dataloader())
    log_test_report(datamodule.test.images, labels, probabilities, datamodule.classes)
    if cfg.report.gradcam:
        log_gradcam(
            module.classifier,
            datamodule.test.images,
            labels,
            probabilities,
            datamodule.classes,
            count=cfg.report.gradcam_images,
        )
    deployable = Probabilities(copy.deepcopy(module.classifier).cpu()).eval()
    log_metrics(
        latency_metrics(
            deployable, datamodule.image_shape, cfg.latency.batch_sizes, cfg.latency.repeats, cfg.latency.warmup
        )
    )
    if cfg.tracking.log_model:
        # Two examples: torch.export keeps the batch dimension dynamic only when its example size is not 1.
        example = to_unit_float(datamodule.test.images[:2]).numpy()
        with torch.inference_mode():
            output = deployable(torch.from_numpy(example)).numpy()
        mlflow.pytorch.log_model(
            deployable,
            name="model",
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=mlflow.pytorch.get_default_pip_requirements(),
            metadata={"classes": datamodule.classes},
        )


def train(
    cfg: DictConfig,
    module: ClassifierModule,
    datamodule: TensorImageDataModule,
    directory: Path | None,
    resume_from: Path | None,
) -> tuple[pl.Trainer, ModelCheckpoint, EpochMetricsLogger, float]:
    """Fit (from `resume_from` if given) and test the best checkpoint; checkpoints load as plain tensors."""
    trainer, checkpoint, metrics_logger = build_trainer(cfg, directory)
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    fit_time = time.perf_counter() - started
    trainer.test(module, datamodule=datamodule, ckpt_path="best", verbose=False, weights_only=True)
    return trainer, checkpoint, metrics_logger, fit_time


def prepare(cfg: DictConfig) -> tuple[TensorImageDataModule, ClassifierModule]:
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    return datamodule, build_module(cfg, datamodule)


@interrupts_raise()
def fit(cfg: DictConfig) -> float:
    """Train, test and record one run, or continue the interrupted run `cfg.resume`; return the best value of
    `cfg.objective.metric`. With `cv.folds` set, cross-validate instead and return the mean over the folds."""
    if cfg.cv.folds:
        from fruitlab.training.cv import cross_validate  # cv.py builds on this module

        return cross_validate(cfg)
    if cfg.tracking.get("register") and not cfg.tracking.log_model:
        raise ConfigError("tracking.register needs tracking.log_model=true: only a logged model can be registered")
    uri = normalize_uri(cfg.tracking.uri)
    if rank_zero_only.rank != 0:  # the other processes of a multi-process run train but never touch MLflow
        datamodule, module = prepare(cfg)
        resume_from = last_checkpoint(uri, cfg.resume) if cfg.resume else None
        return float(train(cfg, module, datamodule, None, resume_from)[1].best_model_score)

    check_reachable(uri)  # before the data is loaded, so that a wrong address or run id fails at once
    mlflow.set_tracking_uri(uri)
    resumed = resumable_run(cfg, uri) if cfg.resume else None
    datamodule, module = prepare(cfg)
    experiment_id = ensure_experiment(cfg.tracking.experiment or cfg.data.name, uri)
    run_name = None if resumed else cfg.tracking.run_name or default_run_name(cfg)
    parent_run_id = cfg.tracking.get("parent_run_id")
    with tracked_run(experiment_id, run_name, parent_run_id, resumed and resumed.info.run_id) as run:
        run_id = run.info.run_id
        sweep_trial.attach(run_id)
        if not resumed:
            record_setup(cfg, datamodule, module)
        elif "error" in resumed.data.tags:
            mlflow.MlflowClient().delete_tag(run_id, "error")  # the interruption is over
        apply_transfer(cfg.model, module.classifier.backbone)
        resume_from = last_checkpoint(uri, run_id) if resumed else None
        trainer, checkpoint, metrics_logger, fit_time = train(
            cfg, module, datamodule, checkpoint_dir(uri, run_id), resume_from
        )
        mlflow.set_tag("device", str(trainer.strategy.root_device))

        objective = float(checkpoint.best_model_score)
        test_acc = float(trainer.callback_metrics["test_acc"])
        log_metrics(
            {
                "test_acc": test_acc,
                "test_loss": float(trainer.callback_metrics["test_loss"]),
                "test_zero_one_loss": 1.0 - test_acc,
                "fit_time_s": fit_time,
                "epochs": trainer.current_epoch,
                f"best_{cfg.objective.metric}": objective,
            }
        )
        figure = learning_curves({"": metrics_logger.history})
        mlflow.log_figure(figure, "plots/learning_curves.png")
        plt.close(figure)
        mlflow.log_text(json.dumps(metrics_logger.history), "history.json")
        if not sweep_trial.pruned():  # a pruned trial is no candidate: no figures, latency or model
            evaluate_and_log(cfg, module, datamodule)
        if cfg.tracking.get("register"):
            register_model(run.info.run_id, cfg.tracking.register)
    return objective
