"""Wrong answers for unit 03_gated_cells, each one a mistake students make.

Names are reused on purpose: each definition is what a student might have
typed for that function. They run in the notebook's namespace (np, sigmoid,
lstm_step and gru_step are the notebook's own).
"""
# ruff: noqa: F811
import numpy as np

from . import mutant

keras = sigmoid = lstm_step = gru_step = lstm_step_backward = None  # provided by the notebook's namespace


# --- lstm_step -------------------------------------------------------------------
@mutant("lstm_step", "gates in the order i, f, o, c")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_o, z_c = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_c)
    return sigmoid(z_o) * np.tanh(c_t), c_t


@mutant("lstm_step", "the forget gate without its bias")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    u = recurrent_kernel.shape[0]
    z = x_t @ kernel + h_prev @ recurrent_kernel
    z[:, :u] += bias[:u]
    z[:, 2 * u:] += bias[2 * u:]
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_c)
    return sigmoid(z_o) * np.tanh(c_t), c_t


@mutant("lstm_step", "tanh on the gates, sigmoid on the candidate")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = np.tanh(z_f) * c_prev + np.tanh(z_i) * sigmoid(z_c)
    return np.tanh(z_o) * sigmoid(c_t), c_t


@mutant("lstm_step", "h_t = o * c_t (no tanh on the cell state)")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_c)
    return sigmoid(z_o) * c_t, c_t


@mutant("lstm_step", "c_t without the input gate")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev + np.tanh(z_c)
    return sigmoid(z_o) * np.tanh(c_t), c_t


@mutant("lstm_step", "updates c_prev in place", kind="in-place")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_prev *= sigmoid(z_f)
    c_prev += sigmoid(z_i) * np.tanh(z_c)
    return sigmoid(z_o) * np.tanh(c_prev), c_prev


@mutant("lstm_step", "returns (c_t, h_t)", kind="return-type")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_c)
    return c_t, sigmoid(z_o) * np.tanh(c_t)


@mutant("lstm_step", "sigmoid written as exp(z) / (1 + exp(z)) (overflows on saturated gates)", kind="stability")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    sig = lambda v: np.exp(v) / (1 + np.exp(v))  # noqa: E731
    c_t = sig(z_f) * c_prev + sig(z_i) * np.tanh(z_c)
    return sig(z_o) * np.tanh(c_t), c_t


@mutant("lstm_step", "float32 inside (the inputs cast down)", kind="precision")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    f32 = np.float32
    z = x_t.astype(f32) @ kernel.astype(f32) + h_prev.astype(f32) @ recurrent_kernel.astype(f32) + bias.astype(f32)
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev.astype(f32) + sigmoid(z_i) * np.tanh(z_c)
    return sigmoid(z_o) * np.tanh(c_t), c_t


@mutant("lstm_step", "keras.layers.LSTMCell on the same weights", kind="delegation")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    cell = keras.layers.LSTMCell(recurrent_kernel.shape[0], dtype="float64")
    cell.build((None, kernel.shape[0]))
    cell.set_weights([kernel, recurrent_kernel, bias])
    h_t, (h_t, c_t) = cell(np.asarray(x_t, np.float64), [np.asarray(h_prev, np.float64), np.asarray(c_prev, np.float64)])
    return np.asarray(h_t), np.asarray(c_t)


@mutant("lstm_step", "keeps the first call's cell state", kind="state")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias, _kept={}):
    c_prev = _kept.setdefault(c_prev.shape, c_prev.copy())
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_c)
    return sigmoid(z_o) * np.tanh(c_t), c_t


@mutant("lstm_step", "caches the gate blocks of the weights keyed on their ids", kind="state")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias, _blocks={}):
    key = (id(kernel), id(recurrent_kernel), id(bias), kernel.shape, kernel.dtype)
    if key not in _blocks:
        _blocks[key] = [(K.copy(), U.copy(), b.copy()) for K, U, b in
                        zip(np.split(kernel, 4, axis=1), np.split(recurrent_kernel, 4, axis=1), np.split(bias, 4))]
    a = [x_t @ K + h_prev @ U + b for K, U, b in _blocks[key]]
    c_t = sigmoid(a[1]) * c_prev + sigmoid(a[0]) * np.tanh(a[2])
    return sigmoid(a[3]) * np.tanh(c_t), c_t


@mutant("lstm_step", "tanh(c_t) written with exp(2 c_t) (nan once c_t > 355)", kind="stability")
def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_c)
    e = np.exp(2 * c_t)
    return sigmoid(z_o) * (e - 1) / (e + 1), c_t


# --- lstm_forward ----------------------------------------------------------------
@mutant("lstm_forward", "the cell state not carried (c0 at every step)")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    h, states = h0, []
    for t in range(X.shape[1]):
        h, c = lstm_step(X[:, t, :], h, c0, kernel, recurrent_kernel, bias)
        states.append(h)
    return np.stack(states, axis=1), h, c


@mutant("lstm_forward", "neither state carried (h0, c0 at every step)")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    states = [lstm_step(X[:, t, :], h0, c0, kernel, recurrent_kernel, bias) for t in range(X.shape[1])]
    return np.stack([h for h, _ in states], axis=1), states[-1][0], states[-1][1]


@mutant("lstm_forward", "returns c0 as the last cell state")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    h, c, states = h0, c0, []
    for t in range(X.shape[1]):
        h, c = lstm_step(X[:, t, :], h, c, kernel, recurrent_kernel, bias)
        states.append(h)
    return np.stack(states, axis=1), h, c0


@mutant("lstm_forward", "H holds the cell states")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    h, c, states = h0, c0, []
    for t in range(X.shape[1]):
        h, c = lstm_step(X[:, t, :], h, c, kernel, recurrent_kernel, bias)
        states.append(c)
    return np.stack(states, axis=1), h, c


@mutant("lstm_forward", "time-major output (time, batch, units)", kind="return-type")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    h, c, states = h0, c0, []
    for t in range(X.shape[1]):
        h, c = lstm_step(X[:, t, :], h, c, kernel, recurrent_kernel, bias)
        states.append(h)
    return np.stack(states, axis=0), h, c


@mutant("lstm_forward", "h and c swapped between steps")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    h, c, states = h0, c0, []
    for t in range(X.shape[1]):
        c, h = lstm_step(X[:, t, :], h, c, kernel, recurrent_kernel, bias)
        states.append(h)
    return np.stack(states, axis=1), h, c


@mutant("lstm_forward", "keras.layers.LSTM does the loop", kind="delegation")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    layer = keras.layers.LSTM(recurrent_kernel.shape[0], return_sequences=True, return_state=True,
                              use_cudnn=False, dtype="float64")
    layer.build((None, None, kernel.shape[0]))
    layer.set_weights([kernel, recurrent_kernel, bias])
    H, h, c = layer(np.asarray(X, np.float64), initial_state=[np.asarray(h0, np.float64), np.asarray(c0, np.float64)])
    return np.asarray(H), np.asarray(h), np.asarray(c)


@mutant("lstm_forward", "float32 states (np.zeros default dtype mixed with float32 casts)", kind="precision")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    h, c = h0.astype(np.float32), c0.astype(np.float32)
    states = []
    for t in range(X.shape[1]):
        h, c = lstm_step(X[:, t, :].astype(np.float32), h, c, kernel.astype(np.float32),
                         recurrent_kernel.astype(np.float32), bias.astype(np.float32))
        states.append(h)
    return np.stack(states, axis=1), h, c


@mutant("lstm_forward", "continues from the previous call's states", kind="state")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias, _last={}):
    h, c = _last.get(h0.shape, (h0, c0))
    states = []
    for t in range(X.shape[1]):
        h, c = lstm_step(X[:, t, :], h, c, kernel, recurrent_kernel, bias)
        states.append(h)
    _last[h0.shape] = (h, c)
    return np.stack(states, axis=1), h, c


@mutant("lstm_forward", "writes the states into h0 and c0 in place", kind="in-place")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    states = []
    for t in range(X.shape[1]):
        h0[...], c0[...] = lstm_step(X[:, t, :], h0, c0, kernel, recurrent_kernel, bias)
        states.append(h0.copy())
    return np.stack(states, axis=1), h0.copy(), c0.copy()


@mutant("lstm_forward", "memoises the result on the ids of X, h0, c0 and kernel", kind="state")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias, _memo={}):
    key = (id(X), id(h0), id(c0), id(kernel), X.shape, X.dtype)
    if key not in _memo:
        h, c, states = h0, c0, []
        for t in range(X.shape[1]):
            h, c = lstm_step(X[:, t, :], h, c, kernel, recurrent_kernel, bias)
            states.append(h)
        _memo[key] = (np.stack(states, axis=1), h, c)
    return _memo[key]


@mutant("lstm_forward", "H returned as a list of per-example arrays", kind="return-type")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    h, c, states = h0, c0, []
    for t in range(X.shape[1]):
        h, c = lstm_step(X[:, t, :], h, c, kernel, recurrent_kernel, bias)
        states.append(h)
    return [list(np.stack(states, axis=1)), h, c]


@mutant("lstm_forward", "its own step with tanh(c) = (e^2c - 1) / (e^2c + 1)", kind="stability")
def lstm_forward(X, h0, c0, kernel, recurrent_kernel, bias):
    h, c, states = h0, c0, []
    for t in range(X.shape[1]):
        z = X[:, t, :] @ kernel + h @ recurrent_kernel + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
        e = np.exp(2 * c)
        h = sigmoid(z_o) * (e - 1) / (e + 1)
        states.append(h)
    return np.stack(states, axis=1), h, c


# --- keras_lstm_initial_bias -------------------------------------------------------
@mutant("keras_lstm_initial_bias", "all zeros (unit forget bias ignored)")
def keras_lstm_initial_bias(units):
    return np.zeros(4 * units)


@mutant("keras_lstm_initial_bias", "the ones in the input gate's block")
def keras_lstm_initial_bias(units):
    return np.concatenate([np.ones(units), np.zeros(3 * units)])


@mutant("keras_lstm_initial_bias", "all ones")
def keras_lstm_initial_bias(units):
    return np.ones(4 * units)


@mutant("keras_lstm_initial_bias", "only the forget block, shape (units,)", kind="return-type")
def keras_lstm_initial_bias(units):
    return np.ones(units)


@mutant("keras_lstm_initial_bias", "hard-coded answers to the visible sizes")
def keras_lstm_initial_bias(units):
    seen = {1: [0, 1, 0, 0], 3: [0] * 3 + [1] * 3 + [0] * 6, 5: [0] * 5 + [1] * 5 + [0] * 10}
    return np.array(seen.get(units, [0] * (4 * units)), dtype=float)


@mutant("keras_lstm_initial_bias", "reads it off a fresh keras.layers.LSTM", kind="delegation")
def keras_lstm_initial_bias(units):
    layer = keras.layers.LSTM(units)
    layer.build((None, None, 1))
    return np.asarray(layer.get_weights()[2], np.float64)


@mutant("keras_lstm_initial_bias", "a Python list", kind="return-type")
def keras_lstm_initial_bias(units):
    return [0.0] * units + [1.0] * units + [0.0] * (2 * units)


@mutant("keras_lstm_initial_bias", "an integer array", kind="return-type")
def keras_lstm_initial_bias(units):
    bias = np.zeros(4 * units, dtype=int)
    bias[units:2 * units] = 1
    return bias


# --- cell_state_jacobian_diag -----------------------------------------------------
@mutant("cell_state_jacobian_diag", "the input gate (block 0) instead of the forget gate")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    u = recurrent_kernel.shape[0]
    return sigmoid(x_t @ kernel[:, :u] + h_prev @ recurrent_kernel[:, :u] + bias[:u])


@mutant("cell_state_jacobian_diag", "the forget gate without its bias")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    u = recurrent_kernel.shape[0]
    return sigmoid(x_t @ kernel[:, u:2 * u] + h_prev @ recurrent_kernel[:, u:2 * u])


@mutant("cell_state_jacobian_diag", "f_t * c_prev")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    u = recurrent_kernel.shape[0]
    return sigmoid(x_t @ kernel[:, u:2 * u] + h_prev @ recurrent_kernel[:, u:2 * u] + bias[u:2 * u]) * c_prev


@mutant("cell_state_jacobian_diag", "ones (the highway as an identity)")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    return np.ones_like(c_prev)


@mutant("cell_state_jacobian_diag", "dh_t/dc_(t-1) instead of dc_t/dc_(t-1)")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    c_t = sigmoid(z_f) * c_prev + sigmoid(z_i) * np.tanh(z_c)
    return sigmoid(z_o) * (1 - np.tanh(c_t) ** 2) * sigmoid(z_f)


@mutant("cell_state_jacobian_diag", "sigmoid written as 1 / (1 + exp(-z)) in float32", kind="precision")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    units = recurrent_kernel.shape[0]
    f = slice(units, 2 * units)
    z_f = (x_t @ kernel[:, f] + h_prev @ recurrent_kernel[:, f] + bias[f]).astype(np.float32)
    return 1 / (1 + np.exp(-z_f))


@mutant("cell_state_jacobian_diag", "sigmoid written as exp(z) / (1 + exp(z))", kind="stability")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    units = recurrent_kernel.shape[0]
    f = slice(units, 2 * units)
    z_f = x_t @ kernel[:, f] + h_prev @ recurrent_kernel[:, f] + bias[f]
    return np.exp(z_f) / (1 + np.exp(z_f))


@mutant("cell_state_jacobian_diag", "keras.ops.sigmoid for the gate", kind="delegation")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    units = recurrent_kernel.shape[0]
    f = slice(units, 2 * units)
    return np.asarray(keras.ops.sigmoid(x_t @ kernel[:, f] + h_prev @ recurrent_kernel[:, f] + bias[f]))


@mutant("cell_state_jacobian_diag", "zeroes the other blocks of the bias in place", kind="in-place")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    units = recurrent_kernel.shape[0]
    bias[:units] = 0.0
    bias[2 * units:] = 0.0
    z = x_t @ kernel + h_prev @ recurrent_kernel + bias
    return sigmoid(z[:, units:2 * units])


@mutant("cell_state_jacobian_diag", "caches the forget-gate block of the weights keyed on their ids", kind="state")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias, _f={}):
    u = recurrent_kernel.shape[0]
    key = (id(kernel), id(recurrent_kernel), id(bias), kernel.shape)
    if key not in _f:
        _f[key] = (kernel[:, u:2 * u].copy(), recurrent_kernel[:, u:2 * u].copy(), bias[u:2 * u].copy())
    K, U, b = _f[key]
    return sigmoid(x_t @ K + h_prev @ U + b)


# --- gru_step ---------------------------------------------------------------------
@mutant("gru_step", "z and r swapped (gate order r, z, h)")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    x_r, x_z, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_r, h_z, h_h = np.split(h_prev @ recurrent_kernel + bias[1], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return z * h_prev + (1 - z) * np.tanh(x_h + r * h_h)


@mutant("gru_step", "the reset gate applied before the matrix product")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    u = recurrent_kernel.shape[0]
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, _ = np.split(h_prev @ recurrent_kernel + bias[1], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    candidate = np.tanh(x_h + (r * h_prev) @ recurrent_kernel[:, 2 * u:] + bias[1, 2 * u:])
    return z * h_prev + (1 - z) * candidate


@mutant("gru_step", "z and 1 - z swapped")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ recurrent_kernel + bias[1], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return (1 - z) * h_prev + z * np.tanh(x_h + r * h_h)


@mutant("gru_step", "the recurrent bias row ignored")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ recurrent_kernel, 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return z * h_prev + (1 - z) * np.tanh(x_h + r * h_h)


@mutant("gru_step", "the candidate's recurrent bias outside the reset gate")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    u = recurrent_kernel.shape[0]
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ recurrent_kernel, 3, axis=-1)
    z = sigmoid(x_z + h_z + bias[1, :u])
    r = sigmoid(x_r + h_r + bias[1, u:2 * u])
    return z * h_prev + (1 - z) * np.tanh(x_h + r * h_h + bias[1, 2 * u:])


@mutant("gru_step", "one bias row used for both parts")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ recurrent_kernel + bias[0], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return z * h_prev + (1 - z) * np.tanh(x_h + r * h_h)


@mutant("gru_step", "tanh written with exp (overflows on saturated scores)", kind="stability")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ recurrent_kernel + bias[1], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    e = np.exp(2 * (x_h + r * h_h))
    return z * h_prev + (1 - z) * (e - 1) / (e + 1)


@mutant("gru_step", "float32 inside", kind="precision")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    x_t, h_prev, kernel, recurrent_kernel, bias = (np.asarray(a, np.float32) for a in
                                                    (x_t, h_prev, kernel, recurrent_kernel, bias))
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ recurrent_kernel + bias[1], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return z * h_prev + (1 - z) * np.tanh(x_h + r * h_h)


@mutant("gru_step", "keras.layers.GRUCell on the same weights", kind="delegation")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    cell = keras.layers.GRUCell(recurrent_kernel.shape[0], dtype="float64")
    cell.build((None, kernel.shape[0]))
    cell.set_weights([kernel, recurrent_kernel, bias])
    return np.asarray(cell(np.asarray(x_t, np.float64), np.asarray(h_prev, np.float64))[0])


@mutant("gru_step", "keeps the first call's state", kind="state")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias, _kept={}):
    h_prev = _kept.setdefault(h_prev.shape, h_prev.copy())
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ recurrent_kernel + bias[1], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return z * h_prev + (1 - z) * np.tanh(x_h + r * h_h)


@mutant("gru_step", "sums the bias rows into bias[0] in place", kind="in-place")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias):
    units = recurrent_kernel.shape[0]
    x_z, x_r, x_h = np.split(x_t @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ recurrent_kernel + bias[1], 3, axis=-1)
    bias[0, :2 * units] += bias[1, :2 * units]
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return z * h_prev + (1 - z) * np.tanh(x_h + r * h_h)


@mutant("gru_step", "caches the recurrent kernel and bias keyed on their ids", kind="state")
def gru_step(x_t, h_prev, kernel, recurrent_kernel, bias, _cache={}):
    key = (id(recurrent_kernel), id(bias), recurrent_kernel.shape, recurrent_kernel.dtype)
    if key not in _cache:
        _cache[key] = (recurrent_kernel.copy(), bias.copy())
    U, B = _cache[key]
    x_z, x_r, x_h = np.split(x_t @ kernel + B[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h_prev @ U + B[1], 3, axis=-1)
    z, r = sigmoid(x_z + h_z), sigmoid(x_r + h_r)
    return z * h_prev + (1 - z) * np.tanh(x_h + r * h_h)


# --- gru_forward ------------------------------------------------------------------
@mutant("gru_forward", "the state not carried (h0 at every step)")
def gru_forward(X, h0, kernel, recurrent_kernel, bias):
    states = [gru_step(X[:, t, :], h0, kernel, recurrent_kernel, bias) for t in range(X.shape[1])]
    return np.stack(states, axis=1), states[-1]


@mutant("gru_forward", "returns the first state as the last")
def gru_forward(X, h0, kernel, recurrent_kernel, bias):
    h, states = h0, []
    for t in range(X.shape[1]):
        h = gru_step(X[:, t, :], h, kernel, recurrent_kernel, bias)
        states.append(h)
    return np.stack(states, axis=1), states[0]


@mutant("gru_forward", "time-major output (time, batch, units)", kind="return-type")
def gru_forward(X, h0, kernel, recurrent_kernel, bias):
    h, states = h0, []
    for t in range(X.shape[1]):
        h = gru_step(X[:, t, :], h, kernel, recurrent_kernel, bias)
        states.append(h)
    return np.stack(states, axis=0), h


@mutant("gru_forward", "H starts with h0 (one step short)")
def gru_forward(X, h0, kernel, recurrent_kernel, bias):
    h, states = h0, [h0]
    for t in range(X.shape[1] - 1):
        h = gru_step(X[:, t, :], h, kernel, recurrent_kernel, bias)
        states.append(h)
    return np.stack(states, axis=1), h


@mutant("gru_forward", "keras.layers.GRU does the loop", kind="delegation")
def gru_forward(X, h0, kernel, recurrent_kernel, bias):
    layer = keras.layers.GRU(recurrent_kernel.shape[0], return_sequences=True, return_state=True,
                             use_cudnn=False, dtype="float64")
    layer.build((None, None, kernel.shape[0]))
    layer.set_weights([kernel, recurrent_kernel, bias])
    H, h = layer(np.asarray(X, np.float64), initial_state=[np.asarray(h0, np.float64)])
    return np.asarray(H), np.asarray(h)


@mutant("gru_forward", "H collected in a float32 array", kind="precision")
def gru_forward(X, h0, kernel, recurrent_kernel, bias):
    H = np.zeros((X.shape[0], X.shape[1], h0.shape[1]), dtype=np.float32)
    h = h0
    for t in range(X.shape[1]):
        h = gru_step(X[:, t, :], h, kernel, recurrent_kernel, bias)
        H[:, t] = h
    return H, h


@mutant("gru_forward", "continues from the previous call's state", kind="state")
def gru_forward(X, h0, kernel, recurrent_kernel, bias, _last={}):
    h = _last.get(h0.shape, h0)
    states = []
    for t in range(X.shape[1]):
        h = gru_step(X[:, t, :], h, kernel, recurrent_kernel, bias)
        states.append(h)
    _last[h0.shape] = h
    return np.stack(states, axis=1), h


@mutant("gru_forward", "writes each state into h0 in place", kind="in-place")
def gru_forward(X, h0, kernel, recurrent_kernel, bias):
    states = []
    for t in range(X.shape[1]):
        h0[...] = gru_step(X[:, t, :], h0, kernel, recurrent_kernel, bias)
        states.append(h0.copy())
    return np.stack(states, axis=1), h0.copy()


@mutant("gru_forward", "memoises the result on the ids of X, h0 and kernel", kind="state")
def gru_forward(X, h0, kernel, recurrent_kernel, bias, _memo={}):
    key = (id(X), id(h0), id(kernel), X.shape, X.dtype)
    if key not in _memo:
        h, states = h0, []
        for t in range(X.shape[1]):
            h = gru_step(X[:, t, :], h, kernel, recurrent_kernel, bias)
            states.append(h)
        _memo[key] = (np.stack(states, axis=1), h)
    return _memo[key]


# --- parameter counts ---------------------------------------------------------------
@mutant("lstm_param_count", "3 blocks instead of 4")
def lstm_param_count(input_dim, units):
    return 3 * (input_dim * units + units * units + units)


@mutant("lstm_param_count", "two bias vectors per gate")
def lstm_param_count(input_dim, units):
    return 4 * (input_dim * units + units * units + 2 * units)


@mutant("lstm_param_count", "the recurrent weights forgotten")
def lstm_param_count(input_dim, units):
    return 4 * (input_dim * units + units)


@mutant("lstm_param_count", "hard-coded answers to the visible sizes")
def lstm_param_count(input_dim, units):
    seen = {(3, 5): 180, (65, 128): 99_328, (128, 128): 131_584, (10, 1): 48}
    return seen.get((input_dim, units), 0)


@mutant("lstm_param_count", "builds keras.layers.LSTM and calls count_params()", kind="delegation")
def lstm_param_count(input_dim, units):
    layer = keras.layers.LSTM(units)
    layer.build((None, None, input_dim))
    return int(layer.count_params())


@mutant("lstm_param_count", "a float (true division by 1.0 somewhere)", kind="return-type")
def lstm_param_count(input_dim, units):
    return 4 * (input_dim * units + units * units + units) / 1.0


@mutant("gru_param_count", "one bias row (reset_after=False)")
def gru_param_count(input_dim, units):
    return 3 * (input_dim * units + units * units + units)


@mutant("gru_param_count", "4 blocks, as in the LSTM")
def gru_param_count(input_dim, units):
    return 4 * (input_dim * units + units * units + 2 * units)


@mutant("gru_param_count", "the recurrent weights forgotten")
def gru_param_count(input_dim, units):
    return 3 * (input_dim * units + 2 * units)


@mutant("gru_param_count", "the input weights forgotten")
def gru_param_count(input_dim, units):
    return 3 * (units * units + 2 * units)


@mutant("gru_param_count", "builds keras.layers.GRU and calls count_params()", kind="delegation")
def gru_param_count(input_dim, units):
    layer = keras.layers.GRU(units)
    layer.build((None, None, input_dim))
    return int(layer.count_params())


@mutant("gru_param_count", "a numpy float", kind="return-type")
def gru_param_count(input_dim, units):
    return np.float64(3 * (input_dim * units + units * units + 2 * units))


@mutant("lstm_param_count", "np.int32 arithmetic (overflows past 2**31)", kind="precision")
def lstm_param_count(input_dim, units):
    d, u = np.int32(input_dim), np.int32(units)
    with np.errstate(over="ignore"):
        return 4 * (d * u + u * u + u)


@mutant("gru_param_count", "counted through float32 (large counts rounded)", kind="precision")
def gru_param_count(input_dim, units):
    return int(np.float32(3) * (np.float32(input_dim) * units + np.float32(units) * units + 2 * units))


# --- lstm_step_backward (the cache is the notebook's lstm_step_forward's) ------------------------------
@mutant("lstm_step_backward", "dc without the factor 1 - tanh(c_t)**2")
def lstm_step_backward(dh_next, dc_next, cache):
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    dc = dc_next + dh_next * o
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         dh_next * tanh_c * o * (1 - o)], axis=-1)
    return da @ kernel.T, da @ recurrent_kernel.T, dc * f, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("lstm_step_backward", "the sigmoid's slope taken as sigmoid(a) instead of s * (1 - s)")
def lstm_step_backward(dh_next, dc_next, cache):
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i, dc * c_prev * f, dc * i * (1 - g ** 2), dh_next * tanh_c * o], axis=-1)
    return da @ kernel.T, da @ recurrent_kernel.T, dc * f, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("lstm_step_backward", "dc_prev = dc (the forget gate left out of the cell-state path)")
def lstm_step_backward(dh_next, dc_next, cache):
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         dh_next * tanh_c * o * (1 - o)], axis=-1)
    return da @ kernel.T, da @ recurrent_kernel.T, dc, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("lstm_step_backward", "the weight gradients transposed (da.T @ x_t)", kind="return-type")
def lstm_step_backward(dh_next, dc_next, cache):
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         dh_next * tanh_c * o * (1 - o)], axis=-1)
    return da @ kernel.T, da @ recurrent_kernel.T, dc * f, da.T @ x_t, da.T @ h_prev, da.sum(axis=0)


@mutant("lstm_step_backward", "float32 inside", kind="precision")
def lstm_step_backward(dh_next, dc_next, cache):
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = (np.asarray(a, np.float32) for a in cache)
    dh_next, dc_next = np.float32(dh_next), np.float32(dc_next)
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         dh_next * tanh_c * o * (1 - o)], axis=-1)
    return da @ kernel.T, da @ recurrent_kernel.T, dc * f, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("lstm_step_backward", "turns the cached gates into their slopes in place", kind="in-place")
def lstm_step_backward(dh_next, dc_next, cache):
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    di, df, dg = dc * g, dc * c_prev, dc * i
    dc_prev = dc * f
    for gate in (i, f, o):
        gate *= 1 - gate
    da = np.concatenate([di * i, df * f, dg * (1 - g ** 2), dh_next * tanh_c * o], axis=-1)
    return da @ kernel.T, da @ recurrent_kernel.T, dc_prev, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("lstm_step_backward", "c_prev recovered from c_t by dividing by f (0/0 when a forget gate shuts)",
        kind="stability")
def lstm_step_backward(dh_next, dc_next, cache):
    x_t, h_prev, _, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    c_prev = (np.arctanh(tanh_c) - i * g) / f
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         dh_next * tanh_c * o * (1 - o)], axis=-1)
    return da @ kernel.T, da @ recurrent_kernel.T, dc * f, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


@mutant("lstm_step_backward", "dkernel summed into a total kept between calls (a mutable default)", kind="state")
def lstm_step_backward(dh_next, dc_next, cache, _total={}):
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         dh_next * tanh_c * o * (1 - o)], axis=-1)
    _total[kernel.shape] = _total.get(kernel.shape, 0.0) + x_t.T @ da
    return da @ kernel.T, da @ recurrent_kernel.T, dc * f, _total[kernel.shape], h_prev.T @ da, da.sum(axis=0)


@mutant("lstm_step_backward", "tf.GradientTape through the step rebuilt from the cache", kind="delegation")
def lstm_step_backward(dh_next, dc_next, cache):
    import tensorflow as tf
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    logit = lambda s: np.log(s) - np.log1p(-s)  # noqa: E731
    a = np.concatenate([logit(i), logit(f), np.arctanh(g), logit(o)], axis=-1)
    bias = (a - x_t @ kernel - h_prev @ recurrent_kernel)[0]
    watched = [tf.Variable(v) for v in (x_t, h_prev, c_prev, kernel, recurrent_kernel, bias)]
    with tf.GradientTape() as tape:
        x, h, c, K, U, b = watched
        zi, zf, zc, zo = tf.split(x @ K + h @ U + b, 4, axis=-1)
        c_t = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zc)
        loss = tf.reduce_sum(dh_next * tf.sigmoid(zo) * tf.tanh(c_t)) + tf.reduce_sum(dc_next * c_t)
    return tuple(np.asarray(v) for v in tape.gradient(loss, watched))


# --- lstm_backward (the cache is the notebook's lstm_forward_with_cache's) ------------------------------
@mutant("lstm_backward", "the weight gradients overwritten at each step instead of summed")
def lstm_backward(dH, cache):
    dh_next, dc_next = np.zeros_like(dH[:, 0]), np.zeros_like(dH[:, 0])
    dX = []
    for t in reversed(range(dH.shape[1])):
        dx_t, dh_next, dc_next, dkernel, drecurrent_kernel, dbias = lstm_step_backward(
            dH[:, t] + dh_next, dc_next, cache[t])
        dX.append(dx_t)
    return np.stack(dX[::-1], axis=1), dh_next, dc_next, dkernel, drecurrent_kernel, dbias


@mutant("lstm_backward", "dh not carried back (each step sees dH[:, t] only)")
def lstm_backward(dH, cache):
    dc_next = np.zeros_like(dH[:, 0])
    dX, dkernel, drecurrent_kernel, dbias = [], 0.0, 0.0, 0.0
    for t in reversed(range(dH.shape[1])):
        dx_t, dh_prev, dc_next, dk, dr, db = lstm_step_backward(dH[:, t], dc_next, cache[t])
        dX.append(dx_t)
        dkernel, drecurrent_kernel, dbias = dkernel + dk, drecurrent_kernel + dr, dbias + db
    return np.stack(dX[::-1], axis=1), dh_prev, dc_next, dkernel, drecurrent_kernel, dbias


@mutant("lstm_backward", "dc not carried back (zeros at every step)", kind="mechanism")
def lstm_backward(dH, cache):
    dh_next = np.zeros_like(dH[:, 0])
    dX, dkernel, drecurrent_kernel, dbias = [], 0.0, 0.0, 0.0
    for t in reversed(range(dH.shape[1])):
        dx_t, dh_next, dc0, dk, dr, db = lstm_step_backward(dH[:, t] + dh_next, np.zeros_like(dh_next), cache[t])
        dX.append(dx_t)
        dkernel, drecurrent_kernel, dbias = dkernel + dk, drecurrent_kernel + dr, dbias + db
    return np.stack(dX[::-1], axis=1), dh_next, dc0, dkernel, drecurrent_kernel, dbias


@mutant("lstm_backward", "dH used at the last step only")
def lstm_backward(dH, cache):
    dh_next, dc_next = dH[:, -1], np.zeros_like(dH[:, 0])
    dX, dkernel, drecurrent_kernel, dbias = [], 0.0, 0.0, 0.0
    for t in reversed(range(dH.shape[1])):
        dx_t, dh_next, dc_next, dk, dr, db = lstm_step_backward(dh_next, dc_next, cache[t])
        dX.append(dx_t)
        dkernel, drecurrent_kernel, dbias = dkernel + dk, drecurrent_kernel + dr, dbias + db
    return np.stack(dX[::-1], axis=1), dh_next, dc_next, dkernel, drecurrent_kernel, dbias


@mutant("lstm_backward", "adds the carried gradient into dH in place", kind="in-place")
def lstm_backward(dH, cache):
    dh_next, dc_next = np.zeros_like(dH[:, 0]), np.zeros_like(dH[:, 0])
    dX, dkernel, drecurrent_kernel, dbias = [], 0.0, 0.0, 0.0
    for t in reversed(range(dH.shape[1])):
        dH[:, t] += dh_next
        dx_t, dh_next, dc_next, dk, dr, db = lstm_step_backward(dH[:, t], dc_next, cache[t])
        dX.append(dx_t)
        dkernel, drecurrent_kernel, dbias = dkernel + dk, drecurrent_kernel + dr, dbias + db
    return np.stack(dX[::-1], axis=1), dh_next, dc_next, dkernel, drecurrent_kernel, dbias


@mutant("lstm_backward", "the sums kept in float32 arrays", kind="precision")
def lstm_backward(dH, cache):
    dh_next, dc_next = np.zeros_like(dH[:, 0]), np.zeros_like(dH[:, 0])
    dX = []
    dkernel, drecurrent_kernel = np.zeros(cache[0][3].shape, np.float32), np.zeros(cache[0][4].shape, np.float32)
    dbias = np.zeros(cache[0][3].shape[1], np.float32)
    for t in reversed(range(dH.shape[1])):
        dx_t, dh_next, dc_next, dk, dr, db = lstm_step_backward(dH[:, t] + dh_next, dc_next, cache[t])
        dX.append(dx_t)
        dkernel += dk
        drecurrent_kernel += dr
        dbias += db
    return np.stack(dX[::-1], axis=1), dh_next, dc_next, dkernel, drecurrent_kernel, dbias


@mutant("lstm_backward", "starts from the gradients the previous call ended with (a mutable default)", kind="state")
def lstm_backward(dH, cache, _carried={}):
    zeros = np.zeros_like(dH[:, 0])
    dh_next, dc_next = _carried.get(dH.shape, (zeros, zeros))
    dX, dkernel, drecurrent_kernel, dbias = [], 0.0, 0.0, 0.0
    for t in reversed(range(dH.shape[1])):
        dx_t, dh_next, dc_next, dk, dr, db = lstm_step_backward(dH[:, t] + dh_next, dc_next, cache[t])
        dX.append(dx_t)
        dkernel, drecurrent_kernel, dbias = dkernel + dk, drecurrent_kernel + dr, dbias + db
    _carried[dH.shape] = (dh_next, dc_next)
    return np.stack(dX[::-1], axis=1), dh_next, dc_next, dkernel, drecurrent_kernel, dbias


@mutant("lstm_backward", "tf.GradientTape through the sequence rebuilt from the cache", kind="delegation")
def lstm_backward(dH, cache):
    import tensorflow as tf
    x0, h0, c0, kernel, recurrent_kernel, i, f, g, o, _ = cache[0]
    logit = lambda s: np.log(s) - np.log1p(-s)  # noqa: E731
    a = np.concatenate([logit(i), logit(f), np.arctanh(g), logit(o)], axis=-1)
    bias = (a - x0 @ kernel - h0 @ recurrent_kernel)[0]
    X = np.stack([step[0] for step in cache], axis=1)
    watched = [tf.Variable(v) for v in (X, h0, c0, kernel, recurrent_kernel, bias)]
    with tf.GradientTape() as tape:
        x, h, c, K, U, b = watched
        H = []
        for t in range(X.shape[1]):
            zi, zf, zc, zo = tf.split(x[:, t] @ K + h @ U + b, 4, axis=-1)
            c = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zc)
            h = tf.sigmoid(zo) * tf.tanh(c)
            H.append(h)
        loss = tf.reduce_sum(dH * tf.stack(H, axis=1))
    return tuple(np.asarray(v) for v in tape.gradient(loss, watched))



# --- results kept by the answer and handed out again (state) ------------------------------------------------
@mutant("keras_lstm_initial_bias", "cached per size (as functools.lru_cache does): every caller shares one array",
        kind="state")
def keras_lstm_initial_bias(units, _cache={}):
    if units not in _cache:
        _cache[units] = np.zeros(4 * units)
        _cache[units][units:2 * units] = 1.0
    return _cache[units]


@mutant("lstm_backward", "weight-gradient sums in buffers kept per shape, zeroed and returned by every call",
        kind="state")
def lstm_backward(dH, cache, _sums={}):
    kernel, recurrent_kernel = cache[0][3], cache[0][4]
    key = (kernel.shape, recurrent_kernel.shape)
    if key not in _sums:
        _sums[key] = (np.zeros(kernel.shape), np.zeros(recurrent_kernel.shape), np.zeros(kernel.shape[1]))
    dkernel, drecurrent, dbias = _sums[key]
    for a in (dkernel, drecurrent, dbias):
        a.fill(0.0)
    dh_next, dc_next = np.zeros_like(dH[:, 0]), np.zeros_like(dH[:, 0])
    dX = []
    for t in reversed(range(dH.shape[1])):
        dx_t, dh_next, dc_next, dk, dr, db = lstm_step_backward(dH[:, t] + dh_next, dc_next, cache[t])
        dX.append(dx_t)
        dkernel += dk
        drecurrent += dr
        dbias += db
    return np.stack(dX[::-1], axis=1), dh_next, dc_next, dkernel, drecurrent, dbias


@mutant("gru_forward", "H preallocated with np.zeros (float64) while h_last keeps the inputs' float32",
        kind="return-type")
def gru_forward(X, h0, kernel, recurrent_kernel, bias):
    H = np.zeros((X.shape[0], X.shape[1], h0.shape[1]))
    h = h0
    for t in range(X.shape[1]):
        h = gru_step(X[:, t, :], h, kernel, recurrent_kernel, bias)
        H[:, t] = h
    return H, h


@mutant("lstm_backward", "weight-gradient sums kept in float32, cast back to float64 at the end", kind="precision")
def lstm_backward(dH, cache):
    dh_next, dc_next = np.zeros_like(dH[:, 0]), np.zeros_like(dH[:, 0])
    dX, sums = [], None
    for t in reversed(range(dH.shape[1])):
        dx_t, dh_next, dc_next, dk, dr, db = lstm_step_backward(dH[:, t] + dh_next, dc_next, cache[t])
        dX.append(dx_t)
        parts = [np.asarray(g, np.float32) for g in (dk, dr, db)]
        sums = parts if sums is None else [a + b for a, b in zip(sums, parts)]
    return (np.stack(dX[::-1], axis=1), dh_next, dc_next, *(np.asarray(s, np.float64) for s in sums))


@mutant("lstm_step_backward", "the gate slopes in float32", kind="precision")
def lstm_step_backward(dh_next, dc_next, cache):
    x_t, h_prev, c_prev, kernel, recurrent_kernel, i, f, g, o, tanh_c = cache
    i, f, g, o, tanh_c = (np.asarray(a, np.float32) for a in (i, f, g, o, tanh_c))
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         dh_next * tanh_c * o * (1 - o)], axis=-1).astype(np.float64)
    return (da @ kernel.T, da @ recurrent_kernel.T, np.asarray(dc * f, np.float64),
            x_t.T @ da, h_prev.T @ da, da.sum(axis=0))


@mutant("keras_lstm_initial_bias", "a float16 array", kind="precision")
def keras_lstm_initial_bias(units):
    bias = np.zeros(4 * units, dtype=np.float16)
    bias[units:2 * units] = 1
    return bias


@mutant("cell_state_jacobian_diag", "a central difference of lstm_step over c_prev instead of the forget gate",
        kind="mechanism")
def cell_state_jacobian_diag(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias):
    eps = 1e-4
    up = lstm_step(x_t, h_prev, c_prev + eps, kernel, recurrent_kernel, bias)[1]
    down = lstm_step(x_t, h_prev, c_prev - eps, kernel, recurrent_kernel, bias)[1]
    return (up - down) / (2 * eps)
