"""Reference answers of unit 05_seq2seq_attention's data steps and attention (instructor-only: never
shipped in the student wheel).

The visible checks (``course.checks.seq2seq_attention``) hold no answer: for their fixed cases they read
what ``vocab``, ``vectorize`` and ``decode`` return here from ``course/checks/expected/seq2seq_attention.npz``
(``python -m autograder generate``). The hidden tests pass this module itself as the checks' ``reference``.
The attention's expected values come from Keras' ``AdditiveAttention``; ``attention`` here is the float64
form the tests hold against it.
"""
from __future__ import annotations

import numpy as np

from course.checks import seq2seq_attention as visible

PAD, START, END, UNK = visible.PAD, visible.START, visible.END, visible.UNK
SPECIALS = visible.SPECIALS


def vocab(texts) -> list[str]:
    """The four special tokens, then each character of ``texts`` once, by code point."""
    seen = set()
    for text in texts:
        seen.update(text)
    return [*SPECIALS, *sorted(seen)]


def vectorize(texts, vocabulary, maxlen, add_start_end) -> np.ndarray:
    """(len(texts), maxlen) int64 ids, right-padded; START ... END around the text when asked."""
    position = {token: i for i, token in enumerate(vocabulary)}
    room = maxlen - 2 if add_start_end else maxlen
    out = np.full((len(texts), maxlen), PAD, np.int64)
    for row, text in enumerate(texts):
        body = [position.get(ch, UNK) for ch in text[:max(room, 0)]]
        if add_start_end:
            body = [START, *body, END]
        out[row, :len(body)] = body[:maxlen]
    return out


def decode(ids, vocabulary) -> list[str]:
    out = []
    for row in np.asarray(ids, dtype=np.int64):
        ends = np.flatnonzero(row == END)
        stop = int(ends[0]) if ends.size else len(row)
        out.append("".join(vocabulary[i] for i in row[:stop] if i >= len(SPECIALS)))
    return out


def attention(query, values, mask, W1, W2, b2, v):
    """Bahdanau attention in float64 on the layer's weights: (context, weights)."""
    q, h = np.asarray(query, np.float64), np.asarray(values, np.float64)
    scores = (np.tanh((q @ W1)[:, None, :] + h @ W2 + b2) @ v)[..., 0]
    valid = np.ones(scores.shape, bool) if mask is None else np.asarray(mask, bool)
    with np.errstate(invalid="ignore"):
        scores = np.where(valid, scores, -np.inf)
        shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = shifted / shifted.sum(axis=-1, keepdims=True)
    return np.einsum("bt,btd->bd", weights, h), weights


def exposure_rates(predicted, target) -> np.ndarray:
    """[error rate on the true path, error rate after the first mistake], float64.

    A position counts when it is at or before the target row's first END and is not padding. On the true path:
    the positions up to and including the row's first wrong one (all of them in a row without a mistake). After
    the first mistake: the positions after it. A rate over no position is 0.0.
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    is_end = target == END
    valid = (np.cumsum(is_end, axis=1) - is_end == 0) & (target != PAD)
    wrong = (predicted != target) & valid
    earlier = np.cumsum(wrong, axis=1) - wrong
    on_path, off_path = valid & (earlier == 0), valid & (earlier > 0)
    return np.array([wrong[m].sum() / m.sum() if m.any() else 0.0 for m in (on_path, off_path)], np.float64)
