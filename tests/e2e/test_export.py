"""Export (torch.export and ONNX) and ONNX Runtime int8 quantization of a recorded real run, checked on real
images."""

from pathlib import Path

import mlflow
import pytest
import torch
from conftest import TrainedRun

from fruitlab.commands.export import main as export_main
from fruitlab.errors import ModelError
from fruitlab.serving.onnx import OnnxRuntimeClassifier, load_program
from fruitlab.serving.quantize import quantize_recorded_model
from fruitlab.serving.recorded import load_recorded_model, load_served_model, rebuild_with_data
from fruitlab.tracking.store import Store


def test_export_writes_a_program_and_an_onnx_model_that_agree_with_the_eager_model(
    trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    export_main([trained_run.run_id, "--out", str(tmp_path), "--tracking-uri", trained_run.uri])
    folder = tmp_path / trained_run.run_id
    out = capsys.readouterr().out
    assert "ONNX Runtime max |diff|" in out and "on 64 test images, tolerance 0.0001" in out
    assert {path.name for path in folder.iterdir()} == {"model.pt2", "model.onnx"}

    # loaded back, both give the eager model's probabilities on real test images other than the checked ones
    store = Store.open(trained_run.uri)
    rebuilt = rebuild_with_data(store, load_recorded_model(store, trained_run.run_id))
    images = rebuilt.datamodule.test.images[5::97].float() / 255  # every class, a batch size unlike the export's
    with torch.inference_mode():
        expected = rebuilt.eager(images)
        from_program = load_program(folder / "model.pt2")(images)
    torch.testing.assert_close(from_program, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(OnnxRuntimeClassifier(folder / "model.onnx")(images), expected, atol=1e-4, rtol=0)

    client = mlflow.MlflowClient(trained_run.uri)
    logged = {a.path for a in client.list_artifacts(trained_run.run_id, "export")}
    assert logged == {"export/model.onnx", "export/model.pt2"}
    metrics = client.get_run(trained_run.run_id).data.metrics
    assert metrics["export_onnx_max_abs_diff"] <= 1e-4 and metrics["export_program_max_abs_diff"] <= 1e-4
    assert metrics["export_atol"] == 1e-4 and metrics["export_check_images"] == 64


def test_an_unknown_model_is_one_clear_error(trained_run: TrainedRun) -> None:
    with pytest.raises(ModelError, match=r"cannot find model 'no-such-run'.*models:/<name>@<alias>"):
        load_recorded_model(Store.open(trained_run.uri), "no-such-run")


def served_accuracy(reference: str, trained_run: TrainedRun) -> float:
    """Test accuracy of the model `reference` names as `fruitlab serve --runtime onnxruntime` runs it."""
    store = Store.open(trained_run.uri)
    served = load_served_model(store, reference, "onnxruntime")
    datamodule = rebuild_with_data(store, load_recorded_model(store, trained_run.run_id)).datamodule
    predictions = torch.cat([served.predict(x.float() / 255).argmax(1) for x, _ in datamodule.test_dataloader()])
    return (predictions == datamodule.test.labels).float().mean().item()


def test_static_int8_model_is_smaller_and_within_half_a_point_of_accuracy(trained_run: TrainedRun) -> None:
    store = Store.open(trained_run.uri)
    report = quantize_recorded_model(store, load_recorded_model(store, trained_run.run_id), register="fruits-int8")
    metrics = report.metrics
    assert report.mode == "static"  # vgg1 has convolutions
    assert metrics["int8_size_mb"] < 0.5 * metrics["fp32_size_mb"]
    assert abs(metrics["accuracy_drop_points"]) <= 0.5
    client = mlflow.MlflowClient(trained_run.uri)
    source = client.get_run(trained_run.run_id)
    assert metrics["fp32_test_acc"] == pytest.approx(source.data.metrics["test_acc"], abs=1e-6)
    assert metrics["int8_latency_b1_p50_ms"] > 0 and metrics["fp32_latency_b64_p50_ms"] > 0

    run = client.get_run(report.run_id)
    assert run.data.tags["mlflow.parentRunId"] == trained_run.run_id
    assert run.data.params["quantization.mode"] == "static"
    assert run.data.params["quantization.runtime"].startswith("onnxruntime ")
    # registered as a version that loads back and predicts like the int8 model measured
    assert report.registered_version == "1"
    version = client.get_model_version("fruits-int8", "1")
    assert version.tags["quantization"] == "int8-static"
    assert served_accuracy("models:/fruits-int8/1", trained_run) == pytest.approx(metrics["int8_test_acc"], abs=1e-6)
    with pytest.raises(ModelError, match="stored as ONNX"):  # it is a deployable form already
        load_recorded_model(store, "models:/fruits-int8/1")


def test_dynamic_quantization_shrinks_the_dense_layers(trained_run: TrainedRun) -> None:
    store = Store.open(trained_run.uri)
    report = quantize_recorded_model(store, load_recorded_model(store, trained_run.run_id), mode="dynamic")
    assert report.registered_version is None
    assert report.metrics["int8_size_mb"] < 0.5 * report.metrics["fp32_size_mb"]  # vgg1 is mostly its dense layer
    assert abs(report.metrics["accuracy_drop_points"]) <= 0.5
    assert served_accuracy(report.run_id, trained_run) == pytest.approx(report.metrics["int8_test_acc"], abs=1e-6)
