"""The instructor path through nbgrader's exchange: release, fetch, submit, collect, grade."""
import getpass
import os
import subprocess
import sys

import nbformat
import pytest

from autograder import pipeline
from autograder.mutate import fill_in_answers, solution_sources
from course import syllabus

pytestmark = [pytest.mark.nbgrader, pytest.mark.instructor]
UNIT = syllabus.load().unit("01_rnn_by_hand")


def student_cli(*args, cwd, exchange):
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
    cmd = [os.path.join(os.path.dirname(sys.executable), "nbgrader"), *args,
           f"--Exchange.root={exchange}", "--course=rnn-course"]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_release_fetch_submit_collect_autograde_export(root, tmp_path):
    course_root, exchange, home = tmp_path / "course", tmp_path / "exchange", tmp_path / "student"
    for folder in (course_root, exchange, home):
        folder.mkdir()
    exchange.chmod(0o777)
    flag = f"--Exchange.root={exchange}"

    pipeline.generate_into(course_root, [UNIT.id])
    pipeline.nbgrader("release_assignment", UNIT.id, flag, root=course_root, echo=False)

    student_cli("fetch_assignment", UNIT.id, cwd=home, exchange=exchange)
    fetched = home / UNIT.id / UNIT.filename
    nb = nbformat.read(fetched, as_version=4)
    solution = nbformat.read(root / "solutions" / UNIT.id / UNIT.filename, as_version=4)
    answers = solution_sources(solution)
    steps = [c.metadata.nbgrader["grade_id"] for c in nb.cells if c.cell_type == "code"
             and c.metadata.get("nbgrader", {}).get("grade_id") in answers]
    last_step = steps[-1]
    fill_in_answers(nb, answers, skip=(last_step,))  # every step answered but the last
    nbformat.write(nb, fetched)
    student_cli("submit", UNIT.id, cwd=home, exchange=exchange)

    pipeline.nbgrader("collect", UNIT.id, flag, root=course_root, echo=False)
    student = getpass.getuser()
    assert (course_root / "submitted" / student / UNIT.id / UNIT.filename).is_file()
    pipeline.autograde(course_root, UNIT.id)
    rows = pipeline.export(course_root, course_root / "grades.csv")
    (row,) = [r for r in rows if r["student_id"] == student]
    tests = [c for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"test_{last_step}"]
    lost = sum(c.metadata.nbgrader["points"] for c in tests)
    # nbgrader's max_score counts the written answers, which wait for a person and add nothing yet
    written = sum(c.metadata.nbgrader["points"] for c in solution.cells if c.cell_type == "markdown"
                  and c.metadata.get("nbgrader", {}).get("grade"))
    assert float(row["raw_score"]) == float(row["max_score"]) - written - lost, row
