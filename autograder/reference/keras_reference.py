"""References that no one in this course wrote: Keras' own layers, ops and losses.

Checks compare students' numpy code with these, in float64.
"""
from __future__ import annotations

import numpy as np

from course.env import import_keras


def simple_rnn_states(X, h0, W_x, W_h, b=None, *, activation="tanh"):
    """All hidden states (batch, T, units) and the last one, computed by Keras.

    Keras' SimpleRNNCell inside the generic keras.layers.RNN loop, its variables
    assigned one by one (not a SimpleRNN layer: building one is an exercise).
    """
    keras = import_keras()
    W_x, W_h = np.asarray(W_x, np.float64), np.asarray(W_h, np.float64)
    cell = keras.layers.SimpleRNNCell(W_h.shape[0], activation=activation, use_bias=b is not None,
                                      dtype="float64")
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype="float64")
    rnn.build((None, None, W_x.shape[0]))
    cell.kernel.assign(W_x)
    cell.recurrent_kernel.assign(W_h)
    if b is not None:
        cell.bias.assign(np.asarray(b, np.float64))
    H, last = rnn(np.asarray(X, np.float64), initial_state=[np.asarray(h0, np.float64)])
    return np.asarray(H), np.asarray(last)


def simple_rnn_step(x, h, W_x, W_h, b=None, *, activation="tanh"):
    """One step of Keras' SimpleRNN: a sequence of length 1."""
    _, last = simple_rnn_states(np.asarray(x)[:, None, :], h, W_x, W_h, b, activation=activation)
    return last


def softmax(z, axis=-1):
    keras = import_keras()
    return np.asarray(keras.ops.softmax(np.asarray(z, np.float64), axis=axis))


def sparse_cross_entropy(logits, targets):
    """Mean over every position of -log softmax(logits)[target], from Keras' loss."""
    keras = import_keras()
    per_position = keras.losses.sparse_categorical_crossentropy(
        np.asarray(targets, np.int64), np.asarray(logits, np.float64), from_logits=True
    )
    return float(np.mean(np.asarray(per_position)))


def rnn_lm_param_count(vocab_size, units, embedding_dim=None):
    """count_params() of the Keras model: [one-hot | Embedding] -> SimpleRNN -> Dense."""
    keras = import_keras()
    if embedding_dim is None:
        layers = [keras.Input((None, vocab_size))]
    else:
        layers = [keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)]
    layers += [keras.layers.SimpleRNN(units, return_sequences=True), keras.layers.Dense(vocab_size)]
    return int(keras.Sequential(layers).count_params())
