"""A tracking server with authentication (`mlflow server --app-name basic-auth`): fruitlab records a run with the
standard MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, and a wrong password is one line."""

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from conftest import FAST, one_line_error, run_cli
from mlflow_server import mlflow_server

ADMIN, PASSWORD = "admin", "fruitlab-admin-pass"  # basic-auth wants at least 12 characters
RUN = ["model=lenet", *FAST, "tracking.log_model=false", "report.gradcam=false"]


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "auth.ini"
    config.write_text(
        f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{tmp_path / 'users.db'}\n"
        "admin_username = admin\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "a-key-for-this-test-only",
        "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
    }
    with mlflow_server(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, "--app-name", "basic-auth", env=env) as url:
        yield url


def credentials(password: str) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": password}


def test_a_run_is_recorded_with_the_right_password_and_a_wrong_one_is_one_line(
    auth_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = run_cli(*RUN, f"tracking.uri={auth_server}", cwd=tmp_path, env=credentials("not-the-password"))
    line = one_line_error(wrong)
    assert line == (
        f"fruitlab: error: tracking.uri={auth_server} refused the credentials: set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD to a user's."
    )
    anonymous = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    assert "refused the credentials" in one_line_error(run_cli(*RUN, f"tracking.uri={auth_server}", env=anonymous))

    right = run_cli(*RUN, f"tracking.uri={auth_server}", cwd=tmp_path, env=credentials(PASSWORD), timeout=400)
    assert right.returncode == 0, right.stderr[-3000:]
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    client = mlflow.MlflowClient(auth_server)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED" and run.data.params["model.name"] == "lenet"
