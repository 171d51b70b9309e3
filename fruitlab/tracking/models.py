"""Models in the store: logging a run's model, and reading logged models and their runs' records back."""

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fruitlab.errors import ModelError
from fruitlab.tracking.runs import RunRecorder

MODEL_NAME = "model"  # what every run logs its model as


@dataclass(frozen=True)
class LoggedModel:
    """A logged model as its store describes it."""

    uri: str
    run_id: str  # the run that logged it
    classes: list[str]
    input_shape: tuple[int, ...]  # one example, (C, H, W)
    quantization: str | None  # "int8-static" / "int8-dynamic" for fruitlab's TorchScript int8 models


def model_uri(reference: str) -> str:
    """A bare run id means that run's `model`; runs:/ and models:/ URIs pass through."""
    return reference if ":/" in reference else f"runs:/{reference}/{MODEL_NAME}"


def log_torch_model(
    recorder: RunRecorder,
    model: nn.Module,
    example: np.ndarray,
    metadata: dict,
    serialization_format: str | None = None,
) -> None:
    """Log `model` as the run's `model`, with the signature of `example` and its output. `recorder`'s run must
    be the active run (inside `tracked_run`): MLflow's model logging writes to the active run."""
    active = mlflow.active_run()
    if active is None or active.info.run_id != recorder.run_id:
        raise RuntimeError("log_torch_model is called inside the tracked_run of its recorder")
    with torch.inference_mode():
        output = model(torch.from_numpy(example)).numpy()
    mlflow.pytorch.log_model(
        model,
        name=MODEL_NAME,
        serialization_format=serialization_format,
        signature=infer_signature(example, output),
        input_example=example,
        pip_requirements=mlflow.pytorch.get_default_pip_requirements(),
        metadata=metadata,
    )


def logged_model_uris(uri: str, experiment_id: str, run_id: str) -> list[str]:
    """The run's model as `runs:/<run_id>/model` and as MLflow 3's `models:/<model_id>`; [] when it logged none."""
    client = mlflow.MlflowClient(uri)
    models = client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'")
    return [f"{model_uri(run_id)}", *(f"models:/{m.model_id}" for m in models)] if models else []


def describe_logged_model(reference: str) -> LoggedModel:
    """What the store knows of the model `reference` names (run id, runs:/ or models:/ URI)."""
    uri = model_uri(reference)
    try:
        info = mlflow.models.get_model_info(uri)
    except (MlflowException, OSError) as error:
        raise ModelError(
            f"cannot find model '{reference}' in {mlflow.get_tracking_uri()}: {error}. Give a run id, "
            "runs:/<run_id>/model or models:/<name>@<alias>, and the store with --tracking-uri or "
            "MLFLOW_TRACKING_URI."
        ) from error
    metadata = info.metadata or {}
    classes = metadata.get("classes")
    if not classes or info.signature is None:
        raise ModelError(f"model '{reference}' was not logged by fruitlab: it lacks class names or a signature")
    shape = tuple(info.signature.inputs.inputs[0].shape[1:])
    return LoggedModel(uri, info.run_id, list(classes), shape, metadata.get("quantization"))


def load_logged_model(model: LoggedModel) -> nn.Module:
    """fruitlab's models as MLflow logged them: torch.export graphs through MLflow's loader, the int8
    TorchScript models through torch.jit.load, which runs no Python pickle."""
    try:
        if model.quantization:
            local = Path(mlflow.artifacts.download_artifacts(model.uri))
            return torch.jit.load(str(local / "data" / "model.pth"))
        return mlflow.pytorch.load_model(model.uri, map_location="cpu")
    except (MlflowException, OSError, RuntimeError) as error:
        raise ModelError(f"cannot load model {model.uri} from {mlflow.get_tracking_uri()}: {error}") from error


def load_run_config(run_id: str) -> DictConfig:
    """The resolved config a run was trained with (its config.yaml artifact)."""
    try:
        return OmegaConf.create(mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml"))
    except MlflowException as error:
        raise ModelError(f"run {run_id} has no config.yaml: it was not recorded by fruitlab ({error})") from error
