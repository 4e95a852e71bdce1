"""Grade a whole class: intake, parallel sandboxed grading, one nbgrader gradebook, feedback, CSV.

nbgrader stays the engine and the record: every submission is graded by the
real ``nbgrader autograde`` inside :func:`autograder.sandbox.grade_one`, each in
its own scratch course (so workers never share a database), and only this
process writes the one gradebook the instructor keeps (``nbgrader export``,
formgrader and manual grading read it as if ``nbgrader autograde`` had written
it). Workers are started with ``spawn`` because forking a process that has
imported TensorFlow can hang, and a worker that dies costs only the submission
it was grading.

Every outcome is final when it arrives: this process appends it to the
course's journal (``.grade-class/outcomes.jsonl``, one JSON line per outcome,
flushed to disk), copies the graded notebook and writes the feedback page. The
gradebook and ``grades.csv`` are both written from those records, never from a
scratch folder. A run that is stopped (Ctrl-C, SIGTERM, or SIGKILL of this
process) leaves no process behind: workers, their nbgrader and its sandboxed
kernel each die with their parent. Run again, and a submission already graded
is taken from the journal unless its file, its unit's release or hidden tests
changed (see :func:`submission_key`); grader errors are always graded again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from course import syllabus

from . import ROOT, pipeline
from .records import GRADED, GRADER_ERROR, Outcome, Rejected, Submission


@dataclass
class ClassReport:
    outcomes: list[Outcome]
    rejected: list[Rejected]
    seconds: float
    workers: int
    course_root: Path
    db_url: str
    grades_csv: Path
    rejected_csv: Path
    feedback_dir: Path
    warnings: list[str] = field(default_factory=list)
    engine: str = "a local process pool"      # where the submissions were graded (see grade_submissions)
    phases: dict[str, float] = field(default_factory=dict)   # seconds of this process's own phases
    task_timings: list[dict] = field(default_factory=list)   # per graded submission, its phases on its worker

    @property
    def summary(self) -> str:
        """The table an instructor reads first: one row per (student, unit)."""
        rows = [f"{'student':<24} {'unit':<24} {'status':<16} {'score':>11}  reason"]
        for o in self.outcomes:
            rows.append(f"{o.student_id:<24} {o.unit_id:<24} {o.status:<16} "
                        f"{o.score:>5g} / {o.max_score:<3g}  {_first_line(o.reason or o.manual_grading())}")
        counts = Counter(o.status for o in self.outcomes)
        rows.append(f"{len(self.outcomes)} submissions graded in {self.seconds:.1f} s with {self.workers} "
                    f"workers on {self.engine}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) +
                    f"; {len(self.rejected)} files not matched (rejected.csv)")
        waiting = [o for o in self.outcomes if o.pending]
        if waiting:   # written answers: graded by a person in the gradebook (formgrader), then exported
            rows.append(f"{len(waiting)} graded submissions have written answers that need manual grading "
                        f"({sum(len(o.pending) for o in waiting)} answers; grades.csv: written_pending)")
        return "\n".join(rows)


JOURNAL = Path(".grade-class") / "outcomes.jsonl"
TEMPLATES = Path(".grade-class") / "templates"   # the prepared units, kept for the next run (sandbox.cached_template)


def grade_class(inputs: list[Path], course_root: Path, unit_ids=None, roster=None, workers: int | None = None,
                db_url: str | None = None, limits=None, progress: bool = True, cluster="local") -> ClassReport:
    """Grade every submission found in `inputs`; write gradebook, autograded/, feedback/, CSVs.

    `cluster`: where to grade (see :func:`grade_submissions`): "local" (this machine, `workers` processes,
    on the engine that measures faster here: the process pool), "pool", "dask-local" (a Dask LocalCluster),
    or a Dask scheduler's address or cluster.
    Submissions already in the course's journal with the same key are not graded again."""
    from . import export, intake, sandbox

    start = time.perf_counter()
    phases: dict[str, float] = {}
    task_timings: list[dict] = []
    # nbgrader's Gradebook runs `alembic` from PATH when it creates a database: this interpreter's,
    # so that `.venv/bin/python -m autograder grade-class` works without activating the environment.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    course_root = Path(course_root).resolve()
    course_root.mkdir(parents=True, exist_ok=True)
    db_url = db_url or f"sqlite:///{course_root / 'gradebook.db'}"
    limits = limits if limits is not None else sandbox.Limits()
    report_warnings = []
    sandbox.use_isolation(limits)   # raises when isolation is required and impossible
    from . import cgroups

    for problem in ((sandbox.isolation_problem() if limits.isolation != "off" else None), cgroups.problem()):
        if problem:   # each said once, in one line
            if progress:
                print(f"grade-class: {problem}", file=sys.stderr)
            else:
                report_warnings.append(problem)
    # Opening the gradebook (SQLAlchemy, the schema) takes seconds of this process: it runs beside the intake and
    # the template, and a wrong URL still fails before the first submission is graded.
    gradebook_checked = _Background(_check_gradebook, db_url)
    journal = Journal(course_root / JOURNAL)
    # The workers start now and warm up (nbgrader's fork server, the judge, Keras) on the cores that the
    # intake and the template leave idle.
    early = _start_pool(workers) if cluster in LOCAL_ENGINES else None
    with tempfile.TemporaryDirectory(prefix="grade-class-") as scratch, _stopped_by_signals(), _closing(early):
        scratch = Path(scratch)
        found = intake.scan([Path(p) for p in inputs], scratch / "staging", unit_ids=unit_ids, roster=roster)
        submissions, duplicates = _one_per_student_and_unit(found.submissions)
        rejected = [*found.rejected, *duplicates]
        units = sorted({s.unit_id for s in submissions})
        keys = {(s.student_id, s.unit_id): submission_key(s) for s in submissions}
        recorded = journal.read()
        kept: dict[str, Outcome] = {}
        todo = []
        for sub in submissions:
            old = recorded.get(keys[(sub.student_id, sub.unit_id)])
            if old is not None and old.status != GRADER_ERROR:
                kept[keys[(sub.student_id, sub.unit_id)]] = old
            else:
                todo.append(sub)
        # Unit by unit: a worker's kernel server and the judge's table of reference results are per unit.
        todo.sort(key=lambda s: s.unit_id)
        workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
        if limits.server_units is None:
            # A kernel server costs a worker about one kernel's start more than it saves on the first kernel
            # it forks (one student's seven units: 148-154 s with servers against 130 s without, two runs
            # each): one per unit that gives every worker at least two submissions.
            per_unit = Counter(s.unit_id for s in todo)
            limits = dataclasses.replace(limits, server_units=tuple(u for u, n in sorted(per_unit.items())
                                                                    if n >= 2 * workers))
        definitions = _Background(_after, gradebook_checked, record_units, units, db_url)

        def arrived(sub: Submission, outcome: Outcome) -> Outcome:
            """Runs here as each outcome arrives: published, then journaled (final from now on)."""
            began = time.perf_counter()
            outcome = _publish_one(outcome, course_root)
            journal.append(keys[(sub.student_id, sub.unit_id)], outcome)
            kept[keys[(sub.student_id, sub.unit_id)]] = outcome
            _add(phases, "feedback page and journal, each outcome", time.perf_counter() - began)
            return outcome

        _add(phases, "intake and journal", time.perf_counter() - start)
        engine = describe_engine(cluster)
        if todo:
            began = time.perf_counter()
            # every unit of the class, not only those left to grade: the same template for every run of it
            template = sandbox.cached_template(units, course_root / TEMPLATES)
            _add(phases, "template (nbgrader generate_assignment, staged packages)", time.perf_counter() - began)
            gradebook_checked.join()
            began = time.perf_counter()
            grade_submissions(todo, template, scratch / "work", limits, workers, cluster=cluster, progress=progress,
                              arrived=arrived, timings=task_timings, pool=early)
            _add(phases, "grading, first to last outcome", time.perf_counter() - began)
        gradebook_checked.join()
        began = time.perf_counter()
        definitions.join()
        _add(phases, "waiting for the gradebook's unit records", time.perf_counter() - began)
        outcomes = [kept[keys[(s.student_id, s.unit_id)]] for s in submissions]
        began = time.perf_counter()
        report_warnings += write_gradebook(outcomes, db_url, roster=roster)
        _add(phases, "gradebook rows", time.perf_counter() - began)
    grades_csv = export.write_csv(outcomes, course_root / "grades.csv", roster=roster, units=unit_ids)
    rejected_csv = export.write_rejected_csv(rejected, course_root / "rejected.csv")
    return ClassReport(outcomes, rejected, time.perf_counter() - start, workers, course_root, db_url,
                       Path(grades_csv), Path(rejected_csv), course_root / "feedback", report_warnings,
                       engine=engine, phases=phases, task_timings=task_timings)


def _add(phases: dict, name: str, seconds: float) -> None:
    phases[name] = phases.get(name, 0.0) + seconds


# `--cluster local`, the default, grades on this machine with the engine that measured faster here: the process
# pool. `make bench` times it against a Dask LocalCluster ("dask-local") on the same submissions; the pool has
# been the faster in every run so far (README, "Measured"), by 1% to 17%: a LocalCluster adds its scheduler,
# a nanny per worker and the template's trip as bytes, and gains nothing on one machine.
LOCAL_ENGINES = ("local", "pool")


def describe_engine(cluster) -> str:
    if cluster in LOCAL_ENGINES:
        return "a local process pool"
    from .cluster import describe

    return describe("local" if cluster == "dask-local" else cluster)


def grade_submissions(submissions: list[Submission], template: Path, work: Path, limits, workers: int,
                      cluster="local", progress: bool = True, arrived=None, timings: list | None = None,
                      pool=None) -> list[Outcome]:
    """Grade on the engine `cluster` names: "local" or "pool" (:func:`grade_in_pool`, spawned processes on
    this machine), "dask-local" (a Dask LocalCluster of `workers` processes), a Dask scheduler's address
    ("tcp://host:8786") or a Dask cluster object (:func:`autograder.cluster.grade_on_dask`)."""
    if cluster in LOCAL_ENGINES:
        return grade_in_pool(submissions, template, work, limits, workers, progress=progress, arrived=arrived,
                             pool=pool, timings=timings)
    from .cluster import grade_on_dask

    return grade_on_dask(submissions, template, work, limits, cluster="local" if cluster == "dask-local" else cluster,
                         workers=workers, progress=progress, arrived=arrived, timings=timings)


def release_checksum(unit_id: str) -> str:
    """sha256 of what grading a unit depends on: its release notebook and its hidden tests."""
    unit = syllabus.load().unit(unit_id)
    digest = hashlib.sha256()
    for path in (ROOT / "exercises" / unit.id / unit.filename,
                 *sorted((ROOT / "autograder" / "hidden").glob("*.py"))):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def submission_key(sub: Submission) -> str:
    """What makes an outcome reusable: the student, the unit, the submitted file's sha256 and the
    release checksum. A changed file, release or hidden test gives a new key: graded again."""
    data = Path(sub.path).read_bytes() if Path(sub.path).is_file() else b""
    return "|".join([sub.student_id, sub.unit_id, hashlib.sha256(data).hexdigest(), release_checksum(sub.unit_id)])


class Journal:
    """The class runner's record of final outcomes: JSON lines, appended and flushed to disk as each
    outcome arrives, written by the main process only. The newest record of a key wins."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def read(self) -> dict[str, Outcome]:
        found = {}
        if not self.path.is_file():
            return found
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                found[record["key"]] = Outcome.from_dict(record["outcome"])
            except (ValueError, KeyError, TypeError):
                continue   # a line cut short when the run was killed
        return found

    def append(self, key: str, outcome: Outcome) -> None:
        line = json.dumps({"key": key, "outcome": outcome.as_dict()}, default=str)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


class Stopped(KeyboardInterrupt):
    """grade-class received SIGTERM (or SIGINT)."""


class _stopped_by_signals:
    """SIGTERM and SIGINT stop the run as Ctrl-C does (workers killed, journal kept)."""

    def __enter__(self):
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise Stopped(f"stopped by signal {signal.Signals(signum).name}")

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def _one_per_student_and_unit(submissions: list[Submission]) -> tuple[list[Submission], list[Rejected]]:
    """Keep the first file per (student, unit): the gradebook holds one submission for each pair."""
    kept: dict[tuple[str, str], Submission] = {}
    duplicates = []
    for sub in submissions:
        first = kept.setdefault((sub.student_id, sub.unit_id), sub)
        if first is not sub:
            duplicates.append(Rejected(str(sub.path), f"a second file for student {sub.student_id} and unit "
                                                      f"{sub.unit_id}; graded {first.original_name} instead"))
    return sorted(kept.values(), key=lambda s: (s.student_id, s.unit_id)), duplicates


# ---------------------------------------------------------------- parallel grading

def _grade_task(sub: Submission, template: Path, work: Path, limits) -> Outcome:
    """What a worker process runs (importable by name, as `spawn` requires)."""
    from . import sandbox

    return sandbox.grade_one(sub, template, work, limits)


_graded_here = 0   # submissions this pool worker has graded (its first pays for the kernel server and the judge)


def _timed_grade_task(sub: Submission, template: Path, work: Path, limits) -> tuple[Outcome, dict]:
    """:func:`_grade_task`, and the time each phase took on the worker (for ``make bench``)."""
    from . import sandbox

    global _graded_here
    started = time.perf_counter()
    timings: dict = {}
    outcome = sandbox.grade_one(sub, template, work, limits, timings=timings)
    _graded_here += 1
    return outcome, {**timings, "worker": time.perf_counter() - started, "nth": _graded_here}


def _worker_init() -> None:
    """Each worker dies with the class runner (even on SIGKILL), and so, in turn, does its nbgrader."""
    from multiprocessing import util

    from .sandbox import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the runner's to handle
    # The last of the worker's exit steps: after multiprocessing's finalizers (its kernel servers closed, its
    # nbgrader children joined), skip the interpreter's teardown. With TensorFlow and Keras imported it took
    # about 2 s per worker, and the class runner waits for its workers before it writes the gradebook.
    util.Finalize(None, _quick_exit, exitpriority=-1)


def _quick_exit() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 (a closed stream: nothing to flush)
            pass
    os._exit(0)


def grade_in_pool(submissions: list[Submission], template: Path, work: Path, limits, workers: int,
                  task=_grade_task, progress: bool = True, arrived=None, pool=None,
                  timings: list | None = None) -> list[Outcome]:
    """Grade in `workers` spawned processes; a dead worker costs only its own submission.

    At most `workers` submissions are in flight, so when the pool breaks the
    suspects are few; each is then re-graded alone in a fresh pool, and only
    one that breaks its own pool becomes GRADER_ERROR. The rest go on in a new pool.
    `timings`, when a list, gets each graded submission's phase times on its worker.
    """
    bar = _Progress(len(submissions), enabled=progress)
    jobs = [(sub, Path(work) / f"{i:04d}_{sub.student_id}_{sub.unit_id}") for i, sub in enumerate(submissions)]
    results: dict[int, Outcome] = {}
    if timings is not None and task is _grade_task:
        task = _timed_grade_task

    def done(index: int, outcome) -> None:
        if isinstance(outcome, tuple):   # from _timed_grade_task
            outcome, phases = outcome
            timings.append(phases)
        if arrived is not None:
            try:
                outcome = arrived(jobs[index][0], outcome)
            except Exception as error:  # noqa: BLE001 (publishing one outcome must not stop the class)
                outcome = _grader_error(jobs[index][0], error)
                try:
                    outcome = arrived(jobs[index][0], outcome)
                except Exception:  # noqa: BLE001
                    pass
        results[index] = outcome
        bar.update(outcome)

    queue = list(range(len(jobs)))
    while queue:
        suspects = _run_until_broken(queue, jobs, template, limits, workers, task, done, pool)
        pool = None   # a pool that broke is not used again
        for index in suspects:
            if len(suspects) == 1 or _run_until_broken([index], jobs, template, limits, 1, task, done):
                done(index, _worker_died(jobs[index][0]))
    bar.close()
    return [results[i] for i in range(len(jobs))]


def _start_pool(workers: int | None) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes (one per core by default), each asked to warm up at once."""
    workers = workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init)
    for _ in range(workers):
        pool.submit(_warm_task)
    return pool


def _warm_task() -> None:
    """What every grading worker imports sooner or later, imported while the class runner reads the class:
    nbgrader (in the worker's fork server), the judge and Keras (for the judge's reference models)."""
    try:
        from . import judge, sandbox  # noqa: F401

        sandbox.start_nbgrader_forkserver()
        from course import env

        env.import_keras()
    except Exception:  # noqa: BLE001 (grading imports them again, and says what fails)
        pass


class _closing:
    """Shut an early pool down when the run ends (it is used, and shut down, by the grading itself)."""

    def __init__(self, pool):
        self.pool = pool

    def __enter__(self):
        return self.pool

    def __exit__(self, *exc):
        if self.pool is not None:   # after the grading its workers are gone; if it never ran, they go now
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                process.kill()
            self.pool.shutdown(wait=True, cancel_futures=True)
        return False


def _run_until_broken(queue: list[int], jobs, template, limits, workers, task, done, pool=None) -> list[int]:
    """Feed `queue` (consumed in place) to `pool`, or a fresh pool; return the jobs in flight if it broke."""
    running: dict = {}
    if pool is None:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init)
    try:
        return _feed(pool, queue, jobs, template, limits, workers, task, done, running)
    except BaseException:
        # stopped (Ctrl-C, SIGTERM) or our own bug: no worker, nbgrader or kernel may outlive the run
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def _feed(pool, queue, jobs, template, limits, workers, task, done, running) -> list[int]:
    """Submit jobs as workers free up; the jobs in flight when the pool broke (else [])."""
    while queue or running:
        while queue and len(running) < workers:
            index = queue.pop(0)
            sub, work = jobs[index]
            running[pool.submit(task, sub, template, work, limits)] = index
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        indexes = [(f, running.pop(f)) for f in finished]
        broken = [index for f, index in indexes if not _collect(f, index, jobs, done)]
        if broken:  # every other future of a broken pool fails too; keep those that finished first
            wait(running)
            return broken + [index for f, index in running.items() if not _collect(f, index, jobs, done)]
    return []


def _collect(future, index: int, jobs, done) -> bool:
    """Hand a finished job's outcome to `done`; False when its worker process died."""
    try:
        done(index, future.result())
    except BrokenProcessPool:
        return False
    except Exception as error:  # noqa: BLE001 (a bug in grade_one must not stop the class)
        done(index, _grader_error(jobs[index][0], error))
    return True


def _worker_died(sub: Submission) -> Outcome:
    return _failed(sub, "the grading worker process died while grading this submission "
                        "(it was regraded alone and died again); regrade it after a fix")


def _grader_error(sub: Submission, error: BaseException) -> Outcome:
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return _failed(sub, f"the grader failed: {last}")


def _failed(sub: Submission, reason: str) -> Outcome:
    return Outcome(sub.student_id, sub.unit_id, GRADER_ERROR, 0.0, _max_score(sub.unit_id), reason=reason,
                   original_name=sub.original_name)


def _max_score(unit_id: str) -> float:
    """A unit's automatic points, from its release notebook (written answers are graded by a person)."""
    import nbformat

    from .records import automatic_max

    unit = syllabus.load().unit(unit_id)
    return automatic_max(nbformat.read(ROOT / "exercises" / unit.id / unit.filename, as_version=4))


class _Progress:
    """done/total on stderr, with the running count of every status but GRADED."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.count, self.problems = total, enabled, 0, Counter()
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, desc="grading", unit="nb", file=sys.stderr, dynamic_ncols=True)

    def update(self, outcome: Outcome) -> None:
        self.count += 1
        if outcome.status != GRADED:
            self.problems[outcome.status] += 1
        note = ", ".join(f"{s} {n}" for s, n in sorted(self.problems.items())) or "all graded"
        if self.bar is not None:
            self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(1)
        elif self.enabled:
            print(f"grading: {self.count}/{self.total} done ({note})", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------- the one gradebook

def _check_gradebook(db_url: str) -> None:
    """Open the gradebook once before grading: a wrong URL or a server that is down fails in
    seconds, not after the whole class has been graded."""
    from nbgrader.api import Gradebook

    Gradebook(db_url, syllabus.load().id).close()


def record_units(units: list[str], db_url: str) -> None:
    """Record each unit's assignment, notebook and cells exactly as nbgrader does: by running
    `nbgrader generate_assignment UNIT --force` against `db_url` (in a scratch course, so the
    committed exercises/ are never rewritten). Idempotent: a regrade finds the same cells."""
    if not units:
        return
    with tempfile.TemporaryDirectory(prefix="record-units-") as tmp:
        for unit in pipeline.ready_units(units):
            shutil.copytree(ROOT / "solutions" / unit.id, Path(tmp) / "solutions" / unit.id,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            pipeline.nbgrader("generate_assignment", unit.id, "--force", f"--CourseDirectory.db_url={db_url}",
                              root=Path(tmp), echo=False)


def _after(first: "_Background", fn, *args) -> None:
    """fn(*args) once `first` is done (one writer of the gradebook's schema at a time)."""
    first.join()
    fn(*args)


class _Background(threading.Thread):
    """Run fn(*args) beside the grading (nbgrader's start-up costs seconds); join() re-raises its error."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args, self.error = fn, args, None
        self.start()

    def run(self) -> None:
        try:
            self.fn(*self.args)
        except BaseException as error:  # noqa: BLE001 (handed to the caller by join)
            self.error = error

    def join(self, timeout=None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


def write_gradebook(outcomes: list[Outcome], db_url: str, roster=None) -> list[str]:
    """Write every outcome into nbgrader's gradebook as `nbgrader autograde` would, updating in place.

    Per grade cell: auto_score (from the graded notebook, like nbgrader's SaveAutoGrades; 0 for every
    cell when the status is not GRADED). Per solution cell: nbgrader's "No response." for an untouched
    answer, else the step's failure message. The first solution cell's comment also carries the
    status and reason of a submission that was not graded, and the repairs made to one that was.
    Returns warnings (a graded notebook whose cells disagree with the outcome's score).
    """
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    problems = []
    with Gradebook(db_url, syllabus.load().id) as gb, warnings.catch_warnings():
        # nbgrader's add_submission builds rows before adding them to the session; SQLAlchemy
        # warns about that on every new submission (nbgrader autograde hides it in its own log).
        warnings.filterwarnings("ignore", message=".*not in session.*", category=SAWarning)
        for student in roster or ():
            gb.update_or_create_student(student)
        for outcome in outcomes:
            try:
                gb.update_or_create_student(outcome.student_id)
                gb.update_or_create_submission(outcome.unit_id, outcome.student_id)
                problems += _write_scores(gb, outcome)
                _write_comments(gb, outcome)
                gb.db.commit()
            except Exception as error:  # noqa: BLE001 (one row that fails must not cost the others theirs)
                gb.db.rollback()
                problems.append(f"{outcome.student_id}/{outcome.unit_id}: not written to the gradebook "
                                f"({type(error).__name__}: {error})")
    return problems


def _write_scores(gb, outcome: Outcome) -> list[str]:
    """Each grade cell's auto_score from the outcome's record (nothing is read from a notebook)."""
    unit = syllabus.load().unit(outcome.unit_id)
    scores = outcome.cell_scores()
    pending = {w.question for w in outcome.pending}   # written answers: no auto score, a person grades them
    total = 0.0
    for grade_cell in gb.find_notebook(unit.notebook, unit.id).grade_cells:
        grade = gb.find_grade(grade_cell.name, unit.notebook, unit.id, outcome.student_id)
        if grade_cell.name in pending:   # as nbgrader's SaveAutoGrades: no auto score, needs manual grading
            grade.auto_score, grade.needs_manual_grade = None, True   # a person's grade is kept, to review
            continue
        grade.auto_score = float(scores.get(grade_cell.name, 0.0))
        grade.needs_manual_grade = grade.manual_score is not None
        total += grade.auto_score
    if outcome.status == GRADED and abs(total - outcome.score) > 1e-9:
        return [f"{outcome.student_id}/{outcome.unit_id}: the graded cells sum to {total:g}, "
                f"the grader reported {outcome.score:g} (the gradebook holds the cells' scores)"]
    return []


def _write_comments(gb, outcome: Outcome) -> None:
    unit = syllabus.load().unit(outcome.unit_id)
    messages = {s.step: s.message for s in outcome.steps if s.message}
    untouched = {s.step for s in outcome.steps if s.untouched} | {w.question for w in outcome.written
                                                                  if not w.answered}
    header = _header_comment(outcome)
    for position, name in enumerate(_solution_cell_order(unit)):
        comment = gb.find_comment(name, unit.notebook, unit.id, outcome.student_id)
        parts = [header] if position == 0 and header else []
        parts += ["No response."] if name in untouched else [messages[name]] if name in messages else []
        comment.auto_comment = "\n".join(parts) or None


def _header_comment(outcome: Outcome) -> str:
    if outcome.status != GRADED:
        return f"Not graded ({outcome.status}): {outcome.reason}"
    return "Autograder notes: " + "; ".join(outcome.notes) if outcome.notes else ""


def _solution_cell_order(unit) -> list[str]:
    """Solution cells in notebook order (the gradebook keeps no order), from the release."""
    import nbformat
    from nbgrader.utils import is_solution

    nb = nbformat.read(ROOT / "exercises" / unit.id / unit.filename, as_version=4)
    return [c.metadata.nbgrader["grade_id"] for c in nb.cells if is_solution(c)]


# ---------------------------------------------------------------- files beside the gradebook

def _publish_one(outcome: Outcome, course_root: Path) -> Outcome:
    """Copy the graded notebook to autograded/ (as nbgrader does) and write its feedback/ page.

    A submission that has no graded notebook this time loses any stale one from
    an earlier run, so autograded/ never disagrees with the gradebook.
    """
    from . import feedback

    unit = syllabus.load().unit(outcome.unit_id)
    dest = course_root / "autograded" / outcome.student_id / unit.id / unit.filename
    dest.unlink(missing_ok=True)
    if outcome.autograded is not None and Path(outcome.autograded).is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(outcome.autograded, dest)
        outcome.autograded = dest
    else:
        outcome.autograded = None
    html = course_root / "feedback" / outcome.student_id / unit.id / f"{unit.notebook}.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    feedback.write_feedback(outcome, html, course_title=syllabus.load().title)
    return outcome


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:80] if (text or "").strip() else ""
