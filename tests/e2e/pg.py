"""A throw-away PostgreSQL server for tests: a new cluster in a temporary folder, on a free local port.

PostgreSQL refuses to run as root, so under root (as in CI) the cluster belongs to the `postgres` user that
the Debian package creates and its commands run through `runuser`."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    return next((d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if postgres_bindir() is None:
        return "PostgreSQL is not installed (initdb, pg_ctl): apt-get install postgresql (.ci/run does)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to own the cluster"
    return None


class PostgresServer:
    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir, self.root, self.port = bindir, root, port

    def _run(self, tool: str, *args: str) -> str:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout

    def query(self, sql: str) -> str:
        """psql's unaligned output of `sql` (rows of `|`-separated fields), on the server's first database."""
        return self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-At", "-c", sql
        )

    def create_database(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL (the psycopg2 driver)."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """initdb + pg_ctl start; stopped and deleted afterwards. Trust authentication, local TCP only."""
    root = Path(tempfile.mkdtemp(prefix="fruitlab-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(postgres_bindir(), root, free_port())
    data = str(root / "data")
    server._run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    server._run("pg_ctl", "-D", data, "-l", str(root / "server.log"), "-o", options, "-w", "start")
    try:
        yield server
    finally:
        server._run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
