"""Sweeps at scale: trials in parallel through real Hydra launchers (joblib, submitit_local), sweeps that end
when their trials fail, distinct points across workers, and the upstream Optuna sweeper's settings on a Hydra
task that is not fruitlab's training (tests/e2e/apps/toy_task.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
from conftest import FAST, REPO, one_line_error, run_cli
from omegaconf import OmegaConf
from optuna.trial import TrialState

TINY = ["model=lenet", *FAST, "data.image_size=16", "tracking.log_model=false"]
TOY = REPO / "tests" / "e2e" / "apps" / "toy_task.py"


def the_study(storage: str) -> optuna.Study:
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def sqlite_beside(store: str) -> str:
    return f"sqlite:///{Path(store.removeprefix('sqlite:///')).parent / 'optuna.db'}"


def runs_of(store: str) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient(store)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def parent_and_children(store: str) -> tuple[mlflow.entities.Run, list[mlflow.entities.Run]]:
    runs = runs_of(store)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return parent, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def assert_linked(trials: list[optuna.trial.FrozenTrial], parent, children) -> None:
    """Each trial's run is a child of the parent, tagged with its trial number and final state."""
    by_id = {c.info.run_id: c for c in children}
    for trial in trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert int(run.data.tags["trial_number"]) == trial.number
        assert run.data.tags["trial_state"] == trial.state.name


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def lines_with(result: subprocess.CompletedProcess, text: str) -> list[str]:
    """The log lines of a run that contain `text`, without their time stamp."""
    lines = (result.stdout + result.stderr).splitlines()
    return [line.split("[HYDRA] ", 1)[-1] for line in lines if text in line]


# -- parallel trials through real launchers ------------------------------------------------------------------


def test_joblib_runs_two_trials_at_once_nested_and_prunes_in_its_workers(store):
    """Trials 0 and 1 (good learning rates) run side by side in joblib workers; trial 2 (a hopeless one)
    starts when a slot frees and is pruned at its first epoch by the median of the finished trials."""
    pruner = ["hydra.sweeper.pruner=median", "hydra.sweeper.pruner_options={n_startup_trials:1,n_warmup_steps:0}"]
    result = run_cli("-m", *TINY, f"tracking.uri={store}", "optim=adam", "lr=0.01,0.003,1e-7",
                     "trainer.max_epochs=2", "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", *pruner)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    trials = the_study(sqlite_beside(store)).trials
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE] * 2
    assert trials[2].state == TrialState.PRUNED and trials[2].user_attrs["pruned_epoch"] == 0
    parent, children = parent_and_children(store)
    assert len(children) == 3
    assert_linked(trials, parent, children)
    first, second = (next(c for c in children if c.data.tags["trial_number"] == str(n)).info for n in (0, 1))
    assert max(first.start_time, second.start_time) < min(first.end_time, second.end_time)  # they overlapped
    threads = max(1, len(os.sched_getaffinity(0)) // 2)  # the cores divided between the two jobs
    assert f"+trial.threads={threads}" in result.stdout + result.stderr


def test_submitit_local_runs_a_sweep_with_nested_runs_and_a_champion(store):
    result = run_cli("-m", *TINY, f"tracking.uri={store}", "tracking.log_model=true", "optim=adam",
                     "lr=0.01,0.003,0.001", "hydra/launcher=submitit_local", "hydra.sweeper.n_jobs=2")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    study = the_study(sqlite_beside(store))
    reasons = [t.user_attrs.get("fail_reason") for t in study.trials]
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3, reasons
    parent, children = parent_and_children(store)
    assert_linked(study.trials, parent, children)
    champion = mlflow.MlflowClient(store).get_model_version_by_alias("fruits360", "champion")
    assert champion.run_id == study.best_trial.user_attrs["mlflow_run_id"] == parent.data.tags["best_run_id"]


def test_n_jobs_with_a_launcher_that_runs_jobs_in_process_runs_them_one_at_a_time_with_one_warning(tmp_path):
    result = toy(tmp_path, "x=0,1", "hydra.sweeper.n_jobs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert lines_with(result, "hydra.sweeper.n_jobs=2: ") == [
        "hydra.sweeper.n_jobs=2: Hydra's BasicLauncher runs every job in the sweeper's process, so trials run one at "
        "a time (for 2 at once: hydra/launcher=joblib or hydra/launcher=submitit_local, pip install "
        "fruitlab[launchers])"
    ]
    assert lines_with(result, "1 at a time; worker 0")  # the study's line says so too
    study = the_study(f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2


# -- sweeps always end ---------------------------------------------------------------------------------------


def test_a_sweep_whose_trials_all_fail_ends_after_n_trials_attempts(store):
    result = run_cli("-m", *TINY, f"tracking.uri={store}", "optim.name=bogus", "lr=interval(1e-3,0.1)",
                     "hydra.sweeper.n_trials=3")  # fmt: skip
    assert result.returncode == 1
    assert last_line(result).startswith("fruitlab: error: sweep fruits360-lr-")
    assert "all 3 trial(s) failed (last: ConfigError: unknown optimizer 'bogus'" in last_line(result)
    assert [t.state for t in the_study(sqlite_beside(store)).trials] == [TrialState.FAIL] * 3


def test_max_failure_rate_stops_the_sweep_once_exceeded(store):
    # 4 trials, at most half may fail: the third failure stops the sweep before the good point runs.
    result = run_cli("-m", *TINY, f"tracking.uri={store}", "optim.name=bogus1,bogus2,bogus3,sgd",
                     "hydra.sweeper.max_failure_rate=0.5")  # fmt: skip
    assert result.returncode == 1
    assert last_line(result).endswith(
        "stopped: 3 of n_trials=4 trials failed, more than max_failure_rate=0.5 allows (0 complete, 0 pruned)"
    )
    trials = the_study(sqlite_beside(store)).trials
    assert [(t.params["optim.name"], t.state) for t in trials] == [
        (name, TrialState.FAIL) for name in ("bogus1", "bogus2", "bogus3")
    ]


def test_max_failure_rate_one_lets_a_sweep_whose_trials_all_fail_succeed(tmp_path):
    failing = ["x=interval(-1,1)", "opt=adam", "+momentum=0.5", "hydra.sweeper.n_trials=2"]  # the task refuses it
    result = toy(tmp_path, *failing, "hydra.sweeper.max_failure_rate=1.0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert lines_with(result, "accepts failures") == [
        "all 2 trial(s) failed (last: ValueError: momentum is for sgd only); hydra.sweeper.max_failure_rate=1.0 "
        "accepts failures, so the sweep succeeds"
    ]
    study = the_study(f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}")
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    (parent,) = runs_of(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert parent.info.status == "FINISHED"
    by_default = toy(tmp_path, *failing, "hydra.sweeper.study_name=by-default")
    assert by_default.returncode == 1
    assert "fruitlab: error: sweep by-default: all 2 trial(s) failed" in last_line(by_default)


def test_the_sweepers_direction_wins_over_the_objectives_and_every_trial_gets_it(store):
    result = run_cli("-m", *TINY, f"tracking.uri={store}", "optim=adam", "lr=0.01,0.003",
                     "hydra.sweeper.direction=maximize")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert lines_with(result, "wins over objective.direction") == [
        "hydra.sweeper.direction=maximize wins over objective.direction=minimize: the study and each trial's best "
        "checkpoint maximize val_loss (objective.metric)"
    ]
    study = the_study(sqlite_beside(store))
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.best_value == max(t.value for t in study.trials)
    parent, children = parent_and_children(store)
    assert parent.data.params["direction"] == "maximize"
    assert [c.data.params["objective.direction"] for c in children] == ["maximize"] * 2


# -- the upstream sweeper's language, on another Hydra task --------------------------------------------------


def toy(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(toy_command(*args), cwd=cwd, env=toy_env(cwd), capture_output=True, text=True,
                          timeout=600, **kwargs)  # fmt: skip


def toy_command(*args: str) -> list[str]:
    return [sys.executable, str(TOY), "-m", *args]


def toy_env(cwd: Path) -> dict[str, str]:
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlruns' / 'mlflow.db'}"}  # fmt: skip


def results_file(cwd: Path) -> dict:
    (path,) = cwd.glob("multirun/*/*/optimization_results.yaml")
    return OmegaConf.to_container(OmegaConf.load(path))


def test_upstream_grammar_sampler_group_and_custom_search_space(tmp_path):
    result = toy(tmp_path, "x=interval(-3,3)", "n=int(interval(8,16))", "opt=choice(sgd,adam)",
                 "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=7", "hydra.sweeper.n_trials=6",
                 "hydra.sweeper.custom_search_space=toy_task.momentum_with_sgd")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    study = the_study(f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6  # the task refuses a float n
    assert {type(t.params["n"]) for t in study.trials} == {int}
    for trial in study.trials:
        assert ("+momentum" in trial.params) == (trial.params["opt"] == "sgd")
    assert results_file(tmp_path) == {"name": "optuna", "best_params": study.best_params,
                                      "best_value": study.best_value}  # fmt: skip


def test_a_direction_list_optimises_the_values_the_task_returns(tmp_path):
    result = toy(tmp_path, "two=true", "x=interval(-2,2)", "hydra.sweeper.direction=[minimize,minimize]",
                 "hydra.sweeper.n_trials=4")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    study = the_study(f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}")
    assert len(study.directions) == 2
    for trial in study.trials:
        x = trial.params["x"]
        assert trial.values == pytest.approx([(x - 1) ** 2, (x + 1) ** 2])
    solutions = results_file(tmp_path)["solutions"]
    assert sorted(s["params"]["x"] for s in solutions) == sorted(t.params["x"] for t in study.best_trials)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_on_one_tpe_study_sample_distinct_points(tmp_path, backend, request):
    if backend == "postgresql":
        storage = request.getfixturevalue("postgres").create_database("tpe_workers")
    else:
        storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    command = toy_command("x=interval(-3,3)", "sleep=1", "hydra.sweeper.sampler=tpe", "hydra.sweeper.n_trials=6",
                          f"hydra.sweeper.storage={storage}", "hydra.sweeper.heartbeat_interval=5")  # fmt: skip
    workers = [subprocess.Popen(command, cwd=tmp_path, env=toy_env(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]  # fmt: skip
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    study = the_study(storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
    assert len({t.params["x"] for t in study.trials}) == 6
    assert study.user_attrs["workers"] == 2  # each joined as its own worker, with its own sampler seed
    claimed = [sum(f"trial {t.number}: " in output for t in study.trials) for output in outputs]
    assert sum(claimed) == 6 and min(claimed) >= 1, claimed  # both workers took part


def parent_params(cwd: Path) -> dict[str, str]:
    (parent,) = runs_of(f"sqlite:///{cwd / 'mlruns' / 'mlflow.db'}")
    return parent.data.params


def test_a_config_written_for_the_upstream_sweeper_runs_as_written(tmp_path):
    """tests/e2e/apps/upstream_sphere.yaml: upstream's sampler group and its options, a direction, n_jobs on the
    basic launcher, a failure rate, a named study in the default storage."""
    result = toy(tmp_path, "--config-dir", str(TOY.parent), "--config-name", "upstream_sphere")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(lines_with(result, "hydra.sweeper.n_jobs=2: ")) == 1
    study = optuna.load_study(study_name="sphere", storage=f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}")
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert {t.params["n"] for t in study.trials} <= {8, 9, 10}
    params = parent_params(tmp_path)
    assert (params["sampler"], params["sampler_seed"]) == ("tpe", "123")
    assert json.loads(params["sampler_options"]) == {
        "n_startup_trials": 2, "multivariate": True, "group": True, "constant_liar": True
    }  # fmt: skip
    assert results_file(tmp_path)["best_value"] == max(t.value for t in study.trials)


@pytest.mark.parametrize(
    ("overrides", "sampler", "seed", "options"),
    [
        # upstream's default group entry is tpe's: its options work without choosing the group
        (["hydra.sweeper.sampler.seed=1", "hydra.sweeper.sampler.n_startup_trials=2"], "tpe", "1",
         {"n_startup_trials": 2, "multivariate": True, "group": True, "constant_liar": True}),
        (["hydra/sweeper/sampler=nsgaii", "hydra.sweeper.sampler.population_size=4"], "nsga2", "None",
         {"population_size": 4}),
        (["hydra/sweeper/sampler=motpe", "hydra.sweeper.sampler.n_ehvi_candidates=12"], "tpe", "None",
         {"n_ei_candidates": 12, "n_startup_trials": 3, "multivariate": True, "group": True, "constant_liar": True}),
        (["+hydra.sweeper.sampler._target_=optuna.samplers.RandomSampler", "hydra.sweeper.sampler.seed=5"], "random",
         "5", {}),
    ],
)  # fmt: skip
def test_upstreams_sampler_names_and_options_reach_the_sampler(tmp_path, overrides, sampler, seed, options):
    result = toy(tmp_path, "x=interval(-3,3)", "hydra.sweeper.n_trials=2", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    params = parent_params(tmp_path)
    assert (params["sampler"], params["sampler_seed"], json.loads(params["sampler_options"])) == (
        sampler, seed, options
    )  # fmt: skip
    study = the_study(f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2


def test_a_sampler_config_fruitlab_cannot_build_is_one_clear_line(tmp_path):
    result = toy(tmp_path, "x=interval(-3,3)", "+hydra.sweeper.sampler._target_=optuna.samplers.NSGAIIISampler")
    assert one_line_error(result).startswith(
        "fruitlab: error: hydra.sweeper.sampler._target_=optuna.samplers.NSGAIIISampler: fruitlab builds "
        "optuna.samplers.TPESampler, "
    )
