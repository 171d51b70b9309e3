"""No code runs from a model file: fruitlab's own models load with pickle refused, and a planted pickle payload
(which would create a marker file when unpickled) is refused by every command that loads a model, even when its
metadata claims it is one of fruitlab 0.1's int8 TorchScript models, which still load, as legacy (checkpoints loading
as plain tensors is checked in test_interrupt_resume.py)."""

import contextlib
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from conftest import FAST, compose_config, one_line_error, run_cli, train_config
from mlflow.exceptions import MlflowException
from torch import nn

from fruitlab.commands.export import export
from fruitlab.errors import ConfigError, ModelError
from fruitlab.serving.recorded import load_served_model
from fruitlab.tracking.logged_models import describe_logged_model, load_logged_model, log_torch_model
from fruitlab.tracking.runs import tracked_run
from fruitlab.tracking.store import Store


class Payload(nn.Linear):
    """A module whose unpickling creates the file `marker` (instead of rebuilding the module): what a hostile
    model file could do with any code."""

    def __init__(self, marker: Path) -> None:
        super().__init__(8, 10)
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def plant_pickle(uri: str, marker: Path, metadata: dict) -> str:
    """A run whose logged model is the payload in MLflow's pickle format, with fruitlab's metadata."""
    store = Store.open(uri)
    with tracked_run(store, store.ensure_experiment("planted")) as recorder:
        example = np.zeros((2, 3, 8, 8), dtype=np.float32)
        log_torch_model(
            recorder, Payload(marker), example, {"classes": [str(i) for i in range(10)], **metadata}, "pickle"
        )
    marker.unlink(missing_ok=True)  # MLflow may load what it logs to check its input example
    return recorder.run_id


@pytest.fixture(params=[{}, {"quantization": "int8-static"}], ids=["pickle", "pickle-claiming-int8"])
def planted(request: pytest.FixtureRequest, store: str, tmp_path: Path) -> tuple[str, str, Path]:
    marker = tmp_path / "code-ran"
    return store, plant_pickle(store, marker, request.param), marker


def test_serve_refuses_a_planted_pickle_in_one_line(planted: tuple[str, str, Path]) -> None:
    uri, run_id, marker = planted
    line = one_line_error(run_cli("serve", run_id, "--tracking-uri", uri, "--port", "9", timeout=300))
    assert run_id in line and "--allow-pickle" in line and "pickle" in line
    assert not marker.exists()


def test_init_from_and_export_refuse_a_planted_pickle(planted: tuple[str, str, Path], tmp_path: Path) -> None:
    uri, run_id, marker = planted
    with pytest.raises(ConfigError, match=f"{run_id}.*--allow-pickle"):
        train_config(compose_config("model=lenet", *FAST, f"tracking.uri={uri}", f"model.init_from={run_id}"))
    with pytest.raises(ModelError, match=f"{run_id}.*--allow-pickle"):
        export(run_id, tmp_path / "exports", tracking_uri=uri)
    assert not marker.exists()


def test_the_opt_in_loads_the_pickle_so_the_payload_is_real(store: str, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    run_id = plant_pickle(store, marker, {})
    with contextlib.suppress(AttributeError):  # what the payload returns is a file, not a module
        opened = Store.open(store)
        load_logged_model(opened, describe_logged_model(opened, run_id), allow_pickle=True)
    assert marker.exists()


def test_with_pickle_refused_fruitlab_models_load_and_pickled_ones_do_not(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_config(compose_config("model=lenet", *FAST, f"tracking.uri={store}"))
    mlflow.set_tracking_uri(store)
    (trained,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    with mlflow.start_run() as pickled:
        mlflow.pytorch.log_model(torch.nn.Linear(2, 2), name="model", serialization_format="pickle")

    opened = Store.open(store)
    loaded = load_logged_model(opened, describe_logged_model(opened, trained.info.run_id))
    assert loaded(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # MLflow checks archives for pickle
    model = mlflow.pyfunc.load_model(f"runs:/{trained.info.run_id}/model")
    assert model.predict(np.random.rand(2, 3, 32, 32).astype(np.float32)).shape == (2, 10)
    with pytest.raises(MlflowException, match="pickle"):
        mlflow.pyfunc.load_model(f"runs:/{pickled.info.run_id}/model")


def plant_legacy_torchscript(uri: str) -> str:
    """A run whose model is what fruitlab 0.1's `quantize` logged: a TorchScript archive with int8 metadata."""
    store = Store.open(uri)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10), nn.Softmax(dim=1)).eval()
    example = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    with tracked_run(store, store.ensure_experiment("legacy")) as recorder, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # writing the legacy format needs torch's deprecated tracer
        scripted = torch.jit.trace(model, torch.from_numpy(example))
        metadata = {"classes": [str(i) for i in range(10)], "quantization": "int8-static"}
        log_torch_model(recorder, scripted, example, metadata, "pickle")
    return recorder.run_id


def test_a_legacy_torchscript_int8_model_still_loads_with_a_notice(store: str, tmp_path: Path) -> None:
    run_id = plant_legacy_torchscript(store)
    with pytest.warns(FutureWarning, match="TorchScript int8 model of fruitlab 0.1.*fruitlab quantize"):
        served = load_served_model(Store.open(store), run_id)
    assert served.predict(torch.rand(4, 3, 8, 8)).sum(dim=1).tolist() == pytest.approx([1.0] * 4)
    with pytest.warns(FutureWarning), pytest.raises(ModelError, match="int8-static model already"):
        export(run_id, tmp_path / "exports", tracking_uri=store)
