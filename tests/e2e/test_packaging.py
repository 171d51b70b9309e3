"""The package as a user installs it, run from a folder outside the repository: a wheel that carries its configs
and named sweeps; and the wheel, setuptools' default editable install and its compat mode, each of which finds
fruitlab's sweeper."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import mlflow
import pytest
from conftest import REPO, named_sweeps_line

# What a source tree holds beyond the package's sources: left out of the copy the wheel is built from.
NOT_SOURCES = (".git", ".venv", "mlruns", "build", "*.egg-info", "__pycache__", "outputs", "multirun", "reports")


PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the source tree, so that builds and editable installs leave the repository as it is."""
    copy = tmp_path_factory.mktemp("source") / "fruitlab"
    shutil.copytree(REPO, copy, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    return copy


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, source], check=True)
    (built,) = dist.glob("fruitlab-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fruitlab's wheel installed without dependencies into a folder of its own; returns that folder."""
    site = tmp_path_factory.mktemp("wheel") / "site"
    subprocess.run([*PIP, "install", "--no-deps", "--target", site, wheel], check=True)
    return site


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_wheel_runs_from_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    where = run_installed(installed, tmp_path, "-c", "import fruitlab; print(fruitlab.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed)

    help_text = run_installed(installed, tmp_path, "-m", "fruitlab", "--help")
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    assert named_sweeps_line() in help_text.stdout

    job = run_installed(installed, tmp_path, "-m", "fruitlab", "model=lenet", "--cfg", "job")
    assert job.returncode == 0, job.stderr[-2000:]
    assert "name: lenet" in job.stdout
    sweep = run_installed(installed, tmp_path, "-m", "fruitlab", "sweep=tpe_lr", "--cfg", "hydra")
    assert "lr: tag(log, interval(1e-5, 1.0))" in sweep.stdout  # a named sweep, read from the wheel

    script = installed / "bin" / "fruitlab"
    run = subprocess.run(
        [sys.executable, script, "model=lenet", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
         "tracking.log_model=false", "latency.repeats=2", "report.gradcam=false"],
        cwd=tmp_path, env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin", "FRUITLAB_CACHE": str(tmp_path)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()  # the embedded sample trained into ./mlruns


def venv_with_dependencies(folder: Path) -> Path:
    """A virtual environment whose own site-packages comes first, then this one's as a plain folder on its path
    (for the dependencies, without running this one's .pth files, which may put a fruitlab checkout on the
    path); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True)
    python = folder / "bin" / "python"
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(own) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


# How fruitlab gets into the environment: the wheel, or an editable install of the source copy (setuptools'
# default mode serves the packages through an import hook; compat mode puts the source tree on the path).
INSTALLS = {
    "wheel": lambda wheel, source: [wheel],
    "editable": lambda wheel, source: ["-e", source],
    "editable-compat": lambda wheel, source: ["-e", source, "--config-settings", "editable_mode=compat"],
}


@pytest.mark.parametrize("mode", list(INSTALLS))
def test_a_sweep_finds_fruitlabs_sweeper_however_fruitlab_is_installed(
    mode: str, wheel: Path, source: Path, tmp_path: Path
) -> None:
    python = venv_with_dependencies(tmp_path / "venv")
    install = [*PIP, "--python", python, "install", "--no-deps", "--no-build-isolation", *INSTALLS[mode](wheel, source)]
    subprocess.run(install, check=True)
    work = tmp_path / "work"
    work.mkdir()
    store = f"sqlite:///{work / 'mlflow.db'}"
    sweep = subprocess.run(
        [python.parent / "fruitlab", "-m", "model=lenet", "lr=0.1,0.01", "trainer.max_epochs=1",
         "+trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "tracking.log_model=false",
         "latency.repeats=2", "report.gradcam=false", "report.figures=false", f"tracking.uri={store}"],
        cwd=work, env={"PATH": "/usr/bin:/bin", "FRUITLAB_CACHE": str(tmp_path / "cache")},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    (results,) = work.glob("outputs/multirun/*/*/optimization_results.yaml")  # written by fruitlab's sweeper
    assert "best_params" in results.read_text()
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["lr"] for r in trials) == ["0.01", "0.1"]
    assert {r.info.status for r in trials} == {"FINISHED"}
