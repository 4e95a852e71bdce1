"""What students install holds helpers only: no solution, no hidden test, no grader."""
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

GRADER_IMPORT = re.compile(r"(from|import)\s+autograder")
# nbgrader's region markers as code (at the start of a line), not prose that names them.
MARKER = re.compile(r"^\s*###? (BEGIN|END) (HIDDEN TESTS|SOLUTION)", re.M)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, root):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(root)], check=True)
    (path,) = out.glob("rnn_course-*.whl")
    return path


def solution_lines(root):
    """Every non-trivial line that the solutions hide from students."""
    lines = set()
    for nb_path in (root / "solutions").rglob("*.ipynb"):
        for cell in json.loads(nb_path.read_text())["cells"]:
            for block in SOLUTION.findall("".join(cell["source"])):
                lines |= {ln.strip() for ln in block.splitlines() if len(ln.strip()) >= 12}
    return lines


def test_wheel_holds_only_the_student_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"course", "rnn_course-0.1.0.dist-info"}, top
    assert "course/datasets/registry.toml" in names
    assert "course/course.toml" in names
    assert not [n for n in names if "autograder" in n or n.endswith(".ipynb") or "mutant" in n]


def test_wheel_holds_no_solution_and_no_hidden_test(wheel, root):
    hidden = solution_lines(root)
    assert len(hidden) >= 8, "expected to find the solutions' lines"
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            text = z.read(name).decode("utf-8", errors="replace")
            assert not MARKER.search(text), f"{name} holds an nbgrader hidden-test or solution region"
            assert not GRADER_IMPORT.search(text), f"{name} imports the grader"
            leaked = [ln for ln in hidden if ln in text]
            assert not leaked, f"{name} contains solution code: {leaked[:3]}"


def test_exercises_hold_no_solution_and_no_hidden_test(root):
    hidden = solution_lines(root)
    for nb_path in (root / "exercises").rglob("*.ipynb"):
        text = nb_path.read_text()
        source = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        assert not MARKER.search(source) and not GRADER_IMPORT.search(source), nb_path
        assert not [ln for ln in hidden if json.dumps(ln)[1:-1] in text], nb_path


def test_installed_wheel_works_away_from_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True)
    code = ("import course, course.datasets, course.checks.rnn_by_hand as c, course.budget as b;"
            "print(course.__file__); print(course.datasets.get_entry('tinyshakespeare').sha256[:8]);"
            "print(b.pick('fast').name)")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0].startswith(str(target)), out
    assert out[1:] == ["86c4e6aa", "fast"]
