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
from autograder.hidden._exact import expect_exact as _expect_exact
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
    from course.checks import expect_close, fail

    step = "keras_lstm_initial_bias"
    bias = visible.call(step, fn, 6)
    if isinstance(bias, np.ndarray) and bias.dtype not in (np.float32, np.float64):
        fail(step, f"the bias has dtype {bias.dtype}: a layer's weights are float32 (Keras' default) or float64 "
                   f"(numpy's); {bias.dtype} cannot hold what training adds to it")
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
    bias = rng.normal(size=20)
    after_in_place_update(visible.call, "cell_state_jacobian_diag", fn,
                          (X[:, 0].copy(), h0, c0, kernel, recurrent_kernel, bias.copy()),
                          live.cell_state_derivative, ("dc_t/dc_(t-1)",), **visible.F64)
    # Cell states of about 1e8 (a long sequence that never forgets): the slope is still exactly f_t. A numeric
    # difference of c_t over a nudge of c_(t-1) loses digits there: c +- 1e-4 is rounded at that size.
    from course.checks import expect_close

    x = X[:, 0] * 0.5
    units = recurrent_kernel.shape[0]
    forget = slice(units, 2 * units)
    f = 0.5 * (1.0 + np.tanh(0.5 * (x @ kernel[:, forget] + h0 @ recurrent_kernel[:, forget] + bias[forget])))
    got = visible.call("cell_state_jacobian_diag", fn, x, h0, c0 * 1e8, kernel, recurrent_kernel, bias)
    expect_close("cell_state_jacobian_diag", "dc_t/dc_(t-1) for cell states of about 1e8", got, f, **visible.F64,
                 hint="c_t = f_t * c_(t-1) + i_t * g_t, so the slope is f_t itself, whatever the size of c_(t-1): "
                      "compute the forget gate, not a numeric difference")


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
    step = "lstm_step_backward"
    for s in BACKWARD_CASES[1:3]:
        w = visible.backward_problem(s)
        x, h, c = w["X"][:, :1], w["h0"], w["c0"]
        weights = (w["kernel"], w["recurrent_kernel"], w["bias"])
        _, _, cache = visible._pair(step, visible.call(step, lstm_step_forward, x[:, 0], h, c, *weights),
                                    ("h_t", "c_t", "cache"))
        grads = visible._pair(step, visible.call(step, fn, w["dH"][:, 0], w["dc"], cache), visible.STEP_GRADS)
        exact = _lstm_backward_exact(w["dH"][:, :1], x, h, c, *weights, dc_last=w["dc"])
        for name, key, got in zip(visible.STEP_GRADS, visible.SEQUENCE_GRADS, grads):
            _expect_exact(step, f"{name} (batch={s.batch}, input_dim={s.input_dim}, units={s.units})", got,
                          exact[key][:, 0] if key == "dX" else exact[key])


def grade_lstm_backward(fn, lstm_forward_with_cache):
    with using(visible, live):
        visible.check_lstm_backward(fn, lstm_forward_with_cache, BACKWARD_CASES, SATURATED)
    step = "lstm_backward"
    for s in BACKWARD_CASES[1:4]:
        w = visible.backward_problem(s)
        weights = (w["kernel"], w["recurrent_kernel"], w["bias"])
        out = visible._pair(step, visible.call(step, lstm_forward_with_cache, w["X"], w["h0"], w["c0"], *weights),
                            ("H", "h_last", "c_last", "cache"))
        grads = visible._pair(step, visible.call(step, fn, w["dH"], out[3]), visible.SEQUENCE_GRADS)
        exact = _lstm_backward_exact(w["dH"], w["X"], w["h0"], w["c0"], *weights)
        for name, got in zip(visible.SEQUENCE_GRADS, grads):
            _expect_exact(step, f"{name} (batch={s.batch}, T={s.time}, units={s.units})", got, exact[name])


# The exact float64 gradients, to hold a correct answer to rounding error: the numeric gradients' bound
# (1e-7) lets float32 work cast back to float64 pass; the text promises float64 to rounding error.


def _lstm_backward_exact(dH, X, h0, c0, kernel, recurrent_kernel, bias, dc_last=None):
    def sig(z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    h, c, steps = h0, c0, []
    for t in range(X.shape[1]):
        a = X[:, t] @ kernel + h @ recurrent_kernel + bias
        a_i, a_f, a_c, a_o = np.split(a, 4, axis=-1)
        i, f, g, o = sig(a_i), sig(a_f), np.tanh(a_c), sig(a_o)
        c_t = f * c + i * g
        steps.append((X[:, t], h, c, i, f, g, o, np.tanh(c_t)))
        h, c = o * np.tanh(c_t), c_t
    dh_next = np.zeros_like(h0)
    dc_next = np.zeros_like(c0) if dc_last is None else np.array(dc_last, np.float64)
    dX = np.zeros_like(X)
    dk, dr, db = np.zeros_like(kernel), np.zeros_like(recurrent_kernel), np.zeros_like(bias)
    for t in reversed(range(X.shape[1])):
        x, h_prev, c_prev, i, f, g, o, tanh_c = steps[t]
        dh = dH[:, t] + dh_next
        dc = dc_next + dh * o * (1 - tanh_c ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                             dh * tanh_c * o * (1 - o)], axis=-1)
        dX[:, t] = da @ kernel.T
        dh_next, dc_next = da @ recurrent_kernel.T, dc * f
        dk += x.T @ da
        dr += h_prev.T @ da
        db += da.sum(axis=0)
    return dict(dX=dX, dh0=dh_next, dc0=dc_next, dkernel=dk, drecurrent_kernel=dr, dbias=db)



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
