"""Ctrl-C and SIGTERM end a run KILLED with its last checkpoint kept; `resume=<run_id>` continues it to the
metrics of an uninterrupted run; the same seed gives the same metrics."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import mlflow
import pytest
import torch
from conftest import FAST, REPO, compose_config, metric_histories, train_config

from fruitlab.errors import ConfigError, RunInterrupted

# Three short epochs with a schedule, so that resuming must restore weights, optimizer, scheduler and RNG.
THREE_EPOCHS = ["model=lenet", *FAST, "trainer.max_epochs=3", "scheduler=cosine", "tracking.log_model=false"]


def the_run(uri: str) -> mlflow.entities.Run:
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The store of one uninterrupted THREE_EPOCHS run."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('straight') / 'mlflow.db'}"
    train_config(compose_config(*THREE_EPOCHS, f"tracking.uri={uri}"))
    return uri


def test_sigterm_during_an_epoch_kills_the_run_keeps_its_checkpoint_and_says_how_to_resume(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    stderr = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "fruitlab", "model=lenet", *FAST, "trainer.max_epochs=1000", f"tracking.uri={uri}"]
    with stderr.open("w") as err:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
        last = wait_for(lambda: next((tmp_path / "checkpoints").glob("*/last.ckpt"), None), process)
        process.send_signal(signal.SIGTERM)  # epoch 0 is checkpointed: the run is inside a later epoch
        returncode = process.wait(timeout=120)

    run = the_run(uri)
    run_id = run.info.run_id
    message = stderr.read_text()
    assert returncode == 128 + signal.SIGTERM
    assert "Traceback" not in message
    last_line = message.strip().splitlines()[-1]
    assert last_line.startswith(f"fruitlab: interrupted by SIGTERM; run {run_id} is KILLED")
    assert last_line.endswith(f"tracking.uri={uri} resume={run_id}")
    assert run.info.status == "KILLED" and run.data.tags["error"] == "interrupted by SIGTERM"
    assert last == tmp_path / "checkpoints" / run_id / "last.ckpt" and last.is_file()
    checkpoint = torch.load(last, weights_only=True)  # plain tensors and containers only
    logged_epochs = [m.step for m in mlflow.MlflowClient(uri).get_metric_history(run_id, "val_loss")]
    assert logged_epochs == list(range(len(logged_epochs)))
    assert checkpoint["epoch"] in logged_epochs


def wait_for(find, process: subprocess.Popen, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        assert process.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    process.kill()
    raise AssertionError("no checkpoint appeared")


class CtrlCInSecondEpoch(pl.Callback):
    """Sends this process a real SIGINT (Ctrl-C) in the middle of epoch 1."""

    def on_train_batch_start(self, trainer: pl.Trainer, *_args) -> None:
        if trainer.current_epoch == 1 and trainer.global_step == trainer.num_training_batches + 2:
            os.kill(os.getpid(), signal.SIGINT)


class CtrlCHooks:
    """Training hooks (as a sweep trial plugs in) that add the Ctrl-C above."""

    def callbacks(self) -> list[pl.Callback]:
        return [CtrlCInSecondEpoch()]

    def run_started(self, recorder: object) -> None:
        pass

    def stopped_early(self) -> bool:
        return False

    def leads(self, metrics: dict[str, float]) -> bool:
        return True


def test_resume_continues_the_same_run_to_the_metrics_of_an_uninterrupted_one(
    uninterrupted: str, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(RunInterrupted, match="interrupted by SIGINT") as interrupted:
        train_config(compose_config(*THREE_EPOCHS, f"tracking.uri={uri}"), CtrlCHooks())
    run_id = interrupted.value.run_id
    assert the_run(uri).info.status == "KILLED"
    assert [m.step for m in mlflow.MlflowClient(uri).get_metric_history(run_id, "val_loss")] == [0]

    with pytest.raises(ConfigError, match=r"resume=.*lr=0.5 \(run: 0.001\)"):
        train_config(compose_config(*THREE_EPOCHS, f"tracking.uri={uri}", f"resume={run_id}", "lr=0.5"))
    train_config(compose_config(*THREE_EPOCHS, f"tracking.uri={uri}", f"resume={run_id}"))

    run = the_run(uri)
    assert run.info.run_id == run_id and run.info.status == "FINISHED" and "error" not in run.data.tags
    resumed = metric_histories(uri)
    assert [step for step, _ in resumed["val_loss"]] == [0, 1, 2]
    assert resumed == metric_histories(uninterrupted)
    elapsed = [m.value for m in mlflow.MlflowClient(uri).get_metric_history(run_id, "elapsed_s")]
    assert len(elapsed) == 3 and elapsed == sorted(elapsed)  # the clock goes on across the interruption
    history = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/history.json")
    assert [epoch for epoch, _ in history["val_loss"]] == [0, 1, 2]
    with pytest.raises(ConfigError, match="FINISHED; there is nothing to resume"):
        train_config(compose_config(*THREE_EPOCHS, f"tracking.uri={uri}", f"resume={run_id}"))


def test_the_same_seed_gives_the_same_metrics(uninterrupted: str, store: str) -> None:
    train_config(compose_config(*THREE_EPOCHS, f"tracking.uri={store}"))
    again = metric_histories(store)
    assert set(again) >= {"train_loss", "val_loss", "val_acc", "test_acc", "test_loss", "lr"}
    assert again == metric_histories(uninterrupted)
