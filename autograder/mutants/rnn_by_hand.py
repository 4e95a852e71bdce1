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


@mutant("rnn_step", "updates h_prev in place")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    h_prev[...] = np.tanh(x_t @ W_x + h_prev @ W_h + b)
    return h_prev


@mutant("rnn_step", "squeezes the result (wrong shape for a batch of one)")
def rnn_step(x_t, h_prev, W_x, W_h, b):
    return np.squeeze(np.tanh(x_t @ W_x + h_prev @ W_h + b))


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


# --- softmax ------------------------------------------------------------------
@mutant("softmax", "no max shift (overflows on large logits)")
def softmax(z):
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


@mutant("softmax", "over axis 0 instead of the last axis")
def softmax(z):
    e = np.exp(z - np.max(z, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


@mutant("softmax", "one global max instead of each row's")
def softmax(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=-1, keepdims=True)


@mutant("softmax", "normalised by the sum of the whole array")
def softmax(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e)


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


# --- sequence_cross_entropy ---------------------------------------------------

@mutant("sequence_cross_entropy", "summed over time, averaged over the batch only")
def sequence_cross_entropy(logits, targets):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    return float(-picked.sum(axis=1).mean())


@mutant("sequence_cross_entropy", "log of the softmax (infinite on large logits)")
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


@mutant("simple_rnn_from_weights", "no bias (use_bias=False)")
def simple_rnn_from_weights(W_x, W_h, b):
    layer = keras.layers.SimpleRNN(W_h.shape[0], use_bias=False, return_sequences=True, dtype="float64")
    layer.build((None, None, W_x.shape[0]))
    layer.set_weights([W_x, W_h])
    return layer
