"""Stratified K-fold cross-validation (`cv.folds=K`): one parent run, one nested child run per fold, each
fold trained by the same pieces as `fit` (training/loop.py).

The folds split the whole training folder (the train and validation splits of a normal run together) with
scikit-learn's StratifiedKFold, seeded by `seed`. Fold k trains on the other K-1 folds and validates on
fold k, which also picks its best checkpoint (and drives early stopping when on). The test set is not
touched. The parent records each fold metric's mean and (sample) standard deviation; the objective is the
mean of `best_<objective.metric>`, so a sweep over CV runs optimises the cross-validated objective. In a
pruning sweep the folds report to the trial like a single run does, and a pruned fold ends the trial's
cross-validation: the parent then summarises the folds that ran.
"""

import copy
import json
from collections.abc import Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import StratifiedKFold

from fruitlab.data.base import ImageTensors, TensorImageDataModule
from fruitlab.errors import ConfigError
from fruitlab.plotting import History
from fruitlab.tracking.runs import RunRecorder, tracked_run
from fruitlab.tracking.store import Store
from fruitlab.training.hooks import FitResult, TrainingHooks
from fruitlab.training.loop import (
    build_module,
    default_run_name,
    experiment_name,
    log_learning_curves,
    prepare_data,
    train,
)
from fruitlab.training.record import record_config, record_setup
from fruitlab.training.transfer import apply_transfer


def fold_datamodule(
    datamodule: TensorImageDataModule, pool: ImageTensors, train_index: np.ndarray, val_index: np.ndarray, rule: tuple
) -> TensorImageDataModule:
    """`datamodule` with its train and validation splits replaced by rows of `pool` (test set unchanged), drawn
    by `rule` (the folds, their seed and this fold's number)."""
    fold = copy.copy(datamodule)  # shallow: shares the loaded tensors and the test set
    fold.split_rule = rule
    fold.train = ImageTensors(pool.images[train_index], pool.labels[train_index])
    fold.val = ImageTensors(pool.images[val_index], pool.labels[val_index])
    return fold


def run_fold(
    cfg: DictConfig,
    datamodule: TensorImageDataModule,
    fold: int,
    parent: RunRecorder,
    experiment_id: str,
    hooks: TrainingHooks | None,
    overrides: Sequence[str],
) -> tuple[dict[str, float], History]:
    """Train fold `fold` as a child run of `parent`; return its metrics and learning curves (per epoch and
    per check)."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_module(cfg, datamodule)
    run_name = f"{parent_name(cfg)}-fold{fold}"
    store = parent.store
    with tracked_run(store, experiment_id, run_name, parent.run_id) as recorder:
        record_setup(recorder, cfg, datamodule, module, overrides)
        recorder.log_params({"cv.fold": fold})
        apply_transfer(recorder, cfg.model, module.classifier.backbone)
        training = train(cfg, module, datamodule, store.checkpoint_dir(recorder.run_id), recorder, hooks)
        training.trainer.validate(module, datamodule=datamodule, ckpt_path="best", verbose=False, weights_only=True)
        scores = training.trainer.callback_metrics
        metrics = {
            f"best_{cfg.objective.metric}": training.objective,
            # validation scores of the best checkpoint (val_loss/val_acc hold the per-epoch curves)
            "cv_val_loss": float(scores["val_loss"]),
            "cv_val_acc": float(scores["val_acc"]),
            "epochs": training.trainer.current_epoch,
            "fit_time_s": training.fit_time_s,
        }
        recorder.log_metrics(metrics)
        recorder.log_text(json.dumps(training.history), "history.json")
    return metrics, training.curves()


def summarize(fold_metrics: list[dict[str, float]]) -> dict[str, float]:
    """<name>_mean and <name>_std (sample standard deviation, ddof=1; NaN for a single fold) of each metric."""
    summary: dict[str, float] = {}
    for name in fold_metrics[0]:
        values = np.array([metrics[name] for metrics in fold_metrics], dtype=float)
        summary[f"{name}_mean"] = float(values.mean())
        summary[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return summary


def check_cv_config(cfg: DictConfig) -> int:
    folds = int(cfg.cv.folds)
    if folds < 2:
        raise ConfigError(f"cv.folds={cfg.cv.folds}: cross-validation needs at least 2 folds (0 turns it off)")
    for key in ("resume", "tracking.register"):
        if OmegaConf.select(cfg, key):
            raise ConfigError(f"{key} does not apply to cross-validation (cv.folds={folds}): drop one of them")
    return folds


def parent_name(cfg: DictConfig) -> str:
    return cfg.tracking.run_name or f"{default_run_name(cfg)}-cv{cfg.cv.folds}"


def pooled_training_split(datamodule: TensorImageDataModule, folds: int) -> ImageTensors:
    """The train and validation splits together: what the folds divide."""
    pool = ImageTensors(
        torch.cat([datamodule.train.images, datamodule.val.images]),
        torch.cat([datamodule.train.labels, datamodule.val.labels]),
    )
    smallest_class = int(torch.bincount(pool.labels).min())
    if folds > smallest_class:
        raise ConfigError(f"cv.folds={folds} exceeds the {smallest_class} training images of the rarest class")
    return pool


def cross_validate(
    cfg: DictConfig, store: Store, hooks: TrainingHooks | None = None, overrides: Sequence[str] = ()
) -> FitResult:
    """Run `cv.folds` child runs under one parent run of `store`; the objective is the mean of
    best_<objective.metric>. `overrides`: the command's, recorded with the runs."""
    folds = check_cv_config(cfg)
    datamodule = prepare_data(cfg)
    pool = pooled_training_split(datamodule, folds)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.seed)
    splits = splitter.split(np.zeros(len(pool.labels)), pool.labels)  # only the labels matter

    experiment_id = store.ensure_experiment(experiment_name(cfg))
    with tracked_run(store, experiment_id, parent_name(cfg), cfg.tracking.get("parent_run_id")) as recorder:
        if hooks:
            hooks.run_started(recorder)
        record_config(recorder, cfg, datamodule, overrides)
        recorder.log_metrics({"cv_folds": folds, "cv_pool_size": len(pool.labels)})
        results, histories = [], {}
        for fold, (train_index, val_index) in enumerate(splits):
            rule = ("cv", folds, cfg.seed, fold)
            fold_data = fold_datamodule(datamodule, pool, train_index, val_index, rule)
            metrics, histories[f"fold {fold}"] = run_fold(
                cfg, fold_data, fold, recorder, experiment_id, hooks, overrides
            )
            results.append(metrics)
            if hooks and hooks.stopped_early():
                break
        summary = {**summarize(results), "cv_folds_run": len(results)}
        recorder.log_metrics(summary)
        log_learning_curves(recorder, histories, cfg.objective.checks_per_epoch)
    return FitResult(summary[f"best_{cfg.objective.metric}_mean"], recorder.run_id, summary)
