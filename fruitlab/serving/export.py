"""TorchScript and ONNX files of a recorded model, checked against PyTorch and logged to its run."""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fruitlab.errors import ModelError
from fruitlab.serving.onnx import INPUT_NAME, export_onnx, ort_session
from fruitlab.serving.recorded import RecordedModel
from fruitlab.tracking.runs import RunRecorder

ARTIFACT_DIR = "export"


@dataclass
class ExportReport:
    run_id: str  # the run that recorded the model
    torchscript: Path
    onnx: Path
    torchscript_max_abs_diff: float
    onnx_max_abs_diff: float


def random_images(count: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Reproducible float images in [0, 1]: the model's input domain."""
    return torch.rand(count, *shape, generator=torch.Generator().manual_seed(seed))


def export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, yet still what C++ loads
        torch.jit.trace(model, example).save(str(path))
    return path


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path))


def onnx_runtime_outputs(path: Path, images: torch.Tensor) -> np.ndarray:
    return ort_session(path).run(None, {INPUT_NAME: images.numpy()})[0]


def export_model(recorded: RecordedModel, out_dir: Path, atol: float = 1e-4) -> ExportReport:
    """Write model.torchscript.pt and model.onnx under `out_dir`; raise ModelError unless both give
    PyTorch's outputs within `atol` on a batch of another size than the export example."""
    if isinstance(recorded.module, torch.jit.ScriptModule):
        raise ModelError(
            f"{recorded.uri} is stored as TorchScript (an int8 model from `fruitlab quantize`?): its logged file is "
            "already the TorchScript export, and ONNX export needs the float model it came from"
        )
    example = random_images(2, recorded.input_shape, seed=0)
    torchscript = export_torchscript(recorded.module, example, out_dir / "model.torchscript.pt")
    onnx = export_onnx(recorded.module, recorded.input_shape, out_dir / "model.onnx")
    images = random_images(5, recorded.input_shape, seed=1)
    with torch.inference_mode():
        expected = recorded.module(images).numpy()
        scripted = load_torchscript(torchscript)(images).numpy()
    report = ExportReport(
        recorded.run_id,
        torchscript,
        onnx,
        float(np.abs(scripted - expected).max()),
        float(np.abs(onnx_runtime_outputs(onnx, images) - expected).max()),
    )
    for name, diff in (
        ("TorchScript", report.torchscript_max_abs_diff),
        ("ONNX Runtime", report.onnx_max_abs_diff),
    ):
        if not diff <= atol:
            raise ModelError(f"{name} outputs differ from PyTorch's by {diff:.3g}, more than the tolerance {atol:g}")
    return report


def log_export(recorder: RunRecorder, report: ExportReport) -> None:
    """The files under the run's export/ artifacts, the measured differences as its metrics."""
    for path in (report.torchscript, report.onnx):
        recorder.log_artifact(path, ARTIFACT_DIR)
    recorder.log_metrics(
        {
            "export_torchscript_max_abs_diff": report.torchscript_max_abs_diff,
            "export_onnx_max_abs_diff": report.onnx_max_abs_diff,
        }
    )
