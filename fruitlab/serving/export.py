"""The deployable files of a recorded model, a `torch.export` program and an ONNX model, checked against the eager
model on real images and logged to its run."""

from dataclasses import dataclass
from pathlib import Path

import torch

from fruitlab.data.base import TensorImageDataModule
from fruitlab.errors import ModelError
from fruitlab.serving.onnx import OnnxRuntimeClassifier, export_onnx, export_program, load_program, save_program
from fruitlab.serving.recorded import RecordedModel, rebuild_with_data
from fruitlab.tracking.runs import RunRecorder
from fruitlab.tracking.store import Store

ARTIFACT_DIR = "export"
CHECK_IMAGES = 64  # test images, spread over the test set, every form is checked on


@dataclass
class ExportReport:
    run_id: str  # the run that recorded the model
    program: Path  # torch.export program (.pt2)
    onnx: Path
    checked_images: int
    atol: float
    program_max_abs_diff: float
    onnx_max_abs_diff: float


def spread_test_images(datamodule: TensorImageDataModule, count: int = CHECK_IMAGES) -> torch.Tensor:
    """Up to `count` test images as floats in [0, 1], evenly spaced over the test set (so every class when it is
    stored by class)."""
    images = datamodule.test.images
    picked = torch.linspace(0, len(images) - 1, min(count, len(images))).long()
    return images[picked].float() / 255


def max_abs_diff(outputs: torch.Tensor, expected: torch.Tensor) -> float:
    return float((outputs - expected).abs().max())


def export_model(
    store: Store, recorded: RecordedModel, out_dir: Path, atol: float = 1e-4, cache_dir: str | None = None
) -> ExportReport:
    """Write model.pt2 and model.onnx under `out_dir`; raise ModelError unless both, loaded back (the program by
    torch.export.load, the ONNX model by ONNX Runtime), give the eager model's probabilities within `atol` on
    real test images of the run's data."""
    rebuilt = rebuild_with_data(store, recorded, cache_dir)
    shape = rebuilt.datamodule.image_shape
    program = export_program(rebuilt.eager, shape)
    program_path = save_program(program, out_dir / "model.pt2")
    onnx_path = export_onnx(program, shape, out_dir / "model.onnx")
    images = spread_test_images(rebuilt.datamodule)
    with torch.inference_mode():
        expected = rebuilt.eager(images)
        from_program = load_program(program_path)(images)
    report = ExportReport(
        recorded.run_id,
        program_path,
        onnx_path,
        len(images),
        atol,
        max_abs_diff(from_program, expected),
        max_abs_diff(OnnxRuntimeClassifier(onnx_path)(images), expected),
    )
    for name, diff in (("torch.export", report.program_max_abs_diff), ("ONNX Runtime", report.onnx_max_abs_diff)):
        if not diff <= atol:
            raise ModelError(
                f"{name} probabilities differ from the eager model's by {diff:.3g} on {len(images)} test images, "
                f"more than the tolerance {atol:g}"
            )
    return report


def log_export(recorder: RunRecorder, report: ExportReport) -> None:
    """The files under the run's export/ artifacts, the measured differences and the tolerance as its metrics."""
    for path in (report.program, report.onnx):
        recorder.log_artifact(path, ARTIFACT_DIR)
    recorder.log_metrics(
        {
            "export_program_max_abs_diff": report.program_max_abs_diff,
            "export_onnx_max_abs_diff": report.onnx_max_abs_diff,
            "export_atol": report.atol,
            "export_check_images": report.checked_images,
        }
    )
