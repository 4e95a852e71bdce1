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
