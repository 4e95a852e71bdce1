"""The expected values that the visible checks read: ``course/checks/expected/<notebook>.npz``.

The student wheel holds no reference implementation. Its visible checks ask
``ref.<name>(...)`` of a stored file instead (:mod:`course.checks.stored`). This
module writes that file: it runs the solution notebook's own cells (set-up,
given code, answers, and the visible part of every test cell) in this process,
with the check module's ``ref`` replaced by a recorder that asks the reference
(:mod:`autograder.reference`) and keeps every question and answer, diagnoses of
known mistakes included. ``python -m autograder generate`` calls :func:`generate`.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import re
from pathlib import Path

import nbformat
import numpy as np

from course import syllabus
from course.checks import _EAGER
from course.checks import stored as store

from . import ROOT

# notebook -> the reference module its visible checks ask
REFERENCES = {
    "rnn_by_hand": "autograder.reference.keras_reference",
    "bptt_and_gradients": "autograder.reference.bptt",
    "gated_cells": "autograder.reference.keras_gated",
    "seq2seq_attention": "autograder.reference.seq2seq_attention",
    "rnn_vs_transformer": "autograder.reference.rnn_vs_transformer",
}
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
ABOUT = ("Expected values for the visible checks of {notebook} (course/checks/{notebook}.py): what "
         "{reference} (Keras' own layers, ops and losses, numeric gradients) returns on the checks' visible inputs, and "
         "what known mistakes return. Written by `python -m autograder generate` from "
         "solutions/{unit}/{notebook}.ipynb; not to be edited by hand.")


class Recorder:
    """Asks the reference and keeps every question's key and answer."""

    def __init__(self, reference):
        self.reference = reference
        self.records: dict[str, list[dict]] = {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        real = getattr(self.reference, name)

        def record(*args, **kwargs):
            value = real(*args, **kwargs)
            arrays: list = []
            tree = store.encode(value, arrays)
            value = store.decode(tree, {f"a{i}": a for i, a in enumerate(arrays)})  # as a lookup returns it
            key, exact, fp = store.question(name, args, kwargs)
            asked = self.records.setdefault(key, [])
            if not any(c["exact"] == exact for c in asked):
                near = [c for c in asked if store._close(fp, c["fp"])]
                if near and not _same(near[0]["value"], value):
                    raise ValueError(f"two questions to {name} too close to tell apart give different answers")
                asked.append(dict(exact=exact, fp=fp, value=value))
            return value

        return record


@contextlib.contextmanager
def _recording(check_module, recorder):
    saved, _EAGER[0] = check_module.ref, True
    check_module.ref = recorder
    try:
        yield
    finally:
        check_module.ref, _EAGER[0] = saved, False


@contextlib.contextmanager
def _in_folder(folder: Path):
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def record(unit_id: str) -> dict[str, list[dict]]:
    """Every reference question that the visible checks of ``unit_id`` ask, with its answer."""
    unit = syllabus.load().unit(unit_id)
    check_module = importlib.import_module(f"course.checks.{unit.notebook}")
    recorder = Recorder(importlib.import_module(REFERENCES[unit.notebook]))
    nb = nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)
    namespace: dict = {"__name__": "__main__"}
    os.environ.setdefault("MPLBACKEND", "Agg")
    with _recording(check_module, recorder), _in_folder(ROOT / "solutions" / unit.id), \
            contextlib.redirect_stdout(open(os.devnull, "w")):
        for cell in nb.cells:
            if cell.cell_type != "code" or "nbgrader" not in cell.metadata:
                continue  # demonstrations and training runs: no check depends on them
            source = HIDDEN.sub("", cell.source)
            exec(compile(source, f"<{unit.notebook} cell>", "exec"), namespace)  # noqa: S102
    return recorder.records


def solution_namespace(unit_id: str) -> dict:
    """The solution notebook's set-up, given code and answers, run in one namespace (no test cell)."""
    unit = syllabus.load().unit(unit_id)
    nb = nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)
    namespace: dict = {"__name__": "__main__"}
    os.environ.setdefault("MPLBACKEND", "Agg")
    with _in_folder(ROOT / "solutions" / unit.id), contextlib.redirect_stdout(open(os.devnull, "w")):
        for cell in nb.cells:
            grading = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and grading and not (grading.get("grade") and not grading.get("solution")):
                exec(compile(cell.source, f"<{unit.notebook} cell>", "exec"), namespace)  # noqa: S102
    return namespace


def path_of(notebook: str) -> Path:
    return store.HERE / f"{notebook}.npz"


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, type(a)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (str, type(None), bool, int)):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))


def generate(unit_ids=None, check: bool = False) -> list[str]:
    """Write every ready unit's expected values (or, with check, list what is stale)."""
    problems = []
    for unit in syllabus.load().ready_units:
        if (unit_ids and unit.id not in unit_ids) or unit.notebook not in REFERENCES:
            continue
        records = record(unit.id)
        path = path_of(unit.notebook)
        if check:
            if not path.exists():
                problems.append(f"{path.relative_to(ROOT)}: missing")
                continue
            index, arrays = store._Stored(unit.notebook)._load()
            stored = {(k, c["exact"]): store.decode(c["value"], arrays) for k, cs in index.items() for c in cs}
            fresh = {(k, c["exact"]): c["value"] for k, cs in records.items() for c in cs}
            stale = set(stored) != set(fresh) or not all(_same(fresh[k], stored[k]) for k in fresh)
            if stale:
                problems.append(f"{path.relative_to(ROOT)}: differs from what the solution and the reference give")
        else:
            about = ABOUT.format(notebook=unit.notebook, unit=unit.id, reference=REFERENCES[unit.notebook])
            store.save(path, records, about)
            print(f"wrote {path.relative_to(ROOT)} ({sum(map(len, records.values()))} expected values)")
    return problems
