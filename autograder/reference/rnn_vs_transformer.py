"""Reference answers of unit 07_rnn_vs_transformer's closed-form steps (instructor-only: never shipped in
the student wheel).

``course/checks/expected/rnn_vs_transformer.npz`` holds what ``linear_recurrence`` returns on the visible
cases (``python -m autograder generate``); the hidden tests pass this module as the checks' ``reference``.
The visible checks count parameters with Keras' own layers; ``transformer_param_count`` is the closed form
the tests hold against them.
"""
from __future__ import annotations

import numpy as np


def transformer_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    """Closed form: embeddings, per block (attention, MLP, two norms), final norm and output layer."""
    per_block = (4 * d_model + 4) * d_model + (2 * d_model + 1) * mlp_dim + d_model + 4 * d_model
    return (vocab_size + max_len) * d_model + blocks * per_block + (d_model + 1) * vocab_size + 2 * d_model


def linear_recurrence(a, b, h0):
    """States after each step, in float64: state = a_t * state + b_t, from state = h0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.empty_like(b)
    state = np.asarray(h0, np.float64)
    for t in range(b.shape[1]):
        state = a[:, t] * state + b[:, t]
        out[:, t] = state
    return out


def min_gru(x, gate_kernel, gate_bias, candidate_kernel, candidate_bias):
    """minGRU's states in float64 from h_0 = 0, by the linear recurrence: a_t = 1 - z_t, b_t = z_t * c_t."""
    x = np.asarray(x, np.float64)
    z = 1.0 / (1.0 + np.exp(-(x @ np.asarray(gate_kernel, np.float64) + np.asarray(gate_bias, np.float64))))
    candidate = x @ np.asarray(candidate_kernel, np.float64) + np.asarray(candidate_bias, np.float64)
    return linear_recurrence(1 - z, z * candidate, np.zeros((x.shape[0], z.shape[-1])))


def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    """Multi-query associative recall, drawn row by row from ``rng``: distinct keys in random order, uniform
    values, and the queried pairs chosen without replacement; targets are the queried keys' values."""
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = rng.permutation(n_keys)[:n_pairs]
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        asked = rng.permutation(n_pairs)[:n_queries]
        tokens[row, 0:2 * n_pairs:2] = keys
        tokens[row, 1:2 * n_pairs:2] = values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets
