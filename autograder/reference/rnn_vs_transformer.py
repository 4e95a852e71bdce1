"""Reference answers of unit 07_rnn_vs_transformer's closed-form steps, and the expected values the visible
checks read from the release (instructor-only: never shipped in the student wheel).

``course/checks/expected/rnn_vs_transformer.json`` holds the states of the linear recurrence for the visible
cases, written by :func:`write_expected` (``python -m autograder generate``); the hidden tests pass this
module as the checks' ``reference`` for the cases no one stored.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from course.checks import rnn_vs_transformer as visible

EXPECTED = Path(visible.__file__).parent / "expected" / "rnn_vs_transformer.json"


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


def expected_values() -> dict:
    cases = dict.fromkeys((*visible.LOOP_CASES, *visible.SCAN_CASES))
    return {visible.recurrence_key(s): linear_recurrence(*visible.recurrence_inputs(s)).tolist() for s in cases}


def write_expected(path: Path = EXPECTED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(expected_values(), sort_keys=True) + "\n", encoding="utf-8")
    return path
