"""Two budgets for every notebook: fast (CPU, CI, autograding) and full (GPU).

The notebook picks one by itself. A student chooses in the budget cell at the
top of each exercise, ``budget.choose("full")`` (or ``"fast"``, or ``"auto"``),
or with the environment variable ``COURSE_BUDGET=full`` set before Jupyter starts.

Order of precedence:
1. an explicit argument to :func:`pick`;
2. ``COURSE_BUDGET`` (``fast`` or ``full``);
3. fast whenever nbgrader executes the notebook (it sets ``NBGRADER_EXECUTION``),
   whatever the notebook's budget cell says;
4. the notebook's budget cell, :func:`choose` (unless it says ``auto``);
5. fast when a CI system runs it (``CI`` set);
6. full when the Keras backend sees a GPU (a T4 on Colab), fast otherwise.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
NAMES = ("fast", "full")
_chosen: str | None = None   # set by choose(), from the notebook's budget cell


@dataclass(frozen=True)
class Budget:
    name: str
    reason: str

    @property
    def fast(self) -> bool:
        return self.name == "fast"

    @property
    def full(self) -> bool:
        return self.name == "full"

    def pick(self, *, fast: T, full: T) -> T:
        """The value for this budget: ``steps = BUDGET.pick(fast=200, full=20_000)``."""
        return fast if self.fast else full

    def __str__(self) -> str:
        return f"{self.name} budget ({self.reason})"


def _check(name: str, source: str) -> str:
    name = name.strip().lower()
    if name not in NAMES:
        raise ValueError(f"{source} must be 'fast' or 'full', not {name!r}")
    return name


def choose(name: str = "auto") -> Budget:
    """The student's choice from the notebook's budget cell: ``"auto"``, ``"fast"`` or ``"full"``.

    Returns (and prints) the budget that the notebook's own ``pick()`` will now give.
    """
    global _chosen
    cleaned = str(name).strip().lower()
    if cleaned == "auto":
        _chosen = None
    else:
        _chosen = _check(cleaned, "budget.choose()'s argument (or 'auto')")
    chosen = pick()
    print(chosen)
    return chosen


def gpu_available() -> bool:
    """Whether the active Keras backend can see a GPU (imports the backend)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    try:
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
        from .env import import_tensorflow

        tf = import_tensorflow()
        return bool(tf.config.list_physical_devices("GPU"))
    except ImportError:
        return False


def pick(override: str | None = None) -> Budget:
    """Choose the budget for this run; see the module docstring for the order."""
    if override is not None:
        return Budget(_check(override, "pick()'s argument"), "chosen in the notebook")
    if os.environ.get("COURSE_BUDGET"):
        return Budget(_check(os.environ["COURSE_BUDGET"], "COURSE_BUDGET"), "COURSE_BUDGET is set")
    if os.environ.get("NBGRADER_EXECUTION"):
        return Budget("fast", "nbgrader is executing the notebook")
    if _chosen is not None:
        return Budget(_chosen, "chosen in the notebook's budget cell")
    if os.environ.get("CI"):
        return Budget("fast", "running under CI")
    if gpu_available():
        return Budget("full", "a GPU is available")
    return Budget("fast", "no GPU found")
