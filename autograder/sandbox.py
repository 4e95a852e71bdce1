"""Grade ONE submission safely: the real `nbgrader autograde`, fenced in.

The class runner (:mod:`autograder.classroom`) builds a template course once
(:func:`prepare_template`) and calls :func:`grade_one` for every submission,
from worker processes. Each submission is graded in its own scratch copy of
the template, with its own SQLite gradebook, so workers never share a
database and a bad submission can only spoil its own folder.

Before nbgrader runs, the notebook is read and validated (INVALID_NOTEBOOK),
checked to belong to the unit (WRONG_UNIT), repaired (every graded or locked
cell of the release exactly once, in release order; see :func:`repair`) and
scanned for code that changes the checking (:mod:`autograder.tamper`).
nbgrader then runs it in the grading kernel of :mod:`autograder.kernel`
(memory limit, output limit, runtime integrity check, a journal of cells),
with nbgrader's per-cell timeout, and the whole run is killed (nbgrader and
kernel) at the notebook time limit.

Every outcome but GRADED scores 0 and says why, naming the cell. A cell
that runs out of time is a TIMEOUT for the whole notebook: its step and
every later one that needs it would be graded on a half-run kernel, and an
instructor can regrade with a longer limit. ``sys.exit()`` is not special:
IPython turns it into an error in its cell and grading goes on.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.utils import is_grade, is_locked, is_solution

from course import syllabus

from . import ROOT, pipeline, tamper
from .mutate import test_cells_by_step
from .records import (GRADED, GRADER_ERROR, INVALID_NOTEBOOK, KERNEL_DIED, MEMORY_LIMIT, TAMPERING, TIMEOUT,
                      WRONG_UNIT, Outcome, StepResult, Submission)

KERNEL_NAME = "autograder-sandbox"
MEMORY_ERRORS = ("MemoryError", "ResourceExhaustedError")
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*")


@dataclass(frozen=True)
class Limits:
    """Per-submission limits. A unit's fast budget grades in 10-15 s on two CPU cores."""
    cell_seconds: int = 60          # nbgrader's Execute.timeout for each cell
    notebook_seconds: int = 300     # the whole `nbgrader autograde` run, kernel start included
    memory_mb: int = 4096           # the grading kernel's data segment (TensorFlow needs ~350 MB)
    output_chars: int = 100_000     # what one cell may print; the rest is dropped in the kernel


class Rejection(Exception):
    """The submission cannot be graded: a status and the reason, in words."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Repaired:
    nb: nbformat.NotebookNode
    notes: list[str] = field(default_factory=list)
    student_cells: list[tuple[str, str]] = field(default_factory=list)   # (name, source) to scan


# --- the template ---------------------------------------------------------------------------------

def sqlite_url(course_root: Path) -> str:
    return f"sqlite:///{Path(course_root).resolve() / 'gradebook.db'}"


def prepare_template(unit_ids, work: Path) -> Path:
    """A scratch nbgrader course folder with solutions/, the generated release and a gradebook
    that knows the units (nbgrader generate_assignment run once). Workers copy it."""
    template = Path(work) / "template"
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    for unit in pipeline.ready_units(list(unit_ids)):
        shutil.copytree(ROOT / "solutions" / unit.id, template / "solutions" / unit.id,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        # db_url given explicitly: an instructor's config pointing at PostgreSQL must not be used here.
        pipeline.nbgrader("generate_assignment", unit.id, "--force",
                          f"--CourseDirectory.db_url={sqlite_url(template)}", root=template, echo=False)
    return template


# --- reading and checking the file ------------------------------------------------------------------

def load_notebook(path: Path) -> nbformat.NotebookNode:
    """The submission as an nbformat 4 notebook, or a Rejection saying what the file is instead."""
    data = Path(path).read_bytes()
    if not data.strip():
        raise Rejection(INVALID_NOTEBOOK, f"the file is empty ({len(data)} bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejection(INVALID_NOTEBOOK, "the file is not text (not UTF-8): it is not a notebook") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise Rejection(INVALID_NOTEBOOK,
                        f"the file is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises several kinds for JSON that is not a notebook
        first = str(getattr(err, "message", err)).strip().splitlines()[0][:200]
        raise Rejection(INVALID_NOTEBOOK, f"the file is JSON but not a Jupyter notebook ({first})") from None
    return nb


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def graded_ids(nb) -> set[str]:
    """grade_ids of the cells that carry points or answers (not merely locked ones such as `setup`)."""
    return {_grade_id(c) for c in nb.cells if _grade_id(c) and (is_grade(c) or is_solution(c))}


def release_of(unit, template: Path) -> nbformat.NotebookNode:
    for folder in (template / "exercises", ROOT / "exercises"):
        path = folder / unit.id / unit.filename
        if path.is_file():
            return nbformat.read(path, as_version=4)
    raise FileNotFoundError(f"no release of {unit.id} in {template}/exercises or exercises/")


def check_unit(nb, unit, template: Path) -> None:
    """WRONG_UNIT unless the notebook's graded cells are mostly this unit's."""
    found = graded_ids(nb)
    own = found & graded_ids(release_of(unit, template))
    for other in syllabus.load().ready_units:
        if other.id == unit.id:
            continue
        theirs = found & graded_ids(release_of(other, template))
        if len(theirs) > len(own):
            raise Rejection(WRONG_UNIT, f"this is a notebook of unit {other.id} ({len(theirs)} of its graded "
                                        f"cells, {len(own)} of {unit.id}'s)")
    if not own:
        seen = ", ".join(sorted(found)[:5]) or "no nbgrader cells at all"
        raise Rejection(WRONG_UNIT, f"none of the graded cells of {unit.id} is in this notebook ({seen})")


# --- repair -----------------------------------------------------------------------------------------

def _kind(cell) -> str:
    if is_solution(cell):
        return "solution cell"
    return "test cell" if is_grade(cell) else "locked cell"


def _plain(cell):
    """A student's cell that nbgrader must not take for a graded one."""
    cell = copy.deepcopy(cell)
    cell.metadata.pop("nbgrader", None)
    return cell


def repair(nb, release) -> Repaired:
    """Every graded/locked cell of the release exactly once, with its release source, in release order.

    The student's answers (solution cells, matched by grade_id) are kept; so is
    every cell the student added, right after the release cell it followed. A
    missing solution cell comes back blank, as released (0 points for that
    step; the others are still graded). Locked cells get the release's source
    here, and nbgrader's OverwriteCells then puts the hidden tests back from
    the gradebook, as it does for every submission.
    """
    keys = [c for c in release.cells if _grade_id(c)]
    by_id = {_grade_id(c): c for c in keys}
    notes = []
    seen: dict[str, list[int]] = {}
    for i, cell in enumerate(nb.cells):
        if _grade_id(cell) in by_id:
            seen.setdefault(_grade_id(cell), []).append(i)
    chosen = {}
    for gid, places in seen.items():
        release_cell = by_id[gid]
        if is_solution(release_cell):
            chosen[places[-1]] = gid   # the last definition is the one Python keeps, and nbgrader grades
            if len(places) > 1:
                notes.append(f"solution cell {gid} appears {len(places)} times: the last copy is graded, "
                             f"the others are kept as ordinary cells")
        else:
            chosen[places[0]] = gid
            if len(places) > 1:
                notes.append(f"{_kind(release_cell)} {gid} appears {len(places)} times: duplicates removed")
    dropped = {i for gid, places in seen.items() if not is_solution(by_id[gid]) for i in places[1:]}

    head, after = [], {}
    current = head
    for i, cell in enumerate(nb.cells):
        if i in chosen:
            current = after.setdefault(chosen[i], [])
        elif i not in dropped:
            current.append(_plain(cell) if cell.get("metadata", {}).get("nbgrader") else cell)

    order = [chosen[i] for i in sorted(chosen)]
    expected = [g for g in (_grade_id(c) for c in keys) if g in seen]
    if order != expected:
        moved = [g for g, e in zip(order, expected) if g != e]
        notes.append(f"graded cells were out of order ({', '.join(moved[:4])}): put back in the release's order")

    cells, student_cells = list(head), []
    student = {gid: nb.cells[i] for i, gid in chosen.items()}
    for release_cell in keys:
        gid = _grade_id(release_cell)
        cell = copy.deepcopy(release_cell)
        if gid not in student:
            what = "put back blank (0 points for this step)" if is_solution(release_cell) else "put back"
            notes.append(f"{_kind(release_cell)} {gid} was missing: {what}")
        elif is_solution(release_cell):
            cell.source = student[gid].get("source", "")
            student_cells.append((gid, cell.source))
        elif student[gid].get("source", "") != release_cell.source:
            notes.append(f"{_kind(release_cell)} {gid} was edited: restored")
        cells.append(cell)
        cells += after.get(gid, [])
    fixed = copy.deepcopy(release)
    fixed.cells = cells
    _unique_ids(fixed)
    for i, cell in enumerate(fixed.cells):
        if cell.cell_type == "code" and not _grade_id(cell) and cell not in release.cells:
            student_cells.append((cell_name(cell, i), cell.source))
    return Repaired(fixed, notes, student_cells)


def _unique_ids(nb) -> None:
    """nbformat 4.5 wants a unique id per cell; student copies may repeat the release's, Colab's have none."""
    used = set()
    for cell in nb.cells:
        if not cell.get("id") or cell.id in used:
            cell.id = nbformat.v4.new_code_cell().id
        used.add(cell.id)


def cell_name(cell, index: int) -> str:
    """How a cell is named in reasons: its grade_id, or its position and first line."""
    gid = _grade_id(cell)
    if gid:
        return gid
    first = next((line.strip() for line in cell.get("source", "").splitlines() if line.strip()), "")
    return f"#{index + 1} ({first[:40]!r})" if first else f"#{index + 1}"


# --- running nbgrader -------------------------------------------------------------------------------

def scratch_for(sub: Submission, work: Path) -> Path:
    digest = hashlib.sha1(str(Path(sub.path).resolve()).encode()).hexdigest()[:8]
    return Path(work) / f"{sub.unit_id}--{sub.student_id}--{digest}"


def write_kernelspec(scratch: Path, unit, limits: Limits) -> Path:
    """The grading kernel as a kernelspec in the scratch course's own JUPYTER_PATH."""
    journal = scratch / "journal.jsonl"
    watch = [m for m in (f"course.checks.{unit.notebook}", f"autograder.hidden.{unit.notebook}")
             if importlib.util.find_spec(m) is not None]
    argv = [sys.executable, "-m", "autograder.kernel", "--memory-mb", str(limits.memory_mb),
            "--output-chars", str(limits.output_chars), "--journal", str(journal)]
    for module in watch:
        argv += ["--watch", module]
    spec = {"argv": argv + ["-f", "{connection_file}"], "display_name": "Python 3 (grading sandbox)",
            "language": "python"}
    folder = scratch / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return journal


def run_nbgrader(scratch: Path, unit_id: str, student: str, limits: Limits) -> tuple[int | None, str]:
    """`nbgrader autograde UNIT --student ID`; (return code or None if killed for time, its log)."""
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ,
               PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]),
               JUPYTER_PATH=os.pathsep.join([str(scratch / "jupyter"), os.environ.get("JUPYTER_PATH", "")]),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [str(Path(bindir) / "nbgrader"), "autograde", unit_id, "--student", student, "--force",
           f"--CourseDirectory.root={scratch}", f"--CourseDirectory.db_url={sqlite_url(scratch)}",
           f"--Execute.timeout={limits.cell_seconds}", f"--Execute.kernel_name={KERNEL_NAME}"]
    log = scratch / "nbgrader.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=limits.notebook_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            code = None
    return code, log.read_text(errors="replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_kernels(events: list[dict]) -> None:
    """The kernel runs in its own session: kill it (and what it started) if it outlived nbgrader."""
    for event in events:
        if event.get("event") == "kernel":
            try:
                cmdline = Path(f"/proc/{event['pid']}/cmdline").read_bytes()
            except OSError:
                continue
            if b"autograder.kernel" in cmdline:
                _kill_group(event["pid"])


def read_journal(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass   # a line cut short by a killed kernel
    return events


def running_cell(events: list[dict]) -> str | None:
    """Source of the cell that started and never ended (the one running when the kernel stopped)."""
    running = None
    for event in events:
        if event.get("event") == "start":
            running = event["source"]
        elif event.get("event") == "end":
            running = None
    return running


def name_source(source: str | None, nb) -> str:
    """The name of the notebook cell that ran ``source`` (locked cells ran with hidden tests added)."""
    if source is None:
        return "no cell (between cells)"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() and (
                cell.source == source or (_grade_id(cell) and source.startswith(cell.source.rstrip()))):
            return cell_name(cell, i)
    first = next((line for line in source.splitlines() if line.strip()), "")
    return f"({first[:40]!r})"


# --- reading the results ----------------------------------------------------------------------------

def _errors(cell) -> list[tuple[str, str]]:
    return [(out.get("ename", ""), (out.get("evalue", "") or "").strip())
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def _first_error(cell) -> tuple[str, str] | None:
    errors = _errors(cell)
    return errors[0] if errors else None


def _message(error: tuple[str, str] | None) -> str:
    if error is None:
        return ""
    ename, evalue = error
    first = evalue.splitlines()[0] if evalue else ""
    return first if ename == "CheckFailed" else f"{ename}: {first}".rstrip(": ")


def cell_scores(scratch: Path, unit, student: str) -> dict[str, tuple[float, float]]:
    """nbgrader's own (auto_score, max_score) per grade cell, from the scratch gradebook."""
    with Gradebook(sqlite_url(scratch)) as gb:
        nb = gb.find_submission_notebook(unit.notebook, unit.id, student)
        return {g.name: (float(g.auto_score or 0), float(g.max_score)) for g in nb.grades}


def auto_scores(sub: Submission, outcome: Outcome, work: Path) -> dict[str, float]:
    """What to copy into the real gradebook per grade cell (test cell grade_id -> auto_score):
    nbgrader's own scores from the scratch gradebook when GRADED, 0 for every cell otherwise."""
    unit = syllabus.load().unit(sub.unit_id)
    scratch = scratch_for(sub, Path(work))
    zero = {_grade_id(c): 0.0 for c in release_of(unit, scratch).cells if is_grade(c)}
    if outcome.status != GRADED:
        return zero
    return {**zero, **{gid: score for gid, (score, _) in cell_scores(scratch, unit, sub.student_id).items()}}


def steps_of(graded, release, scores: dict[str, tuple[float, float]]) -> list[StepResult]:
    errors = {_grade_id(c): _first_error(c) for c in graded.cells if _grade_id(c)} if graded else {}
    steps = []
    for step, tests in test_cells_by_step(release).items():
        ids = [_grade_id(c) for c in tests]
        points = sum(scores.get(g, (0.0, 0.0))[0] for g in ids)
        max_points = sum(float(c.metadata.nbgrader.get("points", 0)) for c in tests)
        message = "" if points >= max_points else next(
            (_message(errors[g]) for g in ids if errors.get(g)), "no points")
        steps.append(StepResult(step, points, max_points, message))
    return steps


def problem_in_outputs(graded, limits: Limits) -> tuple[str, str] | None:
    """(status, reason) for a cell that timed out or ran out of memory, as the graded notebook shows.

    A timed-out cell shows the KeyboardInterrupt of nbgrader's interrupt first, then CellTimeoutError.
    """
    for i, cell in enumerate(graded.cells if graded else []):
        for error in _errors(cell):
            if error[0] == "CellTimeoutError":
                return TIMEOUT, (f"cell {cell_name(cell, i)} ran past the time limit of "
                                 f"{limits.cell_seconds} s per cell")
            if error[0] in MEMORY_ERRORS or "bad_alloc" in error[1]:
                return MEMORY_LIMIT, (f"cell {cell_name(cell, i)} went over the memory limit of "
                                      f"{limits.memory_mb} MB ({_message(error)[:150]})")
    return None


def _last_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip() and not line.startswith("[")]
    return lines[-1][:300] if lines else "(no output)"


def classify(code, log, events, graded, repaired, findings, limits) -> tuple[str, str]:
    """The status and reason, most serious first."""
    tampered = [e for e in events if e.get("event") == "tamper"]
    if findings:
        return TAMPERING, "code that changes the checking: " + "; ".join(str(f) for f in findings[:3])
    if tampered:
        what = "; ".join(f"{e['what']} (by cell {name_source(e['source'], repaired.nb)})" for e in tampered[:3])
        return TAMPERING, f"the checking code was changed while grading: {what}"
    if code is None:
        running = running_cell(events)
        where = (f"cell {name_source(running, repaired.nb)} was running" if running is not None
                 else "between two cells")
        return TIMEOUT, f"the notebook ran past its time limit of {limits.notebook_seconds} s ({where})"
    if code != 0 and ("DeadKernelError" in log or "Kernel died" in log):
        return KERNEL_DIED, (f"the grading kernel died while running cell "
                             f"{name_source(running_cell(events), repaired.nb)} (os._exit, a crash or a signal)")
    problem = problem_in_outputs(graded, limits)
    if problem:
        return problem
    if code != 0 or graded is None:
        return GRADER_ERROR, f"nbgrader autograde failed ({code}): {_last_line(log)}"
    return GRADED, ""


# --- the one public entry point ---------------------------------------------------------------------

def grade_one(sub: Submission, template: Path, work: Path, limits: Limits = Limits()) -> Outcome:
    """Grade one submission in its own scratch copy of the template (own gradebook), with the real
    `nbgrader autograde UNIT --student ID` as a subprocess. Never raises for anything the submission
    does: every failure becomes an Outcome with a status from autograder.records and a clear reason."""
    start = time.perf_counter()
    try:
        outcome = _grade(sub, Path(template), Path(work), limits)
    except Rejection as rejected:
        outcome = _outcome(sub, rejected.status, 0.0, _max_score(sub, Path(template)), reason=rejected.reason)
    except Exception as err:  # our own bug: the batch goes on, the instructor regrades after a fix
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        outcome = _outcome(sub, GRADER_ERROR, 0.0, _max_score(sub, Path(template)),
                           reason=f"the grader itself failed: {last}")
    outcome.seconds = time.perf_counter() - start
    return outcome


def _outcome(sub: Submission, status: str, score: float, max_score: float, **kw) -> Outcome:
    return Outcome(sub.student_id, sub.unit_id, status, score, max_score, original_name=sub.original_name, **kw)


def _max_score(sub: Submission, template: Path) -> float:
    try:
        unit = syllabus.load().unit(sub.unit_id)
        return sum(float(c.metadata.nbgrader.get("points", 0)) for c in release_of(unit, template).cells
                   if is_grade(c))
    except Exception:
        return 0.0


def _grade(sub: Submission, template: Path, work: Path, limits: Limits) -> Outcome:
    unit = syllabus.load().unit(sub.unit_id)
    if not SAFE_ID.fullmatch(sub.student_id):
        raise Rejection(GRADER_ERROR, f"student id {sub.student_id!r} cannot name a folder for nbgrader")
    release = release_of(unit, template)
    max_score = _max_score(sub, template)
    nb = load_notebook(sub.path)
    check_unit(nb, unit, template)
    repaired = repair(nb, release)
    context = [c.source for c in release.cells if c.cell_type == "code" and is_locked(c)]
    findings = tamper.scan(repaired.student_cells, context)

    scratch = scratch_for(sub, work)
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(template, scratch)
    journal = write_kernelspec(scratch, unit, limits)
    dest = scratch / "submitted" / sub.student_id / unit.id
    dest.mkdir(parents=True)
    nbformat.write(repaired.nb, dest / unit.filename)

    code, log = run_nbgrader(scratch, unit.id, sub.student_id, limits)
    events = read_journal(journal)
    kill_kernels(events)
    graded_path = scratch / "autograded" / sub.student_id / unit.id / unit.filename
    graded = nbformat.read(graded_path, as_version=4) if code == 0 and graded_path.is_file() else None
    scores = cell_scores(scratch, unit, sub.student_id) if graded is not None else {}
    status, reason = classify(code, log, events, graded, repaired, findings, limits)
    steps = steps_of(graded, release, scores)
    if status != GRADED:
        steps = [StepResult(s.step, 0.0, s.max_points, s.message) for s in steps]
    score = sum(s.points for s in steps)
    return _outcome(sub, status, score, max_score, reason=reason, steps=steps, notes=repaired.notes,
                    autograded=graded_path if graded is not None else None)
