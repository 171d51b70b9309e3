"""A real one-epoch run, then the MLflow store read back as a user comparing runs would."""

from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import FAST, run_cli, train_config

from fruitlab.errors import ConfigError
from fruitlab.training.loop import prepare_data


def only_run(uri: str) -> mlflow.entities.Run:
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    return runs[0]


def test_one_epoch_on_real_data_records_a_complete_run(real_data: Path, store: str) -> None:
    result = run_cli(
        "model=vgg3_bn", "optim=adam", f"data.root={real_data}", f"tracking.uri={store}", *FAST, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(store)
    client = mlflow.MlflowClient(store)
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["model.name"] == "vgg3_bn" and params["optim.name"] == "adam"
    assert params["lr"] == "0.001" and params["data.image_size"] == "32"
    assert "model=vgg3_bn" in tags["overrides"] and tags["git_commit"]
    assert metrics["num_parameters"] == 552_298
    assert metrics["test_zero_one_loss"] <= 0.05
    assert metrics["test_zero_one_loss"] == pytest.approx(1 - metrics["test_acc"])
    assert metrics["fit_time_s"] > 0 and metrics["latency_b1_p50_ms"] > 0
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [0]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/learning_curves.png", "plots/confusion_matrix.png", "plots/test_predictions.png"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"config.yaml", "classes.json"}

    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    probabilities = model.predict(np.random.rand(5, 3, 32, 32).astype(np.float32))
    assert probabilities.shape == (5, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_per_epoch_metrics_use_the_epoch_as_step(make_config, store: str) -> None:
    cfg = make_config("model=lenet", f"tracking.uri={store}", *FAST, "trainer.max_epochs=3", "tracking.log_model=false")
    objective = train_config(cfg).objective
    run = only_run(store)
    history = mlflow.MlflowClient(store).get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1, 2]
    assert objective == pytest.approx(min(m.value for m in history))
    assert run.data.metrics["epochs"] == 3


def test_a_run_that_raises_ends_failed_with_the_reason(make_config, store: str) -> None:
    cfg = make_config("model=lenet", f"tracking.uri={store}", *FAST, "optim.name=bogus")
    with pytest.raises(ConfigError, match="unknown optimizer 'bogus'"):
        train_config(cfg)
    run = only_run(store)
    assert run.info.status == "FAILED"
    assert "unknown optimizer 'bogus'" in run.data.tags["error"]


def test_a_training_split_that_leaves_a_batch_of_one_trains_a_batch_norm_network(make_config, store: str) -> None:
    """BatchNorm1d cannot train on one image: a last batch of one is left out (seed and split sizes decide when)."""
    settings = ["model=vgg3_bn", f"tracking.uri={store}", *FAST, "tracking.log_model=false", "report.gradcam=false"]
    datamodule = prepare_data(make_config(*settings))
    train_size = len(datamodule.train.labels)
    cfg = make_config(*settings, f"batch_size={train_size - 1}")  # one full batch, then a batch of one
    assert [len(labels) for _, labels in prepare_data(cfg).train_dataloader()] == [train_size - 1]
    train_config(cfg)
    assert only_run(store).info.status == "FINISHED"
