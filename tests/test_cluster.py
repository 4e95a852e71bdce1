"""grade-class on Dask: a real distributed.LocalCluster of two worker processes.

The class graded on the cluster gets the same grades and the same gradebook
rows as on the local process pool, even when a worker is killed in the middle
of a submission; a submission whose task kills every worker it runs on is
reported, never lost, and the rest of the class is graded.
"""
import csv
import os
import signal
import threading
import time

import pytest

from autograder import classroom, cluster
from autograder.records import GRADED, GRADER_ERROR, Outcome, Submission
from course import syllabus
from test_classroom import _class_notebooks, _expected_scores, _read_gradebook

pytestmark = pytest.mark.classroom  # instructor side: newest packages only (see Makefile)

UNIT = syllabus.load().unit("01_rnn_by_hand")
TRACE = "GRADE_CLASS_TEST_TRACE"   # a folder where the fake task notes each attempt (the workers inherit it)


# ---------------------------------------------------------------- what travels

def test_template_travels_as_bytes_and_unpacks_once(tmp_path):
    template = tmp_path / "made" / "template"
    (template / "exercises" / UNIT.id).mkdir(parents=True)
    (template / "exercises" / UNIT.id / UNIT.filename).write_text("{}")
    (template / "gradebook.db").write_bytes(b"SQLite format 3\0")
    staged = template / "packages" / UNIT.id / "course"
    staged.mkdir(parents=True)
    (staged / "__init__.py").write_text("x = 1\n")
    bundle = cluster.pack_template(template)
    unpacked = cluster.unpack_template(bundle, "abc", root=tmp_path / "worker")
    assert unpacked == tmp_path / "worker" / "abc" / "template"
    assert (unpacked / "exercises" / UNIT.id / UNIT.filename).read_text() == "{}"
    assert (unpacked / "gradebook.db").read_bytes() == b"SQLite format 3\0"
    assert (unpacked / "packages" / UNIT.id / "course" / "__init__.py").read_text() == "x = 1\n"
    assert not os.access(unpacked / "packages" / UNIT.id / "course" / "__init__.py", os.W_OK) or os.getuid() == 0
    assert not (unpacked / "packages" / UNIT.id).stat().st_mode & 0o222, "staged packages stay read-only"
    (unpacked / "gradebook.db").write_bytes(b"changed")
    assert cluster.unpack_template(bundle, "abc", root=tmp_path / "worker") == unpacked
    assert (unpacked / "gradebook.db").read_bytes() == b"changed", "unpacked once per archive"


# ---------------------------------------------------------------- a dead worker, with a task that only pretends

def _fake_task(data, student_id, unit_id, origin, original_name, bundle, digest, checksum, limits):
    """Runs on a Dask worker: notes the attempt; 'doomed' kills its worker every time, 'victim' waits to be
    killed on its first attempt; the others are 'graded' from the bytes they were given."""
    trace = os.environ[TRACE]
    with open(os.path.join(trace, f"{student_id}.attempts"), "a") as f:
        f.write(f"{os.getpid()}\n")
    attempts = open(os.path.join(trace, f"{student_id}.attempts")).read().split()
    assert data == f"notebook of {student_id}".encode() and bundle == b"template bytes"
    if student_id == "doomed":
        os.kill(os.getpid(), signal.SIGKILL)
    if student_id == "victim" and len(attempts) == 1:
        time.sleep(120)   # the test kills this worker meanwhile
    outcome = Outcome(student_id, unit_id, GRADED, 1.0, 1.0, original_name=original_name)
    return {"outcome": outcome.as_dict(), "autograded": None, "timings": {"fake": 0.1}, "worker_seconds": 0.1}


def _kill_when_started(trace, student, killed):
    deadline = time.monotonic() + 120
    path = trace / f"{student}.attempts"
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            time.sleep(1)   # in the middle of its task
            pid = int(path.read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.2)


def test_a_killed_worker_costs_nothing_and_a_task_that_kills_every_worker_is_reported(tmp_path, monkeypatch):
    trace = tmp_path / "trace"
    trace.mkdir()
    monkeypatch.setenv(TRACE, str(trace))   # before the cluster starts: its workers inherit it
    names = ["ann", "victim", "bob", "doomed", "cy", "dee"]
    subs = []
    for name in names:
        path = tmp_path / f"{name}.ipynb"
        path.write_bytes(f"notebook of {name}".encode())
        subs.append(Submission(name, UNIT.id, path, "folder", f"{name}.ipynb"))
    monkeypatch.setattr(cluster, "pack_template", lambda template: b"template bytes")
    killed: list[int] = []
    killer = threading.Thread(target=_kill_when_started, args=(trace, "victim", killed), daemon=True)
    killer.start()
    arrived = []
    outcomes = cluster.grade_on_dask(subs, tmp_path, tmp_path / "work", None, cluster="local", workers=2,
                                     progress=False, task=_fake_task,
                                     arrived=lambda sub, o: arrived.append(sub.student_id) or o)
    killer.join(5)
    assert killed, "the victim's worker was killed in the middle of its task"
    assert [o.student_id for o in outcomes] == names
    status = {o.student_id: o.status for o in outcomes}
    assert status == {**{n: GRADED for n in names}, "doomed": GRADER_ERROR}
    doomed = outcomes[names.index("doomed")]
    assert "worker died" in doomed.reason and f"{cluster.RETRIES + 1} tries" in doomed.reason
    assert doomed.max_score == 13
    victim = (trace / "victim.attempts").read_text().split()
    # graded again by another worker (and once more if that one died, by the doomed task, before its result
    # was collected: results still on a dead worker are made again, which counts as no failure)
    assert len(victim) >= 2 and victim[0] != victim[1], "the killed one was graded again on another worker"
    assert len((trace / "doomed.attempts").read_text().split()) == cluster.RETRIES + 1
    assert sorted(arrived) == sorted(names), "every outcome was handed to the one writer, once"


# ---------------------------------------------------------------- a class graded by real nbgrader, twice

def _rows(csv_path):
    with open(csv_path, newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: sorted(r.items()))


def _worker_pids(client):
    return client.run(os.getpid)


@pytest.mark.nbgrader
def test_cluster_grades_like_the_pool_with_a_worker_killed_mid_batch(root, tmp_path):
    import dask
    from distributed import Client, LocalCluster

    inbox = tmp_path / "inbox"
    _class_notebooks(root, inbox)
    expected = _expected_scores(root)

    pool = classroom.grade_class([inbox], tmp_path / "pool", unit_ids=[UNIT.id], workers=2, cluster="pool",
                                 progress=False)
    assert {o.student_id: o.score for o in pool.outcomes} == expected, pool.summary

    with dask.config.set(cluster.SCHEDULER_CONFIG):   # as grade-class starts its own
        local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=0,
                             dashboard_address=None)
    killed = []
    try:
        watcher = Client(local.scheduler_address, set_as_default=False)

        def kill_one_mid_task():
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                busy = [worker for worker, keys in watcher.processing().items() if keys]
                if busy:
                    time.sleep(12)   # nbgrader and the sandboxed kernel are running
                    pid = _worker_pids(watcher).get(busy[0])
                    if pid:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    return
                time.sleep(0.5)

        killer = threading.Thread(target=kill_one_mid_task, daemon=True)
        killer.start()
        dasked = classroom.grade_class([inbox], tmp_path / "dask", unit_ids=[UNIT.id], workers=2, cluster=local,
                                       progress=False)
        killer.join(30)
        watcher.close()
    finally:
        local.close()
    assert killed, "a worker was killed while it graded"
    assert "Dask" in dasked.summary
    same = [(o.student_id, o.status, o.score, [(s.step, s.points, s.message) for s in o.steps], o.notes)
            for o in dasked.outcomes]
    assert same == [(o.student_id, o.status, o.score, [(s.step, s.points, s.message) for s in o.steps], o.notes)
                    for o in pool.outcomes], dasked.summary
    assert _read_gradebook(dasked.db_url) == _read_gradebook(pool.db_url)
    assert _rows(dasked.grades_csv) == _rows(pool.grades_csv)
    for student in expected:
        assert (tmp_path / "dask" / "autograded" / student / UNIT.id / UNIT.filename).is_file()
        assert (tmp_path / "dask" / "feedback" / student / UNIT.id / f"{UNIT.notebook}.html").is_file()
    assert {t["worker"] > 0 for t in dasked.task_timings} == {True} and len(dasked.task_timings) == len(expected)
