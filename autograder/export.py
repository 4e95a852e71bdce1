"""Grades as CSV: one row per student and unit, the steps' points, and the intake's rejections.

Layout of ``write_csv`` (one file, a spreadsheet can filter it by unit):
``student_id, unit_id, status, score, max_score, written_pending, written_max,
manual_grading, reason``, then one column per
graded step named ``<unit_id>/<step>``, units in order and steps in the order
they first appear in the outcomes (the notebook's order). A row fills only
its own unit's step columns; a row whose submission was not graded (every
status but "graded") leaves them empty. ``write_steps_csv`` gives the same
points long-form, one row per student, unit and step, with the failure
message. Students on the roster with no outcome for a unit get a row with
status "missing". Rows are sorted by student and unit; numbers are written
with ``%g`` (13, 12.5). Files are UTF-8 in the csv module's default dialect.

``score`` and ``max_score`` are the automatic points, from the checks. Written answers
(nbgrader's manually graded answer cells) are graded by a person: ``written_max`` is
what they are worth, ``written_pending`` the points of those answered and not graded
yet, and ``manual_grading`` says "needs manual grading" with the questions, or is
empty. Once they are graded in the gradebook (formgrader), ``nbgrader export`` gives
the totals. An answer left as released scores 0 and needs nobody.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import nbformat
from course import syllabus

from . import ROOT
from .intake import roster_ids
from .records import Outcome, Rejected, automatic_max, written_answers

MISSING = "missing"
COLUMNS = ["student_id", "unit_id", "status", "score", "max_score", "written_pending", "written_max",
           "manual_grading", "reason"]


def write_csv(outcomes: list[Outcome], path: Path, roster: list[str] | None = None, units=None) -> Path:
    """Write one row per (student, unit); ``units`` (ids or Units) limits and completes the units."""
    rows, unit_ids = _rows(outcomes, roster, units)
    steps = _step_columns(rows, unit_ids)
    with _open(path) as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS + [f"{u}/{s}" for u, s in steps])
        for o in rows:
            points = {(o.unit_id, s.step): s.points for s in o.steps}
            written_max = o.written_max if o.written else _release_points(o.unit_id)[1]
            writer.writerow([o.student_id, o.unit_id, o.status, _num(o.score), _num(o.max_score),
                             _num(o.pending_points), _num(written_max), o.manual_grading(), o.reason]
                            + [_num(points[k]) if k in points else "" for k in steps])
    return Path(path)


def write_steps_csv(outcomes: list[Outcome], path: Path) -> Path:
    """One row per (student, unit, step): points, max_points and the failure message."""
    with _open(path) as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", "unit_id", "step", "points", "max_points", "message"])
        for o in sorted(outcomes, key=lambda o: (o.student_id, o.unit_id)):
            for s in o.steps:
                writer.writerow([o.student_id, o.unit_id, s.step, _num(s.points), _num(s.max_points), s.message])
    return Path(path)


def write_rejected_csv(rejected: list[Rejected], path: Path) -> Path:
    """The intake's rejections, so that every file that arrived is accounted for."""
    with _open(path) as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason"])
        for r in sorted(rejected, key=lambda r: (r.path, r.reason)):
            writer.writerow([r.path, r.reason])
    return Path(path)


def _rows(outcomes: list[Outcome], roster, units) -> tuple[list[Outcome], list[str]]:
    """The outcomes, one per (student, unit), plus a "missing" row for each roster gap."""
    wanted = [getattr(u, "id", u) for u in units] if units is not None else None
    by_key: dict[tuple[str, str], Outcome] = {}
    for o in outcomes:
        if wanted is not None and o.unit_id not in wanted:
            continue
        key = (o.student_id, o.unit_id)
        if key in by_key:
            raise ValueError(f"two outcomes for student {key[0]} and unit {key[1]}: grade each submission once")
        by_key[key] = o
    unit_ids = wanted if wanted is not None else sorted({u for _, u in by_key})
    for student in dict.fromkeys(roster_ids(roster or []).values()):
        for unit_id in unit_ids:
            by_key.setdefault((student, unit_id), Outcome(student, unit_id, MISSING, 0.0,
                                                          _release_points(unit_id)[0], "no submission"))
    order = {u: i for i, u in enumerate(unit_ids)}
    rows = sorted(by_key.values(), key=lambda o: (o.student_id, order.get(o.unit_id, len(order)), o.unit_id))
    return rows, unit_ids


def _step_columns(rows: list[Outcome], unit_ids: list[str]) -> list[tuple[str, str]]:
    """(unit, step) pairs in unit order, each unit's steps in the order the outcomes list them."""
    columns: dict[tuple[str, str], None] = {}
    for unit_id in unit_ids:
        for o in rows:
            if o.unit_id == unit_id:
                columns.update(((unit_id, s.step), None) for s in o.steps)
    return list(columns)


@lru_cache(maxsize=None)
def _release_points(unit_id: str) -> tuple[float, float]:
    """The unit's automatic points and its written answers' points, from its release notebook (a
    missing submission still shows what it was out of)."""
    unit = syllabus.load().unit(unit_id)
    nb = nbformat.read(ROOT / "exercises" / unit.id / unit.filename, as_version=4)
    return automatic_max(nb), sum(w.max_points for w in written_answers(nb, nb))


def _open(path: Path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w", newline="", encoding="utf-8")


def _num(x) -> str:
    return f"{float(x):g}"
