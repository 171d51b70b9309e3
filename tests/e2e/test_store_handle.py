"""An explicit store handle: two stores in one process each hold their own runs, a run is nested only under the
parent it names, MLflow's process-wide tracking URI is left as it was, and logging a model never loads
`pytorch_lightning`."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from conftest import FAST, REPO, compose_config, run_cli

from fruitlab.errors import ModelError
from fruitlab.tracking.logged_models import describe_logged_model, logged_model_uris
from fruitlab.tracking.query import find_run
from fruitlab.tracking.runs import tracked_run
from fruitlab.tracking.store import TRACKING_URI_ENV, Store
from fruitlab.training.run import run

PARENT_TAG = "mlflow.parentRunId"


def run_ids(store: Store) -> set[str]:
    client = mlflow.MlflowClient(store.uri)
    return {r.info.run_id for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}


def test_two_stores_in_one_process_hold_their_own_runs(tmp_path: Path) -> None:
    before = (mlflow.get_tracking_uri(), os.environ.get(TRACKING_URI_ENV))
    first = Store.open(f"sqlite:///{tmp_path / 'first' / 'mlflow.db'}")
    second = Store.open(f"sqlite:///{tmp_path / 'second' / 'mlflow.db'}")
    # A run of the second store opened while one of the first is open: neither nests in the other.
    with tracked_run(first, first.ensure_experiment("shared-name"), "outer") as outer:
        outer.log_params({"store": "first"})
        with tracked_run(second, second.ensure_experiment("shared-name"), "inner") as inner:
            inner.log_params({"store": "second"})
        with tracked_run(first, first.ensure_experiment("shared-name"), "child", outer.run_id) as child:
            child.log_metrics({"x": 1.0})

    assert run_ids(first) == {outer.run_id, child.run_id} and run_ids(second) == {inner.run_id}
    assert find_run(first, inner.run_id) is None and find_run(second, outer.run_id) is None
    assert find_run(second, inner.run_id).params == {"store": "second"}
    assert PARENT_TAG not in find_run(second, inner.run_id).tags  # no parent inferred from the open outer run
    assert find_run(first, child.run_id).parent_run_id == outer.run_id  # the parent it named
    assert {find_run(first, r).status for r in (outer.run_id, child.run_id)} == {"FINISHED"}

    # a real fit with its model logged, into the first store only
    cfg = compose_config("model=lenet", *FAST, f"tracking.uri={first.uri}", "latency.batch_sizes=[1]")
    result = run(cfg, first)
    assert run_ids(first) == {outer.run_id, child.run_id, result.run_id} and run_ids(second) == {inner.run_id}
    recorded = find_run(first, result.run_id)
    assert recorded.status == "FINISHED" and recorded.parent_run_id is None
    assert (first.root / "checkpoints" / result.run_id / "last.ckpt").is_file()
    assert (first.root / "configs" / f"{result.run_id}.yaml").is_file()
    assert not (second.root / "checkpoints").exists()
    assert logged_model_uris(first, recorded.experiment_id, result.run_id)[0] == f"runs:/{result.run_id}/model"
    assert describe_logged_model(first, result.run_id).run_id == result.run_id
    with pytest.raises(ModelError, match=f"cannot find model '{result.run_id}' in {second.uri}"):
        describe_logged_model(second, result.run_id)
    assert (mlflow.get_tracking_uri(), os.environ.get(TRACKING_URI_ENV)) == before


# Trains and logs a model in this very process, then says which Lightning packages it imported.
TRAIN_AND_LOG = """
import sys
from fruitlab.config import compose_config
from fruitlab.tracking.store import Store
from fruitlab.training.run import run
cfg = compose_config([*sys.argv[1:]])
run(cfg, Store.open(cfg.tracking.uri))
lightning_autolog = ("pytorch_lightning", "mlflow.pytorch._lightning_autolog")
print("loaded:", sorted(name for name in lightning_autolog if name in sys.modules))
print("pytorch flavor:", "mlflow.pytorch" in sys.modules)
"""


def test_logging_a_model_never_imports_pytorch_lightning(tmp_path: Path) -> None:
    overrides = ["model=lenet", *FAST, f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "latency.batch_sizes=[1]"]
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_AND_LOG, *overrides], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded: []" in result.stdout and "pytorch flavor: True" in result.stdout


def test_a_sweep_whose_trials_log_models_prints_nothing_from_a_second_lightning(store: str) -> None:
    """From the second trial on, a second Lightning package would log through `pytorch_lightning` and print its
    cloud-logger tip; every trial here logs its model (report.trials=all)."""
    result = run_cli("-m", "model=lenet", "lr=0.1,0.01,0.001", "report.trials=all", f"tracking.uri={store}", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "trial 2 COMPLETE" in output
    assert "pytorch_lightning" not in output and "litlogger" not in output
