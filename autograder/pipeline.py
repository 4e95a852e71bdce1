"""The real nbgrader CLI, driven from Python: generate, autograde, feedback, export.

Every step is a subprocess call of the `nbgrader` command an instructor would
type, run from the repository root (so nbgrader reads nbgrader_config.py) with
``--CourseDirectory.root`` pointing at the course folder to work in.
"""
from __future__ import annotations

import csv
import filecmp
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from course import syllabus

from . import ROOT


def nbgrader(*args: str, root: Path | None = None, echo: bool = True) -> subprocess.CompletedProcess:
    """Run `nbgrader ARGS` from the repository root; raise with its log on failure."""
    bindir = str(Path(sys.executable).parent)  # nbgrader calls `alembic` from PATH
    env = dict(os.environ, PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]))
    cmd = [str(Path(bindir) / "nbgrader"), *args]
    if root is not None and Path(root).resolve() != ROOT:
        cmd.append(f"--CourseDirectory.root={Path(root).resolve()}")
    if echo:
        print("$ nbgrader " + " ".join(shlex.quote(a) for a in args), flush=True)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def ready_units(unit_ids=None):
    course = syllabus.load()
    units = [course.unit(u) for u in unit_ids] if unit_ids else list(course.ready_units)
    for unit in units:
        if not (ROOT / "solutions" / unit.id / unit.filename).is_file():
            raise FileNotFoundError(f"solutions/{unit.id}/{unit.filename} does not exist")
    return units


def generate_into(course_root: Path, unit_ids=None) -> list[Path]:
    """Copy solutions/ into course_root and generate its exercises/ there."""
    written = []
    for unit in ready_units(unit_ids):
        src = course_root / "solutions" / unit.id
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(ROOT / "solutions" / unit.id, src, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        nbgrader("generate_assignment", unit.id, "--force", root=course_root, echo=False)
        written += sorted((course_root / "exercises" / unit.id).rglob("*.ipynb"))
    return written


def generate(unit_ids=None, check: bool = False) -> list[str]:
    """Regenerate exercises/ from solutions/ (or, with check, list what differs).

    Generation happens in a scratch course folder so the instructor's
    gradebook is untouched; the result is byte-identical to running
    `nbgrader generate_assignment UNIT --force` at the repository root.
    """
    problems = []
    with tempfile.TemporaryDirectory(prefix="generate-") as tmp:
        tmp = Path(tmp)
        generate_into(tmp, unit_ids)
        for unit in ready_units(unit_ids):
            fresh, committed = tmp / "exercises" / unit.id, ROOT / "exercises" / unit.id
            if check:
                problems += _differences(fresh, committed)
            else:
                shutil.rmtree(committed, ignore_errors=True)
                shutil.copytree(fresh, committed)
                print(f"wrote exercises/{unit.id}/ from solutions/{unit.id}/")
    return problems


def _differences(fresh: Path, committed: Path) -> list[str]:
    if not committed.is_dir():
        return [f"{committed.relative_to(ROOT)} is missing"]
    cmp = filecmp.dircmp(fresh, committed)
    out = [f"{committed.relative_to(ROOT)}/{n}: missing" for n in cmp.left_only]
    out += [f"{committed.relative_to(ROOT)}/{n}: not generated from solutions/ (stale file)" for n in cmp.right_only]
    for name in cmp.common_files:
        if (fresh / name).read_bytes() != (committed / name).read_bytes():
            out.append(f"{committed.relative_to(ROOT)}/{name}: differs from what solutions/ generates")
    return out


def submit(course_root: Path, student: str, unit_id: str, notebook: Path) -> None:
    """Place a notebook where nbgrader expects a collected submission."""
    unit = syllabus.load().unit(unit_id)
    dest = course_root / "submitted" / student / unit.id
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, dest / unit.filename)


def autograde(course_root: Path, unit_id: str) -> None:
    nbgrader("autograde", unit_id, "--force", root=course_root)


def feedback(course_root: Path, unit_id: str) -> None:
    nbgrader("generate_feedback", unit_id, "--force", root=course_root)


def export(course_root: Path, to: Path) -> list[dict]:
    nbgrader("export", f"--to={to}", root=course_root)
    with open(to, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def written_grades(course_root: Path, unit_id: str) -> dict[str, dict]:
    """Per student, the unit's written answers as nbgrader's gradebook holds them after autograde:
    ``{"max": points, "pending": [grade_id, ...], "points": {grade_id: score}}``. ``pending`` are the
    cells with ``needs_manual_grade`` (answered, waiting for a person in formgrader); an answer left as
    released has a score of 0 and needs nobody. The ids of the written answers come from the release."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    from .records import written_answers

    unit = syllabus.load().unit(unit_id)
    release = nbformat.read(Path(course_root) / "exercises" / unit.id / unit.filename, as_version=4)
    written = written_answers(release, release)
    out = {}
    with Gradebook(f"sqlite:///{Path(course_root).resolve() / 'gradebook.db'}") as gb:
        for submission in gb.find_assignment(unit.id).submissions:
            student, grades = submission.student.id, {}
            for w in written:
                try:
                    grades[w.question] = gb.find_grade(w.question, unit.notebook, unit.id, student)
                except MissingEntry:
                    continue
            out[student] = {"max": sum(w.max_points for w in written),
                            "pending": [q for q, g in grades.items() if g.needs_manual_grade],
                            "points": {q: float(g.score) for q, g in grades.items()}}
    return out
