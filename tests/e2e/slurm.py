"""A throw-away one-node SLURM cluster for tests: munged, a MariaDB server for slurmdbd (job accounting, which
submitit reads job states from with `sacct`), slurmdbd, slurmctld and slurmd, all as child processes with their
keys, configuration, spool and state in one temporary folder, on free local ports; stopped and deleted afterwards.

Clients (`sbatch`, `squeue`, `sacct`, `scancel`, hence submitit) find the cluster through `SLURM_CONF`, which
`environment()` sets. Debian's packages: slurmctld slurmd slurm-client slurmdbd munge mariadb-server."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pg import free_port

PROGRAMS = ("munged", "slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "sacctmgr", "mariadbd",
            "mariadb-install-db")  # fmt: skip
PACKAGES = "slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
CPUS = 2
MEMORY_MB = 8000


def program(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,) if p.exists()), None)


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    missing = [name for name in PROGRAMS if program(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed: apt-get install {PACKAGES} (.ci/run does)"
    if os.geteuid() != 0:
        return "the test cluster's daemons run as root (as in CI)"
    return None


@dataclass
class SlurmCluster:
    root: Path
    partition: str = "local"
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def environment(self) -> dict[str, str]:
        """The environment of a process that talks to this cluster (and of the jobs it submits)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 60) -> str:
        result = subprocess.run(command, env=self.environment(), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}\n{self.logs()}")
        return result.stdout

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.root.glob("*.log")))

    def start(self, *command: str, ready: str | None = None) -> None:
        log = open(self.root / f"{Path(command[0]).name}.out.log", "w")  # noqa: SIM115 - the daemon's lifetime
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.environment()))
        if ready:
            wait_for(lambda: ready_file(self.root / ready), f"{command[0]} to start", self)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def ready_file(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition, what: str, cluster: SlurmCluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}\n{cluster.logs()}")
        time.sleep(0.2)


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)


def slurm_conf(root: Path, host: str, ports: dict[str, int]) -> str:
    # linuxproc/none plugins: no cgroups or accounting gatherers, so the daemons start in seconds in a container.
    return f"""ClusterName=fruitlab
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CryptoType=crypto/munge
SlurmctldPort={ports["slurmctld"]}
SlurmdPort={ports["slurmd"]}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={ports["slurmdbd"]}
AccountingStoragePass={root}/munge.socket
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
KillWait=5
InactiveLimit=0
MinJobAge=300
NodeName={host} CPUs={CPUS} RealMemory={MEMORY_MB} State=UNKNOWN
PartitionName=local Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def slurmdbd_conf(root: Path, ports: dict[str, int], password: str) -> str:
    return f"""AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
DbdHost=localhost
DbdPort={ports["slurmdbd"]}
SlurmUser=root
PidFile={root}/slurmdbd.pid
LogFile={root}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports["mariadb"]}
StorageUser=slurm
StoragePass={password}
StorageLoc=slurm_acct_db
"""


def start_munge(cluster: SlurmCluster) -> None:
    root = cluster.root
    write(root / "munge.key", secrets.token_hex(512), 0o600)
    cluster.start(program("munged"), "--foreground", "--force", f"--key-file={root}/munge.key",
                  f"--socket={root}/munge.socket", f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log",
                  f"--seed-file={root}/munged.seed")  # fmt: skip
    wait_for(lambda: (root / "munge.socket").exists(), "munged's socket", cluster)


def start_mariadb(cluster: SlurmCluster, port: int, password: str) -> None:
    """A database for slurmdbd only: its own data folder, TCP on loopback, one user with a generated password."""
    root, data = cluster.root, cluster.root / "mariadb"
    subprocess.run([program("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=root",
                    "--auth-root-authentication-method=socket", "--skip-test-db"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    cluster.start(program("mariadbd"), "--no-defaults", f"--datadir={data}", f"--socket={root}/mariadb.socket",
                  f"--port={port}", "--bind-address=127.0.0.1", "--user=root", f"--pid-file={root}/mariadb.pid",
                  "--innodb-flush-log-at-trx-commit=0", f"--log-error={root}/mariadb.log")  # fmt: skip
    wait_for(lambda: port_open(port), "MariaDB", cluster)
    grant = (f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
             "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")  # fmt: skip
    client = shutil.which("mariadb") or "mysql"
    subprocess.run([client, f"--socket={root}/mariadb.socket", "-u", "root", "-e", grant],
                   check=True, capture_output=True, timeout=60)  # fmt: skip


@contextmanager
def slurm_cluster() -> Iterator[SlurmCluster]:
    """Starts the daemons in dependency order; `srun hostname` answers before this yields."""
    root = Path(tempfile.mkdtemp(prefix="fruitlab-slurm-"))
    root.chmod(0o755)  # munge clients and jobs reach its socket and files
    cluster = SlurmCluster(root)
    host = socket.gethostname().split(".")[0]
    ports = {name: free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "mariadb")}
    password = secrets.token_urlsafe(16)
    for folder in ("state", "spool"):
        (root / folder).mkdir()
    write(root / "slurm.conf", slurm_conf(root, host, ports))
    write(root / "slurmdbd.conf", slurmdbd_conf(root, ports, password), 0o600)
    try:
        start_munge(cluster)
        start_mariadb(cluster, ports["mariadb"], password)
        cluster.start(program("slurmdbd"), "-D")  # reads slurmdbd.conf beside $SLURM_CONF
        wait_for(lambda: port_open(ports["slurmdbd"]), "slurmdbd", cluster)
        cluster.start(program("slurmctld"), "-D", "-i", "-f", str(cluster.conf))
        wait_for(lambda: port_open(ports["slurmctld"]), "slurmctld", cluster)
        cluster.start(program("slurmd"), "-D", "-f", str(cluster.conf))
        wait_for(lambda: "idle" in cluster.run("sinfo", "-h", "-o", "%t"), "the node to be idle", cluster)
        cluster.run("srun", "--mem=100", "hostname")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
