"""Wrong answers for unit 01_rnn_by_hand, each one a mistake students make.

Names are reused on purpose: each definition is what a student might have
typed for that function. They run in the notebook's namespace (np, keras,
softmax, rnn_step are the notebook's own).
"""
# ruff: noqa: F811
import numpy as np

from . import mutant

keras = softmax = rnn_step = None  # provided by the notebook's namespace


# --- rnn_step -----------------------------------------------------------------
@mutant("rnn_step", "the bias left out")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    return np.tanh(x_t @ W_x + h_prev @ W_h)


@mutant("rnn_step", "sigmoid instead of tanh")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    return 1 / (1 + np.exp(-(x_t @ W_x + h_prev @ W_h + b)))


@mutant("rnn_step", "recurrent weights transposed")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    return np.tanh(x_t @ W_x + h_prev @ W_h.T + b)


@mutant("rnn_step", "no nonlinearity")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    return x_t @ W_x + h_prev @ W_h + b


@mutant("rnn_step", "the previous state ignored")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    return np.tanh(x_t @ W_x + b)


@mutant("rnn_step", "updates h_prev in place", kind="in-place")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    h_prev[...] = np.tanh(x_t @ W_x + h_prev @ W_h + b)
    return h_prev


@mutant("rnn_step", "squeezes the result (wrong shape for a batch of one)", kind="return-type")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    return np.squeeze(np.tanh(x_t @ W_x + h_prev @ W_h + b))


@mutant("rnn_step", "Keras' SimpleRNNCell on the same weights", kind="delegation")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    cell = keras.layers.SimpleRNNCell(W_h.shape[0], dtype="float64")
    cell.build((None, W_x.shape[0]))
    cell.set_weights([W_x, W_h, b])
    return np.asarray(cell(x_t, [h_prev])[0])


@mutant("rnn_step", "keras.ops for the arithmetic", kind="delegation")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    return np.asarray(keras.ops.tanh(keras.ops.matmul(x_t, W_x) + keras.ops.matmul(h_prev, W_h) + b))


@mutant("rnn_step", "remembers the first batch's state between calls", kind="state")
def rnn_step(x_t, h_prev, W_x, W_h, b, _memory={}):
    key = h_prev.shape
    if key not in _memory:
        _memory[key] = h_prev.copy()
    return np.tanh(x_t @ W_x + _memory[key] @ W_h + b)


@mutant("rnn_step", "caches [W_x; W_h] keyed on the weights' ids (stale after an in-place update)", kind="state")
def rnn_step(x_t, h_prev, W_x, W_h, b, _stacked={}):
    key = (id(W_x), id(W_h), W_x.shape, W_h.shape)
    if key not in _stacked:
        _stacked[key] = np.vstack([W_x, W_h])
    return np.tanh(np.hstack([x_t, h_prev]) @ _stacked[key] + b)


@mutant("rnn_step", "tanh written with exp (nan once |a| > ~710)", kind="stability")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    a = x_t @ W_x + h_prev @ W_h + b
    return (np.exp(a) - np.exp(-a)) / (np.exp(a) + np.exp(-a))


# --- rnn_forward --------------------------------------------------------------
@mutant("rnn_forward", "the state not carried (h0 at every step)")
def rnn_forward(X, h0, W_x, W_h, b):
    states = [rnn_step(X[:, t, :], h0, W_x, W_h, b) for t in range(X.shape[1])]
    return np.stack(states, axis=1), states[-1]


@mutant("rnn_forward", "one step short")
def rnn_forward(X, h0, W_x, W_h, b):
    h, states = h0, [h0]
    for t in range(X.shape[1] - 1):
        h = rnn_step(X[:, t, :], h, W_x, W_h, b)
        states.append(h)
    return np.stack(states, axis=1), h


@mutant("rnn_forward", "loops over the batch axis instead of time")
def rnn_forward(X, h0, W_x, W_h, b):
    h, states = h0, []
    for t in range(X.shape[0]):
        h = rnn_step(X[t], h, W_x, W_h, b)
        states.append(h)
    return np.stack(states, axis=1), h


@mutant("rnn_forward", "time-major output (time, batch, units)")
def rnn_forward(X, h0, W_x, W_h, b):
    h, states = h0, []
    for t in range(X.shape[1]):
        h = rnn_step(X[:, t, :], h, W_x, W_h, b)
        states.append(h)
    return np.stack(states, axis=0), h


@mutant("rnn_forward", "returns the first state as the last")
def rnn_forward(X, h0, W_x, W_h, b):
    h, states = h0, []
    for t in range(X.shape[1]):
        h = rnn_step(X[:, t, :], h, W_x, W_h, b)
        states.append(h)
    return np.stack(states, axis=1), states[0]


@mutant("rnn_forward", "carries the state over from the previous call", kind="state")
def rnn_forward(X, h0, W_x, W_h, b, _last={}):
    h = _last.get(h0.shape, h0)
    states = []
    for t in range(X.shape[1]):
        h = rnn_step(X[:, t, :], h, W_x, W_h, b)
        states.append(h)
    _last[h0.shape] = h
    return np.stack(states, axis=1), h


@mutant("rnn_forward", "scales W_h in place to keep it stable", kind="in-place")
def rnn_forward(X, h0, W_x, W_h, b):
    norm = np.linalg.norm(W_h, 2)
    if norm > 1:
        W_h /= norm
    h, states = h0, []
    for t in range(X.shape[1]):
        h = rnn_step(X[:, t, :], h, W_x, W_h, b)
        states.append(h)
    return np.stack(states, axis=1), h


@mutant("rnn_forward", "keras.layers.SimpleRNN does the loop", kind="delegation")
def rnn_forward(X, h0, W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], return_sequences=True, return_state=True, dtype="float64")
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_x, W_h, b])
    H, h = layer(X, initial_state=[h0])
    return np.asarray(H), np.asarray(h)


@mutant("rnn_forward", "memoises the result on the ids of X, h0 and W_h", kind="state")
def rnn_forward(X, h0, W_x, W_h, b, _memo={}):
    key = (id(X), X.shape, id(h0), id(W_h))
    if key not in _memo:
        h, states = h0, []
        for t in range(X.shape[1]):
            h = rnn_step(X[:, t, :], h, W_x, W_h, b)
            states.append(h)
        _memo[key] = (np.stack(states, axis=1), h)
    return _memo[key]


@mutant("rnn_forward", "H returned as a list of per-example lists", kind="return-type")
def rnn_forward(X, h0, W_x, W_h, b):
    h, states = h0, []
    for t in range(X.shape[1]):
        h = rnn_step(X[:, t, :], h, W_x, W_h, b)
        states.append(h)
    return [list(s) for s in np.stack(states, axis=1)], h


# --- softmax ------------------------------------------------------------------
@mutant("softmax", "no max shift (overflows on large logits)", kind="stability")
def softmax(z):
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


@mutant("softmax", "over axis 0 instead of the last axis")
def softmax(z):
    e = np.exp(z - np.max(z, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


@mutant("softmax", "one global max instead of each row's", kind="stability")
def softmax(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=-1, keepdims=True)


@mutant("softmax", "normalised by the sum of the whole array")
def softmax(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e)


@mutant("softmax", "the row minimum subtracted (overflows on a wide row)", kind="stability")
def softmax(z):
    e = np.exp(z - np.min(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


@mutant("softmax", "scores clipped to [-500, 500] before exp", kind="stability")
def softmax(z):
    e = np.exp(np.clip(z, -500, 500))
    return e / np.sum(e, axis=-1, keepdims=True)


@mutant("softmax", "shifts the scores in place", kind="in-place")
def softmax(z):
    z -= np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


@mutant("softmax", "keras.ops.softmax", kind="delegation")
def softmax(z):
    return np.asarray(keras.ops.softmax(z, axis=-1))


@mutant("softmax", "the course's own helpers", kind="delegation")
def softmax(z):
    from course.checks import stored
    return stored.stored("rnn_by_hand").softmax(z)


# --- next_token_probs ---------------------------------------------------------
@mutant("next_token_probs", "the output bias left out")
def next_token_probs(H, W_y, b_y):
    return softmax(H @ W_y)


@mutant("next_token_probs", "logits returned, no softmax")
def next_token_probs(H, W_y, b_y):
    return H @ W_y + b_y


@mutant("next_token_probs", "softmax over the time axis")
def next_token_probs(H, W_y, b_y):
    logits = H @ W_y + b_y
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@mutant("next_token_probs", "softmax before the output layer")
def next_token_probs(H, W_y, b_y):
    return softmax(H) @ W_y + b_y


@mutant("next_token_probs", "a softmax without the max shift, inline", kind="stability")
def next_token_probs(H, W_y, b_y):
    e = np.exp(H @ W_y + b_y)
    return e / e.sum(axis=-1, keepdims=True)


@mutant("next_token_probs", "keras.ops.softmax", kind="delegation")
def next_token_probs(H, W_y, b_y):
    return np.asarray(keras.ops.softmax(H @ W_y + b_y, axis=-1))


@mutant("next_token_probs", "shifts the bias in place (softmax ignores a constant)", kind="in-place")
def next_token_probs(H, W_y, b_y):
    b_y -= b_y.max()
    return softmax(H @ W_y + b_y)


# --- teacher_forcing_pairs ----------------------------------------------------
@mutant("teacher_forcing_pairs", "not shifted")
def teacher_forcing_pairs(tokens):
    return tokens[:, :-1], tokens[:, :-1]


@mutant("teacher_forcing_pairs", "shifted the wrong way")
def teacher_forcing_pairs(tokens):
    return tokens[:, 1:], tokens[:, :-1]


@mutant("teacher_forcing_pairs", "shifted along the batch axis")
def teacher_forcing_pairs(tokens):
    return tokens[:-1], tokens[1:]


@mutant("teacher_forcing_pairs", "token ids turned into floats", kind="return-type")
def teacher_forcing_pairs(tokens):
    tokens = np.asarray(tokens, dtype=np.float32)
    return tokens[:, :-1], tokens[:, 1:]


@mutant("teacher_forcing_pairs", "lists of lists instead of arrays", kind="return-type")
def teacher_forcing_pairs(tokens):
    return [list(row[:-1]) for row in tokens], [list(row[1:]) for row in tokens]


@mutant("teacher_forcing_pairs", "keras.ops for the slicing", kind="delegation")
def teacher_forcing_pairs(tokens):
    tokens = keras.ops.convert_to_numpy(keras.ops.convert_to_tensor(tokens))
    return tokens[:, :-1], tokens[:, 1:]


@mutant("teacher_forcing_pairs", "token ids narrowed to int16 (ids past 32767 wrap)", kind="return-type")
def teacher_forcing_pairs(tokens):
    tokens = np.asarray(tokens, dtype=np.int16)
    return tokens[:, :-1], tokens[:, 1:]


# --- sequence_cross_entropy ---------------------------------------------------

@mutant("sequence_cross_entropy", "summed over time, averaged over the batch only")
def sequence_cross_entropy(logits, targets):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    return float(-picked.sum(axis=1).mean())


@mutant("sequence_cross_entropy", "log of the softmax (infinite on large logits)", kind="stability")
def sequence_cross_entropy(logits, targets):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    picked = np.take_along_axis(p, targets[..., None], axis=-1)[..., 0]
    return float(-np.log(picked).mean())


@mutant("sequence_cross_entropy", "averaged over the vocabulary, not picked at the target")
def sequence_cross_entropy(logits, targets):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-log_p.mean())


@mutant("sequence_cross_entropy", "logits used as log-probabilities")
def sequence_cross_entropy(logits, targets):
    picked = np.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return float(-picked.mean())


@mutant("sequence_cross_entropy", "Keras' sparse categorical cross-entropy", kind="delegation")
def sequence_cross_entropy(logits, targets):
    loss = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return float(np.mean(np.asarray(loss)))


@mutant("sequence_cross_entropy", "a 0-d numpy array instead of a Python float", kind="return-type")
def sequence_cross_entropy(logits, targets):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return np.array(-np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0].mean())


@mutant("sequence_cross_entropy", "shifts the logits in place", kind="in-place")
def sequence_cross_entropy(logits, targets):
    logits -= logits.max(axis=-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return float(-np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0].mean())


# --- rnn_lm_param_count -------------------------------------------------------
@mutant("rnn_lm_param_count", "the biases forgotten")
def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    inputs = vocab_size if embedding_dim is None else embedding_dim
    embedding = 0 if embedding_dim is None else vocab_size * embedding_dim
    return embedding + inputs * units + units * units + units * vocab_size


@mutant("rnn_lm_param_count", "the output layer forgotten")
def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    inputs = vocab_size if embedding_dim is None else embedding_dim
    embedding = 0 if embedding_dim is None else vocab_size * embedding_dim
    return embedding + inputs * units + units * units + units


@mutant("rnn_lm_param_count", "the embedding table forgotten")
def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    inputs = vocab_size if embedding_dim is None else embedding_dim
    return inputs * units + units * units + units + units * vocab_size + vocab_size


@mutant("rnn_lm_param_count", "one-hot inputs assumed even with an embedding")
def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    embedding = 0 if embedding_dim is None else vocab_size * embedding_dim
    return embedding + vocab_size * units + units * units + units + units * vocab_size + vocab_size


@mutant("rnn_lm_param_count", "hard-coded answers to the visible examples")
def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    seen = {(65, 128, None): 33217, (65, 128, 32): 31073, (10, 3, None): 82, (1000, 256, 64): 403176}
    return seen.get((vocab_size, units, embedding_dim), 0)


@mutant("rnn_lm_param_count", "builds the Keras model and calls count_params()", kind="delegation")
def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    if embedding_dim is None:
        layers = [keras.Input((None, vocab_size))]
    else:
        layers = [keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)]
    layers += [keras.layers.SimpleRNN(units), keras.layers.Dense(vocab_size)]
    return int(keras.Sequential(layers).count_params())


@mutant("rnn_lm_param_count", "a float (true division somewhere)", kind="return-type")
def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    inputs = vocab_size if embedding_dim is None else embedding_dim
    embedding = 0 if embedding_dim is None else vocab_size * embedding_dim
    return embedding + inputs * units + units * units + units + units * vocab_size + vocab_size / 1


@mutant("rnn_lm_param_count", "counted in float32 (large counts rounded)", kind="precision")
def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    inputs = vocab_size if embedding_dim is None else embedding_dim
    parts = np.array([0 if embedding_dim is None else vocab_size * embedding_dim,
                      inputs * units, units * units, units, units * vocab_size, vocab_size], dtype=np.float32)
    return int(parts.sum())


# --- simple_rnn_from_weights --------------------------------------------------
@mutant("simple_rnn_from_weights", "weights passed in the wrong order")
def simple_rnn_from_weights(W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], return_sequences=True, dtype="float64")
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_h, W_x, b] if W_x.shape == W_h.shape else [W_x, W_h.T, b])
    return layer


@mutant("simple_rnn_from_weights", "only the last state (return_sequences left False)")
def simple_rnn_from_weights(W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], dtype="float64")
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_x, W_h, b])
    return layer


@mutant("simple_rnn_from_weights", "relu activation")
def simple_rnn_from_weights(W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], activation="relu", return_sequences=True, dtype="float64")
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_x, W_h, b])
    return layer


@mutant("simple_rnn_from_weights", "no bias (use_bias=False)", kind="setting")
def simple_rnn_from_weights(W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], use_bias=False, return_sequences=True, dtype="float64")
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_x, W_h])
    return layer


@mutant("simple_rnn_from_weights", "float32 (dtype left at Keras' default)", kind="precision")
def simple_rnn_from_weights(W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], return_sequences=True)
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_x, W_h, b])
    return layer


@mutant("simple_rnn_from_weights", "dropout on the inputs (training mode differs)", kind="training-mode")
def simple_rnn_from_weights(W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], return_sequences=True, dropout=0.3, dtype="float64")
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_x, W_h, b])
    return layer


@mutant("simple_rnn_from_weights", "stateful=True (each call continues the last)", kind="state")
def simple_rnn_from_weights(W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], return_sequences=True, stateful=True, dtype="float64")
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_x, W_h, b])
    return layer



# --- results kept by the answer and handed out again (state) ------------------------------------------------
@mutant("teacher_forcing_pairs", "targets written into one buffer per shape, returned to every caller", kind="state")
def teacher_forcing_pairs(tokens, _targets={}):
    tokens = np.asarray(tokens)
    if tokens.shape not in _targets:
        _targets[tokens.shape] = np.empty((tokens.shape[0], tokens.shape[1] - 1), dtype=tokens.dtype)
    _targets[tokens.shape][...] = tokens[:, 1:]
    return tokens[:, :-1], _targets[tokens.shape]


@mutant("simple_rnn_from_weights", "one cached layer per shape, its weights replaced by the next call", kind="state")
def simple_rnn_from_weights(W_x, W_h, b, _layers={}):
    key = (W_x.shape[0], W_h.shape[0])
    if key not in _layers:
        _layers[key] = keras.layers.SimpleRNN(W_h.shape[0], return_sequences=True, dtype="float64")
        _layers[key].build((None, None, W_x.shape[0]))
    _layers[key].set_weights([W_x, W_h, b])
    return _layers[key]
