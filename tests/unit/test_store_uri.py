"""The one rule that resolves a tracking store's URI, and where a store keeps its local files: pure, no store
opened, nothing created."""

from pathlib import Path

import pytest

from fruitlab.tracking.store import DEFAULT_STORE, TRACKING_URI_ENV, resolve_uri, shown_uri, sqlite_path, store_root


def test_a_given_uri_wins_over_the_environment(tmp_path: Path) -> None:
    given = f"sqlite:///{tmp_path / 'given.db'}"
    assert resolve_uri(given, {TRACKING_URI_ENV: "http://elsewhere:5000"}) == given


def test_the_environment_names_the_store_when_none_is_given() -> None:
    assert resolve_uri(None, {TRACKING_URI_ENV: "http://tracking:5000"}) == "http://tracking:5000"
    assert resolve_uri("", {TRACKING_URI_ENV: "http://tracking:5000"}) == "http://tracking:5000"


def test_the_default_is_mlruns_in_the_working_folder_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_uri(None, {}) == f"sqlite:///{tmp_path.resolve() / DEFAULT_STORE / 'mlflow.db'}"


def test_a_relative_or_home_sqlite_path_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_uri("sqlite:///runs/a.db", {}) == f"sqlite:///{tmp_path.resolve() / 'runs' / 'a.db'}"
    assert resolve_uri("sqlite:///~/b.db", {}) == f"sqlite:///{(tmp_path / 'home').resolve() / 'b.db'}"
    assert resolve_uri(f"sqlite:///{tmp_path}/x/../c.db", {}) == f"sqlite:///{tmp_path.resolve() / 'c.db'}"


def test_resolving_creates_nothing(tmp_path: Path) -> None:
    resolve_uri(f"sqlite:///{tmp_path / 'not' / 'yet' / 'mlflow.db'}", {})
    assert not (tmp_path / "not").exists()


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:5000", "https://mlflow.example.org", "postgresql+psycopg2://user:secret@db:5432/mlflow"],
)
def test_servers_and_databases_pass_through_unchanged(uri: str) -> None:
    assert resolve_uri(uri, {}) == uri
    assert sqlite_path(uri) is None


def test_a_store_keeps_its_files_beside_its_sqlite_file_else_in_mlruns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store_root(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}") == tmp_path / "store"
    monkeypatch.chdir(tmp_path)
    assert store_root("http://127.0.0.1:5000") == tmp_path.resolve() / DEFAULT_STORE


def test_a_password_in_a_uri_is_never_shown() -> None:
    assert "secret" not in shown_uri("postgresql+psycopg2://user:secret@db:5432/mlflow")
    assert "secret" not in shown_uri("http://user:secret@tracking:5000")
    assert shown_uri("http://tracking:5000") == "http://tracking:5000"
