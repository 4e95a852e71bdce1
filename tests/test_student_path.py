"""The student's side: exercises run where the grader does not exist."""
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.mutate import fill_in_answers, solution_sources
from course import syllabus

pytestmark = pytest.mark.nbgrader


@pytest.mark.parametrize("unit", syllabus.load().ready_units, ids=lambda u: u.id)
def test_completed_exercise_passes_its_visible_checks_without_the_grader(unit, root, tmp_path, monkeypatch):
    source = nbformat.read(root / "solutions" / unit.id / unit.filename, as_version=4)
    nb = nbformat.read(root / "exercises" / unit.id / unit.filename, as_version=4)
    fill_in_answers(nb, solution_sources(source))  # the student answers every step
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import importlib.util\nassert importlib.util.find_spec('autograder') is None, 'grader importable'"))

    for var in ("NBGRADER_EXECUTION", "PYTHONPATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COURSE_BUDGET", "fast")
    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                      if o["output_type"] == "stream")
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
             and not c.metadata["nbgrader"].get("solution")]
    assert printed.count("checks passed") == len(tests), printed
    assert not [o for c in nb.cells for o in c.get("outputs", [])
                if o["output_type"] == "stream" and o["name"] == "stderr"]
