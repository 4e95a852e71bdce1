"""Written answers: nbgrader's manually graded answer cells, with a model answer and a rubric in the source
notebook that never reach the release."""
import re

import nbformat
import pytest

from autograder.records import automatic_max, is_written, written_answers
from course import syllabus

pytestmark = pytest.mark.instructor
UNITS = list(syllabus.load().ready_units)
RUBRIC = re.compile(r"\*\*Rubric \((\d+) points?\)\.\*\*")
CRITERION = re.compile(r"^- (\d+) points?:", re.M)


def _notebooks(root, unit):
    return (nbformat.read(root / "solutions" / unit.id / unit.filename, as_version=4),
            nbformat.read(root / "exercises" / unit.id / unit.filename, as_version=4))


def _written(nb):
    return [c for c in nb.cells if is_written(c)]


def test_one_or_two_written_questions_per_unit(root):
    counts = {unit.id: len(_written(_notebooks(root, unit)[0])) for unit in UNITS}
    assert all(1 <= n <= 2 for n in counts.values()), counts
    assert 7 <= sum(counts.values()) <= 12, counts


@pytest.mark.parametrize("unit", UNITS, ids=[u.id for u in UNITS])
def test_written_cells_hold_a_model_answer_and_a_rubric_that_adds_up(root, unit):
    source, _ = _notebooks(root, unit)
    for i, cell in enumerate(source.cells):
        if not is_written(cell):
            continue
        meta = cell.metadata.nbgrader
        where = f"{unit.id}/{meta['grade_id']}"
        assert meta["grade_id"].startswith("written_") and cell.cell_type == "markdown", where
        assert meta["points"] > 0 and not meta.get("locked"), where
        assert "**Model answer.**" in cell.source, where
        rubric = RUBRIC.search(cell.source)
        assert rubric and int(rubric.group(1)) == meta["points"], f"{where}: the rubric must say its points"
        criteria = [int(p) for p in CRITERION.findall(cell.source[rubric.end():])]
        assert sum(criteria) == meta["points"], f"{where}: the criteria give {criteria}, not {meta['points']}"
        question = source.cells[i - 1]
        assert question.cell_type == "markdown" and "nbgrader" not in question.metadata, where
        assert f"({meta['points']} point" in question.source, f"{where}: the question must say its points"
    # the written questions close the notebook: nothing graded or run after them
    first = next(i for i, c in enumerate(source.cells) if is_written(c))
    assert all(c.cell_type == "markdown" for c in source.cells[first:]), unit.id


@pytest.mark.parametrize("unit", UNITS, ids=[u.id for u in UNITS])
def test_the_release_has_the_questions_and_no_answer_or_rubric(root, unit):
    source, release = _notebooks(root, unit)
    released = {c.metadata.nbgrader["grade_id"]: c for c in _written(release)}
    assert set(released) == {c.metadata.nbgrader["grade_id"] for c in _written(source)}
    text = "\n".join(c.source for c in release.cells)
    assert "Model answer" not in text and "Rubric" not in text
    for cell in _written(source):
        gid = cell.metadata.nbgrader["grade_id"]
        assert released[gid].source == "YOUR ANSWER HERE", gid
        lines = [line for line in cell.source.splitlines() if len(line.strip()) > 30]
        assert not [line for line in lines if line in text], f"{gid}: a line of the model answer is released"
    # as released, nobody has answered; the automatic maximum leaves the written points out
    assert not any(w.answered for w in written_answers(release, release))
    total = sum(float(c.metadata.nbgrader["points"]) for c in release.cells
                if c.metadata.get("nbgrader", {}).get("grade"))
    assert automatic_max(release) == total - sum(w.max_points for w in written_answers(release, release))
    assert all(w.answered for w in written_answers(source, release))
