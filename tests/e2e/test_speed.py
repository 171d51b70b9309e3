"""Training at the machine's speed: bf16-mixed precision, channels_last, thread counts, data loaded once per
process, and the work after training that a sweep trial skips or shortens."""

import csv
import io

import mlflow
import numpy as np
import pytest
import torch
from conftest import FAST, compose_config, run_cli, train_config

from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.data.loaded import LOADED
from fruitlab.errors import ConfigError
from fruitlab.models import get_model, to_unit_float
from fruitlab.training.speed import available_cores, set_threads, wants_channels_last

FIGURES = {"plots/confusion_matrix.png", "plots/confusion_matrix_normalized.png", "plots/test_predictions.png"}
GRADCAM = "plots/gradcam.png"


def artifacts(uri: str, run_id: str) -> set[str]:
    client = mlflow.MlflowClient(uri)
    return {a.path for a in client.list_artifacts(run_id, "plots")}


def logged_models(uri: str, run_id: str) -> list:
    mlflow.set_tracking_uri(uri)
    run = mlflow.MlflowClient(uri).get_run(run_id)
    return mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'", output_format="list"
    )


def test_bf16_mixed_trains_and_records_a_complete_run_on_the_cpu(store):
    result = train_config(compose_config("model=lenet", "trainer.precision=bf16-mixed", f"tracking.uri={store}", *FAST))

    run = mlflow.MlflowClient(store).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.precision"] == "bf16-mixed"
    assert np.isfinite(run.data.metrics["test_loss"]) and 0 <= run.data.metrics["test_acc"] <= 1
    # the default settings: every figure, Grad-CAM and the model, latency measured with latency.repeats
    assert FIGURES | {GRADCAM} <= artifacts(store, result.run_id)
    assert len(logged_models(store, result.run_id)) == 1
    assert run.data.metrics["latency_repeats"] == 3


def test_settings_turn_the_figures_grad_cam_and_the_model_off(store):
    off = ["report.figures=false", "report.gradcam=false", "tracking.log_model=false"]
    result = train_config(compose_config("model=lenet", f"tracking.uri={store}", *FAST, *off))

    plots = artifacts(store, result.run_id)
    assert plots == {"plots/learning_curves.png"}
    assert logged_models(store, result.run_id) == []
    assert "test_f1_macro" in mlflow.MlflowClient(store).get_run(result.run_id).data.metrics  # scores stay


def test_runs_in_one_process_load_each_cache_file_once(store):
    """What a sweep worker does: one trial after another in the same process."""
    overrides = ["model=lenet", f"tracking.uri={store}", *FAST, "report.gradcam=false", "tracking.log_model=false"]
    train_config(compose_config(*overrides, "lr=0.01"))
    reads = LOADED.reads
    train_config(compose_config(*overrides, "lr=0.001"))
    assert LOADED.reads == reads


def test_threads_sets_torch_threads_and_null_means_every_available_core():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        assert set_threads(None) == available_cores() == torch.get_num_threads()
        with pytest.raises(ConfigError, match="threads=0"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_channels_last_is_chosen_for_conv_models_on_cpu_and_cuda_only():
    lenet, ffnn = get_model("lenet", 10, (3, 32, 32)), get_model("ffnn", 10, (50,))
    assert wants_channels_last("auto", lenet, "cpu") and wants_channels_last("auto", lenet, "cuda")
    assert not wants_channels_last("auto", ffnn, "cpu")
    assert not wants_channels_last("auto", lenet, "mps")
    assert not wants_channels_last(False, lenet, "cpu")
    with pytest.raises(ConfigError, match="channels_last='fast'"):
        wants_channels_last("fast", lenet, "cpu")


def confusion_counts(uri: str, run_id: str) -> np.ndarray:
    mlflow.set_tracking_uri(uri)
    rows = list(csv.reader(io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/metrics/confusion_matrix.csv"))))
    return np.array([row[1:] for row in rows[1:]], dtype=int)


def test_a_sweep_does_the_full_work_for_leading_trials_only_and_registers_a_loadable_champion(store):
    """A trailing trial records its scores from one test pass and nothing heavy; each leader logs its model and
    figures once; the champion, registered from its logged model, scores on the test set what its run says."""
    # A learning rate that trains, then ones too small to move in one epoch: they trail (checked below).
    result = run_cli("-m", "model=lenet", "lr=0.01,0.000001,0.003,0.00001", *FAST, f"tracking.uri={store}")
    assert result.returncode == 0, result.stderr[-3000:]

    client = mlflow.MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time ASC"])
    trials = [r for r in runs if "trial_number" in r.data.tags]
    assert len(trials) == 4
    best_so_far, trailing = float("inf"), 0
    for trial in trials:  # each trial in the order it finished: it leads when no earlier trial did better
        run_id, metrics = trial.info.run_id, trial.data.metrics
        value = metrics["best_val_loss"]
        leads = value <= best_so_far
        best_so_far, trailing = min(best_so_far, value), trailing + (not leads)
        assert len(logged_models(store, run_id)) == (1 if leads else 0)
        plots = artifacts(store, run_id)
        assert plots == (FIGURES | {GRADCAM, "plots/learning_curves.png"} if leads else set())
        assert ("latency_b1_p50_ms" in metrics) == leads and ("latency_repeats" in metrics) == leads
        # One test pass: each score logged once, and the accuracy is the report's (the same predictions).
        for name in ("test_acc", "test_loss", "test_zero_one_loss", "test_f1_macro"):
            assert len(client.get_metric_history(run_id, name)) == 1
        counts = confusion_counts(store, run_id)
        assert metrics["test_acc"] == pytest.approx(np.trace(counts) / counts.sum(), abs=1e-6)
    assert trailing >= 1, "every trial led: the test saw no trailing trial"

    champion_run = min(trials, key=lambda r: r.data.metrics["best_val_loss"])
    champion = client.get_model_version_by_alias("fruits360", "champion")
    assert champion.run_id == champion_run.info.run_id
    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model("models:/fruits360@champion")
    data = ImageFolderDataModule()  # the embedded sample, as the sweep's default data
    data.setup()
    predicted = np.asarray(model.predict(to_unit_float(data.test.images).numpy())).argmax(axis=1)
    accuracy = float(np.mean(predicted == data.test.labels.numpy()))
    assert champion_run.data.metrics["test_acc"] == pytest.approx(accuracy, abs=1e-6)  # the best checkpoint's model
