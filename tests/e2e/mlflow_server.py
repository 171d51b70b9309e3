"""A real `mlflow server` on a free port of 127.0.0.1, for the tests of shared stores and authentication."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from pg import free_port


@contextmanager
def mlflow_server(backend: str, folder: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`mlflow server` on `backend` with artifacts under `folder` and `options`; yields its URL, stops it."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, *options]
    command += ["--artifacts-destination", str(folder / "artifacts"), "--workers", "1"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, log_path)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it waits for this test's idle keep-alive connections
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"mlflow server exited: {log.read_text()[-2000:]}"
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or slow to answer under load
            pass
        time.sleep(0.5)
    raise AssertionError(f"mlflow server did not answer in {timeout} s: {log.read_text()[-2000:]}")
