"""The sandbox grades one submission safely: every case of the corpus gets its status and exact score."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from autograder import records, sandbox, tamper

import corpus

pytestmark = pytest.mark.classroom  # instructor side: newest packages only (see Makefile)

# Generous: the corpus runs two submissions at a time, beside another pytest worker, so a
# slow machine must not turn the infinite loop's cell limit into the notebook limit.
LIMITS = sandbox.Limits(cell_seconds=45, notebook_seconds=300)
# The notebook limit must stop a run whose every cell stays inside the cell limit.
# The notebook limit leaves the set-up cells time to finish on a loaded machine, so that
# the sleeping cell is the one running when it fires.
SHORT = sandbox.Limits(cell_seconds=600, notebook_seconds=90)


SECRET = "s3cr3t-of-the-grader"


def checkout_digest() -> str:
    """sha256 over every file git tracks in the checkout."""
    import hashlib
    import subprocess

    from autograder import ROOT

    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    digest = hashlib.sha256()
    for name in sorted(n for n in names.decode().split("\0") if n):
        path = ROOT / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"-"))
    return digest.hexdigest()


@pytest.fixture(scope="module")
def checkout_before():
    return checkout_digest()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return sandbox.prepare_template([corpus.UNIT.id], tmp_path_factory.mktemp("sandbox"))


@pytest.fixture(scope="module")
def graded(template, checkout_before, tmp_path_factory):
    """Every corpus case graded, two at a time (each runs its own nbgrader and kernel), with a
    secret in the grader's environment that no kernel may see."""
    import os

    folder, work = tmp_path_factory.mktemp("corpus"), tmp_path_factory.mktemp("work")
    cases = corpus.all_cases()
    os.environ["AUTOGRADER_TEST_SECRET"] = SECRET

    def grade(case):
        limits = SHORT if case.name == "notebook_timeout" else LIMITS
        return case, sandbox.grade_one(corpus.submission(case, folder), template, work, limits)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = {case.name: (case, outcome) for case, outcome in pool.map(grade, cases)}
    finally:
        del os.environ["AUTOGRADER_TEST_SECRET"]
    for name, (_, o) in results.items():   # shown with pytest -s: the corpus at a glance
        print(f"{name:<32} {o.status:<16} {o.score:>4g}/{o.max_score:<4g} {o.seconds:5.1f} s  {o.reason[:90]}")
    return results


@pytest.mark.nbgrader
@pytest.mark.parametrize("name", [c.name for c in corpus.all_cases()])
def test_case_gets_its_status_and_exact_score(graded, name):
    case, outcome = graded[name]
    summary = f"{outcome.status} {outcome.score}/{outcome.max_score} {outcome.reason!r} notes={outcome.notes}"
    assert outcome.status == case.status, summary
    assert outcome.score == case.score, summary
    assert outcome.max_score == corpus.MAX_SCORE, summary
    assert outcome.student_id == name and outcome.original_name == case.filename
    assert case.reason in outcome.reason, summary
    for note in case.notes:
        assert any(note in n for n in outcome.notes), (note, outcome.notes)
    if case.status != records.GRADED:
        assert outcome.reason, "every status but GRADED says why"
    assert outcome.seconds < LIMITS.notebook_seconds + 15


@pytest.mark.nbgrader
@pytest.mark.parametrize("name", [c.name for c in corpus.all_cases() if c.status == records.GRADED])
def test_graded_steps_add_up_and_name_failures(graded, name):
    case, outcome = graded[name]
    assert [s.step for s in outcome.steps] == list(corpus.POINTS)
    assert sum(s.points for s in outcome.steps) == outcome.score
    assert {s.step: s.max_points for s in outcome.steps} == corpus.POINTS
    # the written answer: the instructor's, typed in, awaits a person; the release's, untouched, does not
    assert {w.question: w.max_points for w in outcome.written} == corpus.WRITTEN
    answered = b"Model answer" in case.content   # the instructor's written answer was typed in
    assert [w.question for w in outcome.pending] == (list(corpus.WRITTEN) if answered else []), outcome.written
    assert (outcome.manual_grading().startswith("needs manual grading: 1 written answer")) == answered
    for step in outcome.steps:
        assert (step.message == "") == (step.points == step.max_points), step
    messages = {s.step: s.message for s in outcome.steps}
    for step, text in case.messages.items():
        assert text in messages[step], (step, messages[step])
    assert outcome.autograded is not None and outcome.autograded.is_file()


@pytest.mark.nbgrader
def test_cell_scores_match_the_steps(graded, tmp_path):
    case, outcome = graded["partial"]
    scores = sandbox.cell_scores(outcome.autograded.parents[3], corpus.UNIT, outcome.student_id)
    assert scores["test_rnn_step"] == (2.0, 2.0) and scores["test_next_token_probs"] == (0.0, 1.0)
    assert sum(s for s, _ in scores.values()) == outcome.score


@pytest.mark.nbgrader
def test_names_the_cell_that_failed(graded):
    reasons = {name: outcome.reason for name, (_, outcome) in graded.items()}
    assert "cell #" in reasons["infinite_loop"] and "'while True:'" in reasons["infinite_loop"]
    assert "'import os'" in reasons["os_exit"] and "'import ctypes'" in reasons["segfault"]
    assert "'import numpy as np'" in reasons["memory_hog"] and "Unable to allocate" in reasons["memory_hog"]
    assert "'import time'" in reasons["notebook_timeout"]
    assert "b = __import__" in reasons["patch_at_runtime"]


@pytest.mark.nbgrader
def test_output_flood_is_truncated_in_the_graded_notebook(graded):
    _, outcome = graded["output_flood"]
    assert outcome.autograded.stat().st_size < 2_000_000
    nb = nbformat.read(outcome.autograded, as_version=4)
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "truncated" in text


@pytest.mark.nbgrader
def test_the_kernel_of_a_killed_run_is_gone(graded):
    work = graded["solution"][1].autograded.parents[4]
    (scratch,) = [p for p in work.iterdir() if "--notebook_timeout--" in p.name]
    events = sandbox.read_journal(sandbox.box_of(scratch) / ".journal.jsonl")
    assert [e for e in events if e.get("event") == "kernel"]
    assert sandbox.processes_of(scratch) == [], "nbgrader, bubblewrap or the kernel outlived the run"
    for event in events:
        if event.get("event") == "kernel" and not event.get("isolated"):
            cmdline = Path(f"/proc/{event['pid']}/cmdline")
            assert not (cmdline.exists() and b"autograder.kernel" in cmdline.read_bytes()), event


# --- no nbgrader needed ------------------------------------------------------------------------------

def test_repair_restores_order_and_reports_every_change():
    nb = corpus.answered()
    cells = nb.cells
    i = corpus.index_of(nb, "test_rnn_forward")
    cells.insert(i + 1, nbformat.v4.new_code_cell("print('my own cell')"))
    cells[corpus.index_of(nb, "test_rnn_step")].source = "pass"
    cells.append(cells.pop(corpus.index_of(nb, "test_rnn_forward")))
    del cells[corpus.index_of(nb, "softmax")]
    fixed = sandbox.repair(nb, corpus.release())
    release_ids = [c.metadata.nbgrader["grade_id"] for c in corpus.release().cells if "nbgrader" in c.metadata]
    assert [c.metadata.nbgrader["grade_id"] for c in fixed.nb.cells if "nbgrader" in c.metadata] == release_ids
    sources = [c.source for c in fixed.nb.cells]
    own = sources.index("print('my own cell')")
    # it followed rnn_forward once test_rnn_forward had been moved away, and stays there
    assert fixed.nb.cells[own - 1].metadata.nbgrader["grade_id"] == "rnn_forward"
    assert any("test_rnn_step was edited" in n for n in fixed.notes)
    assert any("solution cell softmax was missing: put back blank" in n for n in fixed.notes)
    assert any("out of order" in n for n in fixed.notes)
    nbformat.validate(fixed.nb)


def test_duplicate_solution_cell_grades_the_last_copy():
    nb = corpus.answered()
    first = nb.cells[corpus.index_of(nb, "softmax")]
    copy_ = nbformat.from_dict(dict(first, source="def softmax(z):\n    return z"))
    nb.cells.insert(corpus.index_of(nb, "softmax"), copy_)
    fixed = sandbox.repair(nb, corpus.release())
    graded = [c for c in fixed.nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "softmax"]
    assert len(graded) == 1 and graded[0].source == first.source
    assert "def softmax(z):\n    return z" in [c.source for c in fixed.nb.cells]
    assert any("softmax appears 2 times" in n for n in fixed.notes)


@pytest.mark.parametrize("source, expected", [
    ("np.allclose = lambda *a, **k: True", "assigns to numpy.allclose"),
    ("import course.checks\ncourse.checks.expect_close = lambda *a, **k: None", "course.checks.expect_close"),
    ("checks.check_rnn_step = lambda f: None", "course.checks.rnn_by_hand.check_rnn_step"),
    ("setattr(np, 'allclose', len)", "setattr on numpy"),
    ("import importlib\nsetattr(importlib.import_module('course.checks'), 'fail', print)", "setattr on course.checks"),
    ("import sys\nsys.modules['course.checks'] = object()", "sys.modules"),
    ("import sys\nsys.modules.update(numpy=None)", "update on sys.modules"),
    ("exec('np.allclose = len')", "exec"),
    ("eval(compile('1', 'x', 'eval'))", "eval"),
    ("vars(np)['allclose'] = len", "numpy.__dict__"),
    ("import builtins\nbuiltins.isinstance = lambda *a: True", "builtins.isinstance"),
    ("from unittest import mock\nmock.patch('numpy.allclose', len).start()", "patches numpy.allclose"),
    ("get_ipython().run_cell('np.allclose = len')", "run_cell"),
    ("object.__setattr__(np, 'allclose', len)", "__setattr__ on numpy"),
    ("del np.allclose", "deletes numpy.allclose"),
    ("__import__('numpy').allclose = len", "numpy.allclose"),
    ("checks.check_rnn_step.__code__ = (lambda f: None).__code__", "check_rnn_step.__code__"),
    ("import keras\nkeras.ops.softmax = len", "keras.ops.softmax"),
])
def test_tamper_scan_flags(source, expected):
    context = [c.source for c in corpus.release().cells if c.metadata.get("nbgrader", {}).get("locked")]
    findings = tamper.scan([("rnn_step", source)], context)
    assert findings and expected in str(findings[0]), findings
    assert str(findings[0]).startswith("cell rnn_step, line ")


@pytest.mark.parametrize("source", [
    "plt.rcParams['figure.dpi'] = 120",
    "np.random.seed(0)\nnp.set_printoptions(precision=3)",
    "x = np.zeros(3)\nx[0] = 1\nimport re\nre.compile('a+')",
    "%timeit np.zeros(3)\n!echo hi",
    "def rnn_step(x, h, W_x, W_h, b):\n    out = np.tanh(x @ W_x + h @ W_h + b)\n    out[0] += 0\n    return out",
    "class Layer:\n    def __init__(self):\n        self.units = 3\n        setattr(self, 'bias', None)",
    "def broken(:\n    pass",
])
def test_tamper_scan_leaves_ordinary_code_alone(source):
    context = [c.source for c in corpus.release().cells if c.metadata.get("nbgrader", {}).get("locked")]
    assert tamper.scan([("rnn_step", source)], context) == []


@pytest.mark.parametrize("case", corpus.bad_file_cases()[:3], ids=lambda c: c.name)
def test_bad_files_are_rejected_without_running_anything(case, tmp_path):
    outcome = sandbox.grade_one(corpus.submission(case, tmp_path), tmp_path / "no-template", tmp_path)
    assert (outcome.status, outcome.score) == (case.status, 0.0)
    assert case.reason in outcome.reason


def test_our_own_failure_is_a_grader_error(tmp_path, monkeypatch):
    case = corpus.good_cases()[0]
    monkeypatch.setattr(sandbox, "repair", lambda nb, release: 1 / 0)
    outcome = sandbox.grade_one(corpus.submission(case, tmp_path), tmp_path / "no-template", tmp_path)
    assert outcome.status == records.GRADER_ERROR
    assert "ZeroDivisionError" in outcome.reason


@pytest.mark.nbgrader
def test_auto_scores_for_the_real_gradebook(graded):
    work = graded["solution"][1].autograded.parents[4]
    folder = graded["partial"][1].autograded.parents[5] / "corpus0"
    for name, expected in (("partial", 6.0), ("patch_allclose", 0.0), ("os_exit", 0.0)):
        case, outcome = graded[name]
        sub = records.Submission(name, corpus.UNIT.id, folder / name / case.filename, "folder", case.filename)
        scores = sandbox.auto_scores(sub, outcome, work)
        assert len(scores) == 8 and sum(scores.values()) == expected, (name, scores)


# --- attacks on the grader: the sandbox holds ------------------------------------------------------

def attack_report(outcome) -> dict:
    """What an attack cell printed about what it managed (corpus.REPORT + JSON)."""
    import json

    nb = nbformat.read(outcome.autograded, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith(corpus.REPORT):
                    return json.loads(line[len(corpus.REPORT):])
    raise AssertionError(f"no {corpus.REPORT!r} line in {outcome.autograded}")


needs_bwrap = pytest.mark.skipif(sandbox.isolation_problem() is not None,
                                 reason=f"no isolation here: {sandbox.isolation_problem()}")


@pytest.mark.nbgrader
@needs_bwrap
def test_attack_finds_no_solution_no_classmate_no_network(graded):
    report = attack_report(graded["attack_steal"][1])
    assert report["found"] == [], report["found"][:5]
    assert report.get("stolen") == "ModuleNotFoundError"
    assert all("open" not in line for line in report["net"]), report["net"]
    # only its sandbox's processes: itself and, before it, bubblewrap's init or the kernel server (PID 1) and
    # the fork that waits for the kernel
    assert len(report["pids"]) <= 3 and 1 in report["pids"], report["pids"]
    for what, text in report["proc"].items():
        assert "nbgrader" not in text and "solutions" not in text and SECRET not in text, (what, text[:300])
    assert "AUTOGRADER_TEST_SECRET" not in report["env_keys"] and "JUPYTER_PATH" not in report["env_keys"]


@pytest.mark.nbgrader
@needs_bwrap
def test_attack_changes_nothing_outside_its_folder(graded, checkout_before, template):
    report = attack_report(graded["attack_damage"][1])
    assert report["wrote"] == [] and report["deleted"] == [], report
    assert checkout_digest() == checkout_before, "a tracked file of the checkout changed"
    assert graded["solution"][1].score == corpus.MAX_SCORE and graded["partial"][1].score == 6.0


@pytest.mark.nbgrader
@needs_bwrap
def test_no_process_outlives_its_grading(graded):
    assert attack_report(graded["attack_daemon"][1])["children"] == 40
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            assert b"DAEMON-MARKER-7f3a" not in cmdline, entry.name


@pytest.mark.nbgrader
@pytest.mark.skipif(__import__("autograder.cgroups").cgroups.problem() is not None, reason="no pids cgroup here")
def test_a_fork_bomb_is_stopped_at_the_kernels_process_limit(graded):
    """The sleeping children are killed with the kernel's cgroup (tests/test_cgroups.py); the submission
    is graded as usual, with a note that the limit was reached."""
    report = attack_report(graded["attack_fork_bomb"][1])
    assert report["refused"] > 0 and report["started"] < LIMITS.processes, report


@pytest.mark.nbgrader
def test_feedback_never_shows_the_hidden_source(graded, tmp_path):
    import html

    from autograder import feedback

    _, outcome = graded["attack_hidden_print"]
    page = feedback.write_feedback(outcome, tmp_path / "page.html").read_text()
    assert feedback.HIDDEN_OUTPUT in html.unescape(page)
    leaked = [line for line in feedback.hidden_lines() if html.escape(line) in page]
    assert leaked == []


@pytest.mark.nbgrader
def test_replaced_stdout_does_not_stall(graded):
    _, outcome = graded["attack_stdout_none"]
    assert outcome.seconds < LIMITS.notebook_seconds / 2


NUMERIC_PROBE = """
import hashlib, numpy as np
rng = np.random.default_rng(7)
a, m = rng.normal(size=(60, 40)), rng.normal(size=(6, 6))
print(*(hashlib.sha256(x.tobytes()).hexdigest() for x in (a @ a.T, np.linalg.qr(m)[0], np.tanh(a), a.sum(axis=0))))
"""


@needs_bwrap
def test_the_kernel_computes_what_the_grader_computes_bit_for_bit(tmp_path, monkeypatch):
    """A record's inputs are compared by their bytes: the sandbox must keep every setting of the numeric
    libraries. OPENBLAS_CORETYPE (this machine's environment sets it) picks OpenBLAS' kernels; a sandbox that
    dropped it multiplied with other code on a CPU with AVX-512, and unit 02's solution lost 3 points."""
    import platform
    import subprocess
    import sys

    if platform.machine() in ("x86_64", "AMD64"):
        monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    box, io_dir, packages = (tmp_path / name for name in ("box", "io", "packages"))
    for folder in (box, io_dir, packages):
        folder.mkdir()
    outside = subprocess.run([sys.executable, "-c", NUMERIC_PROBE], capture_output=True, text=True, check=True)
    inside = subprocess.run(sandbox.bwrap_argv(box, packages, io_dir) + [sys.executable, "-c", NUMERIC_PROBE],
                            capture_output=True, text=True, check=True)
    assert inside.stdout.split() == outside.stdout.split() and len(inside.stdout.split()) == 4
    argv = sandbox.bwrap_argv(box, packages, io_dir)
    for name in ("OPENBLAS_CORETYPE",) if "OPENBLAS_CORETYPE" in __import__("os").environ else ():
        assert argv[argv.index(name) - 1] == "--setenv"


def test_isolation_can_be_required(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_problem", lambda: "bubblewrap (bwrap) is not installed: ...")
    assert sandbox.use_isolation(sandbox.Limits()) is False
    assert sandbox.use_isolation(sandbox.Limits(isolation="off")) is False
    with pytest.raises(sandbox.IsolationUnavailable, match="required"):
        sandbox.use_isolation(sandbox.Limits(isolation="require"))


def test_staged_packages_hold_no_solution_and_are_read_only(tmp_path):
    staged = sandbox.stage_packages(corpus.UNIT, tmp_path / "packages")
    names = {p.relative_to(staged).as_posix() for p in staged.rglob("*.py")}
    assert "autograder/hidden/rnn_by_hand.py" in names and "autograder/kernel.py" in names
    assert "course/checks/rnn_by_hand.py" in names and "course/datasets/files.py" in names
    assert not any(n.startswith(("autograder/mutants", "autograder/hidden/gated")) for n in names), names
    assert not {"autograder/sandbox.py", "autograder/classroom.py", "autograder/pipeline.py"} & names
    assert not any(p.stat().st_mode & 0o222 for p in staged.rglob("*"))
    compiled = {p.parent.parent.relative_to(staged).as_posix() + "/" + p.name.split(".")[0] + ".py"
                for p in staged.rglob("__pycache__/*.pyc")}
    assert names <= compiled, sorted(names - compiled)   # compiled once: the kernel may not write bytecode


def test_links_left_by_the_kernel_are_dropped(tmp_path):
    box = tmp_path / "box"
    (box / "records").mkdir(parents=True)
    (box / "records" / "ok.json").write_text("{}")
    (box / "records" / "evil.json").symlink_to("/etc/passwd")
    (box / ".journal.jsonl").symlink_to("/etc/hostname")
    sandbox.drop_links(box)
    assert sorted(p.name for p in box.rglob("*")) == ["ok.json", "records"]


def test_stripped_notebook_is_matched_back_or_needs_manual_grading():
    fixed, note = sandbox.reattach(corpus.stripped(corpus.answered()), corpus.release())
    assert sandbox.repair(fixed, corpus.release()).notes == [] and "8 of 8 answers by name" in note
    blank = corpus.stripped(corpus.release())
    for cell in blank.cells:
        cell.source += "\n# reformatted"
    with pytest.raises(sandbox.Rejection) as rejected:
        sandbox.reattach(blank, corpus.release())
    assert rejected.value.status == records.NEEDS_MANUAL_GRADING
