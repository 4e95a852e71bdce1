"""Every graded step rejects plausible wrong answers, through the notebook's own test cells."""
import pytest

from autograder import mutants, mutate
from autograder.__main__ import MIN_MUTANTS_PER_STEP
from course import syllabus

pytestmark = pytest.mark.nbgrader
UNITS = [u for u in syllabus.load().ready_units]


class _UnitMutants:
    """One unit's mutant run. A class per unit (below): with pytest-xdist's
    `--dist loadscope` (`make test`) each unit runs on one worker."""
    unit = None

    @pytest.fixture(scope="class")
    @classmethod
    def report(cls):
        result = mutate.run(cls.unit.id)
        print("\n" + result.table())
        return result

    def test_solution_keeps_full_marks_in_the_mutant_kernel(self, report):
        for step, score in report.baseline.items():
            assert score.points == score.max_points, f"{step}: {score.errors}"

    def test_every_step_has_enough_mutants(self, report):
        for step in report.baseline:
            count = sum(r.mutant.step == step for r in report.results)
            assert count >= MIN_MUTANTS_PER_STEP, f"{step} has only {count} mutants"

    def test_every_mutant_loses_points(self, report):
        survivors = [f"{r.mutant.step}: {r.mutant.description}" for r in report.results if not r.caught]
        assert survivors == [], f"graded checks that cannot fail: {survivors}"

    def test_every_mutant_gets_a_message_not_a_crash(self, report):
        # A failed check must explain itself: a CheckFailed naming the step, not a bare traceback.
        for r in report.results:
            if r.graded.errors:
                assert any(r.mutant.step in e for e in r.graded.errors), (r.mutant.description, r.graded.errors)


for _unit in UNITS:
    globals()[f"TestUnit_{_unit.id}"] = type(f"TestUnit_{_unit.id}", (_UnitMutants,), {"unit": _unit})


def test_mutants_are_named_like_the_student_function():
    with pytest.raises(ValueError, match="must be named"):
        @mutants.mutant("rnn_step", "misnamed")
        def something_else():
            pass


def test_a_mutant_names_a_known_kind_of_mistake():
    with pytest.raises(ValueError, match="unknown kind"):
        @mutants.mutant("rnn_step", "a kind nobody declared", kind="typo")
        def rnn_step():
            pass


# Units whose steps each carry at least five mutants, with the kinds of mistake that apply to them.
FIVE_PER_STEP = {
    "01_rnn_by_hand": {"logic", "delegation", "stability", "in-place", "precision", "state", "return-type",
                       "training-mode", "setting"},
    "02_bptt_and_gradients": {"logic", "delegation", "stability", "in-place", "precision", "state", "return-type"},
    "03_gated_cells": {"logic", "delegation", "stability", "in-place", "precision", "state", "return-type"},
}


@pytest.mark.parametrize("unit_id", sorted(FIVE_PER_STEP))
def test_every_step_has_five_mutants_and_the_unit_covers_its_kinds(unit_id):
    import nbformat

    unit = syllabus.load().unit(unit_id)
    nb = nbformat.read(mutate.ROOT / "solutions" / unit.id / unit.filename, as_version=4)
    found = mutants.for_notebook(unit.notebook)
    for step in mutate.solution_sources(nb):
        count = sum(m.step == step for m in found)
        assert count >= 5, f"{unit_id}/{step} has {count} mutants"
        if step != "simple_rnn_from_weights":   # Keras is that step's material: nothing to delegate to
            assert any(m.step == step and m.kind == "delegation" for m in found), f"{step}: no delegating mutant"
    assert FIVE_PER_STEP[unit_id] <= {m.kind for m in found}
