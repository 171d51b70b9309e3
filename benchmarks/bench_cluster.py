"""What a SLURM sweep asks of its shared services, measured on the test cluster (tests/e2e/slurm.py): the throw-away
cluster's start time, and while a sweep of `n_jobs` trials runs, the peak number of PostgreSQL connections to the
study's database and to the tracking server's database, sampled every 0.2 s, and the sweep's wall time.

    python benchmarks/bench_cluster.py [--n-jobs 2] [--points 4]

Needs Debian's PostgreSQL and SLURM packages (as the tests do) and root for the cluster's daemons."""

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from mlflow_server import mlflow_server  # noqa: E402
from pg import PostgresServer, postgres_server  # noqa: E402
from slurm import slurm_cluster  # noqa: E402

LEARNING_RATES = ["0.03", "0.01", "0.003", "0.001", "0.0003", "0.0001", "3e-5", "1e-5"]


def connections(server: PostgresServer) -> dict[str, int]:
    query = "SELECT datname, count(*) FROM pg_stat_activity WHERE datname IS NOT NULL GROUP BY datname"
    out = server.query(query)
    return {name: int(count) for name, count in (line.split("|") for line in out.splitlines() if line)}


def sample_peaks(server: PostgresServer, stop: threading.Event, peaks: dict[str, int]) -> None:
    while not stop.is_set():
        for name, count in connections(server).items():
            peaks[name] = max(peaks.get(name, 0), count)
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--points", type=int, default=4, choices=range(1, len(LEARNING_RATES) + 1))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, postgres_server() as server:
        started = time.perf_counter()
        with slurm_cluster() as cluster:
            print(f"cluster up in {time.perf_counter() - started:.1f} s (munged, MariaDB, slurmdbd, slurmctld, slurmd)")
            study = server.create_database("optuna")
            with mlflow_server(server.create_database("mlflow"), Path(folder)) as url:
                command = [sys.executable, "-m", "fruitlab", "-m", "hydra/launcher=slurm", "hydra.launcher.mem_gb=1",
                           f"hydra.sweeper.n_jobs={args.n_jobs}", f"hydra.sweeper.storage={study}",
                           f"tracking.uri={url}", f"hydra.sweep.dir={folder}/multirun", "model=lenet", "optim=adam",
                           "trainer.max_epochs=1", "data.image_size=16", "trainer.enable_progress_bar=false",
                           f"lr={','.join(LEARNING_RATES[: args.points])}"]  # fmt: skip
                peaks: dict[str, int] = {}
                stop = threading.Event()
                sampler = threading.Thread(target=sample_peaks, args=(server, stop, peaks), daemon=True)
                sampler.start()
                began = time.perf_counter()
                result = subprocess.run(command, cwd=folder, env=cluster.environment(), capture_output=True, text=True)
                wall = time.perf_counter() - began
                stop.set()
                sampler.join()
    if result.returncode != 0:
        sys.exit(f"the sweep failed:\n{result.stderr[-3000:]}")
    print(f"sweep of {args.points} trials, n_jobs={args.n_jobs}: {wall:.0f} s")
    print(f"peak PostgreSQL connections: study database {peaks.get('optuna', 0)}, "
          f"tracking server's database {peaks.get('mlflow', 0)}")  # fmt: skip


if __name__ == "__main__":
    main()
