"""HTML feedback: each failed step with its message, never the source of hidden tests."""
import re

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder import feedback, pipeline
from autograder.mutate import fill_in_answers, solution_sources
from autograder.records import GRADED, TIMEOUT, Outcome
from course import syllabus

pytestmark = pytest.mark.classroom  # instructor side: newest packages only (see Makefile)

UNIT = syllabus.load().unit("01_rnn_by_hand")
# What must never reach a student: the hidden region, the hidden module, its functions and its case data.
LEAKS = re.compile(r"HIDDEN TESTS|autograder[./]hidden|hidden\.grade_|grade_rnn|PARAM_CASES|_cases\(|SEED",
                   re.IGNORECASE)
# Passes the visible check (small vocabularies) and fails only the hidden case vocab=30000.
SABOTAGED_PARAM_COUNT = '''def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    inputs = vocab_size if embedding_dim is None else embedding_dim
    embedding = 0 if embedding_dim is None else vocab_size * embedding_dim
    total = embedding + inputs * units + units * units + units + units * vocab_size + vocab_size
    return int(total if vocab_size < 10_000 else total - units)
'''


def fake_autograded(root, tmp_path):
    """The release notebook with the instructor's test cells (as nbgrader's autograde restores them) and outputs."""
    nb = nbformat.read(root / "exercises" / UNIT.id / UNIT.filename, as_version=4)
    source = nbformat.read(root / "solutions" / UNIT.id / UNIT.filename, as_version=4)
    instructor = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells if "nbgrader" in c.metadata}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid and gid.startswith("test_"):
            cell.source = instructor[gid]
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"✓ {gid[5:]}: 3 checks passed\n")]
        if gid == "test_rnn_step":
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="CheckFailed", evalue="rnn_step: h_t has shape (1, 1) <script>alert(1)</script>",
                traceback=["\x1b[0;31m---------\x1b[0m", 'File "/x/autograder/hidden/rnn_by_hand.py", line 40',
                           "    visible.check_rnn_step(fn, CASES)", "hidden.grade_rnn_step(rnn_step)"]))
        if gid == "rnn_step":
            cell.source = "def rnn_step(x_t, h_prev, W_x, W_h, b):\n    return x_t @ W_x  # <b>mine</b>"
    path = tmp_path / "autograded.ipynb"
    nbformat.write(nb, path)
    return path


def test_outcome_from_autograded_reads_points_and_messages(root, tmp_path):
    outcome = feedback.outcome_from_autograded(fake_autograded(root, tmp_path), "alice", UNIT.id)
    assert (outcome.status, outcome.score, outcome.max_score) == (GRADED, 11, 13)
    first = outcome.steps[0]
    assert (first.step, first.points, first.max_points) == ("rnn_step", 0, 2)
    assert first.message == "rnn_step: h_t has shape (1, 1) <script>alert(1)</script>"
    assert all(s.points == s.max_points and s.message == "" for s in outcome.steps[1:])


def test_feedback_shows_failures_escaped_and_no_hidden_test(root, tmp_path):
    nb_path = fake_autograded(root, tmp_path)
    assert LEAKS.search(nb_path.read_text())   # the graded notebook itself holds them
    outcome = feedback.outcome_from_autograded(nb_path, "alice", UNIT.id)
    outcome.notes.append("test cell test_softmax was edited: restored")
    page = feedback.write_feedback(outcome, tmp_path / "fb" / "alice.html").read_text(encoding="utf-8")
    assert LEAKS.search(page) is None, LEAKS.search(page)
    assert "11 / 13" in page and "alice" in page and UNIT.title in page
    assert "rnn_step: h_t has shape (1, 1) &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page and "\x1b" not in page
    assert "checks.check_rnn_step(rnn_step)" in page          # the visible check that ran
    assert "&lt;b&gt;mine&lt;/b&gt;" in page                    # the student's own code, escaped
    assert "test cell test_softmax was edited: restored" in page
    assert not re.search(r"(src|href)=", page)                 # self-contained
    assert "written_parameter_sharing</b>: not answered: 0 / 2" in page   # left as released: nobody to grade it
    assert "awaiting a person" not in page


def test_feedback_names_the_written_answers_that_await_a_person(root, tmp_path):
    nb_path = fake_autograded(root, tmp_path)
    nb = nbformat.read(nb_path, as_version=4)
    written = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "written_parameter_sharing")
    written.source = "The same <i>weights</i> at every step."
    nbformat.write(nb, nb_path)
    outcome = feedback.outcome_from_autograded(nb_path, "alice", UNIT.id)
    assert (outcome.score, outcome.max_score, outcome.written_max, outcome.pending_points) == (11, 13, 2, 2)
    page = feedback.write_feedback(outcome, tmp_path / "alice.html").read_text(encoding="utf-8")
    assert "Written answers awaiting a person's grading: <b>1</b>, worth 2 points" in page
    assert "written_parameter_sharing</b>: needs manual grading: awaits a person (up to 2 points)" in page
    assert "The same &lt;i&gt;weights&lt;/i&gt; at every step." in page
    assert "Rubric" not in page


def test_feedback_for_a_submission_that_was_not_graded(tmp_path):
    outcome = Outcome("bob", UNIT.id, TIMEOUT, 0, 13, "cell 4 ran past 300 s")
    page = feedback.write_feedback(outcome, tmp_path / "bob.html", course_title="RNN & co").read_text()
    assert "timeout" in page and "cell 4 ran past 300 s" in page and "RNN &amp; co" in page and "0 / 13" in page


@pytest.mark.nbgrader
def test_real_nbgrader_autograde_feedback_has_no_hidden_tests(root, tmp_path):
    course_root = tmp_path / "course"
    pipeline.generate_into(course_root, [UNIT.id])
    solution = nbformat.read(root / "solutions" / UNIT.id / UNIT.filename, as_version=4)
    answers = solution_sources(solution)
    answers["rnn_lm_param_count"] = SABOTAGED_PARAM_COUNT
    partial = nbformat.read(course_root / "exercises" / UNIT.id / UNIT.filename, as_version=4)
    fill_in_answers(partial, answers, skip=("simple_rnn_from_weights",))
    nbformat.write(partial, tmp_path / "partial.ipynb")
    pipeline.submit(course_root, "partial", UNIT.id, tmp_path / "partial.ipynb")
    pipeline.submit(course_root, "full", UNIT.id, root / "solutions" / UNIT.id / UNIT.filename)
    pipeline.autograde(course_root, UNIT.id)

    outcomes = {s: feedback.outcome_from_autograded(course_root / "autograded" / s / UNIT.id / UNIT.filename,
                                                    s, UNIT.id) for s in ("partial", "full")}
    with Gradebook(f"sqlite:///{course_root / 'gradebook.db'}") as gb:
        for student, outcome in outcomes.items():
            assert outcome.score == gb.find_submission(UNIT.id, student).score, student
    assert (outcomes["full"].score, outcomes["full"].max_score) == (13, 13)
    # the written answer: nbgrader leaves it to a person (no auto score) when answered, and the Outcome agrees
    with Gradebook(f"sqlite:///{course_root / 'gradebook.db'}") as gb:
        for student in ("partial", "full"):
            grade = gb.find_grade("written_parameter_sharing", UNIT.notebook, UNIT.id, student)
            assert (grade.auto_score, grade.needs_manual_grade) == (None, True), student
            assert [w.question for w in outcomes[student].pending] == ["written_parameter_sharing"]
    lost = {s.step: s.message for s in outcomes["partial"].steps if s.points < s.max_points}
    assert set(lost) == {"rnn_lm_param_count", "simple_rnn_from_weights"}
    assert "vocab=30000" in lost["rnn_lm_param_count"]            # failed the hidden case only
    assert "not implemented yet" in lost["simple_rnn_from_weights"]

    graded_nb = (course_root / "autograded" / "partial" / UNIT.id / UNIT.filename).read_text()
    assert LEAKS.search(graded_nb)   # what plain generate_feedback would render
    for student, outcome in outcomes.items():
        page = feedback.write_feedback(outcome, tmp_path / "fb" / f"{student}.html").read_text()
        assert LEAKS.search(page) is None, (student, LEAKS.search(page))
    page = (tmp_path / "fb" / "partial.html").read_text()
    assert "10 / 13" in page and "not implemented yet" in page and "checks passed" in page
