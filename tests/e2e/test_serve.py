"""Serving the champion over real HTTP: `mlflow models serve` and fruitlab's upload endpoint, run by PyTorch and by
ONNX Runtime."""

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
import torch
from conftest import REPO, TrainedRun
from PIL import Image

from fruitlab.data.cache import decode_image

MODEL = "fruits"
CHAMPION = f"models:/{MODEL}@champion"
FRUITLAB_SERVERS = ["fruitlab", "fruitlab-onnxruntime"]  # `fruitlab serve` with --runtime torch and onnxruntime
MAX_BYTES = 50_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {process.stdout.read()[-3000:]}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url} within {timeout} s")


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    # its own process group: `mlflow models serve` runs uvicorn as a child process
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def servers(trained_run: TrainedRun) -> Iterator[dict[str, str]]:
    """The trained run registered as `fruits` with alias `champion`, served by both servers at once."""
    mlflow.set_tracking_uri(trained_run.uri)
    version = mlflow.register_model(f"runs:/{trained_run.run_id}/model", MODEL)
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", version.version)

    # the venv's bin first: `mlflow models serve` starts `uvicorn` by name
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained_run.uri,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    ports = {"fruitlab": free_port(), "fruitlab-onnxruntime": free_port(), "mlflow": free_port()}
    processes = {
        "fruitlab": start(
            [sys.executable, "-m", "fruitlab", "serve", CHAMPION, "--port", str(ports["fruitlab"]),
             "--max-bytes", str(MAX_BYTES)], env,
        ),
        "fruitlab-onnxruntime": start(
            [sys.executable, "-m", "fruitlab", "serve", CHAMPION, "--runtime", "onnxruntime",
             "--port", str(ports["fruitlab-onnxruntime"]), "--max-bytes", str(MAX_BYTES)], env,
        ),
        "mlflow": start(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", CHAMPION, "-h", "127.0.0.1",
             "-p", str(ports["mlflow"]), "--env-manager", "local"], env,
        ),
    }  # fmt: skip
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        for name in FRUITLAB_SERVERS:
            wait_until_up(f"{urls[name]}/health", processes[name])
        wait_until_up(f"{urls['mlflow']}/ping", processes["mlflow"])
        yield urls
    finally:
        for process in processes.values():
            stop(process)


def fruit_image(trained_run: TrainedRun, fruit: str = "Banana 1") -> Path:
    return sorted((trained_run.data / "Test" / fruit).iterdir())[0]


def expected_probabilities(trained_run: TrainedRun, path: Path) -> np.ndarray:
    """What the recorded model says about `path`, decoded as in training."""
    model = mlflow.pytorch.load_model(f"runs:/{trained_run.run_id}/model")
    pixels = torch.from_numpy(decode_image(path, 32)).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        return model(pixels)[0].numpy()


@pytest.mark.parametrize("name", FRUITLAB_SERVERS)
def test_fruitlab_endpoint_answers_a_fruit_image_with_probabilities_by_class(servers, trained_run, name) -> None:
    path = fruit_image(trained_run)
    response = requests.post(f"{servers[name]}/predict", files={"file": (path.name, path.read_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    answer = response.json()
    classes = sorted(p.name for p in (trained_run.data / "Test").iterdir())
    assert set(answer["probabilities"]) == set(classes)
    assert sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
    mlflow.set_tracking_uri(trained_run.uri)
    expected = expected_probabilities(trained_run, path)
    np.testing.assert_allclose([answer["probabilities"][c] for c in classes], expected, atol=1e-5)
    assert answer["label"] == "Banana 1"
    runtime = "onnxruntime" if name == "fruitlab-onnxruntime" else "torch"
    assert requests.get(f"{servers[name]}/health").json()["runtime"] == runtime


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("upload", "status", "message"),
    [
        (("notes.txt", b"not an image", "text/plain"), 415, "expected an image file"),
        (("fake.jpg", b"not an image", "image/jpeg"), 400, "not an image of a known format"),
        (("empty.jpg", b"", "image/jpeg"), 400, "empty"),
        (("noise.png", png(200, 200), "image/png"), 413, f"larger than {MAX_BYTES} bytes"),
        (("wide.png", png(5000, 2), "image/png"), 413, "5000x2 pixels"),
    ],
)
@pytest.mark.parametrize("name", FRUITLAB_SERVERS)
def test_fruitlab_endpoint_refuses_bad_input_with_a_4xx_and_a_reason(servers, name, upload, status, message) -> None:
    response = requests.post(f"{servers[name]}/predict", files={"file": upload})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


@pytest.mark.parametrize("name", FRUITLAB_SERVERS)
def test_fruitlab_endpoint_without_a_file_is_a_4xx(servers, name) -> None:
    response = requests.post(f"{servers[name]}/predict", data={"other": "field"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_mlflow_models_serve_answers_for_the_champion(servers, trained_run) -> None:
    path = fruit_image(trained_run)
    pixels = decode_image(path, 32).transpose(2, 0, 1)[None].astype(np.float32) / 255
    response = requests.post(f"{servers['mlflow']}/invocations", json={"inputs": pixels.tolist()})
    assert response.status_code == 200, response.text
    mlflow.set_tracking_uri(trained_run.uri)
    np.testing.assert_allclose(response.json()["predictions"][0], expected_probabilities(trained_run, path), atol=1e-5)
