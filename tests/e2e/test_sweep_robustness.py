"""Sweeps under stress: a diverging trial, a SIGTERM mid-trial, two workers on one PostgreSQL-backed study."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from conftest import FAST, REPO
from optuna.trial import TrialState
from pg import PostgresServer

QUICK = ["model=lenet", *FAST, "tracking.log_model=false"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores: no oversubscription


def sweep_command(store: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "fruitlab", "-m", *QUICK, f"tracking.uri={store}", *args]


def the_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def runs_by_id(store: str) -> dict[str, mlflow.entities.Run]:
    client = mlflow.MlflowClient(store)
    return {r.info.run_id: r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}


def sqlite_storage(store: str) -> str:
    return f"sqlite:///{Path(store.removeprefix('sqlite:///')).parent / 'optuna.db'}"


def test_a_diverging_trial_fails_the_sweep_goes_on_and_sigterm_fails_the_next(store: str) -> None:
    """Trial 0 diverges at once; trial 1 trains until SIGTERM arrives."""
    root = Path(store.removeprefix("sqlite:///")).parent
    log = root.parent / "sweep.log"
    command = sweep_command(store, "optim=sgd", "lr=1e6,0.01", "trainer.max_epochs=1000")
    with log.open("w") as output:
        worker = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=output)
        deadline = time.monotonic() + 240
        while not list(root.glob("checkpoints/*/last.ckpt")):  # trial 1 is training
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        returncode = worker.wait(timeout=120)

    assert returncode == 128 + signal.SIGTERM
    last_line = log.read_text().strip().splitlines()[-1]
    assert last_line.startswith("fruitlab: sweep interrupted by SIGTERM; the trial it was running is FAIL")
    diverged, interrupted = the_trials(sqlite_storage(store))
    assert diverged.params["lr"] == 1e6 and diverged.state == TrialState.FAIL
    assert diverged.user_attrs["fail_reason"].startswith("NonFiniteLossError: training diverged")
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["fail_reason"] == "interrupted by SIGTERM"
    runs = runs_by_id(store)
    diverged_run = runs.pop(diverged.user_attrs["mlflow_run_id"])
    assert diverged_run.info.status == "FAILED" and diverged_run.data.tags["error"].startswith("NonFiniteLossError")
    interrupted_run = runs.pop(interrupted.user_attrs["mlflow_run_id"])
    assert interrupted_run.info.status == "KILLED" and interrupted_run.data.tags["trial_state"] == "FAIL"
    (parent,) = runs.values()
    assert parent.info.status == "KILLED"


@pytest.mark.parametrize(
    "search",
    [["lr=0.1,0.03,0.01,0.003"], ["hydra.sweeper.sampler=random", "hydra.sweeper.n_trials=4", "lr=interval(1e-3,0.1)"]],
    ids=["grid", "random"],
)
def test_two_workers_on_a_postgresql_study_run_each_trial_once(
    postgres: PostgresServer, store: str, search: list[str], request: pytest.FixtureRequest
) -> None:
    storage = postgres.create_database(f"optuna_{request.node.callspec.id}")
    # A short heartbeat: a worker that waits for the other's last trial looks again every 2 s, not 10 s.
    settings = [f"hydra.sweeper.storage={storage}", "hydra.sweeper.heartbeat_interval=2"]
    command = sweep_command(store, "optim=sgd", *settings, *search)
    workers = [
        subprocess.Popen(command, cwd=REPO, env=ONE_THREAD, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]

    trials = the_trials(storage)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4  # none lost, none beyond the budget
    if "hydra.sweeper.sampler=random" not in search:
        assert sorted(t.params["lr"] for t in trials) == [0.003, 0.01, 0.03, 0.1]  # every point once
    children = [r for r in runs_by_id(store).values() if "mlflow.parentRunId" in r.data.tags]
    assert sorted(int(r.data.tags["trial_number"]) for r in children) == [t.number for t in trials]
    assert {r.info.status for r in children} == {"FINISHED"}
    claimed = [sum(f"trial {t.number}: " in output for t in trials) for output in outputs]
    assert sum(claimed) == 4 and min(claimed) >= 1, claimed  # both workers took part
