"""Reports read back from a store made by real short runs: ranking, PCA curve, time to a target accuracy,
the report command and what it logs to MLflow."""

import math
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import FAST, REPO, FinishedSweep, compose_config, run_cli, train_config
from PIL import Image

from fruitlab.commands.report import main, report
from fruitlab.reporting.ranking import pca_points, rank
from fruitlab.reporting.report import checks_per_epoch, pick_curves
from fruitlab.reporting.runs_table import first_reaching, runs_frame
from fruitlab.tracking.query import StoreReader
from fruitlab.tracking.store import Store


def assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 100
        image.verify()


@pytest.fixture(scope="module")
def sweep_frame(finished_sweep: FinishedSweep) -> pd.DataFrame:
    reader = StoreReader(Store.open(finished_sweep.uri, existing=True))
    runs, left_out = reader.selected_runs(reader.select_sweep(finished_sweep.parent_id))
    assert left_out == 1  # the failed trial
    return runs_frame(reader, runs)


def test_ranking_has_one_row_per_finished_run_best_first(finished_sweep: FinishedSweep, sweep_frame) -> None:
    table = rank(sweep_frame)
    assert sorted(table["run_id"]) == sorted(finished_sweep.child_ids)
    assert list(table["rank"]) == [1, 2, 3, 4]
    client = mlflow.MlflowClient(finished_sweep.uri)
    stored = [client.get_run(run_id).data.metrics for run_id in table["run_id"]]
    order = [(m["test_zero_one_loss"], m["test_loss"]) for m in stored]
    assert order == sorted(order)
    assert list(table["num_parameters"]) == [m["num_parameters"] for m in stored]
    assert list(table["latency_b1_mean_ms"]) == [m["latency_b1_mean_ms"] for m in stored]
    assert set(table["model"]) == {"ffnn", "lenet"} and set(table["optimizer"]) == {"adam"}
    assert "data.n_components" in table.columns and (table["epochs"] == 2).all()
    assert table["run"].is_unique  # repeated run names are told apart by their swept values
    assert any(label.endswith("n_components=40") for label in table["run"])


def test_pca_curve_has_one_point_per_component_count(sweep_frame) -> None:
    points = pca_points(sweep_frame)
    assert list(points["n_components"]) == [10, 40, 120]
    assert (points["runs"] == 1).all() and points["test_zero_one_loss"].between(0, 1).all()


def test_learning_curves_of_the_best_run_of_each_model(sweep_frame) -> None:
    table = rank(sweep_frame)
    picked = table.loc[pick_curves(table, None, per_model=True)]
    assert sorted(picked["model"]) == ["ffnn", "lenet"]
    for model, row in picked.set_index("model").iterrows():
        assert row["rank"] == table.loc[table["model"] == model, "rank"].min()


def test_epochs_and_seconds_to_a_validation_accuracy_come_from_the_epoch_history(
    finished_sweep: FinishedSweep,
) -> None:
    reader = StoreReader(Store.open(finished_sweep.uri, existing=True))
    for run_id in finished_sweep.child_ids:
        history = reader.read_history(run_id)
        assert [step for step, _ in history["elapsed_s"]] == [0, 1]
        (_, first), (_, second) = history["elapsed_s"]
        assert 0 < first < second
        target = max(value for _, value in history["val_acc"])
        epochs, seconds = first_reaching(history, target)
        assert history["val_acc"][int(epochs) - 1][1] >= target
        assert all(value < target for _, value in history["val_acc"][: int(epochs) - 1])
        assert seconds == history["elapsed_s"][int(epochs) - 1][1]
        assert all(math.isnan(x) for x in first_reaching(history, 1.01))  # never reached


def test_report_command_prints_writes_and_logs_the_sweep_report(finished_sweep: FinishedSweep, tmp_path: Path) -> None:
    out = tmp_path / "report"
    command = [sys.executable, "-m", "fruitlab", "report", "--store", finished_sweep.uri, "--sweep", "pca-sweep"]
    result = subprocess.run([*command, "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "lenet-adam-lr0.001" in result.stdout and "n_components=120" in result.stdout
    files = {"ranking.md", "ranking.csv", "ranking.png", "learning_curves.png", "pca_curve.png", "pca_curve.csv"}
    assert {p.name for p in out.iterdir()} == files
    for png in out.glob("*.png"):
        assert_png(png)
    ranking = pd.read_csv(out / "ranking.csv")
    assert len(ranking) == 4 and list(ranking["rank"]) == [1, 2, 3, 4]
    markdown = (out / "ranking.md").read_text()
    assert markdown.count("\n| ") == 5 and "![pca_curve.png](pca_curve.png)" in markdown
    logged = mlflow.MlflowClient(finished_sweep.uri).list_artifacts(finished_sweep.parent_id, "report")
    assert {Path(a.path).name for a in logged} == files


def test_experiment_report_is_logged_as_a_report_run(finished_sweep: FinishedSweep, tmp_path: Path, capsys) -> None:
    curves = [finished_sweep.child_ids[0][:8], "lenet-adam-lr0.001"]  # an id prefix and a run name
    main(["--store", finished_sweep.uri, "--experiment", "fruits360", "--out", str(tmp_path), "--runs", *curves])
    assert "logged to MLflow run" in capsys.readouterr().out
    client = mlflow.MlflowClient(finished_sweep.uri)
    report = client.search_runs(
        [client.get_experiment_by_name(finished_sweep.experiment).experiment_id], "tags.`fruitlab.kind` = 'report'"
    )
    assert len(report) == 1 and report[0].info.status == "FINISHED"
    logged = {Path(a.path).name for a in client.list_artifacts(report[0].info.run_id, "report")}
    assert logged >= {"ranking.md", "ranking.csv", "ranking.png", "learning_curves.png"}
    assert len(pd.read_csv(tmp_path / "ranking.csv")) == 4  # parent, failed and report runs are not ranked


def test_an_unknown_sweep_is_one_clear_line(finished_sweep: FinishedSweep, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--store", finished_sweep.uri, "--sweep", "no-such-sweep"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "fruitlab: error: no run with id or name 'no-such-sweep' in the store; give the parent run of a sweep "
        "(its id or name, as shown in the MLflow UI)"
    )


def test_report_on_a_store_without_pca_runs_with_a_failed_run(tmp_path: Path) -> None:
    """The store a plain training run leaves (no PCA run, no sweep), with a failed run beside it."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train_config(compose_config("model=lenet", *FAST, f"tracking.uri={store}"))
    with pytest.raises(Exception, match="bogus"):
        train_config(compose_config("model=lenet", "optim.name=bogus", *FAST, f"tracking.uri={store}"))
    result = report(store, out=tmp_path / "report")
    assert list(result.ranking["model"]) == ["lenet"]
    assert {p.name for p in result.folder.iterdir()} == {
        "ranking.md",
        "ranking.csv",
        "ranking.png",
        "learning_curves.png",
    }
    assert "1 other runs (parents, failed, running) left out" in (result.folder / "ranking.md").read_text()
    assert result.logged_run_id is not None


def test_report_on_a_plain_grid_sweep(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = run_cli("-m", "optim=sgd,adam", "model=lenet", *FAST, "tracking.log_model=false", f"tracking.uri={store}")
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    client = mlflow.MlflowClient(store)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("fruits360").experiment_id], "tags.`sweep.parent` != ''"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fruitlab",
            "report",
            "--store",
            store,
            "--sweep",
            parent.info.run_id,
            "--out",
            str(tmp_path / "r"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(pd.read_csv(tmp_path / "r" / "ranking.csv")["optimizer"]) == ["adam", "sgd"]
    assert not (tmp_path / "r" / "pca_curve.png").exists()


def test_reports_on_an_experiment_update_its_one_report_run_in_place(tmp_path: Path) -> None:
    """Three reports, one report run: the newest of those older versions left is reused and the others deleted;
    each report replaces the files of the one before. The run's validation checks are its learning curve."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    checks = ["objective.checks_per_epoch=4", "tracking.log_model=false", f"tracking.uri={store}"]
    trained = train_config(compose_config("model=lenet", *FAST, *checks))
    client = mlflow.MlflowClient(store)
    experiment = client.get_experiment_by_name("fruits360").experiment_id
    older = []  # report runs as versions that made one per call left them
    for _ in range(2):
        run = client.create_run(experiment, run_name="report-fruits360", tags={"fruitlab.kind": "report"})
        client.set_terminated(run.info.run_id)
        older.append(run.info.run_id)
    first = report(store, out=tmp_path / "first")
    assert first.logged_run_id == older[-1]
    client.log_text(first.logged_run_id, "an older report's file", "report/old.txt")
    logged = {report(store, out=tmp_path / "again").logged_run_id for _ in range(2)}
    assert logged == {first.logged_run_id}
    reports = client.search_runs([experiment], "tags.`fruitlab.kind` = 'report'")
    assert [run.info.run_id for run in reports] == [first.logged_run_id] and reports[0].info.status == "FINISHED"
    assert client.get_run(older[0]).info.lifecycle_stage == "deleted"
    assert len(client.search_runs([experiment])) == 2  # the training run and its report
    files = {"ranking.md", "ranking.csv", "ranking.png", "learning_curves.png"}
    assert {Path(a.path).name for a in client.list_artifacts(first.logged_run_id, "report")} == files
    assert "0 other runs" in (tmp_path / "again" / "ranking.md").read_text()  # the report run is no other run
    for png in (tmp_path / "again").glob("*.png"):
        assert_png(png)
    reader = StoreReader(Store.open(store, existing=True))
    frame = runs_frame(reader, reader.selected_runs(reader.select_experiment("fruits360"))[0])
    assert checks_per_epoch(frame, trained.run_id) == 4
    assert [step for step, _ in reader.read_history(trained.run_id)["check_val_acc"]] == [0, 1, 2, 3]
    latency = client.get_run(trained.run_id).data.metrics
    assert 0 <= latency["latency_load"] <= latency["latency_cpus"]
