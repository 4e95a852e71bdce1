"""Plausible wrong answers for every graded step, to prove each check can fail.

A unit's module (``autograder/mutants/<notebook>.py``) defines functions with
the student's function name, each decorated with ``@mutant(step, "what is wrong")``.
:func:`autograder.mutate.run` feeds each one through that step's test cells,
the very cells nbgrader grades, and scores them with nbgrader's own rules.
"""
from __future__ import annotations

import importlib
import inspect
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

    def register(fn):
        if fn.__name__ != step:
            raise ValueError(f"mutant {description!r} must be named {step!r}, not {fn.__name__!r}")
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
