"""fruitlab's models pass MLflow's strict loading, which refuses pickle (checkpoints loading as plain tensors is
checked in test_interrupt_resume.py)."""

import mlflow
import numpy as np
import pytest
import torch
from conftest import FAST, compose_config
from mlflow.exceptions import MlflowException

from fruitlab.training.fit import fit


def test_with_pickle_refused_fruitlab_models_load_and_pickled_ones_do_not(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit(compose_config("model=lenet", *FAST, f"tracking.uri={store}"))
    mlflow.set_tracking_uri(store)
    (trained,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    with mlflow.start_run() as pickled:
        mlflow.pytorch.log_model(torch.nn.Linear(2, 2), name="model", serialization_format="pickle")

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # MLflow checks archives for pickle
    model = mlflow.pyfunc.load_model(f"runs:/{trained.info.run_id}/model")
    assert model.predict(np.random.rand(2, 3, 32, 32).astype(np.float32)).shape == (2, 10)
    with pytest.raises(MlflowException, match="pickle"):
        mlflow.pyfunc.load_model(f"runs:/{pickled.info.run_id}/model")
