"""Stratified K-fold cross-validation (`cv.folds=K`): one parent run, one nested child run per fold.

The folds split the whole training folder (the train and validation splits of a normal run together) with
scikit-learn's StratifiedKFold, seeded by `seed`. Fold k trains on the other K-1 folds and validates on
fold k, which also picks its best checkpoint (and drives early stopping when on). The test set is not
touched. The parent records each fold metric's mean and (sample) standard deviation; `fit` returns the
mean of `best_<objective.metric>`, so a sweep over CV runs optimises the cross-validated objective.
"""

import copy
import json
import time

import lightning.pytorch as pl
import mlflow
import numpy as np
import torch
from matplotlib import pyplot as plt
from omegaconf import DictConfig
from sklearn.model_selection import StratifiedKFold

from fruitlab.data import build_datamodule
from fruitlab.data.base import ImageTensors, TensorImageDataModule
from fruitlab.errors import ConfigError
from fruitlab.reporting.figures import learning_curves
from fruitlab.tracking.callbacks import History
from fruitlab.tracking.runs import git_commit, log_config, log_metrics, tracked_run
from fruitlab.tracking.store import ensure_experiment, normalize_uri, store_root
from fruitlab.training.fit import (
    build_module,
    build_trainer,
    command_overrides,
    default_run_name,
    record_setup,
)


def fold_datamodule(
    datamodule: TensorImageDataModule, pool: ImageTensors, train_index: np.ndarray, val_index: np.ndarray
) -> TensorImageDataModule:
    """`datamodule` with its train and validation splits replaced by rows of `pool` (test set unchanged)."""
    fold = copy.copy(datamodule)  # shallow: shares the loaded tensors and the test set
    fold.train = ImageTensors(pool.images[train_index], pool.labels[train_index])
    fold.val = ImageTensors(pool.images[val_index], pool.labels[val_index])
    return fold


def run_fold(
    cfg: DictConfig,
    datamodule: TensorImageDataModule,
    fold: int,
    experiment_id: str,
    parent_name: str,
    uri: str,
) -> tuple[dict[str, float], History]:
    """Train fold `fold` as a child of the active run; return its metrics and per-epoch history."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_module(cfg, datamodule)
    objective_name = f"best_{cfg.objective.metric}"
    with tracked_run(experiment_id, f"{parent_name}-fold{fold}", mlflow.active_run().info.run_id) as run:
        record_setup(cfg, datamodule, module)
        mlflow.log_param("cv.fold", fold)
        trainer, checkpoint, metrics_logger = build_trainer(
            cfg, store_root(uri) / "checkpoints" / run.info.run_id
        )
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        fit_time = time.perf_counter() - started
        trainer.validate(module, datamodule=datamodule, ckpt_path="best", verbose=False)
        metrics = {
            objective_name: float(checkpoint.best_model_score),
            # validation scores of the best checkpoint (val_loss/val_acc hold the per-epoch curves)
            "cv_val_loss": float(trainer.callback_metrics["val_loss"]),
            "cv_val_acc": float(trainer.callback_metrics["val_acc"]),
            "epochs": trainer.current_epoch,
            "fit_time_s": fit_time,
        }
        log_metrics(metrics)
        mlflow.log_text(json.dumps(metrics_logger.history), "history.json")
    return metrics, metrics_logger.history


def summarize(fold_metrics: list[dict[str, float]]) -> dict[str, float]:
    """<name>_mean and <name>_std (sample standard deviation, ddof=1) of each fold metric."""
    summary: dict[str, float] = {}
    for name in fold_metrics[0]:
        values = np.array([metrics[name] for metrics in fold_metrics], dtype=float)
        summary[f"{name}_mean"] = float(values.mean())
        summary[f"{name}_std"] = float(values.std(ddof=1))
    return summary


def cross_validate(cfg: DictConfig) -> float:
    """Run `cv.folds` child runs under one parent run; return the mean of best_<objective.metric>."""
    folds = int(cfg.cv.folds)
    if folds < 2:
        raise ConfigError(
            f"cv.folds={cfg.cv.folds}: cross-validation needs at least 2 folds (0 turns it off)"
        )
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    pool = ImageTensors(
        torch.cat([datamodule.train.images, datamodule.val.images]),
        torch.cat([datamodule.train.labels, datamodule.val.labels]),
    )
    smallest_class = int(torch.bincount(pool.labels).min())
    if folds > smallest_class:
        raise ConfigError(
            f"cv.folds={folds} exceeds the {smallest_class} training images of the rarest class"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.seed)

    uri = normalize_uri(cfg.tracking.uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = ensure_experiment(cfg.tracking.experiment or cfg.data.name, uri)
    run_name = cfg.tracking.run_name or f"{default_run_name(cfg)}-cv{folds}"
    with tracked_run(experiment_id, run_name, cfg.tracking.get("parent_run_id")):
        log_config(cfg)
        mlflow.log_params(datamodule.describe())
        mlflow.set_tags({"git_commit": git_commit(), "overrides": command_overrides()})
        mlflow.log_dict({"classes": datamodule.classes}, "classes.json")
        log_metrics({"cv_folds": folds, "cv_pool_size": len(pool.labels)})
        results, histories = [], {}
        for fold, (train_index, val_index) in enumerate(
            splitter.split(np.zeros(len(pool.labels)), pool.labels)
        ):
            fold_data = fold_datamodule(datamodule, pool, train_index, val_index)
            metrics, histories[f"fold {fold}"] = run_fold(cfg, fold_data, fold, experiment_id, run_name, uri)
            results.append(metrics)
        summary = summarize(results)
        log_metrics(summary)
        figure = learning_curves(histories)
        mlflow.log_figure(figure, "plots/learning_curves.png")
        plt.close(figure)
    return summary[f"best_{cfg.objective.metric}_mean"]
