"""Hidden tests for unit 06_char_shakespeare (instructor-only; never shipped to students).

The notebook's visible checks (course.checks.char_shakespeare) on cases the
student has not seen: texts with punctuation, digits and non-ASCII letters,
a one-character text; windows with a stride longer than the window, exactly
one window, random ids; a batch of one window, a batch size larger than the
data; GRU and three-layer models, a batch of one and a single time step;
very large logits; other temperatures and logits; a one-character prefix; models with dropout, which
generation must leave off (inference); a single window, logits in the hundreds;
chunks of one id through a three-layer GRU, a float64 model with dropout over
130 ids, its last chunk shorter (the loss kept in float64).
Fixed seeds throughout, so that grading the same notebook twice gives the
same score.
"""
from __future__ import annotations

import math

from course.checks import char_shakespeare as visible
from course.checks.char_shakespeare import (BatchCase, CarryCase, GenerateCase, LossCase, ModelCase, PositionCase,
                                            SampleCase, StepCase, Windows)

SEED = 31_415

TEXTS = (
    "KING RICHARD III:\nNow is the winter of our discontent, 1592!",
    "Ça, déjà vu? Œuvre & ½ — fin.",
    "\n",
    "ab ba\tab\n\nBA",
)
ENCODE_CASES = (
    ("", "abc"),                                   # nothing to encode
    ("O Romeo, Romeo!\n", "O Romeo, Romeo! wherefore art thou\n"),
    ("é!", "!é?ab"),
    ("zzzz", "xyz"),
)
WINDOW_CASES = (
    Windows(30, 4, stride=7),                  # gaps between windows
    Windows(6, 5),                             # exactly one window
    Windows(50, 6, stride=1, seed=SEED),       # every start, random ids
    Windows(101, 10, seed=SEED + 1),
    Windows(2, 1),
)
BATCH_CASES = (
    BatchCase(1, 3, 1, SEED),                  # one window, one batch
    BatchCase(3, 2, 4, SEED + 1),              # batch larger than the data: no batch at all
    BatchCase(37, 5, 6, SEED + 2),
    BatchCase(16, 1, 1, SEED + 3),             # batches of one window
)
MODEL_CASES = (
    ModelCase(5, 2, 3, 3, "lstm", seed=SEED),
    ModelCase(2, 1, 1, 2, "gru", 0.25, seed=SEED + 2),
)
LOSS_CASES = (
    LossCase(1, 1, 2, seed=SEED),              # one position, two symbols
    LossCase(4, 7, 65, seed=SEED + 1),
    LossCase(2, 3, 9, seed=SEED + 2, scale=5000.0),
)
LOSS_VALUES = (0.0, 0.25, 1.0, math.log(65), 3.3, 10.0)
SAMPLE_CASES = (
    SampleCase((0.0, 0.2, -0.4, 1.1, 0.6, -0.9, 0.3), (1.0, 0.7, 3.0), seed=SEED),
    SampleCase((1.0, -0.5, 0.3), (0.5, 1.5), seed=SEED + 1),     # three symbols; every one drawn often enough
)
STEP_CASES = (
    StepCase(5, 3, 4, 3, "lstm", batch=2, time=4, seed=SEED),
    StepCase(8, 4, 3, 2, "gru", batch=1, time=6, seed=SEED + 1),
    StepCase(6, 2, 5, 1, "lstm", batch=4, time=1, seed=SEED + 2),
    StepCase(5, 3, 4, 2, "lstm", batch=2, time=3, seed=SEED + 5, dropout=0.3),   # dropout: inference asked
)
GENERATE_CASES = (
    GenerateCase(StepCase(6, 3, 5, 2, "gru", batch=1, time=1, seed=SEED + 3, scale=1.0), (2, 0, 4, 1, 1, 3), 9),
    GenerateCase(StepCase(7, 4, 6, 1, "lstm", batch=1, time=1, seed=SEED + 4, scale=1.0), (5,), 6),
    GenerateCase(StepCase(6, 3, 4, 2, "gru", batch=1, time=1, seed=SEED + 6, scale=1.0, dropout=0.4), (1, 2), 5),
)

POSITION_CASES = (
    PositionCase(StepCase(5, 3, 4, 3, "lstm", batch=1, time=1, seed=SEED + 7)),          # one window of one
    PositionCase(StepCase(8, 4, 6, 2, "gru", batch=5, time=9, seed=SEED + 8, dropout=0.4)),
    PositionCase(StepCase(6, 3, 5, 1, "lstm", batch=3, time=4, seed=SEED + 9), large=True),   # logits in the hundreds
)
CARRY_CASES = (
    CarryCase(StepCase(5, 3, 4, 3, "gru", batch=1, time=1, seed=SEED + 10), length=5, chunk=1),      # one id a call
    CarryCase(StepCase(6, 4, 5, 2, "lstm", batch=1, time=1, seed=SEED + 13, scale=0.4, dropout=0.3), length=131,
              chunk=30, float64=True),
)


def grade_build_vocab(fn):
    visible.check_build_vocab(fn, TEXTS)


def grade_encode(fn):
    visible.check_encode(fn, ENCODE_CASES)


def grade_decode(fn):
    visible.check_decode(fn, ENCODE_CASES)


def grade_make_windows(fn):
    visible.check_make_windows(fn, WINDOW_CASES)


def grade_batches(fn):
    visible.check_batches(fn, BATCH_CASES)


def grade_build_char_model(fn):
    visible.check_build_char_model(fn, MODEL_CASES)


def grade_sequence_loss(fn):
    visible.check_sequence_loss(fn, LOSS_CASES)


def grade_perplexity(fn):
    visible.check_perplexity(fn, LOSS_VALUES)


def grade_bits_per_char(fn):
    visible.check_bits_per_char(fn, LOSS_VALUES)


def grade_sample_next(fn):
    visible.check_sample_next(fn, SAMPLE_CASES)


def grade_char_step(fn):
    visible.check_char_step(fn, STEP_CASES)


def grade_generate(fn):
    # The visible check has already tested the seed and the temperature; these cases test the states.
    visible.check_generate(fn, GENERATE_CASES, sampling=False)


def grade_loss_by_position(fn):
    visible.check_loss_by_position(fn, POSITION_CASES)


def grade_carried_state_loss(fn):
    visible.check_carried_state_loss(fn, CARRY_CASES)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible, handed={
    "grade_carried_state_loss": ("__call__", "predict_on_batch", "predict"),   # the stateful model it is given
})
