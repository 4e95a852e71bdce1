"""Project files that must agree with each other."""
import json
import re
import sys
import types
import tomllib

import yaml


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[@]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_pyproject_dependencies(root):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r) for r in extra}
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda, pip = set(), set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip |= {_name(r) for r in dep["pip"] if not r.startswith("-")}
        else:
            conda.add(_name(dep))
    named = (conda | pip) - {"python", "pip"}
    assert named == wanted, f"only in environment.yml: {named - wanted}; only in pyproject: {wanted - named}"


def test_committed_notebooks_have_no_outputs(root):
    for path in [*(root / "solutions").rglob("*.ipynb"), *(root / "exercises").rglob("*.ipynb")]:
        for cell in json.loads(path.read_text())["cells"]:
            assert "id" in cell, f"{path}: a cell without a stable id"
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{path}: {cell['id']}"


def test_every_ready_unit_has_source_and_exercise(root):
    from course import syllabus

    course = syllabus.load()
    assert [u.id for u in course.units] == [
        "01_rnn_by_hand", "02_bptt_and_gradients", "03_gated_cells", "04_keras_recurrent_layers",
        "05_seq2seq_attention", "06_char_shakespeare", "07_rnn_vs_transformer"]
    for unit in course.ready_units:
        assert (root / "solutions" / unit.id / unit.filename).is_file()
        assert (root / "exercises" / unit.id / unit.filename).is_file()


def _run_setup_on_fake_colab(source, returncodes):
    """Run the setup cell with google.colab imported and pip answering with `returncodes`; the pip calls."""
    import subprocess

    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        code = returncodes[len(calls) - 1]
        return subprocess.CompletedProcess(cmd, code, "", "" if code == 0 else f"ERROR: no luck with {cmd[-1]}")

    saved, saved_run = sys.modules.get("google.colab"), subprocess.run
    sys.modules["google.colab"] = types.ModuleType("google.colab")
    subprocess.run = fake_run
    try:
        exec(compile(source, "setup", "exec"), {})
    finally:
        subprocess.run = saved_run
        if saved is None:
            del sys.modules["google.colab"]
        else:
            sys.modules["google.colab"] = saved
    return calls


def test_exercise_header_badge_colab_setup_and_budget_cell(root):
    from autograder.release import BUDGET_ID, HEADER_ID, SETUP_ID
    from course import syllabus

    course = syllabus.load()
    for unit in course.ready_units:
        nb = json.loads((root / "exercises" / unit.id / unit.filename).read_text())
        header, setup, budget_cell = nb["cells"][:3]
        assert (header["id"], setup["id"], budget_cell["id"]) == (HEADER_ID, SETUP_ID, BUDGET_ID)
        text = "".join(header["source"])
        assert course.colab_url(unit) in text and f"solutions/{unit.id}/{unit.filename}" in text
        assert "generated" in text.lower() and "never edit" not in text
        # The student edits the budget cell; the setup cell is read-only.
        assert budget_cell["metadata"]["editable"] is True and setup["metadata"]["editable"] is False
        assert 'budget.choose("auto")' in "".join(budget_cell["source"])
        # The setup cell installs only on Colab: elsewhere running it must do nothing.
        source = "".join(setup["source"])
        assert "google.colab" in source and all(spec in source for spec in course.pip_specs)
        exec(compile(source, "setup", "exec"), {})
        # On Colab: the pinned version by name; the git address only if that fails.
        calls = _run_setup_on_fake_colab(source, [0])
        assert [c[-1] for c in calls] == [course.package.pinned]
        assert calls[0][1:5] == ["-m", "pip", "install", "--quiet"]
        calls = _run_setup_on_fake_colab(source, [1, 0])
        assert [c[-1] for c in calls] == list(course.pip_specs)


def test_a_failed_colab_install_raises_one_short_error(root):
    from course import syllabus

    course = syllabus.load()
    unit = course.ready_units[0]
    nb = json.loads((root / "exercises" / unit.id / unit.filename).read_text())
    source = "".join(nb["cells"][1]["source"])
    try:
        _run_setup_on_fake_colab(source, [1, 1])
    except RuntimeError as err:
        shown = err._render_traceback_()   # what Jupyter and Colab show instead of a traceback
    else:
        raise AssertionError("the setup cell carried on after pip failed")
    message = "\n".join(shown)
    assert len(shown) <= 6 and "Could not install the course helpers" in message
    for spec in course.pip_specs:
        assert f"pip install {spec!r}: ERROR: no luck with {spec}" in message
    assert "Restart session" in message


def test_course_toml_names_the_published_package(root):
    from course import syllabus

    course = syllabus.load()
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert course.package.name == project["name"] and course.package.version == project["version"]
    assert course.package.git.startswith("git+")


def test_cell_ids_are_stable_from_source_to_exercise(root):
    from course import syllabus

    for unit in syllabus.load().ready_units:
        src = json.loads((root / "solutions" / unit.id / unit.filename).read_text())
        out = json.loads((root / "exercises" / unit.id / unit.filename).read_text())
        assert [c["id"] for c in out["cells"]][3:] == [c["id"] for c in src["cells"]]


def test_the_xdist_order_names_real_scopes(root):
    # tests/conftest.py puts these first; a renamed module or unit would silently fall to the end.
    from conftest import HEAVY_FIRST
    from course import syllabus

    ready = {u.id for u in syllabus.load().ready_units}
    for scope in HEAVY_FIRST:
        path, _, cls = scope.partition("::")
        assert (root / path).is_file(), scope
        assert not cls or cls.removeprefix("TestUnit_").removeprefix("TestJudge_") in ready, scope
