"""`fruitlab hard-study`: the Fruits-360 hard study in one command. A smoke version (three classes, one seed, two
trials per search) runs end to end in the default suite and again to show that a rerun adds no run; the whole
study on the real data is a slow test."""

import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import REPO, run_cli

from fruitlab.data.imagefolder import TEST_DIR, TRAIN_DIR, embedded_sample
from fruitlab.data.splits import frame_number
from fruitlab.errors import ConfigError
from fruitlab.studies.hard_plan import MODELS, STRATEGY_NAMES, Plan
from fruitlab.studies.hard_report import STRATEGY_COLUMNS
from fruitlab.studies.hard_run import hard_study

HARD = REPO.parent / "shared" / "data" / "fruits360-hard"
CLASSES = ("Apple Golden 1", "Banana 1", "Grape White 1")  # in both the hard set and the embedded sample
FAST = ["trainer.enable_progress_bar=false", "latency.repeats=3", "latency.warmup=1", "tracking.log_model=false"]
REPORT = {
    "summary.md",
    "strategies.csv",
    "ranking.csv",
    "ranking.png",
    "best_so_far.csv",
    "best_so_far.png",
    "confusion_matrix.png",
}


@pytest.fixture(scope="module")
def few_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of the hard set (their first 80 frames), or of the embedded sample without it."""
    source = HARD if (HARD / TRAIN_DIR).is_dir() else embedded_sample()
    root = tmp_path_factory.mktemp("hard")
    for split in (TRAIN_DIR, TEST_DIR):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for image in (source / split / name).iterdir():
                if frame_number(image.name) < 80:
                    shutil.copy(image, root / split / name / image.name)
    return root


def experiment_runs(uri: str, experiment: str) -> list:
    client = mlflow.MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)


def run_smoke_study(few_classes: Path, store: str, out: Path, strategies: tuple[str, ...]) -> tuple:
    """The study on three classes with one seed and two trials per search; returns (result, plan, overrides)."""
    plan = Plan(
        ["vgg1"], [1], None, 1, budget_s=40, max_trials=2, strategies=strategies, final_overhead_s=15, workers=1
    )
    overrides = [f"data.root={few_classes}", f"tracking.uri={store}", "tracking.experiment=hard-smoke", *FAST]
    return hard_study(overrides, plan, out), plan, overrides


def check_smoke_report(out: Path, store: str, strategies: tuple[str, ...]) -> None:
    assert {path.name for path in out.iterdir()} >= REPORT
    table = pd.read_csv(out / "strategies.csv")
    assert list(table.columns) == STRATEGY_COLUMNS
    assert list(table["strategy"]) == list(strategies)
    assert table["test_zero_one_loss"].notna().all() and (table["train_s"] > 0).all()
    searched = table[table["strategy"] != "train_longer"]
    assert (searched["search_s"] > 0).all() and (searched["trials"] <= 2).all()  # --max-trials
    assert table.loc[table["strategy"] == "train_longer", "search_s"].item() == 0
    ranking = pd.read_csv(out / "ranking.csv")
    assert {"vgg1", *(f"strategy: {name}" for name in strategies)} <= set(ranking["configuration"])
    curves = pd.read_csv(out / "best_so_far.csv")
    assert set(curves["strategy"]) == set(strategies)
    assert curves.groupby("strategy")["seconds"].apply(lambda seconds: seconds.is_monotonic_increasing).all()
    pairs = pd.read_csv(out / "confused_pairs.csv")
    assert (pairs["true"] != pairs["predicted"]).all()

    runs = experiment_runs(store, "hard-smoke")
    trials = [run for run in runs if "sweep.parent" not in run.data.tags]
    assert {run.data.metrics["num_classes"] for run in trials} == {3}
    # every trial chose its checkpoint on validation accuracy and has a test result
    assert all("best_val_acc" in run.data.metrics and "test_zero_one_loss" in run.data.metrics for run in trials)
    started_from = [run.data.params.get("model.init_from") for run in trials]
    assert sum(value not in (None, "None") for value in started_from) == len(searched)  # each winner trains on


def test_study_runs_every_part_reports_and_a_rerun_adds_nothing(few_classes: Path, store: str, tmp_path: Path) -> None:
    """train_longer against the warm-started TPE search: the strategies the study is measured by."""
    out, strategies = tmp_path / "report", ("train_longer", "tpe_warm")
    first, plan, overrides = run_smoke_study(few_classes, store, out, strategies)
    assert set(first.ran) == {
        "baselines",
        "train_longer seed 1, final training",
        "tpe_warm search, seed 1",
        "tpe_warm seed 1, final training",
    }
    check_smoke_report(out, store, strategies)
    runs = experiment_runs(store, "hard-smoke")
    warm = next(run for run in runs if run.data.tags.get("sweep.parent") == "hard-smoke-tpe_warm-search-seed-1")
    assert warm.data.metrics["warm_start_trials"] == 1  # the vgg1 baseline
    searched = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == warm.info.run_id]
    first_trial = min(searched, key=lambda run: int(run.data.tags["trial_number"]))
    paper = {"model.name": "vgg3_bn", "optim.name": "adam", "lr": "0.001", "batch_size": "64", "augment.name": "none"}
    assert {key: first_trial.data.params.get(key) for key in paper} == paper  # the paper's point, enqueued first

    (out / "summary.md").unlink()
    again = hard_study(overrides, plan, out)
    assert again.ran == {} and set(again.skipped) == set(first.ran)
    assert len(experiment_runs(store, "hard-smoke")) == len(runs)  # nothing added
    assert (out / "summary.md").is_file()  # the report redrawn


@pytest.mark.slow
def test_every_strategy_runs_on_the_smoke_study(few_classes: Path, store: str, tmp_path: Path) -> None:
    """All five strategies, each part a process of its own (about 4 minutes on 2 cores)."""
    run_smoke_study(few_classes, store, tmp_path / "report", STRATEGY_NAMES)
    check_smoke_report(tmp_path / "report", store, STRATEGY_NAMES)


def test_overrides_the_study_sets_are_refused() -> None:
    plan = Plan(list(MODELS), [1], None, 1, 1, 60, 2)
    with pytest.raises(ConfigError, match="model is set by the study"):
        hard_study(["model=lenet"], plan, None)


def test_sweep_stops_claiming_trials_when_its_time_is_spent(store: str) -> None:
    result = run_cli("-m", "model=lenet", "lr=0.1,0.01", "hydra.sweeper.timeout_s=0", f"tracking.uri={store}", *FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "time budget (0.0 s) is spent" in result.stderr + result.stdout
    runs = experiment_runs(store, "fruits360")
    assert [run for run in runs if "sweep.parent" not in run.data.tags] == []


@pytest.mark.slow
def test_full_hard_study_on_the_real_data(tmp_path: Path) -> None:
    """The whole study as planned in `fruitlab hard-study --help` (about 2 hours on 2 idle cores)."""
    if not (HARD / TRAIN_DIR).is_dir():
        pytest.skip("Fruits-360 hard not found beside the repository")
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    out = tmp_path / "report"
    result = run_cli("hard-study", f"data.root={HARD}", f"tracking.uri={store}", "--out", str(out), timeout=3 * 3600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranking = pd.read_csv(out / "ranking.csv")
    assert {*MODELS, "ffnn", *(f"strategy: {name}" for name in STRATEGY_NAMES)} <= set(ranking["configuration"])
    assert (ranking[ranking["runs"] > 1]["runs"] == 3).all()  # three seeds each
    assert len(pd.read_csv(out / "strategies.csv")) == 3 * len(STRATEGY_NAMES)
    assert (out / "gradcam_confusions.png").is_file()
