"""Every number that a solution notebook's prose presents as measured is printed by one of its cells.

The notebooks quote results: accuracies, losses, times, ratios, sizes of gradients. A quoted result
that no cell prints cannot be checked by a reader, drifts from what the code does, and disagrees
with other units. This test reads the markdown cells of every notebook in ``solutions/`` (nothing
is executed) and finds, line by line, what looks like a measurement:

* a percentage: ``86.9%``, ``12 %``, ``40 percent``;
* a duration: ``263 s``, ``1.5 ms``, ``30 µs``, ``14 minutes``, ``3 min``, ``2 hours``;
* a loss in nats or bits: ``1.50 nats``, ``2.2 bits``;
* a decimal number shortly after the words loss, accuracy, perplexity or exact match:
  ``a training loss of 0.55``;
* a factor: ``1.20x``, ``6×`` (no space: ``4 × d`` is a product), ``six times faster``, ``3 times as``;
* a power of ten or a number in scientific notation: ``10^{-9}``, ``2.655 \\cdot 10^{-5}``, ``1e-10``;
* a claim of a measurement, with or without a number: "in our runs", "we measured", "was measured",
  "measured on" (by, at, with; "measured in nats" is a unit, not a claim), "in a separate run".

Text in backticks and in fenced code blocks is left out (it is code, not a claim).

Each such line must carry an annotation, an HTML comment that the rendered notebook does not show:

``<!-- printed: LABEL -->``
    The figures on this line are printed by a code cell of the same notebook: LABEL is a piece of
    the text of one of its ``print(...)`` calls (a string or the literal part of an f-string),
    e.g. ``<!-- printed: test accuracy -->``. Figures of the full budget use this form too: the
    cell that prints them is the one that runs in the full budget.
``<!-- checked: LABEL -->``
    The figures on this line are printed by a check cell: LABEL is a piece of the text of the
    visible checks module the notebook imports (``from course.checks import NAME``), e.g.
    ``<!-- checked: largest relative error -->``.
``<!-- given: KIND -->``
    The figures on this line are not measurements. KIND says what they are: ``arithmetic`` (worked
    out from a formula in the text, such as 0.9^100), ``published`` (a cited paper's or project's
    figure), ``setting`` (a size or hyperparameter the notebook chooses), ``target`` (a goal to
    reach) or ``definition``.

A line may carry both. An annotation on a line with nothing to annotate is an error too, so that
the annotations keep following the text. A claim that no cell prints must be reworded, or it goes.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))
GIVEN_KINDS = {"arithmetic", "published", "setting", "target", "definition"}

NUMBER = r"(?<![\w.^{}])\d+(?:[.,]\d+)*"   # not a subscript, exponent or part of a name: W_1, 0.9^{100}
MEASURED = [
    ("percentage", re.compile(rf"{NUMBER}\s*(?:\\?%|percent\b)")),
    ("duration", re.compile(rf"{NUMBER}\s*(?:s|ms|µs|us|ns|seconds?|minutes?|min|hours?)\b(?!-)")),
    ("nats or bits", re.compile(rf"{NUMBER}\s*(?:nats?|bits?)\b")),
    ("loss or accuracy", re.compile(
        rf"\b(?:loss|losses|accuracy|accuracies|perplexity|exact match)\b[^.;:\n]{{0,40}}?\b\d+\.\d+",
        re.IGNORECASE)),
    ("factor", re.compile(rf"{NUMBER}(?:x|×)(?=[\s).,;:]|$)|\b(?:{NUMBER}|two|three|four|five|six|seven|eight|"
                          rf"nine|ten|a hundred|a thousand) times (?:faster|slower|more|fewer|less|as)\b",
                          re.IGNORECASE)),
    ("power of ten", re.compile(r"10\s*\^\s*\{?\s*[-−]?\d+|\d(?:\.\d+)?e[-+]?\d+\b")),
    ("claim of a measurement", re.compile(r"\b(?:in our runs?|we measured|(?:is|are|was|were) measured(?! in\b)|"
                                          r"measured (?:by|on|at|with)|in a separate run)\b", re.IGNORECASE)),
]
ANNOTATION = re.compile(r"<!--\s*(printed|checked|given)\s*:\s*(.*?)\s*-->")


def _markdown_and_code(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    markdown, code = [], []
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            markdown.append((cell.get("id", "?"), source))
        elif cell["cell_type"] == "code":
            code.append(source)
    return markdown, code


def _parse(source: str) -> ast.Module | None:
    # IPython lines (magics, shell escapes) are not Python: leave them out.
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        return ast.parse(python)
    except SyntaxError:
        return None


def _strings(node: ast.AST) -> list[str]:
    return [part.value for part in ast.walk(node) if isinstance(part, ast.Constant) and isinstance(part.value, str)]


def _printed_texts(code_cells: list[str]) -> list[str]:
    """The literal text of every print(...) call in the code cells (strings and f-string parts)."""
    texts = []
    for tree in filter(None, map(_parse, code_cells)):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                texts.extend(_strings(node))
    return texts


def _check_texts(code_cells: list[str], root: Path) -> list[str]:
    """The literal strings of the visible checks modules the notebook imports."""
    texts = []
    for source in code_cells:
        for name in re.findall(r"^\s*from course\.checks import (\w+)", source, re.MULTILINE):
            module = root / "course" / "checks" / f"{name}.py"
            if module.exists():
                texts.extend(_strings(ast.parse(module.read_text(encoding="utf-8"))))
    return texts


def _prose_lines(source: str):
    """(line number, text without code) for each line of a markdown cell, fenced blocks left out."""
    fenced = False
    for number, line in enumerate(source.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, re.sub(r"`[^`]*`", "``", line)


def find_problems(path: Path, root: Path = ROOT) -> list[str]:
    markdown, code = _markdown_and_code(path)
    printed, checked = _printed_texts(code), _check_texts(code, ROOT)
    problems = []
    for cell_id, source in markdown:
        for number, line in _prose_lines(source):
            where = f"{path.relative_to(root)}, cell {cell_id!r}, line {number}"
            annotations = ANNOTATION.findall(line)
            bare = ANNOTATION.sub("", line)
            found = [(kind, match.group(0)) for kind, pattern in MEASURED for match in pattern.finditer(bare)]
            for form, value in annotations:
                if form == "given" and value not in GIVEN_KINDS:
                    problems.append(f"{where}: <!-- given: {value} --> is not one of {sorted(GIVEN_KINDS)}")
                if form == "printed" and not any(value and value in text for text in printed):
                    problems.append(f"{where}: <!-- printed: {value} --> but no print(...) in this notebook's "
                                    f"code cells has the text {value!r}")
                if form == "checked" and not any(value and value in text for text in checked):
                    problems.append(f"{where}: <!-- checked: {value} --> but the checks this notebook imports "
                                    f"have no string with the text {value!r}")
            if found and not annotations:
                shown = "; ".join(f"{kind} {value!r}" for kind, value in found)
                problems.append(f"{where}: {shown} looks measured, but the line says neither which cell prints "
                                f"it (<!-- printed: LABEL -->) nor what else it is (<!-- given: KIND -->): "
                                f"{line.strip()[:120]!r}")
            if annotations and not found:
                problems.append(f"{where}: an annotation on a line with no figure that needs one: {line.strip()[:120]!r}")
    return problems


def test_solution_notebooks_exist():
    assert len(NOTEBOOKS) >= 7, f"expected the course's solution notebooks under solutions/, found {NOTEBOOKS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_every_measured_figure_is_printed_by_a_cell(path):
    problems = find_problems(path)
    assert not problems, f"{len(problems)} figure(s) in the prose without a cell that prints them:\n" + "\n".join(problems)


# The linter itself, on small made-up notebooks: what it must catch and what it must let through.
def _notebook(tmp_path, markdown, code="print('x')"):
    cells = [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": [markdown]},
             {"cell_type": "code", "id": "c", "metadata": {}, "outputs": [], "execution_count": None,
              "source": [code]}]
    path = tmp_path / "solutions" / "unit" / "n.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.mark.parametrize("claim", [
    "exact match fell to 1.8%, while a model with attention of that size still wrote 99.8% of the dates",
    "its training loss crept down to 1.78 while its test accuracy stayed at chance",
    "In our runs a SimpleRNN learned the fixed-distance version within its first epoch.",
    "The figure the recipe reaches on a GPU is measured by benchmarks/charlm.py.",
    "that of an LSTM with Keras' forget bias of 1 to about $10^{-9}$",
    "about a minute for both taggers: 37 minutes in all",
    "the recipe reaches 1.42 nats per character",
    "the scan is 6x faster",
    "the attention model is three times faster",
    "a difference of 2.3e-7",
])
def test_the_linter_catches_unprinted_claims(tmp_path, claim):
    assert find_problems(_notebook(tmp_path, claim), tmp_path)


def test_the_linter_accepts_annotated_figures_and_rejects_wrong_annotations(tmp_path):
    code = 'acc = 0.9\nprint(f"test accuracy {acc:.1%}")'
    ok = ("accuracy 99.9% <!-- printed: test accuracy -->\n"
          "$0.9^{100} \\approx 2.66 \\cdot 10^{-5}$ <!-- given: arithmetic -->\n"
          "a plain line with `0.25 s` in code and 65 characters")
    assert find_problems(_notebook(tmp_path / "a", ok, code), tmp_path) == []
    assert find_problems(_notebook(tmp_path / "b", "accuracy 99.9% <!-- printed: exact match -->", code), tmp_path)
    assert find_problems(_notebook(tmp_path / "c", "accuracy 99.9% <!-- given: guess -->", code), tmp_path)
    assert find_problems(_notebook(tmp_path / "d", "no figure here <!-- given: setting -->", code), tmp_path)
