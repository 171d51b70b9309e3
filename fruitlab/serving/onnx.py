"""ONNX export of a deployable model and ONNX Runtime sessions set up for fair CPU latency."""

from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn

INPUT_NAME = "images"


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | Path) -> Path:
    """Write `model` (in eval mode) as one self-contained ONNX file for float inputs (N, *input_shape),
    the batch size N dynamic, with torch's torch.export-based exporter. `model` may also be the graph
    MLflow loads for a logged model, which is inference-only and refuses `.eval()`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(2, *input_shape)  # not 1: a size-1 dimension would be specialised
    torch.onnx.export(
        model,
        (example,),
        path,
        input_names=[INPUT_NAME],
        output_names=["output"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
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
