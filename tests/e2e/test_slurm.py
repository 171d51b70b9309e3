"""Sweeps through a real SLURM scheduler (a throw-away one-node cluster, tests/e2e/slurm.py): trials as submitit jobs,
the Optuna study in PostgreSQL, MLflow through a tracking server on PostgreSQL that serves the artifacts."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import optuna
import pytest
from conftest import FAST, run_cli
from mlflow_server import mlflow_server
from optuna.trial import TrialState
from pg import PostgresServer
from slurm import SlurmCluster

from fruitlab.serving.recorded import load_recorded_model
from fruitlab.tracking.store import Store
from fruitlab.training.cluster import SLURM_JOB_TAG

TINY = ["model=lenet", *FAST, "data.image_size=16", "optim=adam"]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=local", "hydra.launcher.mem_gb=1", "hydra.sweeper.n_jobs=2"]


@pytest.fixture
def shared(postgres: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(tracking server URL, study storage URL): MLflow on PostgreSQL serving its artifacts, and a study database."""
    tag = f"{os.getpid()}_{time.monotonic_ns()}"
    study = postgres.create_database(f"optuna_{tag}")
    with mlflow_server(postgres.create_database(f"mlflow_{tag}"), tmp_path) as url:
        yield url, study


def sweep_command(tmp_path: Path, url: str, study: str, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "fruitlab", "-m", *SLURM, *TINY, f"tracking.uri={url}",
            f"hydra.sweeper.storage={study}", f"hydra.sweep.dir={tmp_path / 'multirun'}", *overrides]  # fmt: skip


def run_sweep(cluster: SlurmCluster, command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=cluster.environment(), capture_output=True, text=True, timeout=900)


def the_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def the_runs(url: str) -> tuple[mlflow.entities.Run, dict[str, mlflow.entities.Run]]:
    """The sweep's parent run and its children by run id."""
    client = mlflow.MlflowClient(url)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_id: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    return parent, children


def jobs(cluster: SlurmCluster) -> dict[str, dict[str, str]]:
    """The cluster's accounting of its jobs: job id -> State, Start, End (ISO times, which sort as text)."""
    lines = cluster.run("sacct", "-X", "-n", "-o", "JobID,State,Start,End", "--parsable2").splitlines()
    fields = [line.split("|") for line in lines]
    return {job: {"State": state, "Start": start, "End": end} for job, state, start, end in fields}


def test_a_sweep_on_slurm_runs_two_jobs_at_once_records_them_through_the_server_and_runs_once(
    slurm: SlurmCluster, shared: tuple[str, str], tmp_path: Path
) -> None:
    url, study = shared
    command = sweep_command(tmp_path, url, study, "lr=0.01,0.003", "tracking.log_model=true")
    result = run_sweep(slurm, command, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sacct error" not in result.stdout + result.stderr  # the cluster reports job states through slurmdbd
    assert "+trial.threads=1" in result.stdout + result.stderr  # the job's one CPU

    trials = the_trials(study)
    assert sorted(t.params["lr"] for t in trials) == [0.003, 0.01]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    _, children = the_runs(url)  # the children of the sweep's parent run
    assert sorted(r.data.tags["trial_number"] for r in children.values()) == ["0", "1"]
    first, second = (jobs(slurm)[r.data.tags[SLURM_JOB_TAG]] for r in children.values())
    assert first["State"] == second["State"] == "COMPLETED"
    assert max(first["Start"], second["Start"]) < min(first["End"], second["End"])  # the two jobs ran at once

    client = mlflow.MlflowClient(url)
    champion = client.get_model_version_by_alias("fruits360", "champion")
    best = min(trials, key=lambda t: t.value)
    assert champion.run_id == best.user_attrs["mlflow_run_id"] and champion.run_id in children
    model = load_recorded_model(Store.open(url), "models:/fruits360@champion")  # files from the server's store
    assert model.run_id == champion.run_id and len(model.classes) == 10

    again = run_sweep(slurm, command, tmp_path)  # the same command again: every point is done
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(the_trials(study)) == 2 and len(the_runs(url)[1]) == 2


def test_a_job_cancelled_mid_trial_fails_its_trial_and_the_sweep_completes_every_point(
    slurm: SlurmCluster, shared: tuple[str, str], tmp_path: Path
) -> None:
    url, study = shared
    command = sweep_command(tmp_path, url, study, "lr=0.01,0.003,0.001", "trainer.max_epochs=3",
                            "tracking.log_model=false")  # fmt: skip
    log = tmp_path / "sweep.log"
    with log.open("w") as output:
        sweep = subprocess.Popen(command, cwd=tmp_path, env=slurm.environment(), stdout=output, stderr=output)
        cancelled = wait_for_a_training_job(slurm, url, sweep, log)
        slurm.run("scancel", cancelled)
        assert sweep.wait(timeout=900) == 0, log.read_text()[-3000:]

    trials = the_trials(study)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["lr"] for t in complete) == [0.001, 0.003, 0.01]  # every point, once
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    _, children = the_runs(url)
    run = children[failed.user_attrs["mlflow_run_id"]]
    assert run.data.tags[SLURM_JOB_TAG] == cancelled
    assert run.info.status == "FAILED" and run.data.tags["error"], run.data.tags
    assert jobs(slurm)[cancelled]["State"].startswith("CANCELLED")


def wait_for_a_training_job(cluster: SlurmCluster, url: str, sweep: subprocess.Popen, log: Path) -> str:
    """The SLURM job id of a trial that has started training (its run is recorded and tagged)."""
    deadline = time.monotonic() + 600
    while True:
        assert sweep.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        try:
            children = the_runs(url)[1].values()
        except ValueError:  # no parent run yet
            children = []
        running = [r for r in children if r.info.status == "RUNNING" and SLURM_JOB_TAG in r.data.tags]
        if running:
            return running[0].data.tags[SLURM_JOB_TAG]
        time.sleep(0.5)


def test_outside_a_slurm_job_a_run_prints_no_srun_hint(slurm: SlurmCluster, tmp_path: Path) -> None:
    """On a machine with SLURM's client tools (a login node), a local run stays quiet about `srun`."""
    assert slurm.run("which", "srun").strip()
    result = run_cli(*TINY, f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "tracking.log_model=false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "srun" not in result.stdout + result.stderr
