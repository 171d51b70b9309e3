"""What a single run prints and records for its user: a clean console that ends with the run's summary, an
experiment that MLflow's UI opens as a model-training one, and the run's data splits as MLflow datasets."""

import json
import logging
import re
import warnings

import mlflow
import pytest
from conftest import run_cli

from fruitlab.config import compose_config
from fruitlab.console import ADVERTISING_LOGGER, tidy_console
from fruitlab.tracking.store import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND, Store
from fruitlab.training.callbacks import TrainingProgressBar, progress_bars

HYDRA_LOG_LINE = re.compile(r"^\[[\d\- :,]+\]\[[\w.]+\]\[\w+\] - (.*)$")


@pytest.fixture(scope="module")
def console_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """`python -m fruitlab debug=fast` with its progress bar, as a user runs it: (its stdout, then stderr; its
    store)."""
    store = f"sqlite:///{tmp_path_factory.mktemp('console') / 'mlflow.db'}"
    result = run_cli("debug=fast", "model=lenet", f"tracking.uri={store}", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr, store


def only_run(store: str) -> mlflow.entities.Run:
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run


def test_a_run_ends_with_its_summary(console_run: tuple[str, str]) -> None:
    output, store = console_run
    run = only_run(store)
    run_id, experiment_id = run.info.run_id, run.info.experiment_id
    summary = output[output.index("fruitlab: run ") :].splitlines()[:7]
    assert (
        summary[0] == f"fruitlab: run lenet-adam-lr0.001 FINISHED, id {run_id}, experiment debug (id {experiment_id})"
    )
    text = "\n".join(summary)
    assert f"best val_loss {run.data.metrics['best_val_loss']:.4f}" in text
    assert f"test_zero_one_loss {run.data.metrics['test_zero_one_loss']:.4f}" in text
    assert f"runs:/{run_id}/model = models:/m-" in text
    assert f"mlflow ui --backend-store-uri {store} --port 5000" in text
    assert summary[-1].strip() == (
        f"then open http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
    )


def test_a_run_prints_each_line_once_without_advertisements_or_notices(console_run: tuple[str, str]) -> None:
    output, _ = console_run
    lines = [line.strip() for line in re.split(r"[\r\n]+", output) if line.strip()]
    messages = [m.group(1) for line in lines if (m := HYDRA_LOG_LINE.match(line))]
    assert "GPU available: False, used: False" in messages or "GPU available: True" in " ".join(messages)
    assert len(messages) == len(set(messages)), messages
    assert not [line for line in lines if line.startswith("INFO:")]  # Lightning's own handler printed nothing
    assert "litlogger" not in output
    assert "deprecated" not in output and "Warning" not in output, output
    bars = {line.split(":")[0] for line in lines if "it/s]" in line}
    assert bars <= {"Training", "Epoch 0"}, bars  # no validation, sanity-check or test bar


def test_the_experiment_is_a_model_training_one_and_the_run_has_its_datasets(console_run: tuple[str, str]) -> None:
    _, store = console_run
    run = only_run(store)
    client = mlflow.MlflowClient(store)
    assert client.get_experiment(run.info.experiment_id).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"fruits360-train", "fruits360-validation", "fruits360-test"}
    contexts = {name: {t.key: t.value for t in d.tags}["mlflow.data.context"] for name, d in inputs.items()}
    assert contexts == {"fruits360-train": "train", "fruits360-validation": "validation", "fruits360-test": "test"}
    train, validation, test = (inputs[f"fruits360-{s}"].dataset for s in ("train", "validation", "test"))
    assert train.source.endswith('/Training"}') and validation.source == train.source
    assert test.source.endswith('/Test"}') and train.source_type == "local"
    assert len({train.digest, validation.digest, test.digest}) == 3
    rows = {name: json.loads(d.dataset.profile)["num_rows"] for name, d in inputs.items()}
    sizes = run.data.metrics  # the splits' sizes as the run recorded them
    assert rows == {
        "fruits360-train": sizes["train_size"],
        "fruits360-validation": sizes["val_size"],
        "fruits360-test": sizes["test_size"],
    }
    assert rows["fruits360-test"] == 120 and rows["fruits360-train"] > 2 * rows["fruits360-validation"]


def test_an_experiment_fruitlab_did_not_create_keeps_its_tags(store: str) -> None:
    client = mlflow.MlflowClient(store)
    opened = Store.open(store)
    opened.ensure_experiment("other")  # creates the store's tables
    theirs = client.create_experiment("theirs", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert opened.ensure_experiment("theirs") == theirs
    assert client.get_experiment(theirs).tags[EXPERIMENT_KIND_TAG] == "genai_development"
    assert client.get_experiment_by_name("other").tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND


def advertisement_shown() -> bool:
    record = logging.LogRecord(ADVERTISING_LOGGER, logging.INFO, "", 0, "Tip: try installing [litlogger]", None, None)
    return logging.getLogger(ADVERTISING_LOGGER).filter(record)


def test_verbose_shows_everything() -> None:
    logger = logging.getLogger(ADVERTISING_LOGGER)
    before = list(logger.filters)
    with warnings.catch_warnings():
        tidy_console(verbose=True)
        assert advertisement_shown()
        tidy_console(verbose=False)
        assert not advertisement_shown()
    logger.filters[:] = before
    assert progress_bars(compose_config(["verbose=true"])) == []  # Lightning's own bars, validation's too
    assert [type(b) for b in progress_bars(compose_config([]))] == [TrainingProgressBar]
    assert progress_bars(compose_config(["trainer.enable_progress_bar=false"])) == []
