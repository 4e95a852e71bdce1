"""Project files that must agree with each other."""
import json
import re
import shlex
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


def test_exercise_header_badge_and_colab_setup(root):
    from autograder.release import HEADER_ID, SETUP_ID
    from course import syllabus

    course = syllabus.load()
    for unit in course.ready_units:
        nb = json.loads((root / "exercises" / unit.id / unit.filename).read_text())
        header, setup = nb["cells"][:2]
        assert header["id"] == HEADER_ID and setup["id"] == SETUP_ID
        text = "".join(header["source"])
        assert course.colab_url(unit) in text and f"solutions/{unit.id}/{unit.filename}" in text
        assert "generated" in text
        # The setup cell installs only on Colab: elsewhere running it must do nothing.
        source = "".join(setup["source"])
        assert "google.colab" in source and course.pip_spec in source
        exec(compile(source, "setup", "exec"), {})  # would fail on get_ipython() if it ran
        # On Colab (google.colab imported) it runs `%pip install <the student package>`.
        calls = []

        class FakeIPython:
            def run_line_magic(self, magic, line):
                calls.append((magic, line))

        saved = sys.modules.get("google.colab")
        sys.modules["google.colab"] = types.ModuleType("google.colab")
        try:
            exec(compile(source, "setup", "exec"), {"get_ipython": FakeIPython})
        finally:
            if saved is None:
                del sys.modules["google.colab"]
            else:
                sys.modules["google.colab"] = saved
        assert len(calls) == 1 and calls[0][0] == "pip"
        assert shlex.split(calls[0][1]) == ["install", "--quiet", course.pip_spec]


def test_cell_ids_are_stable_from_source_to_exercise(root):
    from course import syllabus

    for unit in syllabus.load().ready_units:
        src = json.loads((root / "solutions" / unit.id / unit.filename).read_text())
        out = json.loads((root / "exercises" / unit.id / unit.filename).read_text())
        assert [c["id"] for c in out["cells"]][2:] == [c["id"] for c in src["cells"]]


def test_the_xdist_order_names_real_scopes(root):
    # tests/conftest.py puts these first; a renamed module or unit would silently fall to the end.
    from conftest import HEAVY_FIRST
    from course import syllabus

    ready = {u.id for u in syllabus.load().ready_units}
    for scope in HEAVY_FIRST:
        path, _, cls = scope.partition("::")
        assert (root / path).is_file(), scope
        assert not cls or cls.removeprefix("TestUnit_") in ready, scope
