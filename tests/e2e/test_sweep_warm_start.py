"""Warm starts end to end: finished runs in a real MLflow store seed a real `python -m fruitlab -m` TPE sweep's
Optuna study, and enqueued points run first."""

from pathlib import Path

import mlflow
import optuna
from conftest import FAST, compose_config, run_cli, train_config
from optuna.trial import TrialState

LENET = [*FAST, "model=lenet", "tracking.log_model=false"]
LR_SPACE = "lr=tag(log,interval(1e-4,1e-1))"


def sweep(store: str, *args: str) -> str:
    """Run the sweep; its output (the log lines)."""
    result = run_cli("-m", *LENET, f"tracking.uri={store}", LR_SPACE, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def the_study(store: str) -> optuna.Study:
    storage = f"sqlite:///{Path(store.removeprefix('sqlite:///')).parent / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def test_finished_runs_seed_a_tpe_sweep_as_complete_trials_once(store):
    ids = []
    for lr in ("0.001", "0.003", "0.01", "0.00005"):  # the last lies outside the sweep's space
        result = train_config(compose_config(*LENET, f"tracking.uri={store}", "tracking.experiment=known", f"lr={lr}"))
        ids.append(result.run_id)
    args = ("tracking.experiment=search", "hydra.sweeper.warm_start=[known]", "hydra.sweeper.n_trials=1")
    output = sweep(store, *args)
    assert (
        "warm start: 3 finished runs became complete trials; 1 runs skipped (1 lr outside the search space)" in output
    )
    study = the_study(store)
    seeded, (new,) = study.trials[:3], study.trials[3:]
    assert sorted(t.user_attrs["warm_start_run_id"] for t in seeded) == sorted(ids[:3])
    assert [t.number for t in seeded] == [0, 1, 2] and new.number == 3 and "mlflow_run_id" in new.user_attrs
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    client = mlflow.MlflowClient(store)
    for trial in seeded:
        run = client.get_run(trial.user_attrs["warm_start_run_id"])
        assert trial.params == {"lr": float(run.data.params["lr"])}
        assert trial.value == run.data.metrics["best_val_loss"]
        assert trial.intermediate_values == {0: run.data.metrics["val_loss"]}  # one epoch: step 0
    runs = client.search_runs([client.get_experiment_by_name("search").experiment_id])
    (parent,) = [run for run in runs if "sweep.parent" in run.data.tags]
    assert sorted(parent.data.tags["warm_start.runs"].split(",")) == sorted(ids[:3])
    assert parent.data.metrics["warm_start_trials"] == 3

    output = sweep(store, *args)  # the same command resumes the study: it is not seeded again
    assert "warm start" not in output
    assert len(the_study(store).trials) == 4


def test_enqueued_points_run_first_in_order_and_once(store):
    args = ("hydra.sweeper.enqueue=[{lr:0.01},{lr:0.001}]", "hydra.sweeper.n_trials=3")
    sweep(store, *args)
    study = the_study(store)
    assert [t.params["lr"] for t in study.trials[:2]] == [0.01, 0.001]
    assert len(study.trials) == 3 and study.trials[2].params["lr"] not in (0.01, 0.001)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    sweep(store, *args)  # resumed: the points are held, not enqueued again
    assert len(the_study(store).trials) == 3
