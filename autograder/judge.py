"""The judge: hidden-test verdicts computed in a process that never runs a student's code.

How a submission is judged
--------------------------
1. The grading kernel runs with the environment variable ``AUTOGRADER_RECORD_DIR``
   (:data:`RECORD_ENV`) set to an empty folder it may write to. Each hidden test
   (``autograder.hidden.<unit>.grade_<step>``) then runs the step's visible check
   and its hidden check on stand-ins for the student's objects and writes what the
   student's code returned, as plain data, to ``<folder>/<unit module>.grade_<step>.json``
   (see ``autograder/hidden/_record.py``). The kernel's own pass or fail is not
   written down and not trusted; nbgrader's in-kernel score is still computed as
   usual.
2. After nbgrader has finished, the trusted process calls::

       verdicts = judge_notebook(unit_id, release_notebook, record_dir)

   ``unit_id`` is the unit (``"01_rnn_by_hand"``), ``release_notebook`` the
   released notebook (a path or an nbformat node: only its nbgrader metadata is
   read, for the points of each test cell) and ``record_dir`` the folder from 1.
   It returns ``{test cell grade_id: Verdict}`` for every graded test cell.
   Nothing of the student's is imported or executed: the same check functions
   run again here, answered from the record, with Keras objects rebuilt from
   their configuration in Keras' safe mode. A record that is missing (the test
   cell stopped before its hidden test), malformed, larger than
   ``_record.MAX_RECORD_BYTES``, or that does not answer exactly the operations
   and inputs the checks ask for, scores 0 with the reason as the message.
3. ``Verdict.score`` is the step's points (from the release's metadata) or 0;
   ``Verdict.message`` is empty on success, otherwise the check's own failure
   message. A step listed in its hidden module's ``KERNEL_ONLY`` (a student's
   Keras layer class, whose checks look inside the object) has
   ``Verdict.judged = False`` and ``score = None``: keep nbgrader's in-kernel score
   for it.

Without ``AUTOGRADER_RECORD_DIR``, plain ``nbgrader autograde`` grades with the
in-kernel checks, exactly as before.

What each unit's hidden tests evaluate and compare stays in one place: the
``grade_<step>`` functions of ``autograder/hidden/<unit>.py``, which the line
``judge_all(globals(), visible, ...)`` at the end of the module wraps for
recording and replay. A new ``grade_<step>`` is judged here with no other
change, provided its checks draw randomness from fixed seeds.

For the worker: run nbgrader with ``AUTOGRADER_RECORD_DIR`` pointing at a
fresh, empty folder per submission (writable by the sandboxed kernel, and
nothing else of the judge's), then call :func:`judge_notebook` in the
worker's own process and use ``Verdict.score`` for every ``Verdict.judged``
cell in place of nbgrader's score. A record folder must never be reused
between submissions.

The judging process needs the instructor environment (numpy, and Keras for the
units whose answers are Keras models); it may run on any Keras backend.
"""
from __future__ import annotations

import ast
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from course import syllabus

from . import ROOT, memo
from .hidden import _record
from .hidden._record import RECORD_ENV, RecordError

__all__ = ["RECORD_ENV", "Verdict", "judge_notebook", "hidden_calls", "judge_step"]

# This process judges submission after submission with the same reference inputs: remember the references'
# results (autograder/memo.py says when that is exact). Done before any hidden module is imported here.
memo.install()


@dataclass(frozen=True)
class Verdict:
    score: float | None      # None: not judged here (keep the in-kernel score)
    max_score: float
    message: str = ""
    judged: bool = True

    @property
    def passed(self) -> bool:
        return self.judged and self.score == self.max_score


def hidden_calls(unit_id: str) -> dict[str, tuple[str, str]]:
    """``{test cell grade_id: (hidden module, grade function)}``, read from the unit's source notebook.

    The source notebook (solutions/) is the instructor's; each test cell's hidden part imports
    ``autograder.hidden.<module> as hidden`` and calls ``hidden.grade_<step>(...)``.
    """
    unit = syllabus.load().unit(unit_id)
    nb = nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)
    found: dict[str, tuple[str, str]] = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        tree = ast.parse(cell.source.replace("### BEGIN HIDDEN TESTS", "").replace("### END HIDDEN TESTS", ""))
        aliases = {alias.asname or alias.name: f"{node.module}.{alias.name}"
                   for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                   for alias in node.names}
        calls = [(aliases[n.func.value.id], n.func.attr) for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and isinstance(n.func.value, ast.Name) and aliases.get(n.func.value.id, "").startswith(
                     "autograder.hidden.") and n.func.attr.startswith("grade_")]
        if len(calls) != 1:
            raise ValueError(f"{unit.filename}: test cell {meta['grade_id']} calls {len(calls)} hidden grade "
                             f"functions; the judge expects exactly one")
        found[meta["grade_id"]] = calls[0]
    return found


def _points(notebook: Any) -> dict[str, float]:
    if not hasattr(notebook, "cells"):
        notebook = nbformat.read(str(notebook), as_version=4)
    points = {}
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
            points[str(meta["grade_id"])] = float(meta.get("points", 0))
    return points


def judge_step(module: str, grade_name: str, record_dir: str | os.PathLike, max_score: float) -> Verdict:
    """One hidden test, replayed from its record."""
    hidden = importlib.import_module(module)
    wrapper = getattr(hidden, grade_name, None)
    info = getattr(wrapper, "__judged__", None)
    if info is None:
        raise ValueError(f"{module}.{grade_name} is not wrapped by judge_all(); the judge cannot replay it")
    if info["kernel_only"]:
        return Verdict(None, max_score, f"judged in the kernel only: {info['kernel_only']}", judged=False)
    path = Path(record_dir) / _record.record_name(module, grade_name)
    try:
        document = _record.load_record(str(path))
        if document.get("module") != module or document.get("grade") != grade_name:
            raise RecordError("malformed record: it names another test")
        with memo.context(module):   # what the references compute here may be handed to this unit's kernels
            _record.replay_call(info["grade"], info["check"], document, info.get("handed", ()))
    except RecordError as err:
        return Verdict(0.0, max_score, f"not graded: {err}")
    except AssertionError as err:            # CheckFailed: the check's own message
        return Verdict(0.0, max_score, str(err) or type(err).__name__)
    except Exception as err:  # noqa: BLE001 - anything else the checks raise on the student's answers
        return Verdict(0.0, max_score, f"{type(err).__name__}: {err}")
    return Verdict(max_score, max_score)


def judge_notebook(unit_id: str, notebook: Any, record_dir: str | os.PathLike,
                   answers: dict[str, str] | None = None) -> dict[str, Verdict]:
    """Every graded test cell's verdict, from the records the grading kernel wrote into ``record_dir``.

    ``answers`` maps each answer cell's grade_id (the step) to its source as submitted: the step's rule
    (course/rules.py) is read against that code here, so an answer that delegates to a forbidden module
    scores 0 whatever the kernel did to its own watch.
    """
    points = _points(notebook)
    calls = hidden_calls(unit_id)
    missing = set(points) - set(calls)
    if missing:
        raise ValueError(f"test cells of the notebook that the unit's source does not have: {sorted(missing)}")
    verdicts = {}
    for grade_id in points:
        broken = rule_broken(unit_id, grade_id, answers)
        verdicts[grade_id] = (Verdict(0.0, points[grade_id], broken) if broken
                              else judge_step(*calls[grade_id], record_dir, points[grade_id]))
    return verdicts


def rule_broken(unit_id: str, test_id: str, answers: dict[str, str] | None) -> str | None:
    """The rule message when the answer cell of test cell ``test_id`` uses what its step's rule forbids."""
    step = test_id[len("test_"):] if test_id.startswith("test_") else test_id
    source = (answers or {}).get(step)
    if source is None:
        return None
    from course.checks import static_violations
    from course.rules import RULES

    rule = RULES.get(unit_id, {}).get(step)
    if rule is None:
        return None
    found = static_violations(rule, source)
    return f"{step} must be {rule.text}; {found[0]}" if found else None


def answer_sources(notebook: Any) -> dict[str, str]:
    """grade_id -> source of every answer cell of a (submitted) notebook, as plain data."""
    return {str(cell.metadata["nbgrader"]["grade_id"]): cell.source for cell in notebook.cells
            if cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("solution")
            and cell.metadata["nbgrader"].get("grade_id")}
