"""A process limit for each grading kernel: a pids cgroup of its own.

bubblewrap gives the kernel its own PID namespace, and everything in it dies
with the sandbox, but nothing in it limits how many processes (and threads) the
kernel may start while it runs: a fork bomb in a student's cell would take the
grading machine's process table, and with it the other submissions graded
beside it. Linux's pids controller does: every kernel runs in a cgroup of its
own whose ``pids.max`` caps its tasks (processes and threads together; a fork
or a new thread past it fails with EAGAIN, which Python raises in the cell as
``BlockingIOError``), and when grading is over every task still in the cgroup
is killed and the cgroup removed.

The kernel's command line is prefixed with ``/bin/sh -c 'echo $$ > PROCS; exec
"$@"'``: the shell moves itself into the cgroup and becomes bubblewrap, so the
kernel and all it starts are in it before any of them runs. This needs a pids
hierarchy this process may write: cgroup v1's ``/sys/fs/cgroup/pids`` or a
cgroup v2 mount whose root already hands ``pids`` down (this process does not
change the machine's own cgroup set-up). Where there is none (most desktops as a normal user), kernels run
without the process limit and :func:`problem` says why; everything else
(bubblewrap, the memory and time limits) is unchanged.
"""
from __future__ import annotations

import functools
import os
import signal
import time
import uuid
from pathlib import Path

V1 = Path("/sys/fs/cgroup/pids")
V2 = Path("/sys/fs/cgroup")
PARENT = "autograder-grading"


def _own_v2_cgroup() -> str | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        pass
    return None


def _v2_usable() -> bool:
    try:
        controllers = (V2 / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    try:   # pids already handed down from the root: this process does not change the machine's own set-up
        handed_down = (V2 / "cgroup.subtree_control").read_text().split()
    except OSError:
        return False
    return "pids" in controllers and "pids" in handed_down and _own_v2_cgroup() == "/"


@functools.cache
def hierarchy() -> tuple[Path, str] | None:
    """(the folder grading cgroups are made in, "v1" or "v2"), or None where this process cannot make one."""
    candidates = []
    if (V1 / "cgroup.procs").is_file():
        candidates.append((V1, "v1"))
    if _v2_usable():
        candidates.append((V2, "v2"))
    for root, version in candidates:
        try:
            parent = root / PARENT
            parent.mkdir(exist_ok=True)
            if version == "v2":
                (parent / "cgroup.subtree_control").write_text("+pids")
            probe = parent / f"probe-{uuid.uuid4().hex[:8]}"
            probe.mkdir()
            (probe / "pids.max").write_text("8")
            probe.rmdir()
            remove_stale(parent)
            return parent, version
        except OSError:
            continue
    return None


def remove_stale(parent: Path) -> list[str]:
    """Remove the empty cgroups of grading processes that are gone (a worker killed mid-submission never
    closed its kernel's; the kernel died with it). Their names say which process made them."""
    removed = []
    for path in parent.glob("kernel-*-*"):
        try:
            maker = int(path.name.split("-")[1])
        except ValueError:
            continue
        if Path(f"/proc/{maker}").exists():
            continue
        try:
            if not (path / "cgroup.procs").read_text().split():
                path.rmdir()
                removed.append(path.name)
        except OSError:
            continue
    return removed


def problem() -> str | None:
    """Why kernels run without a process limit here, or None when they have one."""
    if hierarchy() is not None:
        return None
    return ("no pids cgroup can be made here (cgroup v1's /sys/fs/cgroup/pids, or cgroup v2 with the pids "
            "controller, writable by this user): grading kernels run without a process limit")


class PidsLimit:
    """A pids cgroup for one kernel: :meth:`wrap` its command line, :meth:`close` when grading is over."""

    def __init__(self, path: Path, max_tasks: int):
        self.path = path
        self.max_tasks = max_tasks

    @classmethod
    def create(cls, max_tasks: int) -> "PidsLimit | None":
        """A new cgroup capped at `max_tasks`; None where there is no usable hierarchy (see :func:`problem`)."""
        found = hierarchy()
        if found is None or not max_tasks:
            return None
        path = found[0] / f"kernel-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(int(max_tasks)))
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path, max_tasks)

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv`, started inside this cgroup: the shell moves itself in, then becomes `argv`."""
        return ["/bin/sh", "-c", 'echo $$ > "$0"; exec "$@"', str(self.path / "cgroup.procs"), *argv]

    def tasks(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def refused(self) -> int:
        """How many forks (or new threads) the limit refused."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                name, _, count = line.partition(" ")
                if name == "max":
                    return int(count)
        except (OSError, ValueError):
            pass
        return 0

    def close(self, seconds: float = 10.0) -> None:
        """Kill every task still in the cgroup, then remove it."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            left = self.tasks()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)
        while time.monotonic() < deadline:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:     # the last tasks are still being reaped
                time.sleep(0.05)
