"""Per-student HTML feedback that never shows hidden tests, and Outcomes read from graded notebooks.

``nbgrader generate_feedback`` renders the whole autograded notebook: every
test cell's source, ``### BEGIN HIDDEN TESTS`` region included (nbgrader puts
the instructor's version of each test cell back before grading), and every
traceback, whose frames quote the hidden test module line by line. Here the
page is built from scratch instead: the score, each graded step with its
points, and for a failed step the failure message, what the test cell printed
and the visible part of its source (nbgrader's own ClearHiddenTests removes
the hidden region, as for the release). Tracebacks are never shown. As a last
guard every shown line that names the hidden region or the hidden module is
replaced by a placeholder, and an output that holds any line of the hidden
tests' source (however it was printed: a student function that reads the
hidden module and prints it) is not shown at all. Everything is escaped; the
page loads nothing.
"""
from __future__ import annotations

import copy
import functools
import html
import json
import re
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import determine_grade, is_grade, is_solution

from course import syllabus

from . import ROOT
from .mutate import test_cells_by_step
from .records import GRADED, Outcome, StepResult, written_answers

HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "autograder.hidden", "autograder/hidden")
REDACTED = "[hidden test line not shown]"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_SHOWN_CHARS = 4000   # per output: enough for a message, not a flood
HIDDEN_OUTPUT = "[output not shown: it quotes the grader's own test code]"
MIN_HIDDEN_LINE = 12     # shorter lines ("return x", "else:") say nothing about the hidden tests


@functools.cache
@functools.lru_cache(maxsize=1)
def hidden_lines() -> frozenset[str]:
    """Lines of the hidden tests' source (autograder/hidden/, autograder/reference/) that appear
    nowhere students can see them (the course package, the released notebooks), stripped."""
    def lines(paths):
        found = set()
        for path in paths:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if path.suffix == ".ipynb":
                try:
                    text = "\n".join("".join(c.get("source", "")) for c in json.loads(text).get("cells", []))
                except ValueError:
                    continue
            found |= {line.strip() for line in text.splitlines() if len(line.strip()) >= MIN_HIDDEN_LINE}
        return found

    hidden = lines([*(ROOT / "autograder" / "hidden").rglob("*.py"), *(ROOT / "autograder" / "reference").rglob("*.py")])
    public = lines([*(ROOT / "course").rglob("*.py"), *(ROOT / "exercises").rglob("*.ipynb")])
    # a hidden line that is part of a public one ("raise NotImplementedError" in "raise NotImplementedError()")
    # tells nothing about the hidden tests, and would hide the messages that quote it
    seen = "\n".join(sorted(public))
    return frozenset(h for h in hidden - public if h not in seen)


def shows_hidden_source(text: str) -> bool:
    """Whether any line of `text` holds a line of the hidden tests' source."""
    hidden = hidden_lines()
    return any(h in line for line in str(text).splitlines() if len(line.strip()) >= MIN_HIDDEN_LINE
               for h in hidden)


# -- reading an autograded notebook ---------------------------------------------------------------

def outcome_from_autograded(nb_path: Path, student_id: str, unit_id: str) -> Outcome:
    """The Outcome nbgrader's autograde gives this notebook, step by step.

    Steps and their points come from the unit's release notebook
    (exercises/<unit>/), so a test cell missing from the graded notebook
    scores 0 instead of shrinking the maximum; each present test cell is
    scored with nbgrader's own determine_grade, as nbgrader's SaveAutoGrades
    does when it writes the gradebook.
    """
    unit = syllabus.load().unit(unit_id)
    release = nbformat.read(ROOT / "exercises" / unit.id / unit.filename, as_version=4)
    graded = nbformat.read(Path(nb_path), as_version=4)
    by_id = _test_cells_by_id(graded)
    steps = []
    for step, cells in test_cells_by_step(release).items():
        if not cells:
            continue
        max_points = sum(float(c.metadata.nbgrader["points"]) for c in cells)
        points, message = 0.0, ""
        for cell in cells:
            found = by_id.get(cell.metadata.nbgrader["grade_id"])
            earned = (determine_grade(found)[0] or 0.0) if found is not None else 0.0
            points += earned
            if not message and earned < float(cell.metadata.nbgrader["points"]):
                message = failure_message(found) if found is not None else \
                    f"test cell {cell.metadata.nbgrader['grade_id']} is missing from the graded notebook"
        steps.append(StepResult(step, points, max_points, message))
    return Outcome(student_id, unit.id, GRADED, sum(s.points for s in steps), sum(s.max_points for s in steps),
                   steps=steps, autograded=Path(nb_path), original_name=unit.filename,
                   written=written_answers(graded, release))


def _test_cells_by_id(nb) -> dict:
    """Graded test cells by grade_id; the first wins (nbgrader deduplicates ids the same way)."""
    cells = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            cells.setdefault(cell.metadata.nbgrader["grade_id"], cell)
    return cells


def failure_message(cell) -> str:
    """First line of why a test cell lost points: the check's message, the exception, or stderr."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            value = _clean(output.get("evalue", "")).strip()
            first = value.splitlines()[0] if value else ""
            if output.get("ename") == "CheckFailed" and first:
                return first
            return f"{output.get('ename', 'Error')}: {first}".rstrip(": ")
        if output.output_type == "stream" and output.name == "stderr":
            text = _clean(output.text).strip()
            return "wrote to stderr: " + (text.splitlines()[0] if text else "")
    return "partial credit"


# -- the page -------------------------------------------------------------------------------------

def write_feedback(outcome: Outcome, out_html: Path, course_title: str | None = None) -> Path:
    """Write one self-contained HTML page of feedback for one student and unit."""
    course = syllabus.load()
    try:
        unit_title = course.unit(outcome.unit_id).title
    except KeyError:
        unit_title = ""
    cells = _cells_by_step(outcome.autograded)
    parts = [_header(outcome, course_title or course.title, unit_title)]
    parts += [_step_section(step, cells.get(step.step, {})) for step in outcome.steps]
    if outcome.written:
        parts.append(_written_section(outcome, _written_cells(outcome.autograded)))
    page = _PAGE.format(title=_esc(f"{outcome.student_id} · {outcome.unit_id}"), style=_STYLE,
                        body="\n".join(parts))
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(page, encoding="utf-8")
    return out_html


def _cells_by_step(nb_path: Path | None) -> dict[str, dict]:
    """For each step: the student's answer cell and the graded test cells, if the notebook is readable."""
    if nb_path is None or not Path(nb_path).is_file():
        return {}
    try:
        nb = nbformat.read(Path(nb_path), as_version=4)
        tests = test_cells_by_step(nb)
    except Exception:   # a notebook we cannot read back: the page still shows the steps from the Outcome
        return {}
    answers = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells if is_solution(c) and c.cell_type == "code"}
    return {step: {"answer": answers.get(step), "tests": cells} for step, cells in tests.items()}


def _header(outcome: Outcome, course_title: str, unit_title: str) -> str:
    rows = [f"<h1>{_esc(course_title)}</h1>",
            f"<p class='who'>Student <b>{_esc(outcome.student_id)}</b> · unit <b>{_esc(outcome.unit_id)}</b>"
            + (f" ({_esc(unit_title)})" if unit_title else "") + "</p>",
            f"<p class='score'>Score: <b>{_num(outcome.score)} / {_num(outcome.max_score)}</b>"
            + (" (the automatic points; the written answers are graded separately)" if outcome.written else "")
            + "</p>"]
    if outcome.pending:
        rows.append(f"<p class='manual'>Written answers awaiting a person's grading: "
                    f"<b>{len(outcome.pending)}</b>, worth {_num(outcome.pending_points)} points "
                    f"({_esc(', '.join(w.question for w in outcome.pending))}). Their points are not in the "
                    "score above yet.</p>")
    if outcome.status != GRADED:
        rows.append(f"<p class='status'>Not graded: <b>{_esc(outcome.status)}</b>"
                    + (f" — {_esc(_guard(outcome.reason))}" if outcome.reason else "") + "</p>")
    elif outcome.reason:
        rows.append(f"<p class='note'>{_esc(_guard(outcome.reason))}</p>")
    if outcome.notes:
        items = "".join(f"<li>{_esc(_guard(n))}</li>" for n in outcome.notes)
        rows.append(f"<div class='notes'>Repairs made before grading:<ul>{items}</ul></div>")
    if outcome.steps:
        body = "".join(f"<tr class='{'ok' if s.points >= s.max_points else 'lost'}'><td>{_esc(s.step)}</td>"
                       f"<td>{_num(s.points)} / {_num(s.max_points)}</td></tr>" for s in outcome.steps)
        rows.append(f"<table><tr><th>step</th><th>points</th></tr>{body}</table>")
    return "\n".join(rows)


def _step_section(step: StepResult, cells: dict) -> str:
    ok = step.points >= step.max_points
    out = [f"<section class='{'ok' if ok else 'lost'}'>",
           f"<h2>{_esc(step.step)} — {_num(step.points)} / {_num(step.max_points)}</h2>"]
    if not ok:
        if step.message:
            out.append(f"<p class='message'>{_esc(_guard(step.message))}</p>")
        for test in cells.get("tests", []):
            source = visible_source(test)
            if source.strip():
                out.append(f"<p>The check that ran:</p><pre class='check'>{_esc(source)}</pre>")
            shown = _visible_outputs(test)
            if shown:
                out.append(f"<p>Its output:</p><pre class='output'>{_esc(shown)}</pre>")
    answer = cells.get("answer")
    if answer is not None:
        out.append(f"<details><summary>Your answer</summary><pre class='answer'>{_esc(_guard(answer.source))}"
                   "</pre></details>")
    out.append("</section>")
    return "\n".join(out)


def _written_cells(nb_path: Path | None) -> dict:
    """The student's written answers (manually graded answer cells) by grade_id, if readable."""
    if nb_path is None or not Path(nb_path).is_file():
        return {}
    try:
        nb = nbformat.read(Path(nb_path), as_version=4)
    except Exception:   # the page still lists the questions from the Outcome
        return {}
    return {c.metadata.nbgrader["grade_id"]: c for c in nb.cells if is_solution(c) and is_grade(c)}


def _written_section(outcome: Outcome, cells: dict) -> str:
    """Each written question: awaiting a person, or not answered (0 points), with the student's answer."""
    pending = {w.question for w in outcome.pending}
    out = ["<section class='written'>", "<h2>Written answers (graded by a person)</h2>", "<ul>"]
    for w in outcome.written:
        if w.question in pending:
            state = f"needs manual grading: awaits a person (up to {_num(w.max_points)} points)"
        elif not w.answered:
            state = f"not answered: 0 / {_num(w.max_points)}"
        else:
            state = f"not graded ({_esc(outcome.status)}): 0 / {_num(w.max_points)}"
        answer = cells.get(w.question)
        shown = (f"<details><summary>Your answer</summary><pre class='answer'>{_esc(_guard(answer.source))}"
                 "</pre></details>") if answer is not None and w.answered else ""
        out.append(f"<li><b>{_esc(w.question)}</b>: {state}{shown}</li>")
    out += ["</ul>", "</section>"]
    return "\n".join(out)


def visible_source(cell) -> str:
    """A test cell's source as students see it: nbgrader's ClearHiddenTests, then the guard."""
    cell = copy.deepcopy(cell)
    try:
        ClearHiddenTests().preprocess_cell(cell, {}, 0)
    except RuntimeError:   # an unbalanced hidden region (an edited cell): show none of it
        return ""
    return _guard(cell.source)


def _visible_outputs(cell) -> str:
    """What the test cell printed, and each error as `Name: message`; never a traceback."""
    shown = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            shown.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            shown.append(output.get("data", {}).get("text/plain", ""))
        elif output.output_type == "error":
            shown.append(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
    text = _clean("\n".join(s.rstrip("\n") for s in shown if s))
    if shows_hidden_source(text):
        return HIDDEN_OUTPUT
    text = _guard(text)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "\n… (output cut)"


def _guard(text: str) -> str:
    """Replace any line that names the hidden region or module, or holds a line of the hidden
    tests' source (the last line of defence)."""
    lines = str(text).splitlines()
    return "\n".join(REDACTED if any(m.lower() in line.lower() for m in HIDDEN_MARKERS)
                     or shows_hidden_source(line) else line for line in lines)


def _clean(text: str) -> str:
    return ANSI.sub("", str(text))


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _num(x: float) -> str:
    return f"{float(x):g}"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #ccc; padding: .2rem .6rem; }
tr.lost td, section.lost h2 { color: #a00; } tr.ok td, section.ok h2 { color: #060; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; white-space: pre-wrap; }
.status { background: #fee; padding: .5rem; } .message { font-weight: bold; }
.manual { background: #fff6e0; padding: .5rem; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>
<body>
{body}
</body>
</html>
"""
