"""Hidden tests for unit 02_bptt_and_gradients (instructor-only; never shipped to students).

They run the visible checks (course.checks.bptt_and_gradients) on cases the student has not
seen: batch 1, one step, one unit, square shapes where a transposed matrix no longer fails by
shape, saturating weights, and random shapes drawn from a fixed seed so that grading the same
notebook twice gives the same score. Every case is small: numeric gradients cost two forward
passes per weight, and the mutant runner grades each step about ten times.
"""
from __future__ import annotations

import numpy as np

from autograder.reference import bptt as live
from course.checks import bptt_and_gradients as visible
from course.checks.stored import using
from course.checks import expect_close, fail, to_array
from course.checks.bptt_and_gradients import ClipCase, Shapes

call = visible.call  # every answer under its step's rule

SEED = 27_182


def _cases() -> tuple[Shapes, ...]:
    rng = np.random.default_rng(SEED)
    cases = [
        Shapes(1, 1, 1, 1, seed=SEED + 1),                # the smallest of everything
        Shapes(4, 4, 4, 4, seed=SEED + 2),                # square: shapes cannot betray a transpose
        Shapes(2, 5, 3, 3, seed=SEED + 3, scale=2.5),     # large weights: tanh saturates
        Shapes(1, 13, 2, 3, seed=SEED + 4),               # one long sequence
    ]
    for i in range(3):
        batch, time, input_dim, units = (int(v) for v in rng.integers(1, 7, size=4))
        cases.append(Shapes(batch, time, input_dim, units, seed=SEED + 10 + i))
    return tuple(cases)


CASES = _cases()

CLIP_CASES = (
    ClipCase(((3, 3), (3, 3), (3,)), max_norm=2.0, norm=2.5, seed=SEED + 20),        # just above; square
    ClipCase(((6,),), max_norm=1.0, norm=7.0, seed=SEED + 21),                       # a single tensor
    ClipCase(((2, 2), (2,)), max_norm=3.0, norm=3.0 - 1e-9, seed=SEED + 22),         # just below: unchanged
    ClipCase(((5, 1), (1, 1), (1,), (1, 5), (5,)), max_norm=0.1, norm=1e3, seed=SEED + 23, spread="one"),
    ClipCase(((8, 8), (8,)), max_norm=1.0, norm=0.5, seed=SEED + 24, spread="one"),  # below, uneven
)


def grade_rnn_step_backward(fn):
    with using(visible, live):
        visible.check_rnn_step_backward(fn, CASES)


def grade_rnn_backward(fn):
    with using(visible, live):
        visible.check_rnn_backward(fn, CASES)


def grade_step_jacobian(fn):
    with using(visible, live):
        visible.check_step_jacobian(fn, CASES)


def grade_dh0_norms(fn):
    with using(visible, live):
        visible.check_dh0_norms(fn, CASES, closed_forms=((0.9, 1), (1.1, 100), (0.5, 40)))
    # Closed form with tanh not linear: with a diagonal W_h every Jacobian is diagonal, so
    # ||dL_T/dh_0|| = ||dh_T * prod_t (1 - h_t**2) * w||.
    rng = np.random.default_rng(SEED + 30)
    H = rng.uniform(-0.95, 0.95, size=(12, 4))
    w = rng.uniform(-1.5, 1.5, size=4)
    g = rng.normal(size=4)
    want = np.linalg.norm(g * np.cumprod((1 - H ** 2) * w, axis=0), axis=1)
    got = call("dh0_norms", fn, H, np.diag(w), g)
    visible._expect_norms("dh0_norms", "the array of norms for a diagonal W_h and saturated states", got, want,
                          live.norm_mistakes(H, np.diag(w), g), len(H))


def grade_clip_by_global_norm(fn):
    with using(visible, live):
        visible.check_clip_by_global_norm(fn, CLIP_CASES)
    # All-zero gradients: nothing to clip, and no division by zero may leak a nan.
    step, zeros = "clip_by_global_norm", [np.zeros((3, 2)), np.zeros(2)]
    with np.errstate(all="ignore"):
        result = call(step, fn, zeros, 1.0)
    if (not isinstance(result, (tuple, list)) or len(result) != 2 or not isinstance(result[0], (tuple, list))
            or len(result[0]) != len(zeros)):
        fail(step, "should return a pair (clipped, norm) with one array per gradient, also for zero gradients")
    clipped, norm = result
    for i, array in enumerate(clipped):
        expect_close(step, f"clipped[{i}] of all-zero gradients", array, zeros[i],
                     hint="a zero gradient has nothing to clip: return it unchanged (no 0/0)")
    expect_close(step, "the global norm of all-zero gradients", to_array(step, "the norm", norm).reshape(()), 0.0)


def grade_softmax_cross_entropy_grad(fn):
    rng = np.random.default_rng(SEED + 40)
    extra = [*visible.LARGE_LOGITS,
        (rng.normal(scale=3, size=(7, 5)), rng.integers(0, 5, size=7)),                 # 2-D: (N, vocab)
        (np.array([[[-2000.0, 0.0, 1500.0]]]), np.array([[0]])),                          # huge logits
        (rng.normal(size=(1, 1, 2)), np.array([[1]])),                                    # one position
    ]
    with using(visible, live):
        visible.check_softmax_cross_entropy_grad(fn, CASES[1:], extra=extra)


def _ks(s: Shapes):
    return tuple(dict.fromkeys(k for k in (1, 2, 3, s.time - 1, s.time, s.time + 5) if k >= 1))


def grade_truncated_bptt_grads(fn):
    with using(visible, live):
        visible.check_truncated_bptt_grads(fn, CASES, ks=_ks)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible)
