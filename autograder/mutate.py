"""Run every mutant of a unit through the notebook's own test cells.

One kernel per unit, as nbgrader runs it (NBGRADER_EXECUTION=autograde, so
the fast budget): execute the source notebook's nbgrader cells once (set-up and
other locked cells, solutions, tests; the demonstrations and training runs in
between are skipped, since no graded cell may depend on them: the baseline
below, full marks in this kernel, checks that), then for each mutant
define the wrong function, re-run that step's test cells twice (as the
student sees them, hidden tests removed by nbgrader's ClearHiddenTests, and
as nbgrader grades them) and score each with nbgrader's determine_grade.
Finally the correct solution cell is run again before the next mutant.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import determine_grade, is_grade, is_solution

from course import syllabus

from . import ROOT, mutants, settings


@dataclass
class StepScore:
    points: float
    max_points: float
    errors: list[str] = field(default_factory=list)


@dataclass
class MutantResult:
    mutant: mutants.Mutant
    visible: StepScore   # the cells as students see them
    graded: StepScore    # the cells as nbgrader grades them

    @property
    def caught(self) -> bool:
        return self.graded.points < self.graded.max_points


@dataclass
class Report:
    unit: str
    baseline: dict[str, StepScore]
    results: list[MutantResult]

    def table(self) -> str:
        rows = [f"{'step':<26} {'kind':<13} {'mutant':<55} {'visible':>9} {'graded':>9}"]
        for r in self.results:
            rows.append(f"{r.mutant.step:<26} {r.mutant.kind:<13} {r.mutant.description[:55]:<55} "
                        f"{r.visible.points:>4g}/{r.visible.max_points:<4g} "
                        f"{r.graded.points:>4g}/{r.graded.max_points:<4g}"
                        f"{'' if r.caught else '  NOT CAUGHT'}")
        caught = sum(r.caught for r in self.results)
        seen = sum(r.visible.points < r.visible.max_points for r in self.results)
        rows.append(f"{caught}/{len(self.results)} mutants lose points when graded; "
                    f"{seen} already fail the visible checks")
        per_step = {step: sum(r.mutant.step == step for r in self.results) for step in self.baseline}
        rows.append("mutants per step: " + ", ".join(f"{s} {n}" for s, n in per_step.items()))
        kinds = self.kinds()
        rows.append("kinds covered: " + ", ".join(f"{k} {kinds[k]}" for k in mutants.KINDS if kinds.get(k)))
        missing = [k for k in mutants.KINDS if not kinds.get(k)]
        if missing:
            rows.append("kinds not covered in this unit: " + ", ".join(missing))
        return "\n".join(rows)

    def kinds(self) -> dict[str, int]:
        """How many of the unit's mutants make each kind of mistake."""
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.mutant.kind] = counts.get(r.mutant.kind, 0) + 1
        return counts


def test_cells_by_step(nb) -> dict[str, list]:
    """Graded test cells, keyed by the step (solution grade_id) they test.

    Convention: the test cell of step `f` has grade_id `test_f` (or `test_f_<n>`).
    """
    steps = [c.metadata.nbgrader["grade_id"] for c in nb.cells if is_solution(c) and c.cell_type == "code"]
    by_step: dict[str, list] = {s: [] for s in steps}
    for cell in nb.cells:
        if is_grade(cell) and not is_solution(cell):
            gid = cell.metadata.nbgrader["grade_id"]
            # An exact name first: test_lstm_step_backward belongs to lstm_step_backward, not to lstm_step.
            owner = [s for s in steps if gid == f"test_{s}"] or [s for s in steps if gid.startswith(f"test_{s}_")]
            if len(owner) != 1:
                raise ValueError(f"test cell {gid!r} does not name exactly one step of {steps}")
            by_step[owner[0]].append(cell)
    return by_step


def solution_sources(nb) -> dict[str, str]:
    """The source notebook's answer to each step, keyed by grade_id; written answers (markdown cells
    that a person grades) included, as a student fills them in."""
    return {c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells if is_solution(c)}


def code_sources(nb) -> dict[str, str]:
    """The answers that run: :func:`solution_sources` without the written answers (markdown)."""
    return {c.metadata.nbgrader["grade_id"]: c.source for c in nb.cells
            if is_solution(c) and c.cell_type == "code"}


def fill_in_answers(nb, answers: dict[str, str], skip: tuple[str, ...] = ()) -> None:
    """Put answers into a student notebook's solution cells, as a student would."""
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers and gid not in skip:
            cell.source = answers[gid]


@contextmanager
def grading_environment():
    saved = dict(os.environ)
    settings.prepare_environment(ROOT)
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _score(client: NotebookClient, cells, *, visible: bool) -> StepScore:
    total, best, errors = 0.0, 0.0, []
    for cell in cells:
        cell = copy.deepcopy(cell)
        if visible:
            ClearHiddenTests().preprocess_cell(cell, {}, 0)
        cell.outputs = []
        client.execute_cell(cell, 0)
        points, max_points = determine_grade(cell)
        total, best = total + points, best + max_points
        errors += [f"{o.ename}: {o.evalue}".splitlines()[0][:200] for o in cell.outputs
                   if o.output_type == "error"]
        errors += ["(stderr) " + o.text[:200] for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stderr"]
    return StepScore(total, best, errors)


def _run_code(client: NotebookClient, source: str) -> None:
    cell = nbformat.v4.new_code_cell(source)
    client.execute_cell(cell, 0)
    failures = [o for o in cell.outputs if o.output_type == "error"]
    if failures:
        raise RuntimeError(f"could not run:\n{source}\n{failures[0].ename}: {failures[0].evalue}")


def run(unit_id: str, only_step: str | None = None, everything: bool = False) -> Report:
    """Every mutant of the unit (or of one step) through its graded cells.

    everything=True runs the demonstration cells as well, as nbgrader does.
    """
    unit = syllabus.load().unit(unit_id)
    source = ROOT / "solutions" / unit.id / unit.filename
    nb = nbformat.read(source, as_version=4)
    tests = test_cells_by_step(nb)
    solutions = solution_sources(nb)
    wanted = [m for m in mutants.for_notebook(unit.notebook) if only_step in (None, m.step)]
    unknown = {m.step for m in wanted} - set(tests)
    if unknown:
        raise ValueError(f"mutants for steps the notebook does not have: {sorted(unknown)}")

    workdir = Path(tempfile.mkdtemp(prefix=f"mutants-{unit.id}-"))
    for item in source.parent.iterdir():  # data files next to the notebook
        if item.is_file():
            shutil.copy(item, workdir)
    client = NotebookClient(nb, timeout=settings.CELL_TIMEOUT, allow_errors=True,
                            kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    try:
        with grading_environment(), client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code" and (everything or "nbgrader" in cell.metadata):
                    client.execute_cell(cell, index)
            baseline = {step: _score(client, cells, visible=False) for step, cells in tests.items()}
            results = []
            for m in wanted:
                _run_code(client, m.source)
                results.append(MutantResult(m, _score(client, tests[m.step], visible=True),
                                            _score(client, tests[m.step], visible=False)))
                _run_code(client, solutions[m.step])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Report(unit.id, baseline, results)
