"""Hidden tests for unit 05_seq2seq_attention (instructor-only; never shipped to students).

The notebook's visible checks (course.checks.seq2seq_attention) on cases the
student has not seen: the smallest sizes (a batch of one, a source of one
character, one attention unit), rows with a single valid position, square
shapes where a swapped W1/W2 cannot fail by shape, saturating scores, texts
that do not fit, unknown characters, rows that never say END or say it at
once; beams of one and of thousands, a beam whose best sequence is END at once, sequences of
hundreds of steps (where a product of probabilities underflows), step functions with states;
exposure-bias rates on a single position and on long rows. Seeds are fixed, so grading the same
notebook twice gives the same score.
"""
from __future__ import annotations

import numpy as np

from autograder.reference import seq2seq_attention as ref
from course.checks import seq2seq_attention as visible
from course.checks.seq2seq_attention import AttentionCase, BeamCase, DecodeCase, VectorizeCase

SEED = 31_415

VOCAB_CASES = (
    ("x",),
    ("Thursday, 4 March 2021", "jeudi 4 mars 2021", "4. März 2021", "4 de marzo de 2021"),
    ("ba", "ab", "a b", "A B", "0-9"),
    ("", ""),
)

VECTORIZE_CASES = (
    VectorizeCase(("x",), ("x", "xx", "y", ""), 1, False),                      # one column
    VectorizeCase(("0123456789-",), ("1999-12-31", "", "2021-3-4"), 2, True),    # only START and END fit
    VectorizeCase(("Mar 4, 2021", "4. März 2021"), ("4. März 2021", "4 März", "März?"), 9, False),
    VectorizeCase(("Dec 31, 1999",), ("Dec 31, 1999", "Dec 31, 1999!!", "ZZZ"), 16, True),
)


def _decode_cases():
    rng = np.random.default_rng(SEED)
    vocab = ref.vocab(["0123456789-", "abc XYZ"])
    ids = rng.integers(0, len(vocab), size=(6, 9))
    ids[0, 0] = visible.END                   # END at once
    ids[1] = [visible.START, *rng.integers(4, len(vocab), size=8)]   # no END at all
    ids[2, 4] = visible.END
    ids[2, 6] = visible.END                   # two ENDs: only the first counts
    texts = ["2049-12-31", "a", "XYZ abc", "", "1950-01-01"]
    round_trip = ref.vectorize(texts, vocab, 12, True)
    return ((ids, vocab), (round_trip, vocab), (ids[:1, :1], vocab))


DECODE_CASES = _decode_cases()


def _target_cases():
    rng = np.random.default_rng(SEED + 1)
    ids = rng.integers(4, 15, size=(5, 8))
    ids[:, 0] = visible.START
    ends = rng.integers(1, 8, size=5)
    for row, end in enumerate(ends):
        ids[row, end] = visible.END
        ids[row, end + 1:] = visible.PAD
    single = np.array([[visible.START, visible.END]])
    return (ids, single, np.repeat(single, 3, axis=0), ids[:1])


TARGET_CASES = _target_cases()

ATTENTION_CASES = (
    AttentionCase(SEED + 10, 1, 1, 1, 1, 1, lengths=(1,)),                 # the smallest of everything
    AttentionCase(SEED + 11, 4, 4, 4, 4, 4, lengths=(4, 1, 2, 3)),         # square: a swap cannot fail by shape
    AttentionCase(SEED + 12, 3, 7, 5, 3, 6, lengths=(1, 7, 4), scale=4.0), # saturated scores
    AttentionCase(SEED + 13, 2, 9, 3, 8, 5, lengths=None),                 # no mask
    AttentionCase(SEED + 14, 5, 3, 2, 2, 3, lengths=(3, 3, 3, 3, 3)),      # a mask that masks nothing
    # Scores of several hundred (up to about 320): exp overflows float32 past 88, so a softmax without
    # subtracting each row's max gives inf / inf = nan; a stable one gives finite, near one-hot weights.
    AttentionCase(SEED + 15, 3, 6, 4, 5, 6, lengths=(6, 2, 4), scale=100.0),
)

TEACHER_CASES = (
    DecodeCase(SEED + 20, 1, 1, 2),
    DecodeCase(SEED + 21, 5, 8, 9),
    DecodeCase(SEED + 22, 2, 3, 1),
    DecodeCase(SEED + 23, 4, 6, 4),
)

GREEDY_CASES = (
    DecodeCase(SEED + 30, 1, 1, 1),     # one step
    DecodeCase(SEED + 31, 9, 10, 9),    # rows that finish at every step, and one that never does
    DecodeCase(SEED + 32, 3, 2, 12),
)


def grade_build_vocab(fn):
    visible.check_build_vocab(fn, VOCAB_CASES, reference=ref)


def grade_vectorize(fn):
    visible.check_vectorize(fn, VECTORIZE_CASES, reference=ref)


def grade_decode_ids(fn):
    visible.check_decode_ids(fn, DECODE_CASES, reference=ref)


def grade_teacher_forcing_pairs(fn):
    visible.check_teacher_forcing_pairs(fn, TARGET_CASES)


def grade_BahdanauAttention(cls):  # noqa: N802 - named after the graded class
    visible.check_BahdanauAttention(cls, ATTENTION_CASES)


def grade_teacher_forced_decode(fn):
    visible.check_teacher_forced_decode(fn, TEACHER_CASES, keras_cases=2)


def grade_greedy_decode(fn):
    visible.check_greedy_decode(fn, GREEDY_CASES)


BEAM_CASES = (
    BeamCase("trap", 0, 4, 2, 2),
    BeamCase("table", SEED + 40, 3, 1, 1),             # one step
    BeamCase("table", SEED + 41, 6, 1, 8),             # greedy
    BeamCase("table", SEED + 42, 4, 1000, 5),          # every sequence kept: brute force
    BeamCase("early_end", SEED + 43, 5, 2, 5),
    BeamCase("uniform", 0, 3, 2, 3),
    BeamCase("recurrent", SEED + 44, 3, 500, 5, end_after=1),   # brute force with states
    BeamCase("recurrent", SEED + 45, 6, 1, 7, end_after=4),
    BeamCase("recurrent", SEED + 46, 4, 4, 6),
    BeamCase("long", SEED + 47, 5, 1, 400),
    BeamCase("long", SEED + 48, 3, 2, 250),
)

LUONG_CASES = (
    AttentionCase(SEED + 50, 1, 1, 1, 1, 1, lengths=(1,)),                 # the smallest of everything
    AttentionCase(SEED + 51, 4, 4, 4, 4, 4, lengths=(4, 1, 2, 3)),         # square: W transposed fits
    AttentionCase(SEED + 52, 3, 7, 5, 3, 3, lengths=(1, 7, 4), scale=6.0), # large scores
    AttentionCase(SEED + 53, 2, 9, 3, 8, 8, lengths=None),                 # no mask
    # Scores of several hundred (up to about 650): exp overflows float32 past 88, so a softmax without
    # subtracting each row's max gives inf / inf = nan; a stable one gives finite, near one-hot weights.
    AttentionCase(SEED + 54, 3, 6, 4, 5, 5, lengths=(6, 2, 4), scale=150.0),
)

EXPOSURE_CASES = visible.exposure_cases(SEED + 60, shapes=((1, 1), (3, 2), (50, 11), (7, 30)))


def grade_beam_search_decode(fn):
    visible.check_beam_search_decode(fn, BEAM_CASES)


def grade_LuongAttention(cls):  # noqa: N802 - named after the graded class
    visible.check_LuongAttention(cls, LUONG_CASES)


def grade_exposure_bias_rates(fn):
    visible.check_exposure_bias_rates(fn, EXPOSURE_CASES, reference=ref)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible)
