"""Private servers for the fault suite and its tests: a PostgreSQL cluster made with Debian's
pg_createcluster on a port of its own (restarted at will, never the shared server) and a
redis-server child process (stopped at will, never the shared Redis)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A port nothing listens on now, for a test's own server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, *, up: bool, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'}")


class PrivatePostgres:
    """`pg_createcluster <version> <name> -p <port>` with trust auth on 127.0.0.1."""

    def __init__(self, name: str, port: int):
        self.name, self.port = name, port
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if not versions or shutil.which("pg_createcluster") is None:
            raise RuntimeError("needs Debian's postgresql and postgresql-common (pg_createcluster)")
        self.version = versions[-1].parent.parent.name

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(["pg_ctlcluster", self.version, self.name, *args], check=True)

    def create(self) -> None:
        self.drop()  # a cluster left by an interrupted run
        subprocess.run(
            ["pg_createcluster", self.version, self.name, "-p", str(self.port), "--",
             "--auth-local=trust", "--auth-host=trust"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self._ctl("start")
        _wait_port(self.port, up=True)

    def create_database(self, database: str) -> None:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc",
             f'CREATE DATABASE "{database}"'],
            check=True,
        )  # fmt: skip

    def restart(self) -> None:
        """A fast restart: every connection is cut, as when the server is restarted for real."""
        self._ctl("restart", "-m", "fast")
        _wait_port(self.port, up=True)

    def drop(self) -> None:
        listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
        if any(line.split()[:2] == [self.version, self.name] for line in listed.splitlines()):
            subprocess.run(["pg_dropcluster", "--stop", self.version, self.name], check=True)


class PrivateRedis:
    """A redis-server child process on `port`, keeping nothing on disk."""

    def __init__(self, port: int, folder: Path):
        self.port, self.folder = port, folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
        _wait_port(self.port, up=False)
