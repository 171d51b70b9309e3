"""Models recorded by fruitlab runs, loaded back by run id, runs:/ URI or registered-model URI, rebuilt as the eager
PyTorch modules they were trained as, and made ready to serve in a runtime."""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from fruitlab.data import build_datamodule
from fruitlab.data.base import Normalize, TensorImageDataModule
from fruitlab.errors import ConfigError, ModelError
from fruitlab.models import Probabilities, build_classifier
from fruitlab.serving.onnx import OnnxRuntimeClassifier, export_onnx
from fruitlab.tracking.logged_models import (
    ONNX_FLAVOR,
    LoggedModel,
    describe_logged_model,
    load_logged_model,
    load_run_config,
    logged_onnx_file,
)
from fruitlab.tracking.store import Store

RUNTIMES = ("torch", "onnxruntime")


@dataclass
class RecordedModel:
    uri: str
    run_id: str  # the run that logged it
    module: nn.Module  # float images in [0, 1], (N, C, H, W) -> class probabilities
    classes: list[str]
    input_shape: tuple[int, int, int]  # (C, H, W)
    quantization: str | None = None  # set for a legacy int8 TorchScript model


@dataclass
class RebuiltRun:
    """A recorded model rebuilt as the eager module it was trained as, with its run's config and data."""

    eager: nn.Module
    config: DictConfig
    datamodule: TensorImageDataModule  # set up: train, validation and test splits loaded


@dataclass
class ServedModel:
    uri: str
    classes: list[str]
    input_shape: tuple[int, int, int]
    predict: Callable[[torch.Tensor], torch.Tensor]  # float images (N, C, H, W) in [0, 1] -> probabilities
    runtime: str


def load_recorded_model(store: Store, reference: str, allow_pickle: bool | None = None) -> RecordedModel:
    """The PyTorch model `reference` names in `store`, loaded by tracking's one safe path (a pickled model only
    with `allow_pickle`)."""
    logged = describe_logged_model(store, reference)
    module = pytorch_module(store, logged, reference, allow_pickle)
    return RecordedModel(logged.uri, logged.run_id, module, logged.classes, logged.input_shape, logged.quantization)


def pytorch_module(store: Store, logged: LoggedModel, reference: str, allow_pickle: bool | None) -> nn.Module:
    if logged.flavor == ONNX_FLAVOR:
        raise ModelError(
            f"model '{reference}' is stored as ONNX (an int8 model from `fruitlab quantize`?): it is a deployable "
            "form already; serve it with --runtime onnxruntime, or give the PyTorch model it came from"
        )
    return load_logged_model(store, logged, allow_pickle)


def rebuild_eager(recorded: RecordedModel, config: DictConfig, preprocess: nn.Module, input_shape: tuple) -> nn.Module:
    """The recorded network as an eager class-probability module in eval mode (the logged model is an exported
    graph): built from the run's config around `preprocess` (the network's input is `input_shape` after it),
    then given the recorded weights, the preprocessing's fitted buffers included."""
    classifier = build_classifier(config.model, len(recorded.classes), input_shape, preprocess)
    model = Probabilities(classifier)
    model.load_state_dict(recorded.module.state_dict())
    return model.eval()


def rebuild_with_data(store: Store, recorded: RecordedModel, cache_dir: str | None = None) -> RebuiltRun:
    """The eager model with the run's own data, which also gives the preprocessing, so that the PCA input of
    `fruits360_pca` rebuilds too."""
    if recorded.quantization:
        raise ModelError(
            f"{recorded.uri} is an {recorded.quantization} model already: export and quantize need the float model it "
            "came from"
        )
    config = load_run_config(store, recorded.run_id)
    config.data.cache_dir = cache_dir  # this machine's decode cache, not the trainer's
    torch.manual_seed(config.seed)
    datamodule = build_datamodule(config)
    datamodule.setup("fit")
    eager = rebuild_eager(recorded, config, datamodule.input_transform(), datamodule.model_input_shape)
    return RebuiltRun(eager, config, datamodule)


def load_eager(store: Store, reference: str, allow_pickle: bool | None = None) -> tuple[nn.Module, tuple[int, ...]]:
    """(class-probability model in eval mode, input shape) for a run id or an MLflow model URI
    (`models:/NAME@champion`, `runs:/RUN_ID/model`) of a fruitlab image classifier whose input is normalised
    images (every model but the PCA ones, whose preprocessing needs the run's data: see rebuild_with_data)."""
    recorded = load_recorded_model(store, reference, allow_pickle)
    channels = recorded.input_shape[0]
    preprocess = Normalize(torch.zeros(channels), torch.ones(channels))  # its fitted buffers are then loaded
    config = load_run_config(store, recorded.run_id)
    return rebuild_eager(recorded, config, preprocess, recorded.input_shape), recorded.input_shape


def load_served_model(
    store: Store, reference: str, runtime: str = "torch", allow_pickle: bool | None = None
) -> ServedModel:
    """The model `reference` names, run by `runtime`: `torch` runs the logged PyTorch model; `onnxruntime` runs a
    logged ONNX model (from `fruitlab quantize`) as it is, and a PyTorch model as its ONNX export, made here."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime {runtime} is not allowed: give one of {', '.join(RUNTIMES)}")
    logged = describe_logged_model(store, reference)
    if runtime == "onnxruntime":
        predict = onnx_runtime_model(store, logged, reference, allow_pickle)
    else:
        predict = pytorch_module(store, logged, reference, allow_pickle)
    return ServedModel(logged.uri, logged.classes, logged.input_shape, predict, runtime)


def onnx_runtime_model(
    store: Store, logged: LoggedModel, reference: str, allow_pickle: bool | None
) -> OnnxRuntimeClassifier:
    threads = torch.get_num_threads()  # the same threads as the torch runtime's
    if logged.flavor == ONNX_FLAVOR:
        return OnnxRuntimeClassifier(logged_onnx_file(store, logged), threads)
    module = pytorch_module(store, logged, reference, allow_pickle)
    with tempfile.TemporaryDirectory() as folder:  # the session holds the model: the file may go
        return OnnxRuntimeClassifier(export_onnx(module, logged.input_shape, Path(folder) / "model.onnx"), threads)
