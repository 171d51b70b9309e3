"""`trainer=ddp_cpu`: two training processes, one MLflow run with metrics reduced across them."""

import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from conftest import FAST, run_cli

from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.training.module import to_unit_float


def test_ddp_cpu_uses_every_gpu_or_two_cpu_processes(make_config) -> None:
    trainer = make_config("trainer=ddp_cpu").trainer
    assert trainer.strategy == "ddp" and trainer.accelerator == "auto"
    assert trainer.devices == (torch.cuda.device_count() or 2)


def test_two_processes_train_one_run_with_metrics_reduced_across_them(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores: no oversubscription
    result = run_cli("trainer=ddp_cpu", "model=lenet", *FAST, f"tracking.uri={uri}", env=one_thread, timeout=400)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    if not torch.cuda.is_available():
        assert "distributed_backend=gloo" in output and "Starting with 2 processes" in output

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1  # not one per process
    run = runs[0]
    assert run.info.status == "FINISHED"
    for name in ("train_loss", "val_loss", "val_acc"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [0]

    # Each process tests half of the 120 test images; the logged accuracy is that of the whole set.
    data = ImageFolderDataModule()
    data.setup()
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    predicted = model.predict(to_unit_float(data.test.images).numpy()).argmax(axis=1)
    accuracy = float(np.mean(predicted == data.test.labels.numpy()))
    assert run.data.metrics["test_acc"] == pytest.approx(accuracy, abs=1e-6)
