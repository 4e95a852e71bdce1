"""References for the LSTM backward pass (unit 03): numeric gradients, and what known mistakes give.

Instructor-only. The visible checks read these values, on their own inputs, from
course/checks/expected/gated_cells.npz (through :mod:`autograder.reference.keras_gated`, which
re-exports them); the hidden tests call them directly.

The gradients are central differences in float64 of the LSTM's forward pass, written here in numpy
in Keras' layout (gate blocks i, f, c, o; tests/test_gated_cells.py holds it equal to
``keras.layers.LSTM`` to rounding). The loss is the one the notebook names: for one step,
``L = sum(dh_next * h_t) + sum(dc_next * c_t)``; for a sequence, ``L = sum(dH * H)``, so that the
upstream gradients are exactly ``dh_next``, ``dc_next`` and ``dH``. The ``*_mistakes`` functions run
an analytic backward pass with one mistake switched on, so that a message can name it.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-5   # the central difference's step

STEP_NAMES = ("dx_t", "dh_prev", "dc_prev", "dkernel", "drecurrent_kernel", "dbias")
SEQUENCE_NAMES = ("dX", "dh0", "dc0", "dkernel", "drecurrent_kernel", "dbias")


def _sig(v):
    return np.exp(-np.logaddexp(0.0, -v))   # no overflow for any score


def _parts(x, h, c, kernel, recurrent_kernel, bias):
    a = x @ kernel + h @ recurrent_kernel + bias
    u = recurrent_kernel.shape[0]
    i, f, g, o = _sig(a[:, :u]), _sig(a[:, u:2 * u]), np.tanh(a[:, 2 * u:3 * u]), _sig(a[:, 3 * u:])
    c_t = f * c + i * g
    return i, f, g, o, c_t, o * np.tanh(c_t)


def step(x, h, c, kernel, recurrent_kernel, bias):
    """One LSTM step in float64: (h_t, c_t)."""
    *_, c_t, h_t = _parts(*(np.asarray(a, np.float64) for a in (x, h, c, kernel, recurrent_kernel, bias)))
    return h_t, c_t


def states(X, h0, c0, kernel, recurrent_kernel, bias):
    """Every hidden state (batch, T, units) from (h0, c0), float64."""
    h, c = np.asarray(h0, np.float64), np.asarray(c0, np.float64)
    H = []
    for t in range(np.shape(X)[1]):
        h, c = step(np.asarray(X, np.float64)[:, t], h, c, kernel, recurrent_kernel, bias)
        H.append(h)
    return np.stack(H, axis=1)


def _numeric(loss_rows, arrays, batched, eps=EPS):
    """Central differences of sum(loss_rows()) for every array; a batched array (axis 0 = the
    examples, each adding its own term) is nudged in every example at once."""
    grads = []
    for array, rows in zip(arrays, batched):
        grad = np.zeros_like(array)
        for idx in np.ndindex(array.shape[1:] if rows else array.shape):
            where = (slice(None), *idx) if rows else idx
            kept = array[where].copy()
            array[where] = kept + eps
            up = loss_rows()
            array[where] = kept - eps
            down = loss_rows()
            array[where] = kept
            grad[where] = (up - down) / (2 * eps) if rows else float((up - down).sum()) / (2 * eps)
        grads.append(grad)
    return grads


def lstm_step_numeric_gradients(dh_next, dc_next, x, h, c, kernel, recurrent_kernel, bias):
    """{name: d L / d that input} for L = sum(dh_next * h_t) + sum(dc_next * c_t), by central differences."""
    arrays = [np.array(a, np.float64) for a in (x, h, c, kernel, recurrent_kernel, bias)]
    dh_next, dc_next = np.asarray(dh_next, np.float64), np.asarray(dc_next, np.float64)

    def rows():
        h_t, c_t = step(*arrays)
        return (dh_next * h_t).sum(axis=1) + (dc_next * c_t).sum(axis=1)

    return dict(zip(STEP_NAMES, _numeric(rows, arrays, (True, True, True, False, False, False))))


def lstm_numeric_gradients(dH, X, h0, c0, kernel, recurrent_kernel, bias):
    """{name: d L / d that input} for L = sum(dH * H) over a whole sequence, by central differences."""
    arrays = [np.array(a, np.float64) for a in (X, h0, c0, kernel, recurrent_kernel, bias)]
    dH = np.asarray(dH, np.float64)

    def rows():
        return np.einsum("btu,btu->b", dH, states(*arrays))

    return dict(zip(SEQUENCE_NAMES, _numeric(rows, arrays, (True, True, True, False, False, False))))


# --- an analytic backward pass with mistakes, to name them in messages -------------------------------

def _step_backward(dh, dc_next, x, h, c, kernel, recurrent_kernel, bias, *, tanh_c=True, gate_slope="right",
                   forget_path=True, candidate_slope=True, dc_in=True):
    i, f, g, o, c_t, _ = _parts(x, h, c, kernel, recurrent_kernel, bias)
    tc = np.tanh(c_t)
    dc = (dc_next if dc_in else 0.0) + dh * o * ((1 - tc ** 2) if tanh_c else 1.0)
    slope = {"right": lambda s: s * (1 - s), "value": lambda s: s, "tanh": lambda s: 1 - s ** 2}[gate_slope]
    da = np.concatenate([dc * g * slope(i), dc * c * slope(f),
                         dc * i * ((1 - g ** 2) if candidate_slope else 1.0), dh * tc * slope(o)], axis=1)
    return dict(dx_t=da @ kernel.T, dh_prev=da @ recurrent_kernel.T, dc_prev=dc * f if forget_path else dc,
                dkernel=x.T @ da, drecurrent_kernel=h.T @ da, dbias=da.sum(axis=0))


def _floats(*arrays):
    return [np.asarray(a, np.float64) for a in arrays]


STEP_MISTAKES = {
    "dc without the factor 1 - tanh(c_t)**2 (the slope of the tanh in h_t = o * tanh(c_t))": dict(tanh_c=False),
    "the sigmoid's slope written as sigmoid(a) instead of sigmoid(a) * (1 - sigmoid(a))": dict(gate_slope="value"),
    "the sigmoid's slope written as 1 - sigmoid(a)**2 (that is the tanh's)": dict(gate_slope="tanh"),
    "dc_prev = dc, without the forget gate (dc_prev = dc * f)": dict(forget_path=False),
    "the candidate's slope 1 - g**2 left out": dict(candidate_slope=False),
    "dc_next left out (dc only from dh_next)": dict(dc_in=False),
}


def lstm_step_backward_mistakes(dh_next, dc_next, x, h, c, kernel, recurrent_kernel, bias):
    """{gradient name: {mistake: what that mistake gives}} for one step."""
    args = _floats(dh_next, dc_next, x, h, c, kernel, recurrent_kernel, bias)
    wrong = {m: _step_backward(*args, **kw) for m, kw in STEP_MISTAKES.items()}
    return {name: {m: w[name] for m, w in wrong.items()} for name in STEP_NAMES}


def _bptt(dH, X, h0, c0, kernel, recurrent_kernel, bias, *, carry_h=True, carry_c=True, accumulate=True,
          every_step=True, **step_mistakes):
    dH, X, h0, c0, kernel, recurrent_kernel, bias = _floats(dH, X, h0, c0, kernel, recurrent_kernel, bias)
    T = X.shape[1]
    hs, cs = [h0], [c0]
    for t in range(T):
        h_t, c_t = step(X[:, t], hs[-1], cs[-1], kernel, recurrent_kernel, bias)
        hs.append(h_t)
        cs.append(c_t)
    dX = np.zeros_like(X)
    total = dict(dkernel=np.zeros_like(kernel), drecurrent_kernel=np.zeros_like(recurrent_kernel),
                 dbias=np.zeros_like(bias))
    dh_next, dc_next = np.zeros_like(h0), np.zeros_like(c0)
    for t in reversed(range(T)):
        upstream = dH[:, t] if every_step or t == T - 1 else 0.0 * dH[:, t]
        g = _step_backward(upstream + (dh_next if carry_h else 0.0), dc_next if carry_c else 0.0 * dc_next,
                           X[:, t], hs[t], cs[t], kernel, recurrent_kernel, bias, **step_mistakes)
        dX[:, t] = g["dx_t"]
        dh_next, dc_next = g["dh_prev"], g["dc_prev"]
        for name in total:
            total[name] = total[name] + g[name] if accumulate else g[name]
    return dict(dX=dX, dh0=dh_next, dc0=dc_next, **total)


SEQUENCE_MISTAKES = {
    "the weight gradients overwritten at each step instead of summed over time (+=)": dict(accumulate=False),
    "dh not carried back through time (step t sees only dH[:, t])": dict(carry_h=False),
    "dc not carried back through time (dc_next = 0 at every step)": dict(carry_c=False),
    "dH used at the last step only (every h_t is an output: add dH[:, t] at every step)": dict(every_step=False),
    "dc_prev = dc at every step, without the forget gate": dict(forget_path=False),
    "dc without the factor 1 - tanh(c_t)**2 at every step": dict(tanh_c=False),
}


def lstm_backward_mistakes(dH, X, h0, c0, kernel, recurrent_kernel, bias):
    """{gradient name: {mistake: what that mistake gives}} for a whole sequence."""
    wrong = {m: _bptt(dH, X, h0, c0, kernel, recurrent_kernel, bias, **kw) for m, kw in SEQUENCE_MISTAKES.items()}
    return {name: {m: w[name] for m, w in wrong.items()} for name in SEQUENCE_NAMES}
