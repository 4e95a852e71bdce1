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
from autograder.hidden._state import after_in_place_update, overwrite, two_results_kept
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


def _weights(rng, batch, time, input_dim, units, blocks):
    return (rng.normal(size=(batch, time, input_dim)), rng.normal(scale=0.5, size=(batch, units)),
            rng.normal(size=(batch, units)), rng.normal(scale=0.5, size=(input_dim, blocks * units)),
            rng.normal(scale=0.5, size=(units, blocks * units)))


def _saturated_lstm(time):
    """Scores of about +-1000 on every gate, the forget gate open and cell states of 400 to 800: tanh(c_t) is
    +-1 to the last bit (an exp(2 c) inside it overflows to inf / inf = nan)."""
    rng = np.random.default_rng(SEED + 40)
    u, d = 2, 2
    X = np.sign(rng.normal(size=(2, time, d)))
    kernel = 500.0 * np.sign(rng.normal(size=(d, 4 * u)))
    kernel[:, u:2 * u] = 0.0
    bias = np.r_[np.zeros(u), np.full(u, 1000.0), np.zeros(2 * u)]   # forget gate score 1000: f = 1
    recurrent_kernel = rng.normal(size=(u, 4 * u))
    h0 = rng.uniform(-1, 1, size=(2, u))
    c0 = np.array([[800.0, -600.0], [400.0, 700.0]])
    return X, h0, c0, kernel, recurrent_kernel, bias


CASES = _cases()
UNITS = (1, 2, 4, 7, 64)
PARAM_CASES = ((1, 1), (2, 7), (7, 2), (100, 100), (300, 1024))


def grade_lstm_step(fn):
    with using(visible, live):
        visible.check_lstm_step(fn, CASES)
    from course.checks import expect_close, expect_finite

    rng = np.random.default_rng(SEED + 41)
    X, h0, c0, kernel, recurrent_kernel = _weights(rng, 3, 1, 4, 5, 4)
    args = (X[:, 0].copy(), h0, c0, kernel, recurrent_kernel, rng.normal(size=20))
    after_in_place_update(visible.call, "lstm_step", fn, args, live.lstm_step, ("h_t", "c_t"), **visible.F64)
    X, h0, c0, kernel, recurrent_kernel, bias = _saturated_lstm(1)
    args = (X[:, 0], h0, c0, kernel, recurrent_kernel, bias)
    h_t, c_t = visible._pair("lstm_step", visible.call("lstm_step", fn, *args), ("h_t", "c_t"))
    h_ref, c_ref = live.lstm_step(*args)
    what = "scores of +-1000 and cell states of 400 to 800"
    expect_finite("lstm_step", f"h_t ({what})", np.asarray(h_t, dtype=np.float64),
                  "tanh(c_t) written with exp(2 c_t) overflows (inf / inf = nan) once c_t > 355: use np.tanh")
    expect_close("lstm_step", f"h_t ({what})", h_t, h_ref, **visible.F64)
    expect_close("lstm_step", f"c_t ({what})", c_t, c_ref, **visible.F64)


def grade_lstm_forward(fn):
    with using(visible, live):
        visible.check_lstm_forward(fn, CASES)
    from course.checks import expect_close, expect_finite, fail

    step = "lstm_forward"
    rng = np.random.default_rng(SEED + 42)
    args = (*_weights(rng, 2, 5, 3, 4, 4), rng.normal(size=16))
    result = visible._pair(step, visible.call(step, fn, *args), ("H", "h_last", "c_last"))
    for name, value in zip(("H", "h_last", "c_last"), result):
        if not isinstance(value, np.ndarray):
            fail(step, f"{name} should be a numpy array (np.stack the states along axis 1), got {type(value).__name__}")
    _one_dtype(step, fn, args, ("H", "h_last", "c_last"))
    after_in_place_update(visible.call, step, fn, args, live.lstm_states, ("H", "h_last", "c_last"), **visible.F64)
    # A long run with the forget gate open and every other gate saturated: the cell state stays in the hundreds.
    args = _saturated_lstm(12)
    H, h_last, c_last = visible._pair(step, visible.call(step, fn, *args), ("H", "h_last", "c_last"))
    refs = live.lstm_states(*args)
    what = "scores of +-1000, cell states of 400 and more over 12 steps"
    expect_finite(step, f"H ({what})", np.asarray(H, dtype=np.float64),
                  "tanh(c_t) written with exp(2 c_t) overflows (inf / inf = nan) once c_t > 355: use np.tanh")
    for name, got, want in zip(("H", "h_last", "c_last"), (H, h_last, c_last), refs):
        expect_close(step, f"{name} ({what})", got, want, **visible.F64)


def grade_keras_lstm_initial_bias(fn):
    with using(visible, live):
        visible.check_keras_lstm_initial_bias(fn, UNITS)
    from course.checks import expect_close

    step = "keras_lstm_initial_bias"
    two_results_kept(visible.call, step, fn, (4,), (4,), lambda second: expect_close(
        step, "a second bias for units=4, after the caller set the first one's values", second,
        live.lstm_initial_bias(4), rtol=0, atol=1e-7,
        hint="return a new array on every call: a cached one (functools.lru_cache) is shared by every caller, "
             "and one caller's training changes everyone's initial bias"), change_first=overwrite)


def grade_cell_state_jacobian_diag(fn):
    with using(visible, live):
        visible.check_cell_state_jacobian_diag(fn, CASES)
    rng = np.random.default_rng(SEED + 45)
    X, h0, c0, kernel, recurrent_kernel = _weights(rng, 3, 1, 4, 5, 4)
    after_in_place_update(visible.call, "cell_state_jacobian_diag", fn,
                          (X[:, 0].copy(), h0, c0, kernel, recurrent_kernel, rng.normal(size=20)),
                          live.cell_state_derivative, ("dc_t/dc_(t-1)",), **visible.F64)


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
    rng = np.random.default_rng(SEED + 43)
    X, h0, _, kernel, recurrent_kernel = _weights(rng, 3, 1, 4, 5, 3)
    args = (X[:, 0].copy(), h0, kernel, recurrent_kernel, rng.normal(size=(2, 15)))
    after_in_place_update(visible.call, "gru_step", fn, args, live.gru_step, ("h_t",), **visible.F64)


def grade_gru_forward(fn):
    with using(visible, live):
        visible.check_gru_forward(fn, CASES)
    rng = np.random.default_rng(SEED + 44)
    X, h0, _, kernel, recurrent_kernel = _weights(rng, 2, 5, 3, 4, 3)
    bias = rng.normal(size=(2, 12))
    _one_dtype("gru_forward", fn, (X, h0, kernel, recurrent_kernel, bias), ("H", "h_last"))
    after_in_place_update(visible.call, "gru_forward", fn, (X, h0, kernel, recurrent_kernel, bias),
                          live.gru_states, ("H", "h_last"), **visible.F64)


def _one_dtype(step, fn, args, names):
    """From float32 inputs, every array returned in one dtype: H and the last state are used together."""
    from course.checks import fail

    result = visible._pair(step, visible.call(step, fn, *(np.asarray(a, np.float32) for a in args)), names)
    dtypes = [str(getattr(value, "dtype", type(value).__name__)) for value in result]
    if len(set(dtypes)) > 1:
        fail(step, f"from float32 inputs it returns {', '.join(f'{n} as {d}' for n, d in zip(names, dtypes))}: "
                   f"one dtype for all (is H preallocated with np.zeros, which is float64?)")


# Counts past 2**24 (float32 rounds them) and 2**31 (int32 overflows), against the closed form, which equals
# Keras' count_params() on every case above (building these layers in Keras would allocate gigabytes).
LARGE_PARAM_CASES = ((4097, 4097), (1000, 4097), (16_384, 16_384))


def _large_counts(step, fn, formula):
    from course.checks import fail

    for d, u in LARGE_PARAM_CASES:
        got = visible._int(step, "the count", visible.call(step, fn, d, u))
        if got != formula(d, u):
            fail(step, f"parameters for input_dim={d}, units={u} is {got}, expected {formula(d, u)}: count with "
                       f"Python ints (float32 rounds counts past 2**24, int32 overflows past 2**31)")


def grade_lstm_param_count(fn):
    with using(visible, live):
        visible.check_lstm_param_count(fn, PARAM_CASES)
    _large_counts("lstm_param_count", fn, lambda d, u: 4 * (d * u + u * u + u))


def grade_gru_param_count(fn):
    with using(visible, live):
        visible.check_gru_param_count(fn, PARAM_CASES)
    _large_counts("gru_param_count", fn, lambda d, u: 3 * (d * u + u * u + 2 * u))


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible)
