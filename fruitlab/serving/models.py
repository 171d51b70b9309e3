"""Models recorded by fruitlab runs, loaded back by run id, runs:/ URI or registered-model URI."""

import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
import torch
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fruitlab.errors import ModelError
from fruitlab.tracking.store import normalize_uri


@dataclass
class RecordedModel:
    uri: str
    run_id: str  # the run that logged it
    module: nn.Module  # float images in [0, 1], (N, C, H, W) -> class probabilities
    classes: list[str]
    input_shape: tuple[int, int, int]  # (C, H, W)


def use_store(tracking_uri: str | None) -> str:
    """Point MLflow at `tracking_uri`, else MLFLOW_TRACKING_URI, else fruitlab's default store."""
    uri = normalize_uri(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    mlflow.set_tracking_uri(uri)
    return uri


def model_uri(source: str) -> str:
    """A bare run id means that run's `model`; runs:/ and models:/ URIs pass through."""
    return source if ":/" in source else f"runs:/{source}/model"


def load_torch_model(uri: str, info: ModelInfo) -> nn.Module:
    """fruitlab's models as MLflow logged them: torch.export graphs through MLflow's loader, and the int8
    TorchScript models through torch.jit.load, which runs no Python pickle (MLflow would refuse them as
    pickled, see fruitlab/__init__.py)."""
    if (info.metadata or {}).get("quantization"):
        local = Path(mlflow.artifacts.download_artifacts(uri))
        return torch.jit.load(str(local / "data" / "model.pth"))
    return mlflow.pytorch.load_model(uri)


def load_recorded_model(source: str) -> RecordedModel:
    uri = model_uri(source)
    try:
        info = mlflow.models.get_model_info(uri)
        module = load_torch_model(uri, info)
    except (MlflowException, OSError) as error:
        raise ModelError(
            f"cannot load model '{source}' from {mlflow.get_tracking_uri()}: {error}. Give a run id, "
            "runs:/<run_id>/model or models:/<name>@<alias>, and the store with --tracking-uri or "
            "MLFLOW_TRACKING_URI."
        ) from error
    classes = (info.metadata or {}).get("classes")
    if not classes or info.signature is None:
        raise ModelError(f"model '{source}' was not logged by fruitlab: it lacks class names or a signature")
    shape = tuple(info.signature.inputs.inputs[0].shape[1:])
    return RecordedModel(uri, info.run_id, module, list(classes), shape)


def load_run_config(run_id: str) -> DictConfig:
    """The resolved config a run was trained with (its config.yaml artifact)."""
    try:
        return OmegaConf.create(mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml"))
    except MlflowException as error:
        raise ModelError(f"run {run_id} has no config.yaml: it was not recorded by fruitlab ({error})") from error
