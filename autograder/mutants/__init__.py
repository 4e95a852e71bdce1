"""Plausible wrong answers for every graded step, to prove each check can fail.

A unit's module (``autograder/mutants/<notebook>.py``) defines functions with
the student's function name, each decorated with ``@mutant(step, "what is wrong")``.
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


@dataclass(frozen=True)
class Mutant:
    step: str          # the graded function's name (the solution cell's grade_id)
    description: str   # the mistake, in words
    source: str        # a definition of `step` (a def or a class) that makes that mistake


_REGISTRY: dict[str, list[Mutant]] = {}


def mutant(step: str, description: str):
    """Register the decorated function (or class, for a graded Keras layer) as a wrong
    implementation of ``step``."""
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
        _REGISTRY.setdefault(fn.__module__, []).append(Mutant(step, description, "\n".join(lines)))
        return fn

    return register


def for_notebook(notebook: str) -> list[Mutant]:
    """All mutants of a unit, by the unit's notebook name (e.g. "rnn_by_hand")."""
    module = importlib.import_module(f"{__name__}.{notebook}")
    return list(_REGISTRY.get(module.__name__, []))
