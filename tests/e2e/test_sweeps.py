"""Sweeps end to end: real `python -m fruitlab -m` processes, a real Optuna storage and MLflow store."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
from conftest import FAST, REPO, run_cli
from optuna.trial import TrialState
from pg import free_port

# Small, quick trials: 16-pixel images, no progress bars (and a one-block VGG unless a test picks a model).
SWEEP_FAST = [*FAST, "data.image_size=16"]
VGG1 = "model=vgg1"


def sweep(store: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    result = run_cli("-m", *SWEEP_FAST, f"tracking.uri={store}", *args, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def sweep_process(store: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fruitlab", "-m", *SWEEP_FAST, f"tracking.uri={store}", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def optuna_storage(store: str) -> str:
    return f"sqlite:///{Path(store.removeprefix('sqlite:///')).parent / 'optuna.db'}"


def the_study(store: str) -> optuna.Study:
    (summary,) = optuna.get_all_study_summaries(optuna_storage(store))
    return optuna.load_study(study_name=summary.study_name, storage=optuna_storage(store))


def all_runs(store: str) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient(store)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def parents_and_children(store: str) -> tuple[list, list]:
    runs = all_runs(store)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def test_grid_sweep_runs_every_point_once_resumes_and_crowns_a_champion(store, real_data):
    command = [VGG1, "optim=sgd,adam", "lr=0.1,0.01", f"data.root={real_data}"]
    sweep(store, *command)

    study = the_study(store)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert {(t.params["optim"], t.params["lr"]) for t in study.trials} == set(
        itertools.product(["sgd", "adam"], [0.1, 0.01])
    )
    (parent,), children = parents_and_children(store)
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(int(c.data.tags["trial_number"]) for c in children) == [0, 1, 2, 3]
    assert {c.data.tags["trial_state"] for c in children} == {"COMPLETE"}
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sampler"] == "grid"
    assert parent.data.params["study_name"] == study.study_name
    assert parent.data.metrics["best_val_loss"] == pytest.approx(study.best_value)
    artifacts = {a.path for a in mlflow.MlflowClient(store).list_artifacts(parent.info.run_id, "plots")}
    assert {
        f"plots/{name}.png" for name in ("optimization_history", "param_importances", "parallel_coordinate", "slice")
    } <= artifacts
    table = mlflow.artifacts.load_text(f"{parent.info.artifact_uri}/trials.csv")
    assert len(table.strip().splitlines()) == 1 + 4

    mlflow.set_tracking_uri(store)
    champion = mlflow.MlflowClient().get_model_version_by_alias("fruits360", "champion")
    assert champion.run_id == study.best_trial.user_attrs["mlflow_run_id"]
    model = mlflow.pyfunc.load_model("models:/fruits360@champion")
    images = np.random.default_rng(0).random((5, 3, 16, 16), dtype=np.float32)
    probabilities = np.asarray(model.predict(images))
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)

    sweep(store, *command)  # the same command again: nothing left to run
    assert len(the_study(store).trials) == 4
    assert len(all_runs(store)) == 5
    assert len(mlflow.MlflowClient().search_model_versions("name='fruits360'")) == 1


def wait_for(condition, timeout: float = 180, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def test_a_killed_trial_is_run_again_on_resume(store):
    command = [
        "optim=sgd,adam",
        "trainer.max_epochs=2",
        "tracking.log_model=false",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=3",
    ]
    worker = sweep_process(store, *command)
    try:
        for line in worker.stdout:  # the stores exist once the first trial is announced
            if "trial 0:" in line:
                break
        wait_for(lambda: "mlflow_run_id" in the_study(store).trials[0].user_attrs)  # its run is under way
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    killed = the_study(store).trials
    assert [t.state for t in killed] == [TrialState.RUNNING]

    sweep(store, *command)  # waits until the killed trial is stale, fails it and runs its point again
    trials = the_study(store).trials
    assert trials[0].state == TrialState.FAIL
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["optim"] for t in complete) == ["adam", "sgd"]
    assert killed[0].params in [t.params for t in complete]
    runs = {r.info.run_id: r for r in all_runs(store)}
    lost = runs[trials[0].user_attrs["mlflow_run_id"]]
    assert lost.info.status == "KILLED"
    assert lost.data.tags["trial_state"] == "FAIL"
    assert {r.info.status for r in runs.values()} == {"FINISHED", "KILLED"}
    (parent,) = [r for r in runs.values() if "mlflow.parentRunId" not in r.data.tags]
    # the killed trial's point was run again and completed: not a failure of the study any more
    assert parent.data.metrics["trials_fail"] == 0 and parent.data.metrics["trials_failed_then_redone"] == 1


def test_two_workers_share_a_grid_without_running_a_point_twice(store):
    command = [VGG1, "optim=sgd,adam", "lr=0.1,0.01", "tracking.log_model=false"]
    workers = [sweep_process(store, *command) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]

    trials = the_study(store).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    points = [(t.params["optim"], t.params["lr"]) for t in trials]
    assert sorted(points) == sorted(itertools.product(["sgd", "adam"], [0.1, 0.01]))
    parents, children = parents_and_children(store)
    assert len(parents) == 1
    assert len(children) == 4
    claimed = [sum(f"trial {t.number}: " in output for t in trials) for output in outputs]
    assert sum(claimed) == 4 and min(claimed) >= 1, claimed  # both workers took part


def test_failing_trials_are_recorded_with_their_reason_and_the_sweep_goes_on(store):
    # lr=1e12 diverges (a NaN loss stops the run); lr=-1 is refused by the config's checks.
    sweep(store, VGG1, "optim=sgd", "lr=0.001,1e12,-1", "tracking.log_model=false")
    trials = {t.params["lr"]: t for t in the_study(store).trials}
    assert trials[0.001].state == TrialState.COMPLETE
    assert trials[1e12].state == trials[-1].state == TrialState.FAIL
    assert trials[1e12].user_attrs["fail_reason"].startswith("NonFiniteLossError: training diverged")
    assert trials[-1].user_attrs["fail_reason"].startswith("ConfigError: lr=-1 is not allowed")
    assert "give a number > 0" in trials[-1].user_attrs["fail_reason"]  # what lr allows
    runs = {r.info.run_id: r for r in all_runs(store)}
    diverged = runs[trials[1e12].user_attrs["mlflow_run_id"]]
    assert diverged.info.status == "FAILED" and diverged.data.tags["trial_state"] == "FAIL"
    assert diverged.data.tags["error"].startswith("NonFiniteLossError: training diverged")
    assert "mlflow_run_id" not in trials[-1].user_attrs  # the bad value is refused before a run starts


def test_a_tpe_sweep_prunes_hopeless_learning_rates(store):
    sweep(store, VGG1, "optim=sgd", "lr=tag(log,interval(1e-3,1e2))", "trainer.max_epochs=3",
          "tracking.log_model=false", "hydra.sweeper.n_trials=3", "hydra.sweeper.pruner=median",
          "hydra.sweeper.pruner_options={n_startup_trials:1}")  # fmt: skip
    study = the_study(store)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and study.best_trial.state == TrialState.COMPLETE
    runs = {r.info.run_id: r for r in all_runs(store)}
    for trial in pruned:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.info.status == "FINISHED"
        assert run.data.tags["trial_state"] == "PRUNED"
        assert int(run.data.tags["pruned_epoch"]) == trial.user_attrs["pruned_epoch"] < 2
        assert run.data.metrics["epochs"] < 3
    (parent,) = parents_and_children(store)[0]
    assert parent.data.params["pruner"] == "median"
    assert parent.data.params["sampler"] == "tpe"
    assert parent.data.metrics["trials_pruned"] == len(pruned)


def test_a_multi_objective_sweep_draws_the_pareto_front_and_tags_its_trials(store):
    sweep(store, "model=lenet,vgg1", "objective.metric=val_acc", "objective.direction=maximize",
          "tracking.log_model=false", "hydra.sweeper.sampler=nsga2", "hydra.sweeper.n_trials=3",
          "hydra.sweeper.objectives={val_acc:maximize,latency_b1_p50_ms:minimize}")  # fmt: skip
    study = the_study(store)
    assert study.metric_names == ["val_acc", "latency_b1_p50_ms"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    runs = {r.info.run_id: r for r in all_runs(store)}
    front = {t.number for t in study.best_trials}
    for trial in complete:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert trial.values == [run.data.metrics["best_val_acc"], run.data.metrics["latency_b1_p50_ms"]]
        assert run.data.tags["pareto"] == str(trial.number in front).lower()
    (parent,) = parents_and_children(store)[0]
    artifacts = {a.path for a in mlflow.MlflowClient(store).list_artifacts(parent.info.run_id, "plots")}
    assert "plots/pareto_front.png" in artifacts
    assert parent.data.params["sampler"] == "nsga2"


def pca_fits(cache: Path) -> set[Path]:
    return set(cache.glob("pca-*-210.pt"))


def test_a_pca_components_sweep_fits_pca_once(store, real_data):
    cache = Path(os.environ["FRUITLAB_CACHE"])
    before = pca_fits(cache)
    # seed=7: a training split (hence a PCA fit) of this test's own
    sweep(store, "data=fruits360_pca", "model=ffnn", "data.n_components=10,30", "data.fit_components=210",
          "seed=7", f"data.root={real_data}", "tracking.log_model=false")  # fmt: skip
    assert len(pca_fits(cache) - before) == 1
    trials = the_study(store).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    children = sorted(parents_and_children(store)[1], key=lambda r: int(r.data.params["data.n_components"]))
    assert [r.data.params["data.pca_fitted_components"] for r in children] == ["210", "210"]
    variance = [r.data.metrics["pca_explained_variance"] for r in children]
    assert 0 < variance[0] < variance[1] < 1


@pytest.mark.slow
def test_the_pca_components_sweep_runs_11_trials_on_one_pca_fit(store, real_data):
    cache = Path(os.environ["FRUITLAB_CACHE"])
    before = pca_fits(cache)
    result = run_cli("-m", "sweep=pca_components", "seed=11", f"data.root={real_data}", f"tracking.uri={store}",
            "trainer.max_epochs=1", "trainer.enable_progress_bar=false", timeout=3600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(pca_fits(cache) - before) == 1
    trials = the_study(store).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 11
    assert sorted(t.params["data.n_components"] for t in trials) == list(range(10, 211, 20))


def test_a_single_run_registers_itself_on_request(store):
    result = run_cli(*SWEEP_FAST, VGG1, f"tracking.uri={store}", "tracking.register=tiny_vgg")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = all_runs(store)
    (version,) = mlflow.MlflowClient(store).search_model_versions("name='tiny_vgg'")
    assert version.run_id == run.info.run_id


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, subprocess.CompletedProcess]:
    """A finished 2-point grid sweep of 2-epoch trials: (its MLflow store, the sweep's process)."""
    store = f"sqlite:///{tmp_path_factory.mktemp('grid') / 'mlruns' / 'mlflow.db'}"
    return store, sweep(store, "model=lenet", "lr=0.01,0.001", "trainer.max_epochs=2", "tracking.log_model=false")


def test_a_grid_sweeps_trials_report_each_epoch_and_it_ends_with_its_link(grid_sweep) -> None:
    """A grid sweep has no pruner, yet each trial's learning curve is in the storage (Optuna Dashboard's plot)."""
    store, result = grid_sweep
    trials = the_study(store).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        assert sorted(trial.intermediate_values) == [0, 1]  # one value per epoch: val_loss
        assert trial.value == pytest.approx(min(trial.intermediate_values.values()))
    (parent,), _ = parents_and_children(store)
    page = f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}"
    assert f"the sweep in the MLflow UI: {page}?workflowType=machine_learning" in result.stdout + result.stderr


def test_optuna_dashboard_serves_the_sweeps_learning_curves(grid_sweep) -> None:
    pytest.importorskip("optuna_dashboard", reason="pip install 'fruitlab[dashboard]'")
    store, _ = grid_sweep
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(Path(sys.executable).with_name("optuna-dashboard")), optuna_storage(store)]
    command += ["--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: answers(f"{url}/api/studies"), timeout=120)
        (summary,) = json.loads(answers(f"{url}/api/studies"))["study_summaries"]
        assert summary["study_name"] == the_study(store).study_name
        study = json.loads(answers(f"{url}/api/studies/{summary['study_id']}?after=0"))
        assert study["has_intermediate_values"]
        assert [[v["step"] for v in t["intermediate_values"]] for t in study["trials"]] == [[0, 1], [0, 1]]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def answers(url: str) -> str | None:
    """The body `url` answers with, or None while nothing listens there."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None
