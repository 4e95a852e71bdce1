"""References for the gated cells (unit 03), computed by Keras' own LSTM and GRU layers.

Instructor-only: the visible checks read these values, on their own inputs, from
course/checks/expected/gated_cells.npz (written by ``python -m autograder generate``);
the hidden tests call them directly. The ``*_mistakes`` functions give what a known
mistake computes, so that a message can name it.

Each function builds the Keras layer, loads the given weights with
``set_weights`` and runs it: the numbers are Keras', not the course's.
They run on the CPU with cuDNN off, so that a GPU's TF32 matrix products
cannot blur a comparison at 1e-5; ``dtype`` picks float64 (tight checks)
or float32 (the precision a student's float32 answer is held to).
"""
from __future__ import annotations

import numpy as np

from course.env import import_keras


def _run(layer, X, states, dtype):
    keras = import_keras()
    with keras.device("cpu:0"):
        out = layer(np.asarray(X, dtype), initial_state=[np.asarray(s, dtype) for s in states])
    return [np.asarray(o, dtype=np.float64) for o in out]


def lstm_states(X, h0, c0, kernel, recurrent_kernel, bias, *, dtype="float64",
                activation="tanh", recurrent_activation="sigmoid"):
    """keras.layers.LSTM over X (batch, T, input_dim) from (h0, c0): H (batch, T, units), h_T, c_T."""
    keras = import_keras()
    units = np.shape(recurrent_kernel)[0]
    layer = keras.layers.LSTM(units, activation=activation, recurrent_activation=recurrent_activation,
                              return_sequences=True, return_state=True, use_cudnn=False, dtype=dtype)
    layer.build((None, None, np.shape(kernel)[0]))
    layer.set_weights([np.asarray(w, dtype) for w in (kernel, recurrent_kernel, bias)])
    H, h_last, c_last = _run(layer, X, (h0, c0), dtype)
    return H, h_last, c_last


def lstm_step(x, h, c, kernel, recurrent_kernel, bias, **options):
    """One step of keras.layers.LSTM (a sequence of length 1): (h_t, c_t)."""
    _, h_new, c_new = lstm_states(np.asarray(x)[:, None, :], h, c, kernel, recurrent_kernel, bias, **options)
    return h_new, c_new


def gru_states(X, h0, kernel, recurrent_kernel, bias, *, reset_after=True, dtype="float64",
               activation="tanh", recurrent_activation="sigmoid"):
    """keras.layers.GRU over X from h0: H (batch, T, units) and h_T.

    With reset_after=True the bias has shape (2, 3*units); with False, (3*units,).
    """
    keras = import_keras()
    units = np.shape(recurrent_kernel)[0]
    layer = keras.layers.GRU(units, activation=activation, recurrent_activation=recurrent_activation,
                             reset_after=reset_after, return_sequences=True, return_state=True,
                             use_cudnn=False, dtype=dtype)
    layer.build((None, None, np.shape(kernel)[0]))
    layer.set_weights([np.asarray(w, dtype) for w in (kernel, recurrent_kernel, bias)])
    H, h_last = _run(layer, X, (h0,), dtype)
    return H, h_last


def gru_step(x, h, kernel, recurrent_kernel, bias, **options):
    """One step of keras.layers.GRU: h_t."""
    return gru_states(np.asarray(x)[:, None, :], h, kernel, recurrent_kernel, bias, **options)[1]


def lstm_initial_bias(units):
    """The bias a freshly built keras.layers.LSTM(units) starts from (defaults: unit_forget_bias=True)."""
    keras = import_keras()
    layer = keras.layers.LSTM(units)
    layer.build((None, None, 2))
    return np.asarray(layer.get_weights()[2], dtype=np.float64)


# Initializers do not change a count; zeros skip the costly orthogonal one for big layers.
_CHEAP = dict(kernel_initializer="zeros", recurrent_initializer="zeros")


def lstm_param_count(input_dim, units):
    """count_params() of keras.layers.LSTM(units) built for inputs of size input_dim."""
    keras = import_keras()
    layer = keras.layers.LSTM(units, **_CHEAP)
    layer.build((None, None, input_dim))
    return int(layer.count_params())


def gru_param_count(input_dim, units, reset_after=True):
    """count_params() of keras.layers.GRU(units, reset_after=...) built for inputs of size input_dim."""
    keras = import_keras()
    layer = keras.layers.GRU(units, reset_after=reset_after, **_CHEAP)
    layer.build((None, None, input_dim))
    return int(layer.count_params())


def cell_state_derivative(x, h, c, kernel, recurrent_kernel, bias, eps=0.5):
    """d c_t[j] / d c_{t-1}[j] with h_{t-1} fixed, by central differences of Keras' LSTM.

    Each unit of c_{t-1} is nudged on its own (one copy of the batch per
    unit, all in one call), so the result is the true diagonal of the
    Jacobian whatever the off-diagonal entries are. With h_{t-1} fixed, c_t is
    exactly linear in c_{t-1}, so a large step loses nothing to truncation and
    keeps rounding at the level of float64. Returns (batch, units).
    """
    x, h, c = (np.asarray(a, np.float64) for a in (x, h, c))
    batch, units = c.shape
    nudge = eps * np.eye(units)[:, None, :]                       # (units, 1, units)
    c_all = np.concatenate([(c + nudge).reshape(-1, units), (c - nudge).reshape(-1, units)])
    repeat = lambda a: np.tile(a, (2 * units, 1))                 # noqa: E731
    _, out = lstm_step(repeat(x), repeat(h), c_all, kernel, recurrent_kernel, bias)
    up, down = out.reshape(2, units, batch, units)
    slope = (up - down) / (2 * eps)                               # slope[j, b, k] = d c_t[b, k] / d c_{t-1}[b, j]
    return np.einsum("jbj->bj", slope)


# --- what known mistakes compute, to name them in messages ---------------------------------------

def _blocks(array, order, k):
    """Reorder the k gate blocks along the last axis: block j of the result is block order[j]."""
    parts = np.split(np.asarray(array, np.float64), k, axis=-1)
    return np.concatenate([parts[j] for j in order], axis=-1)


def _sig(v):
    return np.exp(-np.logaddexp(0.0, -np.asarray(v, np.float64)))  # no overflow for any score


# --- what a mistaken LSTM computes ---------------------------------------------

def _lstm_parts(x, h, kernel, recurrent_kernel, bias):
    pre = np.asarray(x, np.float64) @ kernel + np.asarray(h, np.float64) @ recurrent_kernel + bias
    u = pre.shape[-1] // 4
    gate = lambda k: pre[..., k * u:(k + 1) * u]  # noqa: E731
    return _sig(gate(0)), _sig(gate(1)), np.tanh(gate(2)), _sig(gate(3))


def _lstm_mistakes(x, h, c, kernel, recurrent_kernel, bias):
    """{mistake: (h_t, c_t) that mistake gives}, from Keras where a mistake is a change of weights."""
    def keras(**change):
        w = dict(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h=h, c=c)
        options = {k: change.pop(k) for k in ("activation", "recurrent_activation") if k in change}
        w.update(change)
        return lstm_step(x, w["h"], w["c"], w["kernel"], w["recurrent_kernel"], w["bias"], **options)

    def order(*perm):
        return keras(kernel=_blocks(kernel, perm, 4), recurrent_kernel=_blocks(recurrent_kernel, perm, 4),
                     bias=_blocks(bias, perm, 4))

    u = np.shape(recurrent_kernel)[0]
    no_f_bias = np.array(bias, np.float64)
    no_f_bias[u:2 * u] = 0.0
    i, f, g, o = _lstm_parts(x, h, kernel, recurrent_kernel, bias)
    c_ok = f * c + i * g
    return {
        "the gates in the order i, f, o, c (the last two blocks swapped)": order(0, 1, 3, 2),
        "the gates in the order i, c, f, o (the old TensorFlow 1 order)": order(0, 2, 1, 3),
        "the gates in the order f, i, c, o (forget first, as some texts list them)": order(1, 0, 2, 3),
        "sigmoid and tanh swapped (gates through tanh, candidate through sigmoid)":
            keras(activation="sigmoid", recurrent_activation="tanh"),
        "a forget gate without its bias": keras(bias=no_f_bias),
        "no bias at all": keras(bias=np.zeros_like(no_f_bias)),
        "h_prev left out of the gates": keras(h=np.zeros_like(h)),
        "c_prev left out (c_t = i * candidate)": keras(c=np.zeros_like(c)),
        "c_t without the input gate (f * c_prev + candidate)": (o * np.tanh(f * c + g), f * c + g),
        "h_t = o * c_t (no tanh on the new cell state)": (o * c_ok, c_ok),
        "h_t from the old cell state (o * tanh(c_prev))": (o * np.tanh(c), c_ok),
    }




def _loop(step_fn, X, states, carry):
    """Run step_fn over time; carry[k] False feeds the initial state k at every step."""
    current, outs = list(states), []
    for x_t in np.moveaxis(X, 1, 0):   # time-major view: one (batch, input_dim) slice per step
        new = step_fn(x_t, *[cur if keep else first for cur, first, keep in zip(current, states, carry)])
        new = new if isinstance(new, tuple) else (new,)
        current = list(new)
        outs.append(new)
    return outs


def _lstm_numpy_step(x, h, c, kernel, recurrent_kernel, bias):
    i, f, g, o = _lstm_parts(x, h, kernel, recurrent_kernel, bias)
    new_c = f * c + i * g
    return o * np.tanh(new_c), new_c




def _gru_parts(x, h, kernel, recurrent_kernel, bias):
    bias = np.asarray(bias, np.float64)
    xs = np.split(np.asarray(x, np.float64) @ kernel + bias[0], 3, axis=-1)
    hs = np.split(np.asarray(h, np.float64) @ recurrent_kernel + bias[1], 3, axis=-1)
    return xs, hs


def _gru_mistakes(x, h, kernel, recurrent_kernel, bias):
    """{mistake: h_t that mistake gives}, from Keras where a mistake is a change of weights or options."""
    def keras(**change):
        w = dict(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h=h)
        options = {k: change.pop(k) for k in ("activation", "recurrent_activation", "reset_after") if k in change}
        w.update(change)
        return gru_step(x, w["h"], w["kernel"], w["recurrent_kernel"], w["bias"], **options)

    bias = np.asarray(bias, np.float64)
    (xz, xr, xh), (hz, hr, hh) = _gru_parts(x, h, kernel, recurrent_kernel, bias)
    z, r = _sig(xz + hz), _sig(xr + hr)
    candidate = np.tanh(xh + r * hh)
    u = np.shape(recurrent_kernel)[0]
    outside = np.tanh(xh + r * (hh - bias[1, 2 * u:]) + bias[1, 2 * u:])
    return {
        "z and r swapped (the gate order r, z, h, as PyTorch stores its GRU weights)":
            keras(kernel=_blocks(kernel, (1, 0, 2), 3), recurrent_kernel=_blocks(recurrent_kernel, (1, 0, 2), 3),
                  bias=_blocks(bias, (1, 0, 2), 3)),
        "the reset gate applied before the matrix product, (r * h_prev) @ U_h (Keras' reset_after=False)":
            keras(reset_after=False, bias=bias[0] + bias[1]),
        "z and 1 - z swapped: h_t = (1 - z) * h_prev + z * candidate": (1 - z) * h + z * candidate,
        "the recurrent bias row bias[1] ignored": keras(bias=np.stack([bias[0], 0 * bias[1]])),
        "the input bias row bias[0] ignored": keras(bias=np.stack([0 * bias[0], bias[1]])),
        "bias[0] used for both parts": keras(bias=np.stack([bias[0], bias[0]])),
        "the two bias rows swapped": keras(bias=bias[::-1]),
        "the recurrent bias of the candidate added outside the reset gate": z * h + (1 - z) * outside,
        "sigmoid and tanh swapped": keras(activation="sigmoid", recurrent_activation="tanh"),
        "h_prev left out of the gates": keras(h=np.zeros_like(h)),
        "the candidate returned (no mixing with h_prev by z)": candidate,
    }




def lstm_step_mistakes(x, h, c, kernel, recurrent_kernel, bias):
    """{mistake: (h_t, c_t) that mistake gives} for one LSTM step."""
    return _lstm_mistakes(x, h, c, kernel, recurrent_kernel, bias)


def lstm_forward_mistakes(X, h0, c0, kernel, recurrent_kernel, bias):
    """{"H": {mistake: H}, "c_last": {mistake: c_T}} for mistakes in the loop over time."""
    weights = (kernel, recurrent_kernel, bias)

    def wrong(carry):
        outs = _loop(lambda x, h, c: _lstm_numpy_step(x, h, c, *weights), X, (h0, c0), carry)
        return np.stack([o[0] for o in outs], axis=1), np.stack([o[1] for o in outs], axis=1)

    swapped = np.stack([o[0] for o in _loop(lambda x, h, c: _lstm_numpy_step(x, h, c, *weights)[::-1],
                                            X, (h0, c0), (True, True))], axis=1)
    return {
        "H": {"h0 and c0 fed to every step (the states are not carried)": wrong((False, False))[0],
              "c0 fed to every step (the cell state is not carried)": wrong((True, False))[0],
              "h0 fed to every step (the hidden state is not carried)": wrong((False, True))[0],
              "the cell states c_t stored instead of the hidden states h_t": wrong((True, True))[1],
              "h and c swapped when carried to the next step": swapped},
        "c_last": {"the cell state after the first step": wrong((True, True))[1][:, 0]},
    }


def cell_state_jacobian_mistakes(x, h, c, kernel, recurrent_kernel, bias):
    """{mistake: what that mistake gives for dc_t/dc_(t-1)}."""
    i, f, g, o = _lstm_parts(x, h, kernel, recurrent_kernel, bias)
    u = np.shape(recurrent_kernel)[0]
    no_bias = np.array(bias, np.float64)
    no_bias[u:2 * u] = 0.0
    c_t = f * c + i * g
    return {"the input gate i_t (block 0); f is block 1": i,
            "the output gate o_t (block 3); f is block 1": o,
            "the candidate tanh(z_c) (block 2); f is block 1": g,
            "f_t without its bias": _lstm_parts(x, h, kernel, recurrent_kernel, no_bias)[1],
            "f_t * c_prev (that is a term of c_t, not its derivative)": f * c,
            "1 - f_t": 1 - f,
            "ones: the highway is scaled by f_t, it is not an identity": np.ones_like(f),
            "o_t * (1 - tanh(c_t)^2) * f_t, which is dh_t/dc_{t-1}": o * (1 - np.tanh(c_t) ** 2) * f}


def gru_step_mistakes(x, h, kernel, recurrent_kernel, bias):
    """{mistake: h_t that mistake gives} for one GRU step."""
    return _gru_mistakes(x, h, kernel, recurrent_kernel, bias)


def gru_stale_states(X, h0, kernel, recurrent_kernel, bias):
    """Every step of a GRU from h0 (the state not carried): the steps as separate length-1 sequences."""
    b, T, d = np.shape(X)
    flat = gru_step(np.reshape(X, (b * T, d)), np.repeat(h0, T, axis=0), kernel, recurrent_kernel, bias)
    return flat.reshape(b, T, -1)


# --- the backward pass: numeric gradients and known mistakes (autograder/reference/lstm_backward.py) ---------
from .lstm_backward import (lstm_backward_mistakes, lstm_numeric_gradients,  # noqa: E402,F401
                            lstm_step_backward_mistakes, lstm_step_numeric_gradients)
