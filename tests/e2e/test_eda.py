"""Data exploration on the embedded sample, recorded as an MLflow run of its own."""

from itertools import pairwise
from pathlib import Path

import mlflow
from PIL import Image

from fruitlab.commands.eda import main


def history(client: mlflow.MlflowClient, run_id: str, metric: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, metric))


FIGURES = {"samples.png", "class_counts.png", "explained_variance.png", "eigenfruits.png", "reconstructions.png"}


def test_exploration_run_logs_figures_counts_and_a_falling_reconstruction_error(store: str, tmp_path: Path) -> None:
    main([f"tracking.uri={store}", "data.val_split=random", "--out", str(tmp_path / "eda")])

    assert {p.name for p in (tmp_path / "eda").iterdir()} == FIGURES
    for name in FIGURES:
        with Image.open(tmp_path / "eda" / name) as image:
            assert image.format == "PNG"
            image.verify()
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("fruits360").experiment_id])
    assert run.info.run_name == "eda-fruits360" and run.info.status == "FINISHED"
    assert run.data.tags["fruitlab.kind"] == "eda" and run.data.params["data.image_size"] == "32"
    metrics = run.data.metrics
    assert metrics["num_classes"] == 10
    assert metrics["train_size"] + metrics["validation_size"] == 400 and metrics["test_size"] == 120
    assert 1 <= metrics["components_for_90pct_variance"] < metrics["components_for_99pct_variance"]
    logged = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "eda")}
    assert logged == FIGURES | {"class_counts.json"}

    errors = history(client, run.info.run_id, "reconstruction_mse")
    assert [step for step, _ in errors][:7] == [1, 5, 10, 20, 50, 100, 170]
    assert all(later < earlier for (_, earlier), (_, later) in pairwise(errors))
    explained = history(client, run.info.run_id, "explained_variance")
    assert all(later > earlier for (_, earlier), (_, later) in pairwise(explained))
