"""Post-training int8 quantization of a recorded model with ONNX Runtime (CPU).

The model's ONNX export is quantized by `onnxruntime.quantization`: `static` (QDQ format: int8 weights, per output
channel, and int8 activations, their ranges calibrated on training images) is the choice for convolutional
networks; `dynamic` (int8 weights, activations quantized on the fly) for the others. The int8 ONNX model is recorded
in a child run of the source run with its accuracy, latency and size before and after, and can be registered as a
new model version.
"""

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from omegaconf import DictConfig
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn
from torch.utils.data import DataLoader

from fruitlab.data.base import TensorImageDataModule
from fruitlab.errors import ConfigError
from fruitlab.evaluation.latency import time_interleaved
from fruitlab.models import to_unit_float
from fruitlab.serving.onnx import INPUT_NAME, OnnxRuntimeClassifier, export_onnx
from fruitlab.serving.recorded import RecordedModel, rebuild_with_data
from fruitlab.tracking.logged_models import log_onnx_model
from fruitlab.tracking.query import find_run
from fruitlab.tracking.registry import register_model, tag_model_version
from fruitlab.tracking.runs import tracked_run
from fruitlab.tracking.store import Store

MODES = ("auto", "static", "dynamic")
# The operators with weights: their int8 kernels are where the speed and the size come from. The rest (the input
# normalisation, batch norm after an activation, the softmax) stays float, so the probabilities keep their
# resolution.
QUANTIZED_OPS = ["Conv", "Gemm", "MatMul"]
# 7-bit weights: on x86 CPUs without VNNI (AVX2), ONNX Runtime's int8 kernels add pairs of u8 x s8 products in
# 16 bits, which saturates with full 8-bit weights (ONNX Runtime's quantization guide); on vgg3_bn that cost 11
# points of test accuracy.
REDUCE_RANGE = True


@dataclass
class QuantizationReport:
    run_id: str  # the run that records the quantized model
    mode: str
    metrics: dict[str, float]
    registered_version: str | None = None


class BatchReader(CalibrationDataReader):
    """Calibration batches as ONNX Runtime's quantizer reads them: one input feed at a time, then None."""

    def __init__(self, batches: list[np.ndarray]) -> None:
        self.feeds: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.feeds, None)
        return None if batch is None else {INPUT_NAME: batch}


def choose_mode(model: nn.Module, mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"--mode {mode} is not allowed: give one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    return "static" if any(isinstance(m, nn.Conv2d) for m in model.modules()) else "dynamic"


def quantize_onnx(fp32: Path, int8: Path, mode: str, calibration: list[np.ndarray]) -> Path:
    """Write the int8 form of the ONNX model `fp32` to `int8`; `calibration` batches (float images, static mode
    only) set the activation ranges."""
    prepared = int8.with_suffix(".prepared.onnx")
    quant_pre_process(str(fp32), str(prepared))  # shape inference and graph optimisation, as the quantizer expects
    if mode == "static":
        quantize_static(
            prepared,
            int8,
            BatchReader(calibration),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=QUANTIZED_OPS,
            per_channel=True,
            reduce_range=REDUCE_RANGE,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
    else:
        quantize_dynamic(
            prepared, int8, op_types_to_quantize=QUANTIZED_OPS, reduce_range=REDUCE_RANGE, weight_type=QuantType.QInt8
        )
    prepared.unlink()
    return int8


def calibration_batches(datamodule: TensorImageDataModule, count: int) -> list[np.ndarray]:
    """The first `count` batches of the (shuffled, seeded) training loader, as float images in [0, 1]."""
    if count < 1:
        raise ConfigError(f"--calibration-batches {count} is not allowed: give a whole number >= 1")
    batches = []
    for images, _ in datamodule.train_dataloader():
        batches.append(to_unit_float(images).numpy())
        if len(batches) == count:
            break
    return batches


def accuracy(model: OnnxRuntimeClassifier, loader: DataLoader) -> float:
    correct = total = 0
    for images, labels in loader:
        correct += int((model(to_unit_float(images)).argmax(dim=1) == labels).sum())
        total += len(labels)
    return correct / total


def compare(fp32: Path, int8: Path, datamodule: TensorImageDataModule, latency: DictConfig) -> dict[str, float]:
    """fp32_* and int8_* test accuracy, ONNX file size and ONNX Runtime latency (the two timed interleaved on the
    same batches, on torch's threads), measured here and now."""
    threads = torch.get_num_threads()
    models = {"fp32": OnnxRuntimeClassifier(fp32, threads), "int8": OnnxRuntimeClassifier(int8, threads)}
    metrics: dict[str, float] = {}
    for prefix, model in models.items():
        metrics[f"{prefix}_test_acc"] = accuracy(model, datamodule.test_dataloader())
        metrics[f"{prefix}_size_mb"] = model.path.stat().st_size / 1e6
    for batch_size in latency.batch_sizes:
        images = np.random.default_rng(0).random((batch_size, *datamodule.image_shape), dtype=np.float32)
        calls = {prefix: lambda model=model, images=images: model.outputs(images) for prefix, model in models.items()}
        for prefix, stats in time_interleaved(calls, latency.repeats, latency.warmup).items():
            for stat, value in stats.items():
                metrics[f"{prefix}_latency_b{batch_size}_{stat}"] = value
    metrics["test_acc"] = metrics["int8_test_acc"]
    metrics["accuracy_drop_points"] = 100 * (metrics["fp32_test_acc"] - metrics["int8_test_acc"])
    metrics["size_ratio"] = metrics["int8_size_mb"] / metrics["fp32_size_mb"]
    return metrics


def quantize_recorded_model(
    store: Store,
    recorded: RecordedModel,
    mode: str = "auto",
    calibration_count: int = 8,
    register: str | None = None,
    cache_dir: str | None = None,
) -> QuantizationReport:
    """Quantize, measure, and record in a child run of the source run; register when `register` names a
    registered model (a new version of it). `cache_dir`: this machine's decode cache (None: the default one)."""
    rebuilt = rebuild_with_data(store, recorded, cache_dir)
    mode = choose_mode(rebuilt.eager, mode)
    calibration = calibration_batches(rebuilt.datamodule, calibration_count)
    shape = rebuilt.datamodule.image_shape
    with tempfile.TemporaryDirectory() as folder:
        fp32 = export_onnx(rebuilt.eager, shape, Path(folder) / "model.onnx")
        int8 = quantize_onnx(fp32, Path(folder) / "model.int8.onnx", mode, calibration)
        metrics = compare(fp32, int8, rebuilt.datamodule, rebuilt.config.latency)
        params = {
            "quantization.mode": mode,
            "quantization.runtime": f"onnxruntime {onnxruntime.__version__}",
            "quantization.calibration_images": sum(len(images) for images in calibration),
            "source_model_uri": recorded.uri,
            "model.name": rebuilt.config.model.name,
        }
        run_id = record(store, recorded, params, metrics, int8)
    report = QuantizationReport(run_id, mode, metrics)
    if register:
        report.registered_version = register_model(store, run_id, register)
        tag_model_version(store, register, report.registered_version, {"quantization": f"int8-{mode}"})
    return report


def record(store: Store, recorded: RecordedModel, params: dict, metrics: dict[str, float], int8: Path) -> str:
    """A child run of the source run, `<run name>-int8`, with the int8 ONNX model as its `model`; its id."""
    source = find_run(store, recorded.run_id)
    with tracked_run(store, source.experiment_id, f"{source.run_name}-int8", recorded.run_id) as recorder:
        recorder.log_params(params)
        recorder.set_tags({"source_run_id": recorded.run_id})
        recorder.log_metrics(metrics)
        example = np.random.default_rng(0).random((2, *recorded.input_shape), dtype=np.float32)
        metadata = {"classes": recorded.classes, "quantization": f"int8-{params['quantization.mode']}"}
        log_onnx_model(recorder, int8, example, OnnxRuntimeClassifier(int8).outputs(example), metadata)
    return recorder.run_id
