"""The one command that reproduces the Fruits-360 seed study: tiny on the embedded sample in the default suite,
the whole study on the real data as a slow test."""

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import REPO

from fruitlab.errors import ConfigError
from fruitlab.studies.seed import COMPONENTS, EXPERIMENT, MODELS, parse_epochs, stages, study_overrides

EDA_FIGURES = {"samples.png", "class_counts.png", "explained_variance.png", "eigenfruits.png", "reconstructions.png"}
REPORT_FILES = {"ranking.md", "ranking.csv", "ranking.png", "learning_curves.png", "pca_curve.png", "pca_curve.csv"}


def run_study(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fruitlab", "study", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def study_runs(uri: str) -> list:
    client = mlflow.MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])


def test_models_with_the_same_epochs_share_one_sweep_after_the_pca_sweep() -> None:
    epochs = parse_epochs(["vgg3_bn=2", "lenet=2"], ["vgg1", "lenet", "vgg3_bn"])
    planned = stages(["vgg1", "lenet", "vgg3_bn"], [10, 50], epochs, ["data.root=DIR"])
    assert [stage.overrides[:2] for stage in planned] == [
        ("sweep=pca_components", "data.n_components=10,50"),
        ("model=lenet,vgg3_bn", "trainer.max_epochs=2"),
        ("model=vgg1", f"trainer.max_epochs={epochs['vgg1']}"),
    ]
    assert all({"optim=adam", "data.root=DIR"} <= set(stage.overrides) for stage in planned)
    assert "data.fit_components=50" in planned[0].overrides
    assert set(parse_epochs(["3"], ["vgg1"]).values()) == {3}
    assert study_overrides(["data.root=DIR"]) == [f"tracking.experiment={EXPERIMENT}", "data.root=DIR"]
    with pytest.raises(ConfigError, match="--epochs"):
        study_overrides(["trainer.max_epochs=3"])


def test_study_command_trains_explores_and_ranks_into_one_experiment(store: str, tmp_path: Path) -> None:
    out = tmp_path / "study"
    settings = ["data.root=null", "data.image_size=16", "tracking.log_model=false", f"tracking.uri={store}"]
    settings += ["trainer.enable_progress_bar=false", "latency.repeats=3", "latency.warmup=1"]
    tiny = ["--models", "lenet", "--components", "10,30", "--epochs", "1", "--out", str(out)]
    result = run_study(*tiny, *settings, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "study wall time" in result.stdout

    assert {p.name for p in (out / "eda").iterdir()} == EDA_FIGURES
    assert {p.name for p in (out / "report").iterdir()} == REPORT_FILES
    ranking = pd.read_csv(out / "report" / "ranking.csv")
    assert sorted(ranking["model"]) == ["ffnn", "ffnn", "lenet"]
    assert list(pd.read_csv(out / "report" / "pca_curve.csv")["n_components"]) == [10, 30]

    runs = study_runs(store)
    kinds = sorted(r.data.tags.get("fruitlab.kind", "") for r in runs if "sweep.parent" not in r.data.tags)
    assert kinds == ["", "", "", "eda", "report"]  # three training runs, the exploration, the report
    parents = [r for r in runs if "sweep.parent" in r.data.tags]
    assert len(parents) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.params["data.image_size"] for r in runs if "data.image_size" in r.data.params} == {"16"}


@pytest.mark.slow
def test_full_study_on_real_data_ranks_every_model(real_data: Path, tmp_path: Path) -> None:
    """The whole study as documented in docs/fruits360.md (about 20 minutes on 2 cores)."""
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    out = tmp_path / "study"
    settings = [f"data.root={real_data}", f"tracking.uri={store}", "trainer.enable_progress_bar=false"]
    result = run_study("--out", str(out), *settings, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]

    ranking = pd.read_csv(out / "report" / "ranking.csv")
    assert len(ranking) == len(COMPONENTS) + len(MODELS)
    assert set(ranking["model"]) == {"ffnn", *MODELS}
    assert len(pd.read_csv(out / "report" / "pca_curve.csv")) == len(COMPONENTS)
    best = ranking.groupby("model")["test_zero_one_loss"].min()
    assert best[["vgg1", "vgg2", "vgg3", "vgg3_bn"]].max() < best["ffnn"]  # the paper's ladder beats its baseline
