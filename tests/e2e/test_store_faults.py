"""Faults of the MLflow store, each one line and exit code 2 instead of a traceback: a file that is not an intact
SQLite database, a store locked by another process, a read-only store folder, and a store deleted while a run is
going, which ends the run naming where its checkpoints and config are (nothing on disk is deleted). An
unreachable server is in test_bad_input.py, wrong credentials in test_auth_server.py."""

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Barrier

import mlflow
import pytest
from conftest import FAST, REPO, one_line_error, run_cli

from fruitlab.tracking.runs import InputData, RunRecorder
from fruitlab.tracking.store import Store

RUN = ["model=lenet", *FAST, "tracking.log_model=false", "report.gradcam=false"]


def a_store(folder: Path, runs: int = 40) -> Path:
    """A real MLflow SQLite store holding some runs."""
    store = Store.open(f"sqlite:///{folder / 'mlflow.db'}")
    client = mlflow.MlflowClient(store.uri)
    experiment = store.ensure_experiment("faults")
    for index in range(runs):
        run = client.create_run(experiment, run_name=f"run-{index}")
        client.log_param(run.info.run_id, "index", index)
    return folder / "mlflow.db"


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").write_bytes(os.urandom(8192))
    line = one_line_error(run_cli(*RUN, f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"))
    assert f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'} is not an intact SQLite database" in line


def test_a_truncated_store_is_one_line(tmp_path: Path) -> None:
    store = a_store(tmp_path)
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])
    line = one_line_error(run_cli(*RUN, f"tracking.uri=sqlite:///{store}"))
    assert "is not an intact SQLite database (truncated, damaged" in line


def test_a_store_locked_by_another_process_is_one_line(tmp_path: Path) -> None:
    store = a_store(tmp_path, runs=1)
    holder = sqlite3.connect(store)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        line = one_line_error(run_cli(*RUN, f"tracking.uri=sqlite:///{store}"))
    finally:
        holder.close()
    assert "is locked by another process" in line


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` made read-only, for root too (which permissions do not stop): immutable where root runs this."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root where chattr +i is unavailable: cannot make a folder read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_read_only_store_folder_is_one_line(tmp_path: Path) -> None:
    store = a_store(tmp_path / "store", runs=1)
    with read_only(store.parent):
        line = one_line_error(run_cli(*RUN, f"tracking.uri=sqlite:///{store}"))
    assert "cannot be written (a read-only file or folder)" in line


def test_a_store_deleted_mid_run_ends_it_naming_its_checkpoints_and_config(tmp_path: Path) -> None:
    store = tmp_path / "store" / "mlflow.db"
    command = [sys.executable, "-m", "fruitlab", *RUN, "trainer.max_epochs=30", f"tracking.uri=sqlite:///{store}"]
    training = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    checkpoints = store.parent / "checkpoints"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("*/last.ckpt")):  # the first epoch is recorded
        assert training.poll() is None and time.monotonic() < deadline, training.stderr.read()[-2000:]
        time.sleep(0.2)
    store.unlink()
    _, stderr = training.communicate(timeout=300)

    line = one_line_error(subprocess.CompletedProcess(command, training.returncode, "", stderr))
    (run_dir,) = checkpoints.iterdir()
    run_id = run_dir.name
    config = store.parent / "configs" / f"{run_id}.yaml"
    assert f"run {run_id} ended because its store failed" in line and "is gone" in line
    assert f"its checkpoints are in {run_dir} and its config in {config}" in line
    assert (run_dir / "last.ckpt").is_file() and "model:" in config.read_text()


def log_the_same_dataset(uri: str, experiment_id: str, start: Barrier) -> str:
    """One worker: open a run, wait for the others, then record the dataset they all record."""
    store = Store.open(uri)
    recorder = RunRecorder(mlflow.MlflowClient(uri).create_run(experiment_id).info.run_id, store)
    start.wait()
    try:
        recorder.log_inputs([InputData("fruits-train", "d1", str(REPO), "train", 10)])
        return "ok"
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def test_parallel_runs_that_record_the_same_dataset_all_record_it(tmp_path: Path) -> None:
    """MLflow looks a dataset up, then inserts it: workers that start together all miss it and all insert it.
    The losers of that race redo the write and find the winner's row, instead of failing their trials."""
    store = Store.open(f"sqlite:///{tmp_path / 'mlflow.db'}")
    uri = store.uri
    workers = 4
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(workers) as pool:
        for round_ in range(5):  # a fresh experiment each round: the dataset is new to it
            experiment_id = store.ensure_experiment(f"race-{round_}")
            start = manager.Barrier(workers)
            outcomes = pool.starmap(log_the_same_dataset, [(uri, experiment_id, start)] * workers)
            assert outcomes == ["ok"] * workers
            runs = mlflow.MlflowClient(uri).search_runs([experiment_id])
            assert [len(run.inputs.dataset_inputs) for run in runs] == [1] * workers
