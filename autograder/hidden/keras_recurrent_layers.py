"""Hidden tests for unit 04_keras_recurrent_layers (instructor-only; never shipped to students).

The notebook's visible checks (course.checks.keras_recurrent_layers) on cases
the student has not seen: the smallest sizes (batch 1, one step, one unit, two
classes), rows that are all padding, a chunk of one step and a chunk longer
than the stream, k = 0 and k >= T, one layer and three, the other recurrent
layer classes; fixed seeds, so that grading the same notebook twice gives the
same score.
"""
from __future__ import annotations

import math

import numpy as np

from course.checks import keras_recurrent_layers as visible
from course.checks.keras_recurrent_layers import Classifier, Padded, Recall, Stack, Stream, Tagger

SEED = 16_180

RECALL = (
    Recall(4000, 20, 6, 25, seed=SEED),          # other sizes, enough examples for the uniformity tests
    Recall(2000, 2, 2, 3, seed=SEED + 1),         # two classes, one distractor per example
    Recall(1, 1, 3, 4, seed=SEED + 2),            # one example of one step: the key alone
    Recall(300, 40, 10, 1, seed=SEED + 3),        # a single distractor id
)

CLASSIFIER = (
    Classifier("GRU", 5, 2, 1, 3, lengths=(3, 0, 1), time=3, seed=SEED),    # one unit, a row of padding only
    Classifier("SimpleRNN", 12, 7, 8, 2, lengths=(1,), time=1, seed=SEED + 1),  # batch 1, one step
    Classifier("LSTM", 6, 3, 5, 5, lengths=(2, 5, 4), time=5, seed=SEED + 2),  # units == embed_dim
)

PAD = (
    (((4, 5, 6),), None),                           # one sequence: nothing to pad
    (((1,), (2, 3), ()), 5),                        # maxlen beyond every length; an empty sequence
    ((np.array([7, 8, 9]), np.array([1, 2])), 1),   # numpy rows, everything truncated to one token
    (((), (3, 1)), None),
    (((1, 2), (3,)), 0),                            # maxlen=0: shape (2, 0), as keras.utils.pad_sequences gives
)

LAST = (
    Padded((0, 3, 1), time=3, units=4, seed=SEED),     # a fully padded row: zeros, as Keras' mask gives
    Padded((4,), time=4, units=1, seed=SEED + 1),      # batch 1, no padding, one unit
    Padded((1, 0, 1), time=1, units=2, seed=SEED + 2),  # one step
)

STACK = (
    Stack(2, 3, 1, batch=3, time=4, seed=SEED),        # a single layer
    Stack(3, 3, 3, batch=2, time=5, seed=SEED + 1),    # square: input_dim == units
    Stack(5, 1, 2, batch=1, time=1, seed=SEED + 2),    # one unit, one step
)

STREAM = (
    Stream("SimpleRNN", 3, 2, 4, 2, chunk=1, seed=SEED),     # one step at a time
    Stream("LSTM", 2, 1, 5, 3, chunk=8, seed=SEED + 1),      # a chunk longer than the stream
    Stream("GRU", 4, 3, 6, 1, chunk=3, seed=SEED + 2),       # T a multiple of chunk
    Stream("LSTM", 1, 2, 7, 2, chunk=5, seed=SEED + 3),      # one unit, a last chunk of 2
)

TAGS = (
    (np.array([[4, 2, 6, 1]]), 0),                   # k = 0: each token tags itself
    (np.array([[1, 2, 3], [4, 5, 6]]), 3),           # k = T: nothing later, all zeros
    (np.array([[1, 2], [3, 4]]), 5),                 # k > T
    (np.array([[9], [8]]), 1),                       # one step
    (np.array([[6, 5, 4, 3, 2, 1, 7, 7, 0, 0]]), 4),  # padding at the end
    (np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 1]]), 7),  # T < k < 2T: all zeros still
    (np.array([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]]), 2, np.int64),  # int64 X: the tags are int32 all the same
)

TAGGER = (
    Tagger(5, 2, 1, True, 3, lengths=(4, 0, 1), time=4, seed=SEED),      # one unit, two tags, a row of padding
    Tagger(8, 5, 3, False, 2, lengths=(1,), time=1, seed=SEED + 1),      # one-way, batch 1, one step
    Tagger(6, 6, 4, True, 4, lengths=(1, 5, 3), time=5, seed=SEED + 2),  # square
)


# Draws that are too even: labels dealt out as arange % K, key positions as arange % half, or a position
# tied to the row index. A fixed seed; each test below fails a correct answer with chance at most 1e-7.
SPREAD = Recall(6000, 24, 8, 5, seed=SEED + 4)


def _chi_square_lower_limit(df: int, alarm: float = 1e-7) -> float:
    """The x with P(chi-square_df < x) = alarm (the regularized lower gamma by its series, then bisection)."""
    a = df / 2.0

    def cdf(x):
        half_x = x / 2.0
        term = math.exp(a * math.log(half_x) - half_x - math.lgamma(a + 1.0))
        total, n = term, 0
        while term > 1e-18 * total:
            n += 1
            term *= half_x / (a + n)
            total += term
        return total

    low, high = 1e-12, float(df)
    for _ in range(200):
        mid = (low + high) / 2.0
        low, high = (mid, high) if cdf(mid) < alarm else (low, mid)
    return low


def _chi_square(counts):
    counts = np.asarray(counts, np.float64)
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


def grade_recall_task(fn):
    visible.check_recall_task(fn, RECALL)
    step, c = "recall_task", SPREAD
    K, half = c.num_classes, max(1, c.T // 2)
    where = f"num={c.num}, T={c.T}, num_classes={K}, num_distractors={c.num_distractors}, seed={c.seed}"
    X, y = visible._pair(step, visible.call(step, fn, c.num, c.T, K, c.num_distractors, c.seed), ("X", "y"))
    X, y = visible._integers(step, "X", X), visible._integers(step, "y", y)
    position = np.argmax(X <= K, axis=1)
    labels = np.bincount(y, minlength=K)
    # Multinomial counts fall below the chi-square's lower 1e-7 point with chance about 1e-7 (df >= 7 here).
    if _chi_square(labels) < _chi_square_lower_limit(K - 1):
        visible.fail(step, f"the labels are spread too evenly ({where}): counts {labels.tolist()}. Draw each label "
                           f"on its own (rng.integers), do not deal them out in turn (np.arange(num) % num_classes)")
    positions = np.bincount(position, minlength=half)
    if _chi_square(positions) < _chi_square_lower_limit(half - 1):
        visible.fail(step, f"the key positions are spread too evenly ({where}): counts {positions.tolist()}. Draw "
                           f"each position on its own (rng.integers), do not deal them out in turn")
    # The position must not follow the row: (position - row) % half is uniform and independent of the label.
    offset = (position - np.arange(c.num)) % half
    table = np.zeros((K, half))
    np.add.at(table, (y, offset), 1)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    if stat > visible._chi_square_limit((K - 1) * (half - 1)) or \
            _chi_square(np.bincount(offset, minlength=half)) > visible._chi_square_limit(half - 1):
        visible.fail(step, f"the key's position follows the row index and the label ({where}): draw each position "
                           f"on its own from the generator, not from the row number or the label")


def grade_build_sequence_classifier(fn):
    visible.check_build_sequence_classifier(fn, CLASSIFIER)


def grade_pad_right(fn):
    visible.check_pad_right(fn, PAD)


def grade_last_real_outputs(fn):
    visible.check_last_real_outputs(fn, LAST)


def grade_build_stacked_lstm(fn):
    visible.check_build_stacked_lstm(fn, STACK)


def grade_stream_in_chunks(fn):
    visible.check_stream_in_chunks(fn, STREAM)


def grade_later_token_tags(fn):
    visible.check_later_token_tags(fn, TAGS)


def grade_build_tagger(fn):
    visible.check_build_tagger(fn, TAGGER)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible, handed={
    "grade_stream_in_chunks": ("__call__", "reset_state", "reset_states"),   # the stateful layer it is given
})
