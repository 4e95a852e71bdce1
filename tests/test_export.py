"""CSV export: exact content for a small hand-built class."""
import pytest

from autograder import export
from autograder.records import GRADED, TIMEOUT, WRONG_UNIT, Outcome, Rejected, StepResult, WrittenAnswer

U1, U2 = "01_rnn_by_hand", "02_bptt_and_gradients"
HEADER = "student_id,unit_id,status,score,max_score,written_pending,written_max,manual_grading,reason"


def outcomes():
    return [
        Outcome("bob", U1, TIMEOUT, 0, 13, "cell 12 ran past 300 s"),
        Outcome("alice", U1, GRADED, 12.5, 13, steps=[
            StepResult("rnn_step", 2, 2), StepResult("softmax", 0.5, 2, 'softmax: rows do not sum to 1, "or" so'),
        ], written=[WrittenAnswer("written_parameter_sharing", 2, True)]),
        Outcome("alice", U2, GRADED, 11, 11, steps=[StepResult("bptt", 11, 11)],
                written=[WrittenAnswer("written_global_norm_direction", 2, True),
                         WrittenAnswer("written_truncation_cost", 2, False)]),
        Outcome("carol", U1, WRONG_UNIT, 0, 13, "this is the notebook of 03_gated_cells"),
    ]


def test_grades_csv_exact(tmp_path):
    path = export.write_csv(outcomes(), tmp_path / "out" / "grades.csv", roster=[" Dave", "alice", "bob"], units=[U1, U2])
    assert path.read_bytes().decode().split("\r\n") == [
        f"{HEADER},{U1}/rnn_step,{U1}/softmax,{U2}/bptt",
        f"Dave,{U1},missing,0,13,0,2,,no submission,,,",
        f"Dave,{U2},missing,0,11,0,4,,no submission,,,",
        f"alice,{U1},graded,12.5,13,2,2,needs manual grading: 1 written answer (2 points: written_parameter_sharing),"
        ",2,0.5,",
        f"alice,{U2},graded,11,11,2,4,needs manual grading: 1 written answer (2 points: written_global_norm_direction),"
        ",,,11",
        f"bob,{U1},timeout,0,13,0,2,,cell 12 ran past 300 s,,,",
        f"bob,{U2},missing,0,11,0,4,,no submission,,,",
        f"carol,{U1},wrong-unit,0,13,0,2,,this is the notebook of 03_gated_cells,,,",
        "",
    ]


def test_written_answers_of_an_outcome_that_was_not_graded_await_nobody():
    timed_out = Outcome("bob", U1, TIMEOUT, 0, 13, "cell 12 ran past 300 s",
                        written=[WrittenAnswer("written_parameter_sharing", 2, True)])
    assert (timed_out.pending, timed_out.pending_points, timed_out.manual_grading()) == ([], 0, "")
    assert timed_out.written_max == 2


def test_units_limit_the_rows_and_no_roster_means_no_missing_rows(tmp_path):
    path = export.write_csv(outcomes(), tmp_path / "g.csv", units=[U2])
    assert path.read_bytes().decode().split("\r\n") == [
        f"{HEADER},{U2}/bptt",
        f"alice,{U2},graded,11,11,2,4,needs manual grading: 1 written answer (2 points: written_global_norm_direction),"
        ",11", ""]


def test_steps_csv_and_rejected_csv_exact(tmp_path):
    steps = export.write_steps_csv(outcomes(), tmp_path / "steps.csv")
    assert steps.read_bytes().decode().split("\r\n") == [
        "student_id,unit_id,step,points,max_points,message",
        f"alice,{U1},rnn_step,2,2,",
        f'alice,{U1},softmax,0.5,2,"softmax: rows do not sum to 1, ""or"" so"',
        f"alice,{U2},bptt,11,11,",
        "",
    ]
    rejected = export.write_rejected_csv([Rejected("z.zip!/b.pdf", "not a notebook (.pdf)"),
                                          Rejected("a/Copy of x.ipynb", "no student id in the path or name")],
                                         tmp_path / "rejected.csv")
    assert rejected.read_bytes().decode().split("\r\n") == [
        "path,reason", "a/Copy of x.ipynb,no student id in the path or name",
        "z.zip!/b.pdf,not a notebook (.pdf)", ""]


def test_duplicate_outcomes_are_an_error(tmp_path):
    twice = outcomes() + [Outcome("bob", U1, GRADED, 13, 13)]
    with pytest.raises(ValueError, match="two outcomes for student bob and unit 01_rnn_by_hand"):
        export.write_csv(twice, tmp_path / "g.csv")
