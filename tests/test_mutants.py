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
