"""The deployable forms of a model on torch's supported paths: a `torch.export` program (`.pt2`) and an ONNX model
from torch's dynamo exporter, and ONNX Runtime sessions set up for fair CPU latency."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

INPUT_NAME = "images"
OUTPUT_NAME = "output"


def export_program(model: nn.Module, input_shape: tuple[int, ...]) -> torch.export.ExportedProgram:
    """`model` as a `torch.export` program for float inputs (N, *input_shape), the batch size N dynamic. `model`
    may also be the graph MLflow loads for a logged model, which is inference-only and refuses `.eval()`."""
    example = torch.rand(2, *input_shape)  # not 1: a size-1 dimension would be specialised
    with torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))


def save_program(program: torch.export.ExportedProgram, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    return path


def load_program(path: Path) -> nn.Module:
    """A saved `torch.export` program as a callable module (its graph and weights; no pickled code)."""
    return torch.export.load(path).module()


def export_onnx(model: nn.Module | torch.export.ExportedProgram, input_shape: tuple[int, ...], path: Path) -> Path:
    """Write `model` as one self-contained ONNX file for float inputs (N, *input_shape), the batch size N dynamic,
    with torch's dynamo (torch.export-based) exporter."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = model if isinstance(model, torch.export.ExportedProgram) else export_program(model, input_shape)
    torch.onnx.export(
        program,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        f=path,
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    return path


def ort_session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    """A CPU session on `threads` intra-op threads, run sequentially, with thread spinning off: idle threads
    sleep instead of busy-waiting, so that a benchmark does not charge other work for ORT's spinning and
    ORT's numbers are not helped by it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRuntimeClassifier:
    """An ONNX model file run by ONNX Runtime with the call of a PyTorch model: float images (N, C, H, W) in,
    class probabilities out, as tensors."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.path = path
        self.session = ort_session(path, threads)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.outputs(images.numpy()))

    def outputs(self, images: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]
