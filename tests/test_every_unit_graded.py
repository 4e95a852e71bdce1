"""grade-class, as an instructor runs it (bubblewrap, the judge, the memo), gives every unit's solution full marks.

The judge compares a record's inputs by their bytes, so anything that makes the sandboxed kernel compute other
bits than the judge (a numeric library's setting lost on the way into the sandbox) costs a correct answer its
points. tests/test_judge.py checks every verdict with the kernel outside the sandbox; this test grades one
student's answered notebook of every unit through the whole path.
"""
from __future__ import annotations

import pytest

from autograder import bench

pytestmark = [pytest.mark.classroom, pytest.mark.nbgrader]


def test_one_students_solutions_of_every_unit_get_full_marks(tmp_path):
    figures = bench.run_student(workers=2, root=tmp_path)
    missed = {unit: got for unit, got in figures["units"].items() if got[0] != "graded" or got[1] != got[2]}
    assert figures["full_marks"], f"not full marks: {missed}; reasons: {figures.get('reasons', {})}"
    assert len(figures["units"]) == len(bench.pipeline.ready_units())
