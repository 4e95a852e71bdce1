"""Each grading kernel gets a process limit (autograder/cgroups.py): a fork bomb is refused, and nothing it
started outlives its grading."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autograder import cgroups

pytestmark = pytest.mark.skipif(cgroups.problem() is not None, reason=str(cgroups.problem()))

FORKER = """
import json, os, time
started, refused = [], 0
for _ in range(200):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused += 1
        continue
    if pid == 0:
        os.close(1), os.close(2)   # the test reads the parent's output to its end
        time.sleep(120)
        os._exit(0)
    started.append(pid)
print(json.dumps({"started": started, "refused": refused}))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_a_fork_bomb_is_refused_past_the_limit_and_killed_afterwards():
    limit = cgroups.PidsLimit.create(30)
    assert limit is not None and limit.path.is_dir()
    try:
        done = subprocess.run(limit.wrap([sys.executable, "-c", FORKER]), capture_output=True, text=True,
                              timeout=120)
        report = json.loads(done.stdout)
        assert 0 < len(report["started"]) < 30 and report["refused"] > 0, report
        assert limit.refused() > 0
        assert set(report["started"]) <= set(limit.tasks())     # the children are in the cgroup
    finally:
        limit.close()
    assert not limit.path.exists()
    assert not [pid for pid in report["started"] if _alive(pid)]


def test_the_kernel_command_line_starts_inside_the_cgroup(tmp_path):
    limit = cgroups.PidsLimit.create(50)
    try:
        out = subprocess.run(limit.wrap(["cat", "/proc/self/cgroup"]), capture_output=True, text=True, check=True)
        assert limit.path.name in out.stdout
    finally:
        limit.close()
    assert cgroups.PidsLimit.create(0) is None           # no limit asked for
    assert os.path.basename(limit.wrap(["x"])[0]) == "sh"


def test_the_empty_cgroups_of_a_grader_that_is_gone_are_removed():
    parent = cgroups.hierarchy()[0]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = parent / f"kernel-{int(gone.stdout)}-0123456789ab"
    stale.mkdir()
    ours = cgroups.PidsLimit.create(10)          # made by this process, which is alive: kept
    try:
        assert stale.name in cgroups.remove_stale(parent)
        assert not stale.exists() and ours.path.exists()
    finally:
        ours.close()
