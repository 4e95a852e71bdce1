"""The class runner: parallel grading survives dead workers, one gradebook like nbgrader's own.

The gradebook tests grade a small unit-01 class (the solution, the blank, one
partly right) and check the result through nbgrader's own Gradebook and
`nbgrader export`, in SQLite and in a real PostgreSQL server (tests/postgres.py).
"""
import csv
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Comment, Grade, Gradebook, Student, SubmittedAssignment
from nbgrader.utils import compute_checksum, determine_grade, is_solution

from autograder import ROOT, classroom, pipeline, sandbox
from autograder import mutate
from autograder.mutate import fill_in_answers, solution_sources
from autograder.records import GRADED, GRADER_ERROR, TIMEOUT, Outcome, StepResult, Submission, written_answers
from course import syllabus
from postgres import postgres_url  # noqa: F401 (a fixture)

pytestmark = pytest.mark.classroom  # instructor side: newest packages only (see Makefile)

UNIT = syllabus.load().unit("01_rnn_by_hand")
COURSE = syllabus.load().id
SKIPPED_STEPS = 2  # the partly right student leaves the last two steps blank


# ---------------------------------------------------------------- parallel grading, no nbgrader

def _fake_task(sub, template, work, limits):
    """Runs in a spawned worker: dies, raises, or 'grades' by the student's name."""
    if sub.student_id == "crasher":
        os._exit(3)
    if sub.student_id == "buggy":
        raise ValueError("a bug in the grader")
    return Outcome(sub.student_id, sub.unit_id, GRADED, 1.0, 1.0)


def test_a_dead_worker_costs_only_its_own_submission(tmp_path, capsys):
    names = ["ann", "crasher", "bob", "buggy", "cy", "dee"]
    subs = [Submission(n, UNIT.id, tmp_path / f"{n}.ipynb", "folder", f"{n}.ipynb") for n in names]
    outcomes = classroom.grade_in_pool(subs, tmp_path, tmp_path, None, workers=2, task=_fake_task)
    assert [o.student_id for o in outcomes] == names
    status = {o.student_id: o.status for o in outcomes}
    assert status == {"ann": GRADED, "crasher": GRADER_ERROR, "bob": GRADED, "buggy": GRADER_ERROR,
                      "cy": GRADED, "dee": GRADED}
    reasons = {o.student_id: o.reason for o in outcomes}
    assert "worker process died" in reasons["crasher"]
    assert "ValueError: a bug in the grader" in reasons["buggy"]
    assert outcomes[1].max_score == 13
    assert "6/6" in capsys.readouterr().err  # the progress bar, on stderr


def _fake_timed_task(sub, template, work, limits):
    """Like classroom._timed_grade_task: the outcome and the worker's phase times."""
    outcome = _fake_task(sub, template, work, limits)
    return outcome, {"notebook cells": 1.0, "worker": 2.0, "nth": 1}


def test_the_pool_hands_back_each_submissions_phase_times_and_still_loses_none(tmp_path):
    names = ["ann", "crasher", "bob"]
    subs = [Submission(n, UNIT.id, tmp_path / f"{n}.ipynb", "folder", f"{n}.ipynb") for n in names]
    timings = []
    outcomes = classroom.grade_in_pool(subs, tmp_path, tmp_path, None, workers=2, task=_fake_timed_task,
                                       progress=False, timings=timings)
    assert all(isinstance(o, Outcome) for o in outcomes)
    assert {o.student_id: o.status for o in outcomes} == {"ann": GRADED, "crasher": GRADER_ERROR, "bob": GRADED}
    assert timings == [{"notebook cells": 1.0, "worker": 2.0, "nth": 1}] * 2   # the dead worker's has none


# ---------------------------------------------------------------- a small class, graded by real nbgrader

def _class_notebooks(root, folder):
    """solution, blank and partly right unit-01 notebooks, as students hand them in."""
    solution = nbformat.read(root / "solutions" / UNIT.id / UNIT.filename, as_version=4)
    blank = nbformat.read(root / "exercises" / UNIT.id / UNIT.filename, as_version=4)
    answers = solution_sources(solution)
    steps = list(mutate.test_cells_by_step(solution))
    partly = nbformat.read(root / "exercises" / UNIT.id / UNIT.filename, as_version=4)
    fill_in_answers(partly, answers, skip=tuple(steps[-SKIPPED_STEPS:]))
    filled = nbformat.read(root / "exercises" / UNIT.id / UNIT.filename, as_version=4)
    fill_in_answers(filled, answers)
    paths = {}
    for student, nb in {"s_solution": filled, "s_blank": blank, "s_partly": partly}.items():
        paths[student] = folder / student / UNIT.id / UNIT.filename
        paths[student].parent.mkdir(parents=True)
        nbformat.write(nb, paths[student])
    return paths


def _expected_scores(root):
    solution = nbformat.read(root / "solutions" / UNIT.id / UNIT.filename, as_version=4)
    by_step = mutate.test_cells_by_step(solution)
    lost = sum(c.metadata.nbgrader["points"] for s in list(by_step)[-SKIPPED_STEPS:] for c in by_step[s])
    return {"s_solution": 13.0, "s_blank": 0.0, "s_partly": 13.0 - lost}


@pytest.fixture(scope="module")
def reference(root, tmp_path_factory):
    """The class graded by plain `nbgrader autograde`: its gradebook is what ours must look like."""
    course = tmp_path_factory.mktemp("reference")
    pipeline.generate_into(course, [UNIT.id])
    paths = _class_notebooks(root, course / "submitted")
    pipeline.autograde(course, UNIT.id)
    return course, paths


def _outcome_from_autograded(course, student):
    """What the sandbox hands back for one graded notebook (built here from nbgrader's own output)."""
    path = course / "autograded" / student / UNIT.id / UNIT.filename
    nb = nbformat.read(path, as_version=4)
    steps = []
    answers = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells if is_solution(c)}
    for step, cells in mutate.test_cells_by_step(nb).items():
        scores = {c.metadata.nbgrader["grade_id"]: float(determine_grade(c)[0]) for c in cells}
        errors = [o.evalue for c in cells for o in c.outputs if o.output_type == "error"]
        untouched = answers[step].metadata.nbgrader.get("checksum") == compute_checksum(answers[step])
        steps.append(StepResult(step, sum(scores.values()), sum(c.metadata.nbgrader["points"] for c in cells),
                                errors[0].splitlines()[0] if errors and errors[0] else "", scores, untouched))
    release = nbformat.read(ROOT / "exercises" / UNIT.id / UNIT.filename, as_version=4)
    return Outcome(student, UNIT.id, GRADED, sum(s.points for s in steps), 13.0, steps=steps, autograded=path,
                   written=written_answers(nb, release))   # answered ones: no auto score, a person grades them


def _read_gradebook(url):
    """Per student: scores by cell, comments by cell; and the row counts of nbgrader's tables."""
    with Gradebook(url, COURSE) as gb:
        scores, comments = {}, {}
        for sub in gb.assignment_submissions(UNIT.id):
            nb = gb.find_submission_notebook(UNIT.notebook, UNIT.id, sub.student.id)
            scores[sub.student.id] = {g.name: g.auto_score for g in nb.grades}
            comments[sub.student.id] = {c.name: c.auto_comment for c in nb.comments}
        counts = {t.__name__: gb.db.query(t).count() for t in (Student, SubmittedAssignment, Grade, Comment)}
    return scores, comments, counts


def _export(url, tmp_path):
    """Total per student, as `nbgrader export` reads it from the gradebook at `url`."""
    pipeline.nbgrader("export", f"--to={tmp_path / 'export.csv'}", f"--CourseDirectory.db_url={url}",
                      root=tmp_path, echo=False)
    with open(tmp_path / "export.csv", newline="") as f:
        return {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f) if r["assignment"] == UNIT.id}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gradebook.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.nbgrader
def test_gradebook_written_like_nbgrader_autograde(reference, root, db_url, tmp_path):
    course, paths = reference
    outcomes = [_outcome_from_autograded(course, s) for s in paths]
    timeout = Outcome("s_looper", UNIT.id, TIMEOUT, 0.0, 13.0, reason="cell rnn_step ran past 20 s")
    classroom.record_units([UNIT.id], db_url)
    assert classroom.write_gradebook([*outcomes, timeout], db_url, roster=["s_absent"]) == []
    ours, comments, counts = _read_gradebook(db_url)
    theirs, their_comments, _ = _read_gradebook(f"sqlite:///{course / 'gradebook.db'}")
    for student in paths:
        assert ours[student] == theirs[student], student
        for cell, text in their_comments[student].items():  # nbgrader's "No response." kept
            if text:
                assert comments[student][cell] == text
    assert set(ours["s_looper"].values()) == {0.0}
    assert "Not graded (timeout): cell rnn_step ran past 20 s" in comments["s_looper"]["rnn_step"]
    failed = [s for s in outcomes[2].steps if s.message]
    assert failed and comments["s_partly"][failed[0].step] in (failed[0].message, "No response.")
    assert _export(db_url, tmp_path) == {**_expected_scores(root), "s_looper": 0.0, "s_absent": 0.0}

    classroom.record_units([UNIT.id], db_url)  # a regrade: same scores, rows updated in place
    classroom.write_gradebook([*outcomes, timeout], db_url, roster=["s_absent"])
    again, _, counts_again = _read_gradebook(db_url)
    assert again == ours and counts_again == counts
    # 8 test cells and 1 written answer (a grade cell and a solution cell at once): 9 grades, 9 comments
    assert counts == {"Student": 5, "SubmittedAssignment": 4, "Grade": 4 * 9, "Comment": 4 * 9}


# ---------------------------------------------------------------- grade_class end to end

@pytest.mark.nbgrader
def test_grade_class_twice_same_scores_no_duplicates(root, tmp_path):
    # SQLite, the default; PostgreSQL is covered by the gradebook test above (same code path, one server).
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    inbox = tmp_path / "inbox"
    _class_notebooks(root, inbox)
    (inbox / "s_empty" / UNIT.id).mkdir(parents=True)
    (inbox / "s_empty" / UNIT.id / UNIT.filename).write_text("")
    (inbox / "notes.pdf").write_bytes(b"%PDF-1.4")
    course = tmp_path / "course"
    expected = {**_expected_scores(root), "s_empty": 0.0}

    first = classroom.grade_class([inbox], course, unit_ids=[UNIT.id], workers=2, db_url=db_url, progress=False)
    status = {o.student_id: (o.status, o.score) for o in first.outcomes}
    assert {s: score for s, (_, score) in status.items()} == expected, first.summary
    assert status["s_empty"][0] != GRADED and all(st == GRADED for s, (st, _) in status.items() if s != "s_empty")
    assert any("notes.pdf" in r.path for r in first.rejected)
    scores, comments, counts = _read_gradebook(db_url)
    assert {s: sum(x or 0 for x in v.values()) for s, v in scores.items()} == expected
    # the written answer: answered by s_solution and s_partly, so waiting for a person (no auto score)
    written = {s: v["written_parameter_sharing"] for s, v in scores.items()}
    assert written == {"s_solution": None, "s_partly": None, "s_blank": 0.0, "s_empty": 0.0}
    assert "2 graded submissions have written answers that need manual grading" in first.summary
    with open(first.grades_csv, newline="", encoding="utf-8") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert rows["s_solution"]["manual_grading"].startswith("needs manual grading: 1 written answer")
    assert (rows["s_solution"]["written_pending"], rows["s_blank"]["written_pending"]) == ("2", "0")
    assert rows["s_solution"]["status"] == GRADED and rows["s_solution"]["max_score"] == "13"
    assert comments["s_empty"]["rnn_step"].startswith(f"Not graded ({status['s_empty'][0]})")
    for student in expected:
        assert (course / "feedback" / student / UNIT.id / f"{UNIT.notebook}.html").is_file()
    for student in ("s_solution", "s_blank", "s_partly"):
        assert (course / "autograded" / student / UNIT.id / UNIT.filename).is_file()
    assert first.grades_csv.is_file() and first.rejected_csv.is_file()
    assert "s_partly" in first.summary

    second = classroom.grade_class([inbox], course, unit_ids=[UNIT.id], workers=2, db_url=db_url,
                                   progress=False)
    assert [(o.student_id, o.status, o.score) for o in second.outcomes] == \
        [(o.student_id, o.status, o.score) for o in first.outcomes]
    assert _read_gradebook(db_url) == (scores, comments, counts)
    assert counts["Student"] == 4 and counts["SubmittedAssignment"] == 4


@pytest.mark.nbgrader
def test_cli_grade_class(root, tmp_path, capsys):
    from autograder.__main__ import main

    inbox = tmp_path / "inbox"
    paths = _class_notebooks(root, inbox)
    shutil.rmtree(paths["s_partly"].parents[1])
    shutil.rmtree(paths["s_blank"].parents[1])
    course = tmp_path / "course"
    assert main(["grade-class", str(inbox), "--course-root", str(course), "--workers", "1",
                 "--cell-timeout", "60", "--notebook-timeout", "200"]) == 0
    out = capsys.readouterr().out
    assert "s_solution" in out and str(course / "grades.csv") in out
    assert main(["grade-class", str(inbox), "--course-root", str(course), "--db-url", "nosuchdb://x"]) == 2


def test_cli_works_without_the_environment_on_path(root, tmp_path):
    # nbgrader's Gradebook runs `alembic` from PATH when it creates a database; an instructor who calls
    # .venv/bin/python -m autograder without activating .venv must not get "No such file: 'alembic'".
    import subprocess
    import sys

    (tmp_path / "inbox").mkdir()
    done = subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(tmp_path / "inbox"),
                           "--course-root", str(tmp_path / "course")], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "course" / "gradebook.db").is_file()


# ---------------------------------------------------------------- a record that survives a stopped run

def test_journal_round_trip_and_submission_key(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text("{}")
    sub = Submission("ann", UNIT.id, path, "folder", "nb.ipynb")
    key = classroom.submission_key(sub)
    outcome = Outcome("ann", UNIT.id, GRADED, 2.0, 13.0, steps=[StepResult("rnn_step", 2.0, 2.0, "", {"test_rnn_step": 2.0})],
                      autograded=tmp_path / "x.ipynb")
    journal = classroom.Journal(tmp_path / "j" / "outcomes.jsonl")
    journal.append(key, outcome)
    with open(journal.path, "a") as f:
        f.write('{"key": "cut sho')          # a line cut short by a killed run is skipped
    assert journal.read() == {key: outcome}
    assert journal.read()[key].cell_scores() == {"test_rnn_step": 2.0}
    path.write_text("{ }")
    assert classroom.submission_key(sub) != key, "a changed file is graded again"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.nbgrader
def test_killed_run_leaves_no_process_and_the_next_run_resumes(root, tmp_path):
    import subprocess
    import sys
    import time

    inbox = tmp_path / "inbox"
    paths = _class_notebooks(root, inbox)
    shutil.rmtree(paths["s_partly"].parents[1])
    slow = nbformat.read(paths["s_solution"], as_version=4)
    slow.cells.insert(3, nbformat.v4.new_code_cell("import time\ntime.sleep(500)"))
    (inbox / "s_zslow" / UNIT.id).mkdir(parents=True)
    nbformat.write(slow, inbox / "s_zslow" / UNIT.id / UNIT.filename)
    course = tmp_path / "course"
    journal = course / classroom.JOURNAL
    cmd = [sys.executable, "-m", "autograder", "grade-class", str(inbox), "--course-root", str(course),
           "--workers", "1", "--cell-timeout", "600", "--notebook-timeout", "600"]
    run = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and not (journal.is_file() and len(journal.read_text().splitlines()) == 2):
            time.sleep(1)
        assert len(journal.read_text().splitlines()) == 2, "the two quick submissions were journaled"
        time.sleep(8)   # the slow one's nbgrader and sandboxed kernel are running
        tree = _descendants(run.pid)
        assert len(tree) >= 3, tree   # a worker, its nbgrader, bubblewrap or the kernel
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in tree):
        time.sleep(0.5)
    assert not [p for p in tree if _alive(p)], "processes outlived a killed grade-class"

    done = subprocess.run(cmd[:-4] + ["--cell-timeout", "20", "--notebook-timeout", "40"], cwd=root,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = journal.read_text().splitlines()
    assert len(lines) == 3, "only the submission not yet recorded was graded again"
    rows = {r["student_id"]: r for r in csv.DictReader(open(course / "grades.csv"))}
    assert (rows["s_solution"]["status"], float(rows["s_solution"]["score"])) == ("graded", 13.0)
    assert (rows["s_blank"]["status"], float(rows["s_blank"]["score"])) == ("graded", 0.0)
    assert rows["s_zslow"]["status"] == "timeout"
    scores, _, counts = _read_gradebook(f"sqlite:///{course / 'gradebook.db'}")
    assert {s: sum(x or 0.0 for x in v.values()) for s, v in scores.items()} == {"s_solution": 13.0, "s_blank": 0.0, "s_zslow": 0.0}


def test_the_prepared_units_are_kept_for_the_next_run_and_remade_when_their_sources_change(tmp_path, monkeypatch):
    """sandbox.cached_template: one template per content; a later run with the same units and checkout takes
    it; another content replaces it; a run stopped while preparing leaves nothing that could be used."""
    made = []

    def fake_prepare(unit_ids, work):
        made.append(tuple(unit_ids))
        (Path(work) / "template").mkdir(parents=True)
        (Path(work) / "template" / "units.txt").write_text(",".join(unit_ids))
        if "broken" in unit_ids:
            raise RuntimeError("nbgrader generate_assignment failed")
        return Path(work) / "template"

    monkeypatch.setattr(sandbox, "prepare_template", fake_prepare)
    monkeypatch.setattr(sandbox, "template_key", lambda unit_ids: "-".join(sorted(unit_ids)))
    cache = tmp_path / "templates"
    first = sandbox.cached_template(["u1", "u2"], cache)
    again = sandbox.cached_template(["u1", "u2"], cache)
    assert first == again and made == [("u1", "u2")] and (first / "units.txt").read_text() == "u1,u2"
    other = sandbox.cached_template(["u1"], cache)
    assert made[-1] == ("u1",) and not first.exists() and other.is_dir()
    with pytest.raises(RuntimeError):
        sandbox.cached_template(["broken"], cache)
    assert sorted(p.name for p in cache.iterdir()) == ["u1"]


def test_the_template_key_follows_every_source_of_the_template():
    units = ["01_rnn_by_hand"]
    key = sandbox.template_key(units)
    assert key == sandbox.template_key(units) and key != sandbox.template_key(["02_bptt_and_gradients"])
