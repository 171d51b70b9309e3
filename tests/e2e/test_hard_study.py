"""`fruitlab hard-study`: the Fruits-360 hard study in one command. A smoke version (three classes, one-epoch
trials, two per strategy) runs end to end in the default suite and again to show that a rerun adds no run; the
whole study on the real data is a slow test."""

import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import REPO, run_cli

from fruitlab.data.imagefolder import TEST_DIR, TRAIN_DIR, embedded_sample
from fruitlab.data.splits import frame_number
from fruitlab.errors import ConfigError
from fruitlab.studies.hard_plan import MODELS, STRATEGIES, Plan
from fruitlab.studies.hard_report import best_so_far, confused_pairs
from fruitlab.studies.hard_run import hard_study
from fruitlab.tracking.query import RunRecord

HARD = REPO.parent / "shared" / "data" / "fruits360-hard"
CLASSES = ("Apple Golden 1", "Banana 1", "Grape White 1")  # in both the hard set and the embedded sample
FAST = ["trainer.enable_progress_bar=false", "latency.repeats=3", "latency.warmup=1", "tracking.log_model=false"]
REPORT = {"summary.md", "ranking.csv", "ranking.png", "best_so_far.csv", "best_so_far.png", "confusion_matrix.png"}


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


def test_study_runs_every_part_reports_and_a_rerun_adds_nothing(few_classes: Path, store: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    # whole epochs: a quarter of the few batches of three classes would be no batch at all
    plan = Plan(["lenet"], [1], 10, 1, 1, strategy_s=600, max_trials=2, pca_epochs=1, search_epoch_fraction=1)
    overrides = [f"data.root={few_classes}", f"tracking.uri={store}", "tracking.experiment=hard-smoke", *FAST]
    first = hard_study(overrides, plan, out)

    assert set(first.ran) == {"baselines", "PCA baseline", *STRATEGIES, "best configuration retrained"}
    assert {path.name for path in out.iterdir()} >= REPORT
    ranking = pd.read_csv(out / "ranking.csv")
    assert {"lenet", "ffnn", "best configuration, retrained"} <= set(ranking["configuration"])
    assert sum(ranking["configuration"].str.startswith("search: ")) == len(STRATEGIES)
    curves = pd.read_csv(out / "best_so_far.csv")
    assert set(curves["strategy"]) == set(STRATEGIES)
    assert curves.groupby("strategy")["trial"].count().max() <= 2  # --max-trials
    assert curves.groupby("strategy")["minutes"].apply(lambda minutes: minutes.is_monotonic_increasing).all()
    pairs = pd.read_csv(out / "confused_pairs.csv")
    assert (pairs["true"] != pairs["predicted"]).all()
    if len(pairs):
        assert (out / "gradcam_confusions.png").is_file()

    runs = experiment_runs(store, "hard-smoke")
    trials = [run for run in runs if "sweep.parent" not in run.data.tags]
    assert {run.data.metrics["num_classes"] for run in trials} == {3}
    # every trial chose its checkpoint on validation accuracy and has a test result
    assert all("best_val_acc" in run.data.metrics and "test_zero_one_loss" in run.data.metrics for run in trials)

    (out / "summary.md").unlink()
    again = hard_study(overrides, plan, out)
    assert again.ran == {} and set(again.skipped) == set(first.ran)
    assert len(experiment_runs(store, "hard-smoke")) == len(runs)  # nothing added
    assert (out / "summary.md").is_file()  # the report redrawn


def result(run_id: str, val_acc: float, test_loss: float) -> RunRecord:
    metrics = {"best_val_acc": val_acc, "test_zero_one_loss": test_loss}
    return RunRecord(run_id, run_id, "0", "FINISHED", "parent", {}, metrics, {})


def test_best_so_far_chooses_on_validation_and_counts_every_trials_time() -> None:
    trials = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "state": ["COMPLETE", "PRUNED", "COMPLETE"],
            "datetime_complete": ["2026-01-01 10:01", "2026-01-01 10:02", "2026-01-01 10:05"],
            "duration": ["0 days 00:01:00", "0 days 00:00:30", "0 days 00:03:00"],
            "user_attrs_mlflow_run_id": ["a", "b", "c"],
        }
    )
    runs = {"a": result("a", 0.8, 0.30), "b": result("b", 0.95, 0.01), "c": result("c", 0.9, 0.40)}
    curve = best_so_far(trials, runs)
    assert list(curve["minutes"]) == [1.0, 1.5, 4.5]
    assert list(curve["best_trial"]) == [0, 0, 2]  # the pruned trial is never chosen; a worse test loss is kept
    assert list(curve["test_zero_one_loss"]) == [0.30, 0.30, 0.40]
    assert curve["val_zero_one_loss"].iloc[-1] == pytest.approx(0.1)


def test_confused_pairs_are_the_largest_off_diagonal_counts() -> None:
    names = ["apple", "pear", "plum"]
    matrix = pd.DataFrame([[50, 8, 0], [3, 40, 1], [0, 0, 20]], index=names, columns=names)
    pairs = confused_pairs(matrix, top=2)
    assert list(zip(pairs["true"], pairs["predicted"], pairs["images"], strict=True)) == [
        ("apple", "pear", 8),
        ("pear", "apple", 3),
    ]
    assert pairs["share_of_true_class"].iloc[0] == pytest.approx(8 / 58)


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
    """The whole study as planned in `fruitlab hard-study --help` (about 90 minutes on 2 idle cores)."""
    if not (HARD / TRAIN_DIR).is_dir():
        pytest.skip("Fruits-360 hard not found beside the repository")
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    out = tmp_path / "report"
    result = run_cli("hard-study", f"data.root={HARD}", f"tracking.uri={store}", "--out", str(out), timeout=3 * 3600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranking = pd.read_csv(out / "ranking.csv")
    assert {*MODELS, "ffnn", "best configuration, retrained"} <= set(ranking["configuration"])
    assert (ranking[ranking["runs"] > 1]["runs"] == 3).all()  # three seeds each
    assert set(pd.read_csv(out / "best_so_far.csv")["strategy"]) == set(STRATEGIES)
    assert (out / "gradcam_confusions.png").is_file()
