"""The judge gives the same verdicts as the in-kernel checks, from records alone, and cannot be fooled from the kernel.

For each unit, one kernel runs the source notebook's graded cells with AUTOGRADER_RECORD_DIR set (as
autograder/mutate.py does, without the demonstration cells): the solution, then every step blank (the
exercise's answer cells), then each mutant in turn. After each run, this process (which never runs a
student's code) judges the records, and every verdict must equal nbgrader's in-kernel score of that cell.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.utils import determine_grade, is_grade, is_solution

from autograder import ROOT, mutants, settings
from autograder.hidden import _record
from autograder.judge import RECORD_ENV, Verdict, hidden_calls, judge_notebook, judge_step
from autograder.mutate import grading_environment, solution_sources, test_cells_by_step
from course import syllabus

UNITS = [u.id for u in syllabus.load().ready_units]


def _release(unit_id: str):
    unit = syllabus.load().unit(unit_id)
    return nbformat.read(ROOT / "exercises" / unit.id / unit.filename, as_version=4)


def _source(unit_id: str):
    unit = syllabus.load().unit(unit_id)
    return nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)


class Kernel:
    """One grading kernel on a unit's source notebook, recording into a folder chosen per run."""

    def __init__(self, unit_id: str, workdir: Path):
        self.unit = syllabus.load().unit(unit_id)
        self.nb = _source(unit_id)
        workdir.mkdir(parents=True, exist_ok=True)
        for item in (ROOT / "solutions" / unit_id).iterdir():
            if item.is_file():
                shutil.copy(item, workdir)
        self.client = NotebookClient(self.nb, timeout=settings.CELL_TIMEOUT, allow_errors=True,
                                     kernel_name="python3", resources={"metadata": {"path": str(workdir)}})

    def run(self, source: str) -> list:
        cell = nbformat.v4.new_code_cell(source)
        self.client.execute_cell(cell, 0)
        return [o for o in cell.outputs if o.output_type == "error"]

    def must_run(self, source: str) -> None:
        errors = self.run(source)
        assert not errors, f"{source}\n{errors[0].ename}: {errors[0].evalue}"

    def record_into(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.must_run(f"import os; os.environ[{RECORD_ENV!r}] = {str(folder)!r}")

    def grade(self, cell) -> tuple[float, str]:
        """nbgrader's in-kernel score of one test cell."""
        cell = copy.deepcopy(cell)
        cell.outputs = []
        self.client.execute_cell(cell, 0)
        points, _ = determine_grade(cell)
        errors = [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]
        return points, "; ".join(errors)


def _judge_cells(unit_id, kernel, cells, record_dir) -> list[tuple[str, float, float | None, str]]:
    """(grade_id, in-kernel points, judge's points, messages) for each test cell."""
    calls, out = hidden_calls(unit_id), []
    for cell in cells:
        gid = cell.metadata.nbgrader["grade_id"]
        points, kernel_message = kernel.grade(cell)
        verdict = judge_step(*calls[gid], record_dir, float(cell.metadata.nbgrader["points"]))
        out.append((gid, points, verdict, kernel_message))
    return out


def _disagreements(results) -> list[str]:
    return [f"{gid}: kernel {points}, judge {verdict.score} ({verdict.message[:300]}) "
            f"[kernel said: {message[:300]}]"
            for gid, points, verdict, message in results if verdict.judged and verdict.score != points]


def run_unit(unit_id: str, tmp: Path, with_mutants: bool = True) -> dict:
    kernel = Kernel(unit_id, tmp / "work")
    tests = test_cells_by_step(kernel.nb)
    answers = solution_sources(kernel.nb)
    blanks = solution_sources(_release(unit_id))
    all_cells = [c for cells in tests.values() for c in cells]
    summary = {"solution": [], "blank": [], "mutants": []}
    with grading_environment(), kernel.client.setup_kernel():
        for cell in kernel.nb.cells:       # set-up, answers and tests, as mutate.run does
            if cell.cell_type == "code" and "nbgrader" in cell.metadata and not is_grade(cell):
                kernel.client.execute_cell(cell, 0)
        kernel.record_into(tmp / "solution")
        summary["solution"] = _judge_cells(unit_id, kernel, all_cells, tmp / "solution")

        kernel.record_into(tmp / "blank")
        for step, source in blanks.items():
            kernel.run(source)
        summary["blank"] = _judge_cells(unit_id, kernel, all_cells, tmp / "blank")
        for source in answers.values():
            kernel.must_run(source)

        if with_mutants:
            unit = syllabus.load().unit(unit_id)
            for i, m in enumerate(mutants.for_notebook(unit.notebook)):
                folder = tmp / f"mutant{i}"
                kernel.record_into(folder)
                kernel.must_run(m.source)
                summary["mutants"].append((m, _judge_cells(unit_id, kernel, tests[m.step], folder)))
                kernel.must_run(answers[m.step])
    return summary


def _check_unit(unit_id: str, tmp: Path) -> None:
    summary = run_unit(unit_id, tmp)
    problems = [f"solution {d}" for d in _disagreements(summary["solution"])]
    problems += [f"solution: {gid} not full marks in the kernel: {message[:500]}"
                 for gid, points, v, message in summary["solution"] if points != float(v.max_score)]
    problems += [f"blank {d}" for d in _disagreements(summary["blank"])]
    problems += [f"blank: {gid} scores {points} in the kernel" for gid, points, v, _ in summary["blank"] if points]
    for m, results in summary["mutants"]:
        problems += [f"mutant {m.step} ({m.description}): {d}" for d in _disagreements(results)]
    judged = sum(v.judged for _, _, v, _ in summary["solution"])
    print(f"{unit_id}: {judged}/{len(summary['solution'])} steps judged outside the kernel, "
          f"{len(summary['mutants'])} mutants")
    assert not problems, "\n".join(problems)

    # the whole notebook's verdicts from the solution's records, through the public entry point
    verdicts = judge_notebook(unit_id, _release(unit_id), tmp / "solution")
    assert all(v.passed or not v.judged for v in verdicts.values()), verdicts


@pytest.mark.parametrize("unit_id", UNITS)
def test_judge_agrees_with_the_kernel(unit_id, tmp_path):
    _check_unit(unit_id, tmp_path)
