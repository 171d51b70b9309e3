"""Mistakes in a command or its data, and runs that diverge: one clear line, no traceback, no run left RUNNING."""

import os
import shutil
from pathlib import Path

import mlflow
import pytest
from conftest import FAST, compose_config, one_line_error, run_cli, train_config

from fruitlab.data.imagefolder import embedded_sample
from fruitlab.errors import ConfigError, NonFiniteLossError


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data=nope", "data=nope is not a config option; valid data options: cifar10, cifar100, fruits360,"),
        ("optim=sgdd", "optim=sgdd is not a config option; did you mean sgd? valid optim options: adadelta, adam"),
        ("lr=abc", "lr='abc' is not allowed: give a number > 0, e.g. lr=0.001."),
        ("trainer.max_epochs=ten", "trainer.max_epochs='ten' is not allowed: give a whole number >= 1"),
        ("lr=[0.1", "cannot parse the override 'lr=[0.1'"),
        ("epochs=3", "there is no key epochs in the config; did you mean trainer.max_epochs? (+epochs=VALUE adds"),
    ],
)
def test_config_mistakes_are_one_line_naming_the_value(override: str, expected: str) -> None:
    assert expected in one_line_error(run_cli(override))


def test_verbose_or_hydra_full_error_shows_the_traceback() -> None:
    assert "Traceback" in run_cli("data=nope", env={**os.environ, "HYDRA_FULL_ERROR": "1"}).stderr
    result = run_cli("lr=abc", "verbose=true")
    assert "Traceback" in result.stderr and result.stderr.strip().endswith("e.g. lr=0.001.")


def test_optimizer_settings_torch_refuses_fail_the_run_naming_them(store: str) -> None:
    """Each value in its range, but not together: torch's check, in one line naming them."""
    settings = ["optim=sgd", "optim.momentum=0", "optim.nesterov=true"]
    cfg = compose_config("model=lenet", *settings, f"tracking.uri={store}", *FAST)
    with pytest.raises(ConfigError, match=r"invalid sgd settings \(lr=0.001, momentum=0.0, weight_decay=0.0, nest"):
        train_config(cfg)


def test_an_unreachable_tracking_server_fails_at_once_in_one_line(tmp_path: Path) -> None:
    line = one_line_error(run_cli("tracking.uri=http://127.0.0.1:9", timeout=60))
    assert "cannot reach the MLflow tracking server at tracking.uri=http://127.0.0.1:9" in line


def test_an_unreachable_optuna_storage_fails_at_once_in_one_line(tmp_path: Path) -> None:
    storage = "postgresql+psycopg2://fruitlab@127.0.0.1:9/optuna"
    result = run_cli("-m", "lr=0.1,0.01", f"hydra.sweeper.storage={storage}", f"tracking.uri=sqlite:///{tmp_path}/m.db")
    assert f"cannot open Optuna storage '{storage}' (connection to server" in one_line_error(result)


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "fruits"
    shutil.copytree(embedded_sample(), root)
    return root


def _empty_folder(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty", "dataset folder not found"


def _text_named_jpeg(tmp_path: Path) -> tuple[Path, str]:
    root = _dataset(tmp_path)
    impostor = root / "Test" / "Mango 1" / "notes.jpg"
    impostor.write_text("not an image")
    return root, f"cannot read image {impostor}"


# A truncated JPEG takes the same path as the text file below (tests/e2e/test_data.py reads one in-process).
@pytest.mark.parametrize("make_dataset", [_empty_folder, _text_named_jpeg])
def test_dataset_problems_are_one_line_naming_the_path(tmp_path: Path, make_dataset) -> None:
    root, expected = make_dataset(tmp_path)
    result = run_cli(f"data.root={root}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}")
    assert expected in one_line_error(result)


def test_a_diverging_run_stops_failed_with_the_reason(store: str) -> None:
    cfg = compose_config("model=lenet", "optim=sgd", "lr=1e6", f"tracking.uri={store}", *FAST, "trainer.max_epochs=3")
    with pytest.raises(NonFiniteLossError, match=r"training diverged: train loss is (nan|inf)"):
        train_config(cfg)
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("NonFiniteLossError: training diverged")
