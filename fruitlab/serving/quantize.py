"""Post-training int8 quantization of a recorded model (torch.ao.quantization, CPU).

`static` (FX graph mode: weights and activations int8, activation ranges calibrated on training batches)
is the choice for convolutional networks; `dynamic` (int8 weights of the Linear layers, activations
quantized on the fly) for the others. The quantized model is recorded in a child run of the source run
with its accuracy, latency and size before and after, and can be registered as a new model version.
"""

import copy
import io
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping, quantize_dynamic
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from torch.utils.data import DataLoader

from fruitlab.data import build_datamodule
from fruitlab.data.base import TensorImageDataModule
from fruitlab.errors import ConfigError
from fruitlab.evaluation.latency import latency_metrics
from fruitlab.models import to_unit_float
from fruitlab.serving.export import random_images
from fruitlab.serving.recorded import RecordedModel, rebuild_eager
from fruitlab.tracking.logged_models import load_run_config, log_torch_model
from fruitlab.tracking.query import find_run
from fruitlab.tracking.registry import register_model, tag_model_version
from fruitlab.tracking.runs import tracked_run
from fruitlab.tracking.store import Store

MODES = ("auto", "static", "dynamic")


@dataclass
class QuantizationReport:
    run_id: str  # the run that records the quantized model
    mode: str
    metrics: dict[str, float]
    registered_version: str | None = None


def choose_mode(model: nn.Module, mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"unknown quantization mode '{mode}'; valid modes: {', '.join(MODES)}")
    if mode != "auto":
        return mode
    return "static" if any(isinstance(m, nn.Conv2d) for m in model.modules()) else "dynamic"


@torch.inference_mode()
def quantize(model: nn.Module, mode: str, calibration: list[torch.Tensor]) -> nn.Module:
    """An int8 copy of `model` (float [0, 1] images in); `calibration` batches set the static ranges."""
    model = copy.deepcopy(model).eval()
    if mode == "dynamic":
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    qconfig = get_default_qconfig_mapping(torch.backends.quantized.engine)
    prepared = prepare_fx(model, qconfig, example_inputs=(calibration[0],))
    for images in calibration:
        prepared(images)
    return convert_fx(prepared)


def calibration_batches(datamodule: TensorImageDataModule, count: int) -> list[torch.Tensor]:
    batches = []
    for images, _ in datamodule.train_dataloader():
        batches.append(to_unit_float(images))
        if len(batches) == count:
            break
    return batches


@torch.inference_mode()
def accuracy(model: nn.Module, loader: DataLoader) -> float:
    correct = total = 0
    for images, labels in loader:
        correct += int((model(to_unit_float(images)).argmax(dim=1) == labels).sum())
        total += len(labels)
    return correct / total


@torch.inference_mode()
def traced(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """TorchScript of `model`: how the int8 model is stored (torch.export cannot save quantized modules)."""
    return torch.jit.trace(model, example)


def serialized_megabytes(model: torch.jit.ScriptModule) -> float:
    buffer = io.BytesIO()
    torch.jit.save(model, buffer)
    return buffer.getbuffer().nbytes / 1e6


def compare(
    float_model: nn.Module, int8_model: nn.Module, datamodule: TensorImageDataModule, cfg: DictConfig
) -> dict[str, float]:
    """fp32_* and int8_* test accuracy, CPU latency and TorchScript size, measured here and now."""
    example = random_images(2, datamodule.image_shape, seed=0)
    metrics: dict[str, float] = {}
    for prefix, model in (("fp32", float_model), ("int8", int8_model)):
        metrics[f"{prefix}_test_acc"] = accuracy(model, datamodule.test_dataloader())
        metrics[f"{prefix}_size_mb"] = serialized_megabytes(traced(model, example))
        latency = cfg.latency
        for name, value in latency_metrics(
            model, datamodule.image_shape, latency.batch_sizes, latency.repeats, latency.warmup
        ).items():
            metrics[f"{prefix}_{name}"] = value
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
    cfg = load_run_config(store, recorded.run_id)
    cfg.data.cache_dir = cache_dir  # this machine's, not the trainer's
    torch.manual_seed(cfg.seed)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    # The preprocessing comes from the run's data, so the PCA input of `fruits360_pca` rebuilds too.
    float_model = rebuild_eager(recorded, cfg, datamodule.input_transform(), datamodule.model_input_shape)
    mode = choose_mode(float_model, mode)
    calibration = calibration_batches(datamodule, calibration_count)
    int8_model = quantize(float_model, mode, calibration)
    metrics = compare(float_model, int8_model, datamodule, cfg)

    source = find_run(store, recorded.run_id)
    run_name = f"{source.run_name}-int8"
    with tracked_run(store, source.experiment_id, run_name, recorded.run_id) as recorder:
        recorder.log_params(
            {
                "quantization.mode": mode,
                "quantization.engine": torch.backends.quantized.engine,
                "quantization.calibration_images": sum(len(images) for images in calibration),
                "source_model_uri": recorded.uri,
                "model.name": cfg.model.name,
            }
        )
        recorder.set_tags({"source_run_id": recorded.run_id})
        recorder.log_metrics(metrics)
        example = random_images(2, datamodule.image_shape, seed=0)
        metadata = {"classes": recorded.classes, "quantization": f"int8-{mode}"}
        # TorchScript: saved with torch.jit.save, which MLflow files under its pickle format.
        log_torch_model(recorder, traced(int8_model, example), example.numpy(), metadata, serialization_format="pickle")
    report = QuantizationReport(recorder.run_id, mode, metrics)
    if register:
        report.registered_version = register_model(store, recorder.run_id, register)
        tag_model_version(store, register, report.registered_version, {"quantization": f"int8-{mode}"})
    return report
