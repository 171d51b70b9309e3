"""Models in the store: logging a run's model, and reading logged models and their runs' records back.

Loading is the one safe path of every command that reads a logged model (serve, export, quantize, transfer
learning, the latency benchmark): only formats that run no Python code load by default. A `torch.export` archive
is checked by MLflow to hold no pickle before it loads; fruitlab's int8 models are ONNX files (a protobuf of
graph and weights). A Python pickle runs whatever its author put in it, so it is refused unless the caller opts in
(--allow-pickle, FRUITLAB_ALLOW_PICKLE=1). Legacy, for one release: the int8 models of fruitlab 0.1 are TorchScript
archives, still loaded (with a FutureWarning) once the file is checked to be one.
"""

import os
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import mlflow
import numpy as np
import onnx
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking.context import registry as run_context
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fruitlab.errors import ModelError
from fruitlab.tracking.runs import RunRecorder
from fruitlab.tracking.store import Store

MODEL_NAME = "model"  # what every run logs its model as
ALLOW_PICKLE_ENV = "FRUITLAB_ALLOW_PICKLE"  # the opt-in for pickled models, for callers without --allow-pickle
MLFLOW_PICKLE_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
# mlflow.pytorch tries its Lightning autologging module inside `except ImportError`; that module calls
# logging.basicConfig and imports the `pytorch_lightning` package (fruitlab uses `lightning.pytorch`).
LIGHTNING_AUTOLOG_MODULES = ("mlflow.pytorch._lightning_autolog", "pytorch_lightning")
PYTORCH_FLAVOR = "pytorch"
ONNX_FLAVOR = "onnx"


@dataclass(frozen=True)
class LoggedModel:
    """A logged model as its store describes it."""

    uri: str
    run_id: str  # the run that logged it
    classes: list[str]
    input_shape: tuple[int, ...]  # one example, (C, H, W)
    quantization: str | None  # "int8-static" / "int8-dynamic" for fruitlab's int8 models
    flavor: str  # PYTORCH_FLAVOR or ONNX_FLAVOR
    data_path: str  # the model's files inside its artifacts: the pytorch flavor's folder, the onnx flavor's file


def model_uri(reference: str) -> str:
    """A bare run id means that run's `model`; runs:/ and models:/ URIs pass through."""
    return reference if ":/" in reference else f"runs:/{reference}/{MODEL_NAME}"


def pytorch_flavor() -> ModuleType:
    """MLflow's pytorch flavor, imported with its Lightning autologging module and `pytorch_lightning` made
    unimportable meanwhile (None in sys.modules), so that its import fails harmlessly: no second Lightning
    package loaded, no logging set up. What sys.modules held before is put back."""
    if "mlflow.pytorch" in sys.modules:
        return sys.modules["mlflow.pytorch"]
    before = {name: sys.modules[name] for name in LIGHTNING_AUTOLOG_MODULES if name in sys.modules}
    sys.modules.update(dict.fromkeys(LIGHTNING_AUTOLOG_MODULES))
    try:
        import mlflow.pytorch as flavor
    finally:
        for name in LIGHTNING_AUTOLOG_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(before)
    return flavor


def log_torch_model(
    recorder: RunRecorder,
    model: nn.Module,
    example: np.ndarray,
    metadata: dict,
    serialization_format: str | None = None,
) -> None:
    """Log `model` as the run's `model`, with the signature of `example` and its output."""
    with torch.inference_mode():
        output = model(torch.from_numpy(example)).numpy()
    flavor = pytorch_flavor()
    model_id = new_logged_model(recorder)
    with recorder.store.fluent():  # MLflow's model logging reads only the process-wide tracking URI
        flavor.log_model(
            model,
            name=MODEL_NAME,
            serialization_format=serialization_format,
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=flavor.get_default_pip_requirements(),
            metadata=metadata,
            model_id=model_id,
            run_id=recorder.run_id,  # passed on to mlflow.models.Model.log: the run that outputs the model
        )


def new_logged_model(recorder: RunRecorder) -> str:
    """Id of a new, empty MLflow 3 logged model in the experiment of `recorder`'s run, with the run's params, as
    MLflow makes one for its active run (fruitlab has none: MLflow would pick the default experiment)."""
    run = recorder.store.client.get_run(recorder.run_id)
    logged = recorder.store.client.create_logged_model(
        run.info.experiment_id,
        name=MODEL_NAME,
        source_run_id=recorder.run_id,
        tags=run_context.resolve_tags(),
        params=run.data.params,
    )
    return logged.model_id


def log_onnx_model(recorder: RunRecorder, path: Path, example: np.ndarray, output: np.ndarray, metadata: dict) -> None:
    """Log the ONNX file at `path` as the run's `model` (one file, MLflow's onnx flavor), with the signature of
    `example` and the model's `output` for it."""
    model_id = new_logged_model(recorder)
    with recorder.store.fluent():  # MLflow's model logging reads only the process-wide tracking URI
        mlflow.onnx.log_model(
            onnx.load(path),
            name=MODEL_NAME,
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=mlflow.onnx.get_default_pip_requirements(),
            metadata=metadata,
            onnx_execution_providers=["CPUExecutionProvider"],  # fruitlab's int8 kernels are ONNX Runtime's CPU ones
            save_as_external_data=False,
            model_id=model_id,
            run_id=recorder.run_id,
        )


def logged_model_uris(store: Store, experiment_id: str, run_id: str) -> list[str]:
    """The run's model as `runs:/<run_id>/model` and as MLflow 3's `models:/<model_id>`; [] when it logged none."""
    models = store.client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'")
    return [f"{model_uri(run_id)}", *(f"models:/{m.model_id}" for m in models)] if models else []


def describe_logged_model(store: Store, reference: str) -> LoggedModel:
    """What `store` knows of the model `reference` names (run id, runs:/ or models:/ URI)."""
    uri = model_uri(reference)
    try:
        with store.fluent():  # MLflow resolves runs:/ and models:/ URIs through the process-wide tracking URI
            info = mlflow.models.get_model_info(uri)
    except (MlflowException, OSError) as error:
        raise ModelError(
            f"cannot find model '{reference}' in {store.uri}: {error}. Give a run id, "
            "runs:/<run_id>/model or models:/<name>@<alias>, and the store with --tracking-uri or "
            "MLFLOW_TRACKING_URI."
        ) from error
    metadata = info.metadata or {}
    classes = metadata.get("classes")
    if not classes or info.signature is None:
        raise ModelError(f"model '{reference}' was not logged by fruitlab: it lacks class names or a signature")
    if PYTORCH_FLAVOR in info.flavors:
        flavor, data_path = PYTORCH_FLAVOR, info.flavors[PYTORCH_FLAVOR].get("model_data", "data")
    elif ONNX_FLAVOR in info.flavors:
        flavor, data_path = ONNX_FLAVOR, info.flavors[ONNX_FLAVOR]["data"]
    else:
        raise ModelError(f"model '{reference}' is neither PyTorch nor ONNX: fruitlab serves the models its runs log")
    shape = tuple(info.signature.inputs.inputs[0].shape[1:])
    quantization = metadata.get("quantization")
    return LoggedModel(uri, info.run_id, list(classes), shape, quantization, flavor, data_path)


def pickle_allowed_by_env() -> bool:
    """The opt-in of callers that have no --allow-pickle option (model.init_from, scripts)."""
    return os.environ.get(ALLOW_PICKLE_ENV, "").lower() in ("1", "true", "yes")


def load_logged_model(store: Store, model: LoggedModel, allow_pickle: bool | None = None) -> nn.Module:
    """The logged PyTorch model as a module, by the format its files have (never by what its metadata claims): a
    `torch.export` archive through MLflow's loader with pickle refused, a legacy int8 TorchScript archive through
    `load_legacy_torchscript`, a Python pickle only when `allow_pickle` (default: $FRUITLAB_ALLOW_PICKLE)."""
    allow_pickle = pickle_allowed_by_env() if allow_pickle is None else allow_pickle
    flavor = pytorch_flavor()
    try:
        with store.fluent():  # a models:/ URI resolves through the process-wide tracking URI
            local = Path(mlflow.artifacts.download_artifacts(model.uri))
        files = local / model.data_path
        if (files / "model.pt2").is_file():
            with mlflow_pickle_setting(allowed=False):  # MLflow then checks the archive holds no pickle
                return flavor.load_model(str(local), map_location="cpu")
        pickled = files / "model.pth"
        if model.quantization and is_torchscript_archive(pickled):
            return load_legacy_torchscript(pickled, model.uri)
        if not allow_pickle:
            raise ModelError(
                f"run {model.run_id}'s model ({model.uri}) is stored as a Python pickle, which can run any code "
                f"when loaded, so fruitlab refuses it; only if you trust whoever wrote it, pass --allow-pickle "
                f"(or set {ALLOW_PICKLE_ENV}=1)."
            )
        with mlflow_pickle_setting(allowed=True):
            return flavor.load_model(str(local), map_location="cpu")
    except (MlflowException, OSError, RuntimeError) as error:
        raise ModelError(f"cannot load model {model.uri} from {store.uri}: {error}") from error


def load_legacy_torchscript(path: Path, uri: str) -> nn.Module:
    """Legacy, removed in the next release: an int8 model of fruitlab 0.1, a TorchScript archive (torch.jit.load
    resolves only TorchScript types, so no Python code runs)."""
    warnings.warn(
        f"{uri} is a TorchScript int8 model of fruitlab 0.1, loaded for one more release: quantize its source "
        "model again with `fruitlab quantize` for the ONNX int8 model",
        FutureWarning,
        stacklevel=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's notice on its own loader: the one above says it
        return torch.jit.load(str(path), map_location="cpu")


def logged_onnx_file(store: Store, model: LoggedModel) -> Path:
    """The logged ONNX model's file, downloaded from `store` (a protobuf: reading it runs no code)."""
    try:
        with store.fluent():  # a models:/ URI resolves through the process-wide tracking URI
            return Path(mlflow.artifacts.download_artifacts(model.uri)) / model.data_path
    except (MlflowException, OSError) as error:
        raise ModelError(f"cannot load model {model.uri} from {store.uri}: {error}") from error


def is_torchscript_archive(path: Path) -> bool:
    """Legacy, with load_legacy_torchscript: whether `path` is what torch.jit.save writes (a zip of TorchScript code
    and constants), not a pickle written by torch.save, whose archive has neither."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(name.endswith("/constants.pkl") for name in names) and any("/code/" in name for name in names)


@contextmanager
def mlflow_pickle_setting(allowed: bool) -> Iterator[None]:
    """MLflow's own pickle switch, set for one load and restored after it (MLflow reads it at load time)."""
    previous = os.environ.get(MLFLOW_PICKLE_ENV)
    os.environ[MLFLOW_PICKLE_ENV] = str(allowed).lower()
    try:
        yield
    finally:
        if previous is None:
            del os.environ[MLFLOW_PICKLE_ENV]
        else:
            os.environ[MLFLOW_PICKLE_ENV] = previous


def load_run_config(store: Store, run_id: str) -> DictConfig:
    """The resolved config run `run_id` of `store` was trained with (its config.yaml artifact)."""
    try:
        with tempfile.TemporaryDirectory() as folder:
            return OmegaConf.load(store.download_artifact(run_id, "config.yaml", Path(folder)))
    except (MlflowException, OSError) as error:
        raise ModelError(f"run {run_id} has no config.yaml: it was not recorded by fruitlab ({error})") from error
