"""A throw-away PostgreSQL server for tests: `postgres_url` fixture, or `running_server(folder)`.

Several graders share one gradebook through nbgrader's `db_url`; the tests
prove that against a real server, not a mock. initdb refuses to run as root,
so as root the server runs as `nobody` (data and socket folders chowned to it).
It listens only on a Unix socket in the test's folder, on a free port number.
The test is skipped, with the reason, when the binaries or psycopg2 are missing;
the server is always stopped.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

BINARIES = ("initdb", "pg_ctl", "createdb")
USER = "grader"


def missing() -> str:
    """Why a server cannot be started here ("" when it can)."""
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return f"PostgreSQL binaries not on PATH: {', '.join(absent)}"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root and runuser is missing (initdb refuses to run as root)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> None:
    done = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextmanager
def running_server(folder: Path, database: str = "gradebook"):
    """Start a server with its data and socket under `folder`; yield its SQLAlchemy URL; stop it."""
    data, sockets, log = folder / "data", folder / "sockets", folder / "server.log"
    for path in (folder, data, sockets):
        path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        for path in (folder, data, sockets):
            shutil.chown(path, "nobody")
    port = _free_port()
    _run(["initdb", "-D", str(data), "-A", "trust", "-U", USER])
    _run(["pg_ctl", "-D", str(data), "-o", f"-k {sockets} -p {port} -c listen_addresses=''",
          "-l", str(log), "start", "-w"])
    try:
        _run(["createdb", "-h", str(sockets), "-p", str(port), "-U", USER, database])
        yield f"postgresql+psycopg2://{USER}@/{database}?host={sockets}&port={port}"
    finally:
        _run(["pg_ctl", "-D", str(data), "stop", "-m", "fast", "-w"])


@pytest.fixture
def postgres_url():
    """A fresh server and database per test. Its folder is made directly under the temp dir,
    not in pytest's tmp_path: that one is private to root, and the server runs as nobody."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="postgres-"))
    folder.chmod(0o755)
    try:
        with running_server(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)
