"""Every graded step rejects plausible wrong answers, through the notebook's own test cells."""
import pytest

from autograder import mutants, mutate
from course import syllabus



# Every mutant's run through the graded cells (solution full marks, each mutant loses its step's points with a
# message, enough mutants per step) is in tests/test_judge.py, which runs each unit once for both the kernel's
# and the judge's verdicts.


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
    "03_gated_cells": {"logic", "delegation", "stability", "in-place", "precision", "state", "return-type",
                       "mechanism"},
}


@pytest.mark.parametrize("unit_id", sorted(FIVE_PER_STEP))
def test_every_step_has_five_mutants_and_the_unit_covers_its_kinds(unit_id):
    import nbformat

    unit = syllabus.load().unit(unit_id)
    nb = nbformat.read(mutate.ROOT / "solutions" / unit.id / unit.filename, as_version=4)
    found = mutants.for_notebook(unit.notebook)
    for step in mutate.code_sources(nb):
        count = sum(m.step == step for m in found)
        assert count >= 5, f"{unit_id}/{step} has {count} mutants"
        if step != "simple_rnn_from_weights":   # Keras is that step's material: nothing to delegate to
            assert any(m.step == step and m.kind == "delegation" for m in found), f"{step}: no delegating mutant"
    assert FIVE_PER_STEP[unit_id] <= {m.kind for m in found}
