"""A student's Google Colab session, replayed on this machine.

Colab's runtime is stood in for by the Colab-pins environment (.venvs/colab:
Python 3.13 and course/constraints/colab.txt) seen through a fresh overlay
environment, where everything that environment holds counts as preinstalled
except this course, plus a stub `google.colab` module imported at start-up as
Colab does. There, as a student would:

* the exercise's setup cell, run as written, first fails with one short error
  when the package cannot be found, then installs the student package from a
  local wheel folder standing in for the package index; nothing preinstalled is
  upgraded or removed (`pip freeze` before and after);
* every unit's exercise, with the solution's answers filled in, runs from the
  top in a folder outside the checkout and passes all its visible checks;
* unit 06 downloads Tiny Shakespeare from a local HTTP server standing in for
  its public address (a URL opener in the stub's start-up code sends requests
  for that host there).
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder.mutate import fill_in_answers, solution_sources
from autograder.release import SETUP_ID
from course import datasets, syllabus

ROOT = Path(__file__).resolve().parents[1]
COLAB_VENV = ROOT / ".venvs" / "colab"
COURSE = syllabus.load()
UNITS = COURSE.ready_units

pytestmark = pytest.mark.colab

# Started by Python in the overlay (sitecustomize): what Colab has before any notebook code runs.
SITECUSTOMIZE = '''\
import os
import urllib.request

import google.colab  # noqa: F401  (Colab imports it at start-up; the setup cell looks for it)

_server = os.environ.get("COLAB_SIM_SERVER")
if _server:
    class _StandIn(urllib.request.HTTPSHandler):
        # https://HOST/PATH is served by the local stand-in as http://127.0.0.1:PORT/HOST/PATH.
        def https_open(self, req):
            stand_in = urllib.request.Request(f"{_server}/{req.host}{req.selector}", headers=dict(req.header_items()))
            stand_in.timeout = req.timeout
            return urllib.request.HTTPHandler().http_open(stand_in)

    urllib.request.install_opener(urllib.request.build_opener(_StandIn()))
'''


def _purelib(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _freeze(python: Path, env: dict) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                         env=env, check=True)
    pins = {}
    for line in out.stdout.splitlines():
        name, sep, version = line.partition("==")
        if not sep:
            name, _, version = line.partition(" @ ")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


class _Files(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """The overlay environment, its wheel folder, its kernel and the stand-in web server."""
    if not (COLAB_VENV / ".installed").exists():
        pytest.fail(f"{COLAB_VENV.relative_to(ROOT)} is missing: run `make install-colab` (Python 3.13)")
    base = tmp_path_factory.mktemp("colab")
    colab_python = COLAB_VENV / "bin" / "python"

    # Colab's preinstalled packages: the Colab-pins environment without this course and without Faker,
    # which Colab does not have (the course's own dependency brings it).
    preinstalled = base / "preinstalled"
    preinstalled.mkdir()
    for entry in _purelib(colab_python).iterdir():
        if (entry.name.lower().startswith(("rnn_course", "faker", "__editable__")) or entry.suffix == ".pth"):
            continue
        (preinstalled / entry.name).symlink_to(entry)
    runtime = base / "runtime"
    subprocess.run([str(colab_python), "-m", "venv", "--without-pip", str(runtime)], check=True)
    python = runtime / "bin" / "python"
    site = _purelib(python)
    (site / "colab_preinstalled.pth").write_text(f"{preinstalled}\n")
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab."""\n')
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)

    # The published package: the wheel `python -m build` would give, and the pinned Faker Colab lacks.
    wheels = base / "wheels"
    subprocess.run([str(colab_python), "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    faker = next(r for r in _project_dependencies() if r.lower().startswith("faker"))
    subprocess.run([str(colab_python), "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "-d", str(wheels), faker], check=True, capture_output=True)

    # The public address of the data, served from a verified local copy.
    url = datasets.get_entry("tinyshakespeare").url
    served = base / "web" / urlsplit(url).netloc / urlsplit(url).path.lstrip("/")
    served.parent.mkdir(parents=True)
    shutil.copy(datasets.fetch("tinyshakespeare", progress=False), served)
    handler = type("Files", (_Files,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(base / "web")))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    kernels = base / "jupyter" / "kernels" / "colab-sim"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python"}))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "NBGRADER", "COURSE_", "PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    # GIT_ALLOW_PROTOCOL: the setup cell's git fallback fails at once here, as it would for an address
    # that does not answer, instead of waiting on a network this machine does not have.
    env.update(GIT_ALLOW_PROTOCOL="file", PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels),
               PIP_DISABLE_PIP_VERSION_CHECK="1", COURSE_DATA_HOME=str(base / "cache"),
               COLAB_SIM_SERVER=f"http://127.0.0.1:{server.server_address[1]}",
               JUPYTER_PATH=str(base / "jupyter"), PATH=f"{runtime / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    content = base / "content"   # Colab's working folder; no checkout anywhere near
    content.mkdir()
    yield dict(python=python, env=env, wheels=wheels, content=content, requests=handler.requests, url=url)
    server.shutdown()


def _project_dependencies() -> list[str]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def _run(nb, colab, monkeypatch, timeout=600, **changes):
    env = dict(colab["env"], **changes)
    with monkeypatch.context() as m:
        for key in list(os.environ):
            if key not in env:
                m.delenv(key)
        for key, value in env.items():
            m.setenv(key, value)
        NotebookClient(nb, timeout=timeout, kernel_name="colab-sim",
                       resources={"metadata": {"path": str(colab["content"])}}).execute()
    return nb


def _outputs(nb, kind):
    return [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == kind]


def test_the_runtime_is_colab_s(colab):
    out = subprocess.run([str(colab["python"]), "-c",
                          "import sys, google.colab, keras, tensorflow, numpy, importlib.util as u;"
                          "print(sys.version_info[:2], keras.__version__, tensorflow.__version__, numpy.__version__,"
                          " u.find_spec('course'), u.find_spec('autograder'), u.find_spec('faker'))"],
                         capture_output=True, text=True, env=colab["env"], cwd=colab["content"], check=True)
    assert out.stdout.split() == ["(3,", "13)", "3.13.2", "2.20.0", "2.1.3", "None", "None", "None"], out.stdout


def test_setup_cell_fails_loudly_then_installs_without_upgrading_anything(colab, monkeypatch):
    unit = UNITS[0]
    exercise = nbformat.read(ROOT / "exercises" / unit.id / unit.filename, as_version=4)
    setup = next(c for c in exercise.cells if c.get("id") == SETUP_ID)

    # No package anywhere: one short error that names what was tried.
    empty = colab["content"].parent / "empty-index"
    empty.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup.source)])
    with pytest.raises(CellExecutionError):
        _run(nb, colab, monkeypatch, timeout=300, PIP_FIND_LINKS=str(empty))
    error, = _outputs(nb, "error")
    assert 3 <= len(error["traceback"]) <= 6, error["traceback"]
    shown = "\n".join(error["traceback"])
    assert "Could not install the course helpers" in shown and "Traceback" not in shown
    for spec in COURSE.pip_specs:
        assert repr(spec) in shown

    before = _freeze(colab["python"], colab["env"])
    assert "rnn-course" not in before and "faker" not in before and before["keras"] == "3.13.2"
    nb = _run(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup.source)]), colab, monkeypatch)
    printed = "".join(o.get("text", "") for o in _outputs(nb, "stream"))
    assert f"course helpers installed: {COURSE.package.pinned}" in printed
    after = _freeze(colab["python"], colab["env"])
    changed = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
    assert changed == {}, f"the setup cell changed preinstalled packages: {changed}"
    assert set(after) - set(before) == {"rnn-course", "faker"}
    assert after["rnn-course"] == COURSE.package.version


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.id)
def test_answered_exercise_passes_its_visible_checks_on_colab(unit, colab, monkeypatch):
    solution = nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)
    nb = nbformat.read(ROOT / "exercises" / unit.id / unit.filename, as_version=4)
    fill_in_answers(nb, solution_sources(solution))
    requests_before = len(colab["requests"])
    start = time.perf_counter()
    _run(nb, colab, monkeypatch)
    seconds = time.perf_counter() - start
    printed = "".join(o.get("text", "") for o in _outputs(nb, "stream") if o["name"] == "stdout")
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
             and not c.metadata["nbgrader"].get("solution")]
    assert printed.count("checks passed") == len(tests), printed[-3000:]
    assert "fast budget" in printed          # no GPU here: the budget cell's "auto" gives the fast budget
    stderr = [o["text"] for o in _outputs(nb, "stream") if o["name"] == "stderr"]
    assert stderr == [], stderr
    if unit.id == "06_char_shakespeare":     # the first to need the data: downloaded once, from the stand-in
        address = urlsplit(colab["url"])
        assert colab["requests"][requests_before:] == [f"/{address.netloc}{address.path}"]
    print(f"\n{unit.id}: {seconds:.0f} s on the Colab stand-in (fast budget, kernel start included)")
