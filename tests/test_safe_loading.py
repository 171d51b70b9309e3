"""Pickled models are refused (checkpoints loading as plain tensors is checked in test_interrupt_resume.py)."""

import mlflow
import pytest
import torch
from mlflow.exceptions import MlflowException

import fruitlab  # noqa: F401  (importing fruitlab sets MLflow's loading policy)


def test_a_pickled_model_in_the_store_is_refused(store: str) -> None:
    mlflow.set_tracking_uri(store)
    with mlflow.start_run() as run:
        mlflow.pytorch.log_model(torch.nn.Linear(2, 2), name="model", serialization_format="pickle")
    with pytest.raises(MlflowException, match="pickle"):
        mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
