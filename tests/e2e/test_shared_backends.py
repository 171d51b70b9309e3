"""Shared infrastructure: an MLflow tracking server on PostgreSQL records a run exactly as the local SQLite
store does."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import FAST, metric_histories, run_cli, train_config
from mlflow_server import mlflow_server
from pg import PostgresServer

from fruitlab.data.imagefolder import ImageFolderDataModule
from fruitlab.training.module import to_unit_float

RUN = ["model=lenet", *FAST]


@pytest.fixture
def tracking_server(postgres: PostgresServer, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` with a PostgreSQL backend store and a local artifact root, on a free port."""
    backend = postgres.create_database(f"mlflow_{os.getpid()}_{time.monotonic_ns()}")
    with mlflow_server(backend, tmp_path) as url:
        yield url


def recorded(uri: str) -> dict[str, object]:
    """What a user compares between stores: params, metric histories (timings aside), artifact paths."""
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    params = {k: v for k, v in run.data.params.items() if k != "tracking.uri"}
    metrics = metric_histories(uri)
    return {"status": run.info.status, "params": params, "metrics": metrics, "artifacts": artifact_paths(client, run)}


def artifact_paths(client: mlflow.MlflowClient, run: mlflow.entities.Run, folder: str | None = None) -> set[str]:
    paths = set()
    for item in client.list_artifacts(run.info.run_id, folder):
        paths |= artifact_paths(client, run, item.path) if item.is_dir else {item.path}
    return paths


def predictions(uri: str) -> np.ndarray:
    mlflow.set_tracking_uri(uri)
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    data = ImageFolderDataModule()
    data.setup()
    return model.predict(to_unit_float(data.test.images[:16]).numpy())


def test_a_tracking_server_on_postgresql_records_a_run_as_the_sqlite_store_does(
    tracking_server: str, make_config, store: str, tmp_path: Path
) -> None:
    result = run_cli(*RUN, f"tracking.uri={tracking_server}", cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    train_config(make_config(*RUN, f"tracking.uri={store}"))

    on_server, on_sqlite = recorded(tracking_server), recorded(store)
    assert on_server["status"] == "FINISHED"
    assert on_server["params"]["model.name"] == "lenet"
    assert {"config.yaml", "history.json", "plots/learning_curves.png"} <= on_server["artifacts"]
    assert on_server == on_sqlite
    assert np.array_equal(predictions(tracking_server), predictions(store))
    assert (tmp_path / "mlruns" / "checkpoints").is_dir()  # checkpoints stay on the training machine
