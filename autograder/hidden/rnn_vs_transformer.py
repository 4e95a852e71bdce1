"""Hidden tests for unit 07_rnn_vs_transformer (instructor-only; never shipped to students).

The notebook's visible checks (course.checks.rnn_vs_transformer) on cases the
student has not seen: the smallest sizes (one position, batch 1, one head,
one block), a key_dim that is not d_model // heads, more heads and blocks,
sequences as long as max_len, causal masks longer than 64, attention scores in the hundreds
(exp overflows in float32 unless the softmax subtracts the maximum), long and saturating recurrences, and random
sizes from a fixed seed so that grading the same notebook twice gives the
same score. minGRU: one unit and two steps, a long sequence, saturated gates,
a square kernel. Associative recall: one key and one value, every key used,
every pair asked, many keys; each chi-square test of a distribution raises a
false alarm less than once in 10^7 (course.checks.rnn_vs_transformer.chi_square_limit).
"""
from __future__ import annotations

import numpy as np

from autograder.hidden._state import overwrite, two_results_kept
from autograder.reference import rnn_vs_transformer as ref
from course.checks import rnn_vs_transformer as visible
from course.checks.rnn_vs_transformer import LM, Attention, Block, MinGRUCase, Recall, Recurrence

SEED = 31_415


def _rng():
    return np.random.default_rng(SEED)


MASK_SIZES = (2, 3, 16, 33, 65, 130)   # 65, 130: longer than a 64 x 64 table cut to size

BLOCK_CASES = (
    Block(1, 1, 6, 3, 12, seed=SEED + 1),        # one position: attention can only see itself
    Block(3, 7, 12, 4, 20, seed=SEED + 2),
    Block(2, 9, 8, 8, 8, seed=SEED + 3),         # eight heads of one dimension; mlp_dim == d_model
)

LM_CASES = (
    LM(5, 4, 4, 1, 1, 4, batch=1, time=4, seed=SEED + 5),      # one head, one block, T == max_len
    LM(65, 20, 12, 3, 3, 24, batch=2, time=9, seed=SEED + 6),  # three blocks, T < max_len
)

PARAM_CASES = ((1, 1, 1, 1, 1), (65, 128, 384, 6, 1536), (50_257, 1024, 768, 12, 3072), (10, 5, 6, 0, 24),
               (7, 3, 8, 3, 10))

ATTENTION_CASES = (
    Attention(1, 1, 3, 1, 3, seed=SEED + 8),     # one position, one head
    Attention(3, 6, 5, 3, 2, seed=SEED + 9),     # key_dim * heads != d_model
    Attention(2, 8, 8, 4, 2, seed=SEED + 10),
    Attention(1, 10, 16, 2, 8, seed=SEED + 11),
    Attention(2, 6, 8, 2, 4, seed=SEED + 12, scale=12.0),   # scores in the hundreds: exp overflows without the max
)


def _recurrences(min_time):
    rng = _rng()
    cases = [
        Recurrence(1, max(min_time, 1), 1, seed=SEED + 12),
        Recurrence(2, 200, 3, seed=SEED + 13, low=0.97, high=1.0),       # long memory: a near 1
        Recurrence(3, 2, 4, seed=SEED + 14),                            # two steps
        Recurrence(2, 9, 2, seed=SEED + 15, constant=True, low=-0.9, high=-0.5),   # alternating signs
        Recurrence(4, 4, 4, seed=SEED + 16),                            # square: no shape gives a transpose away
    ]
    for i in range(2):
        batch, time, dim = (int(v) for v in rng.integers(2, 9, size=3))
        cases.append(Recurrence(batch, time, dim, seed=SEED + 20 + i))
    return tuple(cases)


LOOP_CASES = _recurrences(1)     # includes T = 1
SCAN_CASES = _recurrences(2)     # Keras 3.13's TensorFlow scan cannot take T = 1 (keras issue 22050)


def grade_causal_mask(fn):
    visible.check_causal_mask(fn, MASK_SIZES)
    # Two masks of one size kept side by side, the first one changed by its caller (a mask made additive in
    # place, say): the second is still the causal mask, and a new array.
    def second_mask(second):
        array = np.asarray(second.numpy() if hasattr(second, "numpy") else second)
        if not (array.shape == (6, 6) and np.array_equal(array.astype(bool), np.tri(6, dtype=bool))):
            visible.fail("causal_mask", "a second causal_mask(6), made after the caller changed the first one, is "
                                        "not the causal mask: return a new array on every call (a cached mask, or "
                                        "a view of one, changes with whoever changed it)")

    two_results_kept(visible.call, "causal_mask", fn, (6,), (6,), second_mask, change_first=overwrite)


def grade_TransformerBlock(cls):
    visible.check_TransformerBlock(cls, BLOCK_CASES)


def grade_TransformerLM(cls):
    visible.check_TransformerLM(cls, LM_CASES)


def grade_transformer_param_count(fn):
    visible.check_transformer_param_count(fn, PARAM_CASES)


def grade_cached_attention_step(fn):
    visible.check_cached_attention_step(fn, ATTENTION_CASES)


def grade_linear_recurrence_loop(fn):
    visible.check_linear_recurrence_loop(fn, LOOP_CASES, reference=ref)


def grade_linear_recurrence_scan(fn):
    visible.check_linear_recurrence_scan(fn, SCAN_CASES, reference=ref)


MINGRU_CASES = (
    MinGRUCase(1, 2, 1, 1, seed=SEED + 30),              # one unit, two steps
    MinGRUCase(3, 40, 5, 6, seed=SEED + 31),             # a long sequence: the scan's tree is deep
    MinGRUCase(2, 9, 4, 4, seed=SEED + 32, scale=8.0),   # saturated gates: z near 0 or 1
    MinGRUCase(2, 3, 8, 8, seed=SEED + 33),              # square kernels: no shape gives a transpose away
)

RECALL_CASES = (
    Recall(1, 1, 1, 1, 1, seed=SEED + 40),               # one key, one value, one query
    Recall(3, 5, 1, 5, 3, seed=SEED + 41),               # every key in every row, one query
    Recall(4000, 8, 8, 10, 6, seed=SEED + 42),           # every pair asked: the queries are a permutation
    Recall(2500, 3, 2, 40, 12, seed=SEED + 43),          # many keys, few pairs
)


def grade_MinGRU(cls):
    visible.check_MinGRU(cls, MINGRU_CASES)


def grade_associative_recall_batch(fn):
    visible.check_associative_recall_batch(fn, RECALL_CASES)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible, kernel_only={
    "grade_TransformerLM": "the checks read the model's list of blocks, which Keras keeps as a list of its own that "
                           "the record hands over as one object of the student's",
})
