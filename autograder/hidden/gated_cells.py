"""Hidden tests for unit 03_gated_cells (instructor-only; never shipped to students).

The notebook's visible checks (course.checks.gated_cells) on cases the student
has not seen: the smallest sizes (batch 1, one step, one unit), square shapes
where no transpose or swapped axis can fail by shape, saturating weights, a
long sequence, every gate saturated, and random shapes from a fixed seed so that grading the same
notebook twice gives the same score. Each case is checked in float64 and with
float32 inputs against Keras' float32 layers.
"""
from __future__ import annotations

import numpy as np

from autograder.reference import keras_gated as live
from course.checks import gated_cells as visible
from course.checks.stored import using
from course.checks.gated_cells import Shapes

SEED = 27_182


def _cases() -> tuple[Shapes, ...]:
    rng = np.random.default_rng(SEED)
    cases = [
        Shapes(1, 1, 1, 1, seed=SEED + 1),               # the smallest of everything
        Shapes(4, 4, 4, 4, seed=SEED + 2),               # square: shapes cannot betray a transpose
        Shapes(2, 3, 5, 5, seed=SEED + 3, scale=2.5),    # large weights: the gates saturate
        Shapes(1, 15, 2, 3, seed=SEED + 4),              # one long sequence
    ]
    for i in range(3):
        batch, time, input_dim, units = (int(v) for v in rng.integers(1, 8, size=4))
        cases.append(Shapes(batch, time, input_dim, units, seed=SEED + 10 + i))
    return tuple(cases)


CASES = _cases()
UNITS = (1, 2, 4, 7, 64)
PARAM_CASES = ((1, 1), (2, 7), (7, 2), (100, 100), (300, 1024))


def grade_lstm_step(fn):
    with using(visible, live):
        visible.check_lstm_step(fn, CASES)


def grade_lstm_forward(fn):
    with using(visible, live):
        visible.check_lstm_forward(fn, CASES)


def grade_keras_lstm_initial_bias(fn):
    with using(visible, live):
        visible.check_keras_lstm_initial_bias(fn, UNITS)


def grade_cell_state_jacobian_diag(fn):
    with using(visible, live):
        visible.check_cell_state_jacobian_diag(fn, CASES)


# The backward pass: numeric gradients hold only where the loss is smooth at the scale of the nudge, so
# these cases keep moderate weights; the square case (input_dim = units) gives dkernel and
# drecurrent_kernel the same shape, so that swapping them fails by value; one long case has its forget
# gates near 1 (the cell-state path); two saturate every gate (scores of +-1000 and +-750).
def _backward_cases() -> tuple[Shapes, ...]:
    rng = np.random.default_rng(SEED + 20)
    cases = [
        Shapes(1, 1, 1, 1, seed=SEED + 21),
        Shapes(4, 4, 4, 4, seed=SEED + 22),
        Shapes(2, 3, 5, 5, seed=SEED + 23, scale=1.5),
        Shapes(1, 15, 2, 3, seed=SEED + 24, forget=3.0),
    ]
    for i in range(2):
        batch, time, input_dim, units = (int(v) for v in rng.integers(1, 7, size=4))
        cases.append(Shapes(batch, time, input_dim, units, seed=SEED + 25 + i))
    return tuple(cases)


BACKWARD_CASES = _backward_cases()
SATURATED = (visible.saturated_problem(1, 2, 2, 1, seed=SEED + 30),
             visible.saturated_problem(3, 4, 2, 3, seed=SEED + 31, level=750.0))


def grade_lstm_step_backward(fn, lstm_step_forward):
    with using(visible, live):
        visible.check_lstm_step_backward(fn, lstm_step_forward, BACKWARD_CASES, SATURATED)


def grade_lstm_backward(fn, lstm_forward_with_cache):
    with using(visible, live):
        visible.check_lstm_backward(fn, lstm_forward_with_cache, BACKWARD_CASES, SATURATED)


def grade_gru_step(fn):
    with using(visible, live):
        visible.check_gru_step(fn, CASES)


def grade_gru_forward(fn):
    with using(visible, live):
        visible.check_gru_forward(fn, CASES)


def grade_lstm_param_count(fn):
    with using(visible, live):
        visible.check_lstm_param_count(fn, PARAM_CASES)


def grade_gru_param_count(fn):
    with using(visible, live):
        visible.check_gru_param_count(fn, PARAM_CASES)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible)
