"""Every graded step rejects plausible wrong answers, through the notebook's own test cells."""
import pytest

from autograder import mutants, mutate
from autograder.__main__ import MIN_MUTANTS_PER_STEP
from course import syllabus

pytestmark = pytest.mark.nbgrader
UNITS = [u for u in syllabus.load().ready_units]


@pytest.fixture(scope="module", params=UNITS, ids=lambda u: u.id)
def report(request):
    result = mutate.run(request.param.id)
    print("\n" + result.table())
    return result


def test_solution_keeps_full_marks_in_the_mutant_kernel(report):
    for step, score in report.baseline.items():
        assert score.points == score.max_points, f"{step}: {score.errors}"


def test_every_step_has_enough_mutants(report):
    for step in report.baseline:
        count = sum(r.mutant.step == step for r in report.results)
        assert count >= MIN_MUTANTS_PER_STEP, f"{step} has only {count} mutants"


def test_every_mutant_loses_points(report):
    survivors = [f"{r.mutant.step}: {r.mutant.description}" for r in report.results if not r.caught]
    assert survivors == [], f"graded checks that cannot fail: {survivors}"


def test_every_mutant_gets_a_message_not_a_crash(report):
    # A failed check must explain itself: a CheckFailed naming the step, not a bare traceback.
    for r in report.results:
        if r.graded.errors:
            assert any(r.mutant.step in e for e in r.graded.errors), (r.mutant.description, r.graded.errors)


def test_mutants_are_named_like_the_student_function():
    with pytest.raises(ValueError, match="must be named"):
        @mutants.mutant("rnn_step", "misnamed")
        def something_else():
            pass
