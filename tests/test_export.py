"""Export and int8 quantization of a recorded real run."""

from pathlib import Path

import mlflow
import pytest
import torch
from conftest import TrainedRun

from fruitlab.commands.export import main as export_main
from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.errors import ModelError
from fruitlab.serving.export import export_model, load_torchscript, onnx_runtime_outputs
from fruitlab.serving.quantize import quantize_recorded_model
from fruitlab.serving.recorded import load_recorded_model
from fruitlab.tracking.store import Store


def test_export_writes_torchscript_and_onnx_that_agree_with_pytorch(
    trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    export_main([trained_run.run_id, "--out", str(tmp_path), "--tracking-uri", trained_run.uri])
    onnx_path = tmp_path / trained_run.run_id / "model.onnx"
    torchscript_path = tmp_path / trained_run.run_id / "model.torchscript.pt"
    assert "ONNX Runtime max |diff|" in capsys.readouterr().out

    # ONNX Runtime and TorchScript agree with the recorded PyTorch model on real test images
    recorded = load_recorded_model(Store.open(trained_run.uri), trained_run.run_id)
    datamodule = ImageFolderDataModule(root=trained_run.data)
    datamodule.setup()
    images = datamodule.test.images[::97].float() / 255  # every class, a batch size unlike the export's
    with torch.inference_mode():
        expected = recorded.module(images)
        torchscript = load_torchscript(torchscript_path)(images)
    torch.testing.assert_close(torch.from_numpy(onnx_runtime_outputs(onnx_path, images)), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(torchscript, expected, atol=1e-5, rtol=0)

    client = mlflow.MlflowClient(trained_run.uri)
    logged = {a.path for a in client.list_artifacts(trained_run.run_id, "export")}
    assert logged == {"export/model.onnx", "export/model.torchscript.pt"}
    assert client.get_run(trained_run.run_id).data.metrics["export_onnx_max_abs_diff"] <= 1e-4


def test_an_unknown_model_is_one_clear_error(trained_run: TrainedRun) -> None:
    with pytest.raises(ModelError, match=r"cannot find model 'no-such-run'.*models:/<name>@<alias>"):
        load_recorded_model(Store.open(trained_run.uri), "no-such-run")


def test_int8_model_is_smaller_and_within_one_point_of_accuracy(trained_run: TrainedRun, tmp_path: Path) -> None:
    store = Store.open(trained_run.uri)
    recorded = load_recorded_model(store, trained_run.run_id)
    report = quantize_recorded_model(store, recorded, register="fruits-int8")
    metrics = report.metrics
    assert report.mode == "static"  # vgg1 has convolutions
    assert metrics["int8_size_mb"] < 0.5 * metrics["fp32_size_mb"]
    assert abs(metrics["fp32_test_acc"] - metrics["int8_test_acc"]) <= 0.01
    client = mlflow.MlflowClient(trained_run.uri)
    source = client.get_run(trained_run.run_id)
    assert metrics["fp32_test_acc"] == pytest.approx(source.data.metrics["test_acc"], abs=1e-6)
    assert metrics["int8_latency_b1_p50_ms"] > 0 and metrics["fp32_latency_b64_p50_ms"] > 0

    run = client.get_run(report.run_id)
    assert run.data.tags["mlflow.parentRunId"] == trained_run.run_id
    assert run.data.params["quantization.mode"] == "static"
    # registered as a version that loads back and predicts like the int8 model measured
    assert report.registered_version == "1"
    version = client.get_model_version("fruits-int8", "1")
    assert version.tags["quantization"] == "int8-static"
    int8 = load_recorded_model(store, "models:/fruits-int8/1").module
    datamodule = ImageFolderDataModule(root=trained_run.data)
    datamodule.setup()
    with torch.inference_mode():
        predictions = torch.cat([int8(x.float() / 255).argmax(1) for x, _ in datamodule.test_dataloader()])
    accuracy = (predictions == datamodule.test.labels).float().mean().item()
    assert accuracy == pytest.approx(metrics["int8_test_acc"], abs=1e-6)
    with pytest.raises(ModelError, match="stored as TorchScript"):  # it is the export already
        export_model(load_recorded_model(store, "models:/fruits-int8/1"), tmp_path)


def test_dynamic_quantization_shrinks_the_linear_layers(trained_run: TrainedRun) -> None:
    store = Store.open(trained_run.uri)
    report = quantize_recorded_model(store, load_recorded_model(store, trained_run.run_id), mode="dynamic")
    assert report.registered_version is None
    assert report.metrics["int8_size_mb"] < 0.5 * report.metrics["fp32_size_mb"]  # vgg1 is mostly its dense layer
    assert abs(report.metrics["accuracy_drop_points"]) <= 1
