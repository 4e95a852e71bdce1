"""References for the gated cells (unit 03), computed by Keras' own LSTM and GRU layers.

Each function builds the Keras layer, loads the given weights with
``set_weights`` and runs it: the numbers are Keras', not the course's.
They run on the CPU with cuDNN off, so that a GPU's TF32 matrix products
cannot blur a comparison at 1e-5; ``dtype`` picks float64 (tight checks)
or float32 (the precision a student's float32 answer is held to).
"""
from __future__ import annotations

import numpy as np

from ..env import import_keras


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


def cell_state_derivative(x, h, c, kernel, recurrent_kernel, bias, eps=1e-4):
    """d c_t[j] / d c_{t-1}[j] with h_{t-1} fixed, by central differences of Keras' LSTM.

    Each unit of c_{t-1} is nudged on its own (one copy of the batch per
    unit, all in one call), so the result is the true diagonal of the
    Jacobian whatever the off-diagonal entries are. Returns (batch, units).
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
