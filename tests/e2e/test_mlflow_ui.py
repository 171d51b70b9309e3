"""The MLflow UI as a user sees it: a real tracking server on a store with a finished sweep, loaded in headless
Chromium (Debian's `chromium`, installed here when missing and the test runs as root): the links fruitlab prints
open the model-training view, whose runs table and run page list each run's datasets."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FinishedSweep
from pg import free_port
from PIL import Image

from fruitlab.tracking.links import StoreUI
from fruitlab.tracking.store import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND

CHROMIUM = "/usr/bin/chromium"
# What a user is pointed to in the README: the training view of the experiment, runs ranked by test loss.
RUNS_VIEW = (
    "#/experiments/{id}/runs?workflowType=machine_learning&orderByKey=metrics.%60test_zero_one_loss%60&orderByAsc=true"
)
HEADLESS = [
    "--headless",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,800",
    "--virtual-time-budget=20000",  # let the React app fetch and render the runs
]


def install_chromium() -> str | None:
    """apt-get install chromium; the reason it cannot be installed, or None."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "chromium is missing and cannot be installed here (needs root and apt-get): apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
        if result.returncode != 0:
            return f"could not install chromium ({' '.join(command)}): {result.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists() and (reason := install_chromium()):
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def mlflow_server(finished_sweep: FinishedSweep, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on the sweep's store at a free local port; its whole process group is stopped after."""
    url = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", finished_sweep.uri]
    command += ["--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job workers needed
    log = tmp_path / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"mlflow server exited:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"mlflow server did not answer:\n{log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def rest(url: str, endpoint: str, body: dict | None = None) -> dict:
    """A call to the server's REST API (GET without a body, POST with one)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{endpoint}", data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def page_text(chromium: str, url: str, profile: Path) -> str:
    """What a fresh browser (its own empty profile) shows at `url` once the app has rendered."""
    dom = subprocess.run(
        [chromium, *HEADLESS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
    )
    return visible_text(dom.stdout)


# What only MLflow 3's GenAI view shows in its navigation: the model-training view has neither.
GENAI_VIEW = ("Evaluation runs", "Prompts")


def test_ui_lists_the_experiment_and_the_runs_of_a_finished_sweep(
    chromium: str, mlflow_server: str, finished_sweep: FinishedSweep, tmp_path: Path
) -> None:
    experiment = rest(mlflow_server, f"experiments/get-by-name?experiment_name={finished_sweep.experiment}")
    experiment_id = experiment["experiment"]["experiment_id"]
    runs = rest(mlflow_server, "runs/search", {"experiment_ids": [experiment_id]})["runs"]
    names = {run["info"]["run_id"]: run["info"]["run_name"] for run in runs}
    assert {finished_sweep.parent_id, *finished_sweep.child_ids, finished_sweep.failed_id} <= set(names)
    in_sweep = f"tags.mlflow.parentRunId = '{finished_sweep.parent_id}'"
    children = rest(mlflow_server, "runs/search", {"experiment_ids": [experiment_id], "filter": in_sweep})["runs"]
    assert len(children) == len(finished_sweep.child_ids) + 1  # and the failed trial
    tags = {tag["key"]: tag["value"] for tag in experiment["experiment"]["tags"]}
    assert tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND

    page = mlflow_server + "/" + RUNS_VIEW.format(id=experiment_id)
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [chromium, *HEADLESS, *profile, "--dump-dom", page], capture_output=True, text=True, timeout=180
    )
    text = visible_text(dom.stdout)
    assert "fruits360" in text, dom.stderr[-2000:]
    for name in {"pca-sweep", "lenet-adam-lr0.001", "ffnn-adam-lr0.001"}:
        assert name in text, f"{name} not listed in the UI: {text[:2000]}"
    assert f"{len(names)} matching runs" in text
    assert "fruits360-train (" in text and "fruits360-validation (" in text  # the runs table's Dataset column

    screenshot = tmp_path / "mlflow-ui.png"
    subprocess.run(
        [chromium, *HEADLESS, *profile, f"--screenshot={screenshot}", page], capture_output=True, timeout=180
    )
    with Image.open(screenshot) as image:
        assert image.size == (1400, 800)


def test_the_printed_links_open_the_training_view_with_each_runs_datasets(
    chromium: str, mlflow_server: str, finished_sweep: FinishedSweep, tmp_path: Path
) -> None:
    experiment = rest(mlflow_server, f"experiments/get-by-name?experiment_name={finished_sweep.experiment}")
    experiment_id = experiment["experiment"]["experiment_id"]
    ui = StoreUI.of(mlflow_server)

    runs = page_text(chromium, ui.experiment_page(experiment_id), tmp_path / "runs")
    assert "Model training" in runs and "Dataset" in runs, runs[:2000]
    assert not [word for word in GENAI_VIEW if word in runs], runs[:2000]

    run_id = finished_sweep.child_ids[0]
    digest = rest(mlflow_server, f"runs/get?run_id={run_id}")["run"]["inputs"]["dataset_inputs"]
    train = next(d["dataset"] for d in digest if d["dataset"]["name"] == "fruits360-train")
    page = page_text(chromium, ui.run_page(experiment_id, run_id), tmp_path / "run")
    assert f"Datasets fruits360-train ({train['digest']}) train" in page, page[:3000]
    assert not [word for word in GENAI_VIEW if word in page]
