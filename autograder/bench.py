"""How much faster is grade_class than plain `nbgrader autograde` on the same class?

Builds N unit-01 submissions (a mix of the solution, a partly right notebook
and the blank exercise) in a scratch course, grades them once with serial
`nbgrader autograde 01_rnn_by_hand` (the real CLI) and once with
:func:`autograder.classroom.grade_class`, and prints both wall-clock times,
the speed-up, seconds per submission, the machine's CPU count, and whether the
two gradebooks hold the same scores. It prints figures; it asserts nothing.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from course import syllabus

from . import ROOT, classroom, pipeline, sandbox
from .mutate import fill_in_answers, solution_sources, test_cells_by_step

UNIT_ID = "01_rnn_by_hand"
KINDS = ("solution", "partly", "blank")


def build_class(course_root: Path, students: int) -> Path:
    """Generate unit 01 in `course_root` and put `students` notebooks in its submitted/ folder."""
    unit = syllabus.load().unit(UNIT_ID)
    pipeline.generate_into(course_root, [unit.id])
    solution = nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)
    answers, steps = solution_sources(solution), list(test_cells_by_step(solution))
    for i in range(students):
        kind = KINDS[i % len(KINDS)]
        nb = nbformat.read(course_root / "exercises" / unit.id / unit.filename, as_version=4)
        if kind != "blank":
            fill_in_answers(nb, answers, skip=tuple(steps[len(steps) // 2:]) if kind == "partly" else ())
        dest = course_root / "submitted" / f"student_{i + 1:03d}_{kind}" / unit.id / unit.filename
        dest.parent.mkdir(parents=True)
        nbformat.write(nb, dest)
    return course_root / "submitted"


def totals(db_url: str) -> dict[str, float]:
    """Each student's unit-01 total, read back through nbgrader's Gradebook."""
    with Gradebook(db_url, syllabus.load().id) as gb:
        return {s.student.id: float(s.score) for s in gb.assignment_submissions(UNIT_ID)}


def run(students: int = 6, workers: int | None = None, root: Path | None = None) -> dict:
    """Time both ways of grading the same submissions; return the figures."""
    workers = workers or os.cpu_count() or 1
    scratch = Path(root) if root else Path(tempfile.mkdtemp(prefix="bench-"))
    shutil.rmtree(scratch, ignore_errors=True)
    serial_root, parallel_root = scratch / "nbgrader", scratch / "grade_class"
    submitted = build_class(serial_root, students)

    start = time.perf_counter()
    pipeline.autograde(serial_root, UNIT_ID)
    serial = time.perf_counter() - start

    report = classroom.grade_class([submitted], parallel_root, unit_ids=[UNIT_ID], workers=workers)
    parallel = report.seconds
    theirs = totals(f"sqlite:///{serial_root / 'gradebook.db'}")
    ours = totals(report.db_url)
    return {"students": students, "workers": report.workers, "cpus": os.cpu_count(), "serial_s": serial,
            "parallel_s": parallel, "speedup": serial / parallel, "serial": theirs, "parallel": ours,
            "agree": theirs == ours, "isolation": sandbox.isolation_problem() or "every kernel in bubblewrap", "statuses": {o.student_id: o.status for o in report.outcomes},
            "scratch": scratch}


def report(figures: dict) -> str:
    n = figures["students"]
    lines = [
        f"{n} unit-01 submissions ({', '.join(KINDS)} in turn) on a machine with {figures['cpus']} CPUs",
        f"  serial `nbgrader autograde {UNIT_ID}`: {figures['serial_s']:7.1f} s   "
        f"({figures['serial_s'] / n:.1f} s per submission)",
        f"  grade_class, {figures['workers']} workers:          {figures['parallel_s']:7.1f} s   "
        f"({figures['parallel_s'] / n:.1f} s per submission; intake, sandbox, gradebook, feedback and CSV included; "
        f"{figures['isolation']})",
        f"  speed-up: {figures['speedup']:.2f}x",
    ]
    if figures["agree"]:
        lines.append(f"  scores agree: both gradebooks hold the same {n} totals")
    else:
        lines.append("  SCORES DISAGREE (student: nbgrader autograde / grade_class):")
        for student in sorted(set(figures["serial"]) | set(figures["parallel"])):
            lines.append(f"    {student}: {figures['serial'].get(student)} / {figures['parallel'].get(student)} "
                         f"({figures['statuses'].get(student, 'not graded')})")
    lines.append(f"  scratch course folders: {figures['scratch']}")
    return "\n".join(lines)
