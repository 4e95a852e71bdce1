"""The student's side: exercises run where the grader does not exist.

Every unit's answered exercise is graded through the real nbgrader in
tests/test_pipeline.py (in both environments); what that run cannot show is
that the notebook needs nothing from the instructor's side. Here: no exercise
names the grader anywhere, and one unit's answered exercise runs from start to
end, with its visible checks passing, in a kernel where `autograder` cannot be
imported and nbgrader is not executing it.
"""
import json
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.mutate import fill_in_answers, solution_sources
from course import syllabus

UNITS = syllabus.load().ready_units


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.id)
def test_exercise_code_never_names_the_grader(unit, root):
    nb = json.loads((root / "exercises" / unit.id / unit.filename).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    naming = [c.get("id") for c in code if "autograder" in "".join(c["source"])
              or "HIDDEN TESTS" in "".join(c["source"])]
    assert naming == [], f"cells of {unit.id} that need the instructor's side: {naming}"


@pytest.mark.nbgrader
@pytest.mark.parametrize("unit", [UNITS[0]], ids=lambda u: u.id)
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


def test_generate_refuses_placeholder_addresses(monkeypatch, capsys):
    # Writing exercises whose badge and setup cell point where nothing is published needs an explicit flag.
    import dataclasses

    from autograder import __main__ as cli
    from autograder import pipeline

    written = []
    monkeypatch.setattr(pipeline, "generate", lambda units, check=False: written.append(check) or [])
    placeholder = dataclasses.replace(syllabus.load(), placeholder=True)
    monkeypatch.setattr(syllabus, "load", lambda: placeholder)
    assert cli.main(["generate"]) == 2 and written == []
    err = capsys.readouterr().err
    assert "placeholder" in err and "--allow-placeholder" in err and placeholder.repository in err
    assert cli.main(["generate", "--allow-placeholder"]) == 0 and written == [False]
    assert cli.main(["generate", "--check"]) == 0 and written == [False, True]   # --check writes nothing
    published = dataclasses.replace(placeholder, placeholder=False)
    monkeypatch.setattr(syllabus, "load", lambda: published)
    assert cli.main(["generate"]) == 0 and written == [False, True, False]


@pytest.mark.nbgrader
def test_a_wrong_answer_shows_a_short_message_not_a_traceback(root, tmp_path, monkeypatch):
    # The first step of unit 01 answered with sigmoid instead of tanh, run in Jupyter's own kernel.
    unit = UNITS[0]
    nb = nbformat.read(root / "exercises" / unit.id / unit.filename, as_version=4)
    first_test = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade")
                      and not c.metadata["nbgrader"].get("solution"))
    nb.cells = nb.cells[:first_test + 1]
    step = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    assert step.metadata.nbgrader["grade_id"] == "rnn_step"
    step.source = ("def rnn_step(x_t, h_prev, W_x, W_h, b):\n"
                   "    return 1 / (1 + np.exp(-(x_t @ W_x + h_prev @ W_h + b)))\n")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("COURSE_BUDGET", "fast")
    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "CheckFailed"
    shown = errors[0]["traceback"]      # what Jupyter and Colab display for the error
    assert 1 <= len(shown) <= 3, shown
    text = "\n".join(shown)
    assert "rnn_step" in text and "sigmoid instead of tanh" in text
    for noise in ("Traceback", "During handling", "course/checks", "File \""):
        assert noise not in text, text


def test_solution_runs_under_plain_nbconvert_from_the_checkout(root, tmp_path):
    # Outside nbgrader, the kernel starts in solutions/<unit>/: its hidden-test cells still find
    # `autograder` (make install writes autograder/checkout_site.py's hook into the environment).
    import subprocess

    unit = UNITS[0]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NBGRADER_EXECUTION")}
    env["COURSE_BUDGET"] = "fast"
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "jupyter"), "nbconvert", "--to", "notebook",
                           "--execute", f"solutions/{unit.id}/{unit.filename}", "--output-dir", str(tmp_path)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    nb = nbformat.read(tmp_path / unit.filename, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "stream")
    assert "checks passed" in printed


def test_colab_constraints_pin_every_package_the_course_imports(root):
    # Third-party imports of the student package, each pinned to Colab's version (torch: only when a
    # student picks that Keras backend; Colab's Keras is used with TensorFlow or JAX here).
    import re

    text = (root / "course" / "constraints" / "colab.txt").read_text()
    pins = {line.split("==")[0].strip().lower().replace("_", "-"): line.split("==")[1].strip()
            for line in text.splitlines() if "==" in line and not line.startswith("#")}
    import ast

    imported = set()
    for path in [*(root / "course").rglob("*.py"), *(root / "datasets").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):   # import statements, not words in docstrings
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = {name.lower() for name in imported} - set(sys.stdlib_module_names) - {"course", "__future__"}
    distribution = {"faker": None, "torch": None}   # Colab has no Faker: the course's own dependency installs it
    missing = [n for n in sorted(third_party) if distribution.get(n, n) and distribution.get(n, n) not in pins]
    assert missing == [], f"imported by the course but not pinned to Colab's version: {missing}"
    assert pins["keras"] == "3.13.2" and pins["tensorflow"] == "2.20.0" and pins["numpy"] == "2.1.3"
    assert "googlecolab/backend-info" in text and re.search(r"20\d\d-\d\d-\d\d", text) and "Python 3.13" in text
