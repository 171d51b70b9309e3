"""ONNX export with torch's dynamo-based exporter (needs the onnxscript package)."""

from pathlib import Path

import torch
from torch import nn
from torch.export import Dim


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Write `model` (in eval mode) as ONNX to `path` for inputs shaped like `example` (N, C, H, W), the
    batch dimension left dynamic (give an example batch of 2 or more: torch.export fixes a dimension of
    size 1). The graph input is named `images`, its output `output`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        dynamic_shapes=({0: Dim("batch")},),
        input_names=["images"],
        output_names=["output"],
        verbose=False,
    )
    program.save(str(path))
    return path
