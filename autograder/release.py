"""The nbgrader preprocessor that turns a released notebook into the student's copy.

Registered last in GenerateAssignment.preprocessors (see autograder/settings.py),
so plain ``nbgrader generate_assignment`` and ``python -m autograder generate``
write the same bytes: a header that says the file is generated and from what,
an "Open in Colab" badge, and a setup cell that installs the student package on
Colab and does nothing anywhere else.
"""
from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

from course import syllabus

HEADER_ID = "course-generated-header"
SETUP_ID = "course-colab-setup"
GENERATOR = "python -m autograder generate"

SETUP_SOURCE = '''\
# Setup. On Google Colab this installs the course helpers (about a minute, once per session).
# Anywhere else it does nothing: there, install the course as its README explains.
import sys

if "google.colab" in sys.modules:
    get_ipython().run_line_magic("pip", "install --quiet \\"{spec}\\"")'''


def header_cells(unit_id: str, notebook: str):
    course = syllabus.load()
    unit = course.unit(unit_id)
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({course.colab_url(unit)})")
    header = new_markdown_cell(
        f"{badge}\n\n"
        f"*{course.title}* · unit `{unit.id}`\n\n"
        f"<small>Student notebook generated from `solutions/{unit.id}/{notebook}.ipynb` by "
        f"`{GENERATOR}` (nbgrader generate_assignment). Maintainers: edit the source and "
        f"regenerate; never edit this file by hand.</small>"
    )
    header.id = HEADER_ID
    setup = new_code_cell(SETUP_SOURCE.format(spec=course.pip_spec))
    setup.id = SETUP_ID
    for cell in (header, setup):
        cell.metadata = {"deletable": False, "editable": False}
    return [header, setup]


class StudentHeader(NbGraderPreprocessor):
    """Put the generated header and the Colab setup cell at the top of the notebook."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        nb.cells = [c for c in nb.cells if c.get("id") not in (HEADER_ID, SETUP_ID)]
        nb.cells[:0] = header_cells(info["assignment"], info["notebook"])
        return nb, resources
