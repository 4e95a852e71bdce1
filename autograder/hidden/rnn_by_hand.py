"""Hidden tests for unit 01_rnn_by_hand (instructor-only; never shipped to students).

They run the same checks as the notebook's visible cells (course.checks.rnn_by_hand)
on cases the student has not seen: the smallest sizes (batch 1, one step, one unit),
square shapes where a transposed matrix or swapped axis no longer fails by shape,
saturating weights, and random shapes drawn from a fixed seed so that grading
the same notebook twice gives the same score.
"""
from __future__ import annotations

import numpy as np

from autograder.reference import keras_reference as live
from course.checks import rnn_by_hand as visible
from course.checks.stored import using
from course.checks.rnn_by_hand import Shapes

SEED = 61_803


def _cases() -> tuple[Shapes, ...]:
    rng = np.random.default_rng(SEED)
    cases = [
        Shapes(1, 1, 1, 1, vocab=2, seed=SEED + 1),             # the smallest of everything
        Shapes(4, 4, 4, 4, vocab=4, seed=SEED + 2),             # square: shapes cannot betray a transpose
        Shapes(2, 3, 5, 5, vocab=5, seed=SEED + 3, scale=2.5),  # large weights: tanh saturates
        Shapes(1, 17, 2, 3, vocab=3, seed=SEED + 4),            # one long sequence
    ]
    for i in range(4):
        batch, time, input_dim, units = (int(v) for v in rng.integers(1, 9, size=4))
        cases.append(Shapes(batch, time, input_dim, units, vocab=int(rng.integers(2, 30)),
                            seed=SEED + 10 + i))
    return tuple(cases)


CASES = _cases()
PARAM_CASES = ((2, 1, None), (2, 1, 1), (97, 13, None), (97, 13, 13), (30_000, 1024, 300))


def grade_rnn_step(fn):
    with using(visible, live):
        visible.check_rnn_step(fn, CASES)


def grade_rnn_forward(fn):
    with using(visible, live):
        visible.check_rnn_forward(fn, CASES)


def grade_softmax(fn):
    with using(visible, live):
        visible.check_softmax(fn, CASES)
    # A 1-D vector and a 4-D array: "the last axis" for any number of dimensions.
    z = np.random.default_rng(SEED + 20).normal(scale=4, size=(2, 3, 2, 6))
    from course.checks import expect_close
    call = visible.call
    ref = live.softmax

    for arr in (z[0, 0, 0], z):
        expect_close("softmax", f"softmax of an array of shape {arr.shape}", call("softmax", fn, arr), ref(arr))


def grade_next_token_probs(fn):
    with using(visible, live):
        visible.check_next_token_probs(fn, CASES)
    # H of any number of leading axes: one state per example, (batch, units).
    from course.checks import expect_close

    rng = np.random.default_rng(SEED + 21)
    H, W_y, b_y = rng.uniform(-1, 1, size=(5, 4)), rng.normal(size=(4, 9)), rng.normal(size=9)
    expect_close("next_token_probs", "probabilities for H of shape (5, 4)", visible.call("next_token_probs", fn, H, W_y, b_y),
                 live.softmax(H @ W_y + b_y))


def grade_teacher_forcing_pairs(fn):
    with using(visible, live):
        visible.check_teacher_forcing_pairs(fn, CASES)


def grade_sequence_cross_entropy(fn):
    with using(visible, live):
        visible.check_sequence_cross_entropy(fn, CASES)


def grade_rnn_lm_param_count(fn):
    with using(visible, live):
        visible.check_rnn_lm_param_count(fn, PARAM_CASES)


def grade_simple_rnn_from_weights(fn, rnn_forward=None):
    with using(visible, live):
        visible.check_simple_rnn_from_weights(fn, rnn_forward, CASES)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible)
