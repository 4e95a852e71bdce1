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
            "print(b.pick('fast').name);"
            # A visible check reads its expected values from the installed package.
            "import numpy as np;"
            "c.check_softmax(lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert out[0].startswith(str(target)), out
    assert out[1:3] == ["86c4e6aa", "fast"]
    assert out[3].startswith("✓ softmax"), out


# --- no function of the student package returns a graded step's answer ----------------------------

def _graded_inputs():
    """(unit, step, args) for the by-hand steps of units 01-03, on inputs their checks use."""
    import numpy as np

    from course.checks import bptt_and_gradients as c02
    from course.checks import gated_cells as c03
    from course.checks import rnn_by_hand as c01

    w = c01.weights(c01.Shapes(3, 5, 4, 6, vocab=7, seed=5))
    x, h = w["X"][:, 0], w["h0"]
    H = np.tanh(x @ w["W_x"] + h @ w["W_h"] + w["b"])[:, None].repeat(5, axis=1)
    z = np.random.default_rng(3).normal(scale=3, size=(3, 5, 7))
    u01 = [("rnn_step", (x, h, w["W_x"], w["W_h"], w["b"])), ("rnn_forward", (w["X"], h, w["W_x"], w["W_h"], w["b"])),
           ("softmax", (z,)), ("next_token_probs", (H, w["W_y"], w["b_y"])),
           ("teacher_forcing_pairs", (w["tokens"],)), ("sequence_cross_entropy", (z, w["tokens"][:, 1:])),
           ("rnn_lm_param_count", (65, 128, 32))]
    p = c02.problem(c02.Shapes(3, 5, 4, 6, seed=7))
    H2 = c02._states(p.X, p.h0, p.W_x, p.W_h, p.b)
    grads = c02.clip_grads(c02.CLIP_VISIBLE[0])
    u02 = [("rnn_step_backward", (p.dH[:, 0], p.X[:, 0], p.h0, H2[:, 0], p.W_x, p.W_h)),
           ("rnn_backward", (p.dH, p.X, p.h0, H2, p.W_x, p.W_h)), ("step_jacobian", (H2[0, 0], p.W_h)),
           ("dh0_norms", (H2[0], p.W_h, p.dH[0, -1])), ("clip_by_global_norm", (grads, 1.0)),
           ("softmax_cross_entropy_grad", (z, w["tokens"][:, 1:])),
           ("truncated_bptt_grads", (p.dH, p.X, p.h0, p.W_x, p.W_h, p.b, 2))]
    L = c03.lstm_weights(c03.Shapes(3, 5, 4, 6, seed=9))
    G = c03.gru_weights(c03.Shapes(3, 5, 4, 6, seed=9))
    lstm = (L["kernel"], L["recurrent_kernel"], L["bias"])
    gru = (G["kernel"], G["recurrent_kernel"], G["bias"])
    u03 = [("lstm_step", (L["X"][:, 0], L["h0"], L["c0"], *lstm)), ("lstm_forward", (L["X"], L["h0"], L["c0"], *lstm)),
           ("keras_lstm_initial_bias", (6,)), ("cell_state_jacobian_diag", (L["X"][:, 0], L["h0"], L["c0"], *lstm)),
           ("gru_step", (G["X"][:, 0], G["h0"], *gru)), ("gru_forward", (G["X"], G["h0"], *gru)),
           ("lstm_param_count", (65, 128)), ("gru_param_count", (65, 128))]
    # The backward steps read the cache of the solution's own forward pass (its format is the answer's choice).
    from autograder.expected import solution_namespace
    sol03 = solution_namespace("03_gated_cells")
    dH = np.random.default_rng(4).normal(size=L["X"].shape[:2] + (6,))
    step_cache = sol03["lstm_step_forward"](L["X"][:, 0], L["h0"], L["c0"], *lstm)[2]
    sequence_cache = sol03["lstm_forward_with_cache"](L["X"], L["h0"], L["c0"], *lstm)[3]
    u03 += [("lstm_step_backward", (dH[:, 0], dH[:, 1], step_cache)), ("lstm_backward", (dH, sequence_cache))]
    return {"01_rnn_by_hand": u01, "02_bptt_and_gradients": u02, "03_gated_cells": u03}


def _arrays_in(value, depth=0):
    """Every numeric array inside a result (tuples, lists and dicts opened up to a few levels)."""
    import numpy as np

    if depth > 4:
        return []
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays_in(v, depth + 1)]
    if isinstance(value, (list, tuple)):
        inner = [a for v in value for a in _arrays_in(v, depth + 1)]
        try:
            whole = np.asarray(value, dtype=np.float64)
            return inner + [whole]
        except (TypeError, ValueError):
            return inner
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return []
    return [array] if array.size else []


def _public_functions():
    import importlib
    import inspect
    import pkgutil

    import course

    names = ["course"] + [m.name for m in pkgutil.walk_packages(course.__path__, "course.")]
    for name in names:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if not attr.startswith("_") and inspect.isfunction(value) and value.__module__ == name:
                yield f"{name}.{attr}", value


def _copied(args):
    import numpy as np

    return [np.copy(a) if isinstance(a, np.ndarray) else (list(a) if isinstance(a, list) else a) for a in args]


def _same_array(got, want) -> bool:
    import numpy as np

    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-6, atol=1e-9))


def functions_returning_answers(unit_id, steps, *, answer_parts=None, result_parts=None, same=_same_array):
    """What any public function of the student package returns that equals a step's answer.

    Each public function is called with each step's inputs (``steps``: (step, args) pairs); the parts of
    what it returns (``result_parts``) are compared with the parts of the solution's answer (``answer_parts``).
    Returns one line per function that gives an answer away. Shared by the tests of units 01-03 (here)
    and 04-07 (tests/test_package_answers_units_04_07.py).
    """
    import inspect
    import warnings

    import matplotlib

    from autograder.expected import solution_namespace

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    answer_parts = answer_parts or _arrays_in
    result_parts = result_parts or _arrays_in
    functions = list(_public_functions())
    solution = solution_namespace(unit_id)
    found = []
    for step, args in steps:
        answers = answer_parts(solution[step](*_copied(args)))
        assert answers, f"{unit_id}/{step}: the solution returned nothing to compare"
        for name, fn in functions:
            try:
                inspect.signature(fn).bind(*args)
            except TypeError:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = fn(*_copied(args))
            except Exception:  # noqa: BLE001 - a function that cannot take these inputs returns no answer
                continue
            finally:
                plt.close("all")
            if any(same(got, want) for got in result_parts(result) for want in answers):
                found.append(f"{name}{inspect.signature(fn)} returns {unit_id}/{step}'s answer")
    return found


def test_no_public_function_of_the_student_package_returns_a_graded_answer(monkeypatch):
    """Call every public function of the student package with each by-hand step's inputs: none may return
    that step's answer (the solution's), whole or as a part of what it returns."""
    monkeypatch.setenv("COURSE_DATA_DIRS", "/nonexistent")  # no download from any dataset helper
    assert len(list(_public_functions())) > 50
    found = [line for unit_id, steps in _graded_inputs().items()
             for line in functions_returning_answers(unit_id, steps)]
    assert not found, "\n".join(found)
