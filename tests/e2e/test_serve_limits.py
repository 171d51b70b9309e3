"""`fruitlab serve` fit for a shared network, over real HTTP on 127.0.0.1: the bearer token on every route (the docs
included), no open port without a token unless --insecure, the body limit enforced before the body is read, a
bound on requests in progress (503 beyond), image size checked before decoding, NaN/Inf or wrong-shaped pixels
refused, and the server's memory within the bound of docs/reliability.md under 200 concurrent requests; each with
the recorded PyTorch model and with its int8 ONNX model run by ONNX Runtime (--runtime onnxruntime)."""

import http.client
import io
import json
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from conftest import FAST, REPO, compose_config, one_line_error, run_cli, train_config
from PIL import Image
from test_serve import free_port, stop, wait_until_up

from fruitlab.commands.quantize import quantize

TOKEN = "a-token-for-this-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_CONCURRENT = 4
MAX_SIDE = 2048
MEMORY_BOUND_MB = 1500  # docs/reliability.md's bound: peak RSS of the server under the loop below
CONCURRENT_REQUESTS = 200


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen
    uri: str
    run_id: str  # the run of the served model


@dataclass(frozen=True)
class Recorded:
    uri: str
    run_id: str  # a lenet run on the embedded sample
    int8_run_id: str  # the child run of its int8 ONNX model


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    uri = f"sqlite:///{tmp_path_factory.mktemp('served') / 'mlflow.db'}"
    run_id = train_config(compose_config("model=lenet", *FAST, "report.gradcam=false", f"tracking.uri={uri}")).run_id
    return Recorded(uri, run_id, quantize(run_id, tracking_uri=uri).run_id)


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def server(request: pytest.FixtureRequest, recorded: Recorded) -> Iterator[Server]:
    """`fruitlab serve` of the PyTorch model (torch), or of its int8 ONNX model (onnxruntime)."""
    uri, runtime = recorded.uri, request.param
    run_id = recorded.run_id if runtime == "torch" else recorded.int8_run_id
    port = free_port()
    command = [sys.executable, "-m", "fruitlab", "serve", run_id, "--tracking-uri", uri, "--port", str(port)]
    command += ["--runtime", runtime, "--token", TOKEN]
    command += ["--max-concurrent", str(MAX_CONCURRENT), "--max-side", str(MAX_SIDE)]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", process)
        yield Server(url, process, uri, run_id)
    finally:
        stop(process)


def encoded(image: Image.Image, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def fruit() -> bytes:
    return encoded(Image.fromarray(np.full((64, 64, 3), 200, dtype=np.uint8)))


def post_image(url: str, data: bytes, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{url}/predict", files={"file": ("x.png", data, "image/png")}, headers=headers, timeout=120)


@pytest.mark.parametrize("route", ["/health", "/docs", "/openapi.json", "/predict"])
def test_every_route_needs_the_token(server: Server, route: str) -> None:
    method = requests.post if route == "/predict" else requests.get
    assert method(f"{server.url}{route}", timeout=30).status_code == 401
    assert method(f"{server.url}{route}", headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
    assert requests.get(f"{server.url}/health", headers=AUTH, timeout=30).status_code == 200
    assert post_image(server.url, fruit(), AUTH).status_code == 200


def test_a_non_loopback_address_without_a_token_is_refused_in_one_line(server: Server) -> None:
    line = one_line_error(run_cli("serve", server.run_id, "--host", "0.0.0.0", "--tracking-uri", server.uri))
    assert "--host 0.0.0.0 lets other machines use the model without a token" in line and "--insecure" in line


def test_an_oversized_body_is_refused_before_it_is_read(server: Server) -> None:
    """A 150 MB upload is declared, none of it sent: the 413 comes at once (a server reading it would wait)."""
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=30)
    connection.putrequest("POST", "/predict")
    for name, value in {
        **AUTH,
        "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": "150000000",
    }.items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and b"larger than" in response.read()
    connection.close()
    chunked = requests.post(f"{server.url}/predict", data=iter([b"x" * 1024]), headers=AUTH, timeout=30)
    assert chunked.status_code == 411


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels but holds a few bytes of them: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("side", "message"), [(40_000, "too many pixels"), (MAX_SIDE + 1, f"{MAX_SIDE + 1}x{MAX_SIDE + 1} pixels")]
)
def test_a_decompression_bomb_is_refused_from_its_header(server: Server, side: int, message: str) -> None:
    response = post_image(server.url, png_header_only(side, side), AUTH)
    assert response.status_code == 413 and message in response.json()["detail"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (np.full((3, 32, 32), np.nan).tolist(), "NaN or infinite"),
        (np.full((1, 3, 32, 32), np.inf).tolist(), "NaN or infinite"),
        (np.zeros((3, 16, 16)).tolist(), "inputs have shape (1, 3, 16, 16); send (N, 3, 32, 32)"),
        ("pixels", "Input should be a valid list"),
    ],
)
def test_non_finite_or_wrong_shaped_pixels_are_a_4xx(server: Server, inputs: object, message: str) -> None:
    body = json.dumps({"inputs": inputs})  # NaN and Infinity as Python writes them, which JSON parsers accept
    headers = {**AUTH, "Content-Type": "application/json"}
    response = requests.post(f"{server.url}/predict/pixels", data=body, headers=headers, timeout=60)
    assert response.status_code == 422 and message in str(response.json()["detail"])
    good = requests.post(
        f"{server.url}/predict/pixels", json={"inputs": np.zeros((2, 3, 32, 32)).tolist()}, headers=AUTH
    )
    assert good.status_code == 200 and len(good.json()["predictions"]) == 2


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


def test_200_concurrent_large_images_stay_within_the_memory_bound(server: Server) -> None:
    side = MAX_SIDE  # the largest image the server accepts, smooth so that the upload is small
    gradient = np.linspace(0, 255, side * side * 3).astype(np.uint8).reshape(side, side, 3)
    large = encoded(Image.fromarray(gradient), "JPEG")
    statuses: list[int] = []
    start = threading.Barrier(CONCURRENT_REQUESTS)

    def one_request() -> None:
        start.wait()
        statuses.append(post_image(server.url, large, AUTH).status_code)

    threads = [threading.Thread(target=one_request) for _ in range(CONCURRENT_REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert len(statuses) == CONCURRENT_REQUESTS and set(statuses) <= {200, 503} and 200 in statuses
    assert requests.get(f"{server.url}/health", headers=AUTH, timeout=30).status_code == 200
    peak = peak_rss_mb(server.process.pid)
    print(f"peak RSS {peak:.0f} MB; {statuses.count(200)} answered, {statuses.count(503)} told to retry (503)")
    assert peak < MEMORY_BOUND_MB


def test_an_unknown_runtime_is_refused_in_one_line(recorded: Recorded) -> None:
    line = one_line_error(run_cli("serve", recorded.run_id, "--runtime", "tensorrt", "--tracking-uri", recorded.uri))
    assert "--runtime tensorrt is not allowed: give one of torch, onnxruntime" in line
