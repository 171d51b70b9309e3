"""K-fold cross-validation: K child runs under one parent, the parent holds their mean and std."""

from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import train_config

from fruitlab.errors import ConfigError


def test_k_folds_make_k_child_runs_and_the_parent_holds_the_mean(make_config, store: str, real_data: Path) -> None:
    mlflow.set_tracking_uri(store)
    client = mlflow.MlflowClient(store)
    # as a sweeper does: each trial's run is a child of the sweep's parent run
    sweep = client.create_run(client.create_experiment("sweep"), run_name="sweep")
    cfg = make_config(
        "model=lenet", "cv.folds=3", f"data.root={real_data}", "data.val_split=random", f"tracking.uri={store}",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=5", "+trainer.limit_val_batches=2",
        "trainer.enable_progress_bar=false",
        f"+tracking.parent_run_id={sweep.info.run_id}",
    )  # fmt: skip
    objective = train_config(cfg).objective

    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep.info.run_id]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and parent.info.run_name.endswith("-cv3")
    assert sorted(int(c.data.params["cv.fold"]) for c in children) == [0, 1, 2]

    best = np.array([c.data.metrics["best_val_loss"] for c in children])
    assert parent.data.metrics["best_val_loss_mean"] == pytest.approx(best.mean())
    assert parent.data.metrics["best_val_loss_std"] == pytest.approx(best.std(ddof=1))
    accuracy = [c.data.metrics["cv_val_acc"] for c in children]
    assert parent.data.metrics["cv_val_acc_mean"] == pytest.approx(np.mean(accuracy))
    assert objective == pytest.approx(best.mean())

    # the folds partition the training folder, stratified: each validation fold is a third of every class
    pool = parent.data.metrics["cv_pool_size"]
    assert pool == sum(1 for _ in (real_data / "Training").rglob("*.jpg"))
    assert sum(c.data.metrics["val_size"] for c in children) == pool
    assert all(c.data.metrics["train_size"] + c.data.metrics["val_size"] == pool for c in children)
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} == {"plots/learning_curves.png"}


def test_one_fold_and_options_that_need_a_single_run_are_refused(make_config, store: str) -> None:
    with pytest.raises(ConfigError, match=r"cv\.folds=1: cross-validation needs at least 2 folds"):
        train_config(make_config("cv.folds=1", f"tracking.uri={store}"))
    with pytest.raises(ConfigError, match=r"tracking\.register does not apply to cross-validation"):
        train_config(make_config("cv.folds=3", "tracking.register=fruits", f"tracking.uri={store}"))
