"""Plausible wrong answers for every graded step, to prove each check can fail.

A unit's module (``autograder/mutants/<notebook>.py``) defines functions with
the student's function name, each decorated with ``@mutant(step, "what is wrong", kind=...)``,
the kind being one of :data:`KINDS`: ``make mutants`` prints which kinds each unit covers.
:func:`autograder.mutate.run` feeds each one through that step's test cells,
the very cells nbgrader grades, and scores them with nbgrader's own rules.
"""
from __future__ import annotations

import importlib
import inspect
import linecache
import sys
import textwrap
from dataclasses import dataclass


# The kinds of mistake a check must catch; every mutant names one.
KINDS = {
    "logic": "a wrong formula, axis, shift, shape or count",
    "delegation": "built from what the step's rule forbids (Keras, another framework, the course's own code)",
    "stability": "overflows or underflows on inputs of wide spread",
    "in-place": "changes an input in place",
    "precision": "computes in a lower precision than the text promises (float32 inside)",
    "state": "keeps state from earlier calls",
    "randomness": "a wrong distribution, seed or stream, though reproducible",
    "return-type": "a return type that passes a look but breaks later use",
    "training-mode": "runs in training mode (dropout) where inference is asked",
    "setting": "ignores a setting the text asks for (an epsilon, a dtype, an option)",
    "mechanism": "another mechanism than the one the step teaches",
}


@dataclass(frozen=True)
class Mutant:
    step: str          # the graded function's name (the solution cell's grade_id)
    description: str   # the mistake, in words
    source: str        # a definition of `step` (a def or a class) that makes that mistake
    kind: str = "logic"  # one of KINDS


_REGISTRY: dict[str, list[Mutant]] = {}


def mutant(step: str, description: str, kind: str = "logic"):
    """Register the decorated function (or class, for a graded Keras layer) as a wrong
    implementation of ``step`` that makes a mistake of ``kind`` (one of :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"mutant {description!r}: unknown kind {kind!r}; one of {sorted(KINDS)}")
    # Where the decorator is written: several mutants share one name, and for classes
    # Python 3.11's inspect.getsource returns the first class of that name in the module.
    caller = sys._getframe(1)
    filename, lineno = caller.f_code.co_filename, caller.f_lineno

    def register(fn):
        if fn.__name__ != step:
            raise ValueError(f"mutant {description!r} must be named {step!r}, not {fn.__name__!r}")
        if inspect.isclass(fn):
            lines = inspect.getblock(linecache.getlines(filename)[lineno - 1:])
            lines = textwrap.dedent("".join(lines)).splitlines()
        else:
            lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
        while not lines[0].startswith(("def ", "class ")):  # drop the decorator
            lines.pop(0)
        _REGISTRY.setdefault(fn.__module__, []).append(Mutant(step, description, "\n".join(lines), kind))
        return fn

    return register


def for_notebook(notebook: str) -> list[Mutant]:
    """All mutants of a unit, by the unit's notebook name (e.g. "rnn_by_hand")."""
    module = importlib.import_module(f"{__name__}.{notebook}")
    return list(_REGISTRY.get(module.__name__, []))
