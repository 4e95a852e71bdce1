"""The nbgrader preprocessor that turns a released notebook into the student's copy.

Registered last in GenerateAssignment.preprocessors (see autograder/settings.py),
so plain ``nbgrader generate_assignment`` and ``python -m autograder generate``
write the same bytes: a header that says the file is generated and from what,
an "Open in Colab" badge, a setup cell that installs the student package on
Colab (the pinned version from the index, else the git address of
course/course.toml) and does nothing anywhere else, and an editable cell where
the student chooses the budget.
"""
from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

from course import syllabus

HEADER_ID = "course-generated-header"
SETUP_ID = "course-colab-setup"
BUDGET_ID = "course-budget"
GENERATOR = "python -m autograder generate"

# On Colab: the pinned student package by name, else from git; a failure raises one short error that
# says what was tried and what to do (``%pip`` would print pip's error and carry on).
SETUP_SOURCE = '''\
# Setup. On Google Colab this installs the course helpers (a minute, once per session).
# Anywhere else it does nothing: there, install the course as its README explains.
import sys

if "google.colab" in sys.modules:
    import subprocess

    class SetupFailed(RuntimeError):
        def _render_traceback_(self):
            return str(self).splitlines()

    tried = []
    for spec in {specs!r}:
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",{index} spec],
                             capture_output=True, text=True)
        if pip.returncode == 0:
            print("course helpers installed:", spec)
            break
        tried.append(f"pip install {{spec!r}}: " + (pip.stderr.strip().splitlines() or ["failed"])[-1])
    else:
        raise SetupFailed("Could not install the course helpers. Tried:\\n  " + "\\n  ".join(tried) + "\\n"
                          "Check the runtime's internet access, then Runtime > Restart session and run this "
                          "cell again. If it still fails, send this message to your instructor.")'''

BUDGET_SOURCE = '''\
# Your budget (this cell is yours to edit): "auto" runs the full experiments when a GPU is found
# (on Colab: Runtime > Change runtime type > T4 GPU) and the fast ones otherwise; "fast" takes
# a minute or so per training cell on a laptop CPU; "full" gives the real results.
# Change it, then Run all. Grading always uses the fast budget.
from course import budget

budget.choose("auto")'''


def setup_source(course) -> str:
    index = f" \"--index-url\", {course.package.index_url!r}," if course.package.index_url else ""
    return SETUP_SOURCE.format(specs=course.pip_specs, index=index)


def header_cells(unit_id: str, notebook: str):
    course = syllabus.load()
    unit = course.unit(unit_id)
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({course.colab_url(unit)})")
    header = new_markdown_cell(
        f"{badge}\n\n"
        f"*{course.title}* · unit `{unit.id}`\n\n"
        f"Run the cells from the top. Write your answers where a cell says `raise NotImplementedError()`, "
        f"and run the check cell below each one. To keep a copy on Colab: File > Save a copy in Drive.\n\n"
        f"<small>Generated from `solutions/{unit.id}/{notebook}.ipynb` by `{GENERATOR}` "
        f"(nbgrader generate_assignment); course maintainers change that source, not this copy.</small>"
    )
    header.id = HEADER_ID
    setup = new_code_cell(setup_source(course))
    setup.id = SETUP_ID
    for cell in (header, setup):
        cell.metadata = {"deletable": False, "editable": False}
    choice = new_code_cell(BUDGET_SOURCE)
    choice.id = BUDGET_ID
    choice.metadata = {"deletable": False, "editable": True}
    return [header, setup, choice]


class StudentHeader(NbGraderPreprocessor):
    """Put the generated header and the Colab setup cell at the top of the notebook."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        nb.cells = [c for c in nb.cells if c.get("id") not in (HEADER_ID, SETUP_ID, BUDGET_ID)]
        nb.cells[:0] = header_cells(info["assignment"], info["notebook"])
        return nb, resources
