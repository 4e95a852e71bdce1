"""The kernel server (autograder/zygote.py): kernels forked from one sandboxed server after TensorFlow's import.

Each test runs real kernels through the server, as nbgrader does (a kernelspec whose command is the client),
and looks from inside a kernel at what an earlier kernel of the same server left, and at the server.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jupyter_client.manager import KernelManager

from autograder import sandbox

import corpus

pytestmark = pytest.mark.skipif(sandbox.isolation_problem() is not None,
                                reason=f"no isolation here: {sandbox.isolation_problem()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    packages = sandbox.stage_packages(corpus.UNIT, tmp_path_factory.mktemp("packages") / "packages")
    server = sandbox.KernelServer(packages)
    assert server.ready(), server.problem
    yield server
    server.close()


def run_kernel(server, scratch, code: str) -> str:
    """Run `code` in a kernel forked by `server` (its own box in `scratch`); the text it printed."""
    scratch.mkdir()
    name, spool_box, io = server.new_box()
    sandbox.box_of(scratch).symlink_to(spool_box)
    sandbox.write_kernelspec(scratch, corpus.UNIT, sandbox.Limits(), server.packages, io, None, server, name)
    env = dict(os.environ, JUPYTER_PATH=str(scratch / "jupyter"), JUPYTER_RUNTIME_DIR=str(io))
    km = KernelManager(kernel_name=sandbox.KERNEL_NAME, transport="ipc", ip=str(io / "k-ipc"),
                       connection_file=str(io / "k.json"))
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        km.start_kernel()
        client = km.client()
        client.start_channels()
        client.wait_for_ready(120)
        out = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        client.execute_interactive(code, timeout=120, output_hook=hook)
        client.stop_channels()
        km.shutdown_kernel(now=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    sandbox.box_of(scratch).unlink()
    return "".join(out)


LEAVE_TRACES = r"""
import os, subprocess, json
writable = []
for top in ["/", "/grading", "/grading/packages", "/grading/work", "/tmp", "/dev", "/dev/shm", "/usr", "/etc",
            "/var", "/run", "/home", "/root", os.path.dirname(os.environ.get("JUPYTER_RUNTIME_DIR", "/x/y"))]:
    try:
        with open(os.path.join(top, "trace-of-student-a"), "w") as f:
            f.write("a")
        writable.append(top)
    except OSError:
        pass
daemon = subprocess.Popen(["sleep", "313"], start_new_session=True)
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")]
print(json.dumps({"writable": writable, "caps": caps, "cwd": os.getcwd(), "daemon": daemon.pid}))
"""

LOOK_FOR_TRACES = r"""
import os, json
found = []
for root, dirs, files in os.walk("/", onerror=lambda e: None):
    if root.startswith(("/proc", "/sys", "/usr", "/root/.pyenv")):
        dirs[:] = []
        continue
    found += [os.path.join(root, f) for f in files if f == "trace-of-student-a"]
sleepers, server_env = [], []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        continue
    if cmd[:2] == [b"sleep", b"313"]:
        sleepers.append(pid)
    if int(pid) != os.getpid():   # the server, the fork that waits for this kernel
        for part in ("environ", "mem", "root/", "cwd/"):
            try:
                open(f"/proc/{pid}/{part}", "rb").read(1) if part != "root/" else os.listdir(f"/proc/{pid}/root/")
                server_env.append(pid + "/" + part + " " + " ".join(c.decode() for c in cmd[:4]))
            except OSError:
                pass
print(json.dumps({"found": found, "sleepers": sleepers, "server_open": server_env,
                  "socket_seen": any(f.endswith(".sock") for f in os.listdir("/tmp") for f in [f]),
                  "tmp": sorted(os.listdir("/tmp"))}))
"""


def test_a_kernel_finds_nothing_of_the_kernel_before_it(server, tmp_path):
    first = json.loads(run_kernel(server, tmp_path / "a", LEAVE_TRACES).strip().splitlines()[-1])
    assert first["caps"] == ["0000000000000000"]
    assert first["cwd"] == sandbox.WORK_IN_BOX
    # what it could write: its own box, its own /tmp and /dev/shm (and its connection folder in that /tmp)
    assert set(first["writable"]) <= {"/grading/work", "/tmp", "/dev/shm", os.path.dirname(str(server.spool))}, first
    assert "/grading/work" in first["writable"]
    second = json.loads(run_kernel(server, tmp_path / "b", LOOK_FOR_TRACES).strip().splitlines()[-1])
    assert second["found"] == [], second        # nothing the first kernel wrote, anywhere
    assert second["sleepers"] == [], second     # the first kernel's daemon died with it
    assert second["server_open"] == [], second  # the server's environment, memory and files are closed
    assert not second["socket_seen"] and not any(n.startswith("gz-") and n != server.spool.name for n in second["tmp"])
    assert (tmp_path / "a" / "box").exists() is False   # the box was the spool's (moved back by the grader)


def test_a_kernel_that_stops_the_fork_watching_it_still_leaves_nothing(server, tmp_path):
    """The fork that would kill what the kernel left is stopped by the kernel itself: the server kills every
    other process of its sandbox before it forks the next kernel (and it is PID 1 there: deaf to SIGSTOP)."""
    stop = LEAVE_TRACES + "import signal\nos.kill(1, signal.SIGSTOP)\nos.kill(1, signal.SIGINT)\n" \
                          "os.kill(os.getppid(), signal.SIGSTOP)\n"
    run_kernel(server, tmp_path / "a", stop)
    second = json.loads(run_kernel(server, tmp_path / "b", LOOK_FOR_TRACES).strip().splitlines()[-1])
    assert second["sleepers"] == [] and second["found"] == [], second
    assert server.process.poll() is None


NUMERIC_PROBE = """
import hashlib, numpy as np
rng = np.random.default_rng(7)
a, m = rng.normal(size=(60, 40)), rng.normal(size=(6, 6))
print(*(hashlib.sha256(x.tobytes()).hexdigest() for x in (a @ a.T, np.linalg.qr(m)[0], np.tanh(a), a.sum(axis=0))))
"""


def test_a_forked_kernel_computes_what_the_grader_computes_bit_for_bit(server, tmp_path):
    """numpy (and OpenBLAS' threads) were set up in the server before the fork: the kernel must still compute
    the judge's bits (a record's inputs are compared by their bytes)."""
    outside = subprocess.run([sys.executable, "-c", NUMERIC_PROBE], capture_output=True, text=True, check=True)
    inside = run_kernel(server, tmp_path / "k", NUMERIC_PROBE)
    assert inside.split() == outside.stdout.split() and len(outside.stdout.split()) == 4


def test_forked_kernels_get_their_own_random_seeds(server, tmp_path):
    code = "import random, numpy as np; print(random.random(), np.random.random())"
    assert run_kernel(server, tmp_path / "a", code) != run_kernel(server, tmp_path / "b", code)


def test_a_server_that_cannot_start_leaves_kernels_to_bubblewrap(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "bwrap_argv", lambda *a: ["/bin/echo", "unavailable: no namespaces here", "--"])
    monkeypatch.setattr(sandbox, "_servers", {})
    monkeypatch.setattr(sandbox, "_server_problems", [])
    assert sandbox.kernel_server(tmp_path) is None
    assert "no namespaces here" in sandbox._server_problems[0]


def test_the_server_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv(sandbox.SERVER_ENV, "0")
    assert sandbox.kernel_server(tmp_path) is None


def test_the_spools_of_workers_that_are_gone_are_removed(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    (tmp_path / f"gz-{dead}-abc").mkdir()
    (tmp_path / f"gz-{dead}-abc.log").write_text("")
    (tmp_path / f"gz-{os.getpid()}-def").mkdir()
    assert sorted(sandbox.remove_stale_spools(tmp_path)) == [f"gz-{dead}-abc", f"gz-{dead}-abc.log"]
    assert [p.name for p in tmp_path.iterdir()] == [f"gz-{os.getpid()}-def"]


def test_a_worker_keeps_at_most_two_servers(monkeypatch, tmp_path):
    started, closed = [], []

    class Fake:
        def __init__(self, packages):
            started.append(packages.name)
            self.packages, self._lock = packages, __import__("threading").Lock()

        def ready(self):
            return True

        def close(self):
            closed.append(self.packages.name)

    monkeypatch.setattr(sandbox, "KernelServer", Fake)
    monkeypatch.setattr(sandbox, "_servers", {})
    monkeypatch.setattr(sandbox, "_server_problems", [])
    for name in ("u1", "u2", "u1", "u3", "u1"):
        sandbox.kernel_server(tmp_path / name)
    assert started == ["u1", "u2", "u3"] and closed == ["u2"]
