"""The package as a user installs it: a wheel (not an editable install) that carries its configs and named
sweeps, run from a folder outside the repository."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, named_sweeps_line

# What a source tree holds beyond the package's sources: left out of the copy the wheel is built from.
NOT_SOURCES = (".git", ".venv", "mlruns", "build", "*.egg-info", "__pycache__", "outputs", "multirun", "reports")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fruitlab's wheel, built from a copy of the source tree and installed without dependencies into a
    folder of its own; returns that folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", work / "dist", source], check=True)
    (wheel,) = (work / "dist").glob("fruitlab-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", work / "site", wheel], check=True)
    return work / "site"


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
