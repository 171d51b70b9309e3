"""Shared fixtures: composed configs (Hydra's compose API, no process start), real data, throw-away stores."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from omegaconf import DictConfig
from pg import PostgresServer, missing_reason, postgres_server
from slurm import SlurmCluster, slurm_cluster
from slurm import missing_reason as slurm_missing_reason

if TYPE_CHECKING:
    from fruitlab.training.hooks import FitResult

from fruitlab.config import compose_config as compose_overrides

REPO = Path(__file__).resolve().parents[2]

# Settings that keep a real training run short in tests.
FAST = [
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "latency.repeats=3",
    "latency.warmup=1",
]


def fruits_root() -> Path | None:
    """The full 10-class Fruits-360 copy: $FRUITLAB_DATA, else ../shared/data/fruits360 beside the repo."""
    root = Path(os.environ.get("FRUITLAB_DATA", REPO.parent / "shared" / "data" / "fruits360"))
    return root if (root / "Training").is_dir() else None


# Resolved once; then unset, so that a composed config's default data is the embedded sample in every test,
# as on a fresh clone, whether or not the caller exported FRUITLAB_DATA (CI does).
REAL_DATA = fruits_root()
os.environ.pop("FRUITLAB_DATA", None)


@pytest.fixture(scope="session")
def real_data() -> Path:
    root = REAL_DATA
    if root is None:
        pytest.skip("real Fruits-360 data not found: set FRUITLAB_DATA or place it at ../shared/data/fruits360")
    return root


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One decode cache per test session, shared by its tests and their subprocesses."""
    os.environ["FRUITLAB_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["FRUITLAB_OUTPUTS"] = str(tmp_path_factory.mktemp("outputs"))


def train_config(cfg: DictConfig, hooks: object = None) -> "FitResult":
    """What `fruitlab` does with a composed config: open the store it names, then train it (one fit or a
    cross-validation) in-process."""
    from fruitlab.tracking.store import Store
    from fruitlab.training.run import run

    return run(cfg, Store.open(cfg.tracking.uri), hooks)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh SQLite MLflow store URI in a temporary folder."""
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


def named_sweeps_line() -> str:
    """How `--help` lists the `sweep` config group: every file of sweeps/."""
    return f"sweep: {', '.join(sorted(path.stem for path in (REPO / 'sweeps').glob('*.yaml')))}"


def compose_config(*overrides: str) -> DictConfig:
    """Compose the project's config with overrides, as `python -m fruitlab` would."""
    return compose_overrides(list(overrides))


@pytest.fixture
def make_config() -> Callable[..., DictConfig]:
    return compose_config


def run_cli(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`python -m fruitlab ARGS` in a real process, from the repo root."""
    return subprocess.run(
        [sys.executable, "-m", "fruitlab", *args],
        cwd=kwargs.pop("cwd", REPO),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error line of a failed command, after checking that it is the only thing the user must read: exit
    code 2, no traceback, one `fruitlab: error:` line, and it is the last."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("fruitlab: error: ")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    return errors[0]


@dataclass(frozen=True)
class FinishedSweep:
    uri: str
    experiment: str
    parent_name: str
    parent_id: str
    child_ids: list[str]  # the finished trials, in training order
    failed_id: str


# Two-epoch trials on the embedded sample: three PCA -> FFNN counts and a LeNet (run names repeat, as in a sweep).
SWEEP_TRIALS = [
    ["model=ffnn", "data=fruits360_pca", "data.n_components=10"],
    ["model=ffnn", "data=fruits360_pca", "data.n_components=40"],
    ["model=ffnn", "data=fruits360_pca", "data.n_components=120"],
    ["model=lenet"],
]


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> FinishedSweep:
    """A store holding a finished sweep made by real short runs: a parent run, its four finished trials
    (children via `tracking.parent_run_id`) and one failed trial."""
    import mlflow

    from fruitlab.tracking.store import Store

    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('sweep') / 'mlruns' / 'mlflow.db'}")
    uri = store.uri
    client = mlflow.MlflowClient(uri)
    parent = client.create_run(store.ensure_experiment("fruits360"), run_name="pca-sweep")
    common = [*FAST, "trainer.max_epochs=2", "tracking.log_model=false", f"tracking.uri={uri}"]
    common.append(f"+tracking.parent_run_id={parent.info.run_id}")
    for trial in SWEEP_TRIALS:
        train_config(compose_config(*trial, *common))
    with pytest.raises(Exception, match="bogus"):
        train_config(compose_config("model=lenet", "optim.name=bogus", *common))
    client.set_terminated(parent.info.run_id)
    children = client.search_runs([parent.info.experiment_id], order_by=["start_time ASC"])
    finished = [r.info.run_id for r in children if r.info.status == "FINISHED" and r.info.run_id != parent.info.run_id]
    failed = next(r.info.run_id for r in children if r.info.status == "FAILED")
    return FinishedSweep(uri, "fruits360", "pca-sweep", parent.info.run_id, finished, failed)


def skip_or_fail(reason: str) -> None:
    """A missing server skips its tests on a developer's machine; under CI (which installs them) it fails them."""
    if os.environ.get("FRUITLAB_REQUIRE_SERVERS"):
        pytest.fail(f"{reason}; FRUITLAB_REQUIRE_SERVERS is set", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server for the session; skipped where PostgreSQL is not installed."""
    if reason := missing_reason():
        skip_or_fail(reason)
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """A throw-away one-node SLURM cluster for the session; skipped where its packages are not installed."""
    if reason := slurm_missing_reason():
        skip_or_fail(reason)
    with slurm_cluster() as cluster:
        yield cluster


# Metrics that time a run: they differ between two runs of the same config.
TIMINGS = ("fit_time_s", "elapsed_s", "latency_", "process_peak_rss_mb")


def metric_histories(uri: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric's (step, value) history, timings aside, of the only run in the store at `uri`."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {
        name: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]
        for name in run.data.metrics
        if not name.startswith(TIMINGS)
    }


@dataclass(frozen=True)
class TrainedRun:
    uri: str  # tracking URI of its store
    run_id: str
    data: Path


@pytest.fixture(scope="session")
def trained_run(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """One real vgg1 run on the full Fruits-360 copy (2 epochs, model logged), shared by the tests that
    read a recorded run back: test report, Grad-CAM, export, quantization, serving."""
    import mlflow

    uri = f"sqlite:///{tmp_path_factory.mktemp('trained') / 'mlflow.db'}"
    overrides = ["model=vgg1", f"data.root={real_data}", f"tracking.uri={uri}", *FAST, "trainer.max_epochs=2"]
    train_config(compose_config(*overrides))
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return TrainedRun(uri, run.info.run_id, real_data)
