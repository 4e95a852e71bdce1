"""A student in JupyterLab, in a real browser (Debian's Chromium, driven by Playwright).

JupyterLab serves a copy of unit 01's exercise on 127.0.0.1. In headless
Chromium the test runs all cells, reads the first check's output as the page
shows it (the one-line message, no traceback), types one answer into its cell,
runs it and its check and sees ✓, saves with Ctrl+S, and checks that the saved
file keeps every cell's nbgrader metadata and the checksums of the cells the
student may not change.

Skipped only where no Chromium is installed (.ci/run installs Debian's
`chromium`); Playwright never downloads a browser here.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

from autograder.mutate import solution_sources
from course import syllabus

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
UNIT = syllabus.load().ready_units[0]
STEP = "rnn_step"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path, root):
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(root / "exercises" / UNIT.id / UNIT.filename, work / UNIT.filename)
    # Every cell in the page (JupyterLab 4 otherwise renders only the cells in view).
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NBGRADER_EXECUTION")}
    env.update(COURSE_BUDGET="fast", JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), HOME=str(tmp_path))
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.root_dir={work}", "--IdentityProvider.token=", "--ServerApp.password=",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2).read()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield dict(url=url, notebook=work / UNIT.filename, log=tmp_path / "jupyterlab.log")
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


# In the page: the notebook's cells as JupyterLab holds them (window.jupyterapp: expose_app_in_browser).
CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    out.push({id: c.id, type: c.type, count: c.type === 'code' ? c.executionCount : null,
              outputs: c.type === 'code' ? c.outputs.toJSON() : []});
  }
  return {cells: out, kernel: panel.sessionContext.session?.kernel?.status ?? 'none', dirty: panel.context.model.dirty};
}"""


def _wait(page, predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = page.evaluate(CELLS_JS)
        if predicate(state):
            return state
        page.wait_for_timeout(500)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def test_a_student_in_jupyterlab(lab, root):
    from playwright.sync_api import sync_playwright

    original = nbformat.read(lab["notebook"], as_version=4)
    ids = [c.id for c in original.cells]
    step_index, check_index = ids.index(STEP), ids.index(f"test_{STEP}")
    answer = solution_sources(nbformat.read(root / "solutions" / UNIT.id / UNIT.filename, as_version=4))[STEP]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab['url']}/lab/tree/{UNIT.filename}", timeout=120_000)
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.content", timeout=120_000)
            _wait(page, lambda s: s["kernel"] == "idle", 120, "the kernel to start")

            # Run all: the blank exercise stops at the first check, which says what is missing.
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            state = _wait(page, lambda s: s["kernel"] == "idle" and s["cells"][check_index]["outputs"], 300,
                          "the first check's output")
            errors = [o for o in state["cells"][check_index]["outputs"] if o["output_type"] == "error"]
            assert len(errors) == 1 and errors[0]["ename"] == "CheckFailed", state["cells"][check_index]
            shown = page.locator(".jp-Notebook .jp-Cell").nth(check_index).locator(".jp-OutputArea-output").inner_text()
            lines = [line for line in shown.splitlines() if line.strip()]
            assert 1 <= len(lines) <= 3 and f"{STEP}:" in shown and "not implemented yet" in shown, shown
            assert "Traceback" not in shown and "During handling" not in shown, shown

            # The student writes the answer into the cell, then runs it and its check (Shift+Enter twice).
            editor = page.locator(".jp-Notebook .jp-Cell").nth(step_index).locator(".cm-content")
            editor.click()
            page.keyboard.press("Control+A")
            page.keyboard.insert_text(answer)
            page.keyboard.press("Shift+Enter")
            page.keyboard.press("Shift+Enter")
            _wait(page, lambda s: s["kernel"] == "idle" and any(
                "✓" in "".join(o.get("text", "")) for o in s["cells"][check_index]["outputs"]), 120,
                  "✓ under the check")
            assert "✓" in page.locator(".jp-Notebook .jp-Cell").nth(check_index).locator(".jp-OutputArea-output").inner_text()

            page.keyboard.press("Control+S")
            _wait(page, lambda s: not s["dirty"], 60, "the notebook to be saved")
        finally:
            browser.close()

    saved = nbformat.read(lab["notebook"], as_version=4)
    from nbgrader.utils import compute_checksum

    assert [c.id for c in saved.cells] == ids
    assert saved.cells[step_index].source.strip() == answer.strip()
    for before, after in zip(original.cells, saved.cells):
        assert after.metadata.get("nbgrader") == before.metadata.get("nbgrader"), before.id
        info = before.metadata.get("nbgrader", {})
        if info.get("locked") or (info.get("grade") and not info.get("solution")):
            assert compute_checksum(after) == info["checksum"], f"{before.id} changed in the browser"
        assert after.metadata.get("editable", True) == before.metadata.get("editable", True), before.id
    json.dumps(saved)  # the saved file is a valid notebook
