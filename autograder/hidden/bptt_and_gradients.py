"""Hidden tests for unit 02_bptt_and_gradients (instructor-only; never shipped to students).

They run the visible checks (course.checks.bptt_and_gradients) on cases the student has not
seen: batch 1, one step, one unit, square shapes where a transposed matrix no longer fails by
shape, saturating weights, and random shapes drawn from a fixed seed so that grading the same
notebook twice gives the same score. Every case is small: numeric gradients cost two forward
passes per weight, and the mutant runner grades each step about ten times.
"""
from __future__ import annotations

import numpy as np

from autograder.hidden._exact import EXACT_TOL, expect_exact as _expect_exact
from autograder.hidden._state import after_in_place_update
from autograder.reference import bptt as live
from course.checks import bptt_and_gradients as visible
from course.checks.stored import using
from course.checks import expect_close, fail, relative_error, to_array
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


def _step_exact(dh, x, h_prev, h_t, W_x, W_h):
    return live._local(dh, x, h_prev, h_t, W_x, W_h, 1 - h_t ** 2)


def grade_rnn_step_backward(fn):
    step = "rnn_step_backward"
    with using(visible, live):
        visible.check_rnn_step_backward(fn, CASES)
    for s in CASES[1:3]:
        p = visible.problem(s)
        x, h_prev, W_x, W_h, b = p.X[:, 0].copy(), p.h0.copy(), p.W_x.copy(), p.W_h.copy(), p.b.copy()
        dh = p.dH[:, 0].copy()
        where = f"batch={s.batch}, input_dim={s.input_dim}, units={s.units}"
        h_t = visible._states(x[:, None], h_prev, W_x, W_h, b)[:, 0]
        out = visible._unpack(step, call(step, fn, dh, x, h_prev, h_t, W_x, W_h), visible.STEP_NAMES)
        want = _step_exact(dh, x, h_prev, h_t, W_x, W_h)
        for name, got in zip(visible.STEP_NAMES, out):
            _expect_exact(step, f"{name} ({where})", got, want[name])
        # A training loop updates the weights in place (W -= lr * dW): the same arrays, new values. The
        # next call must use the new values (nothing cached by the arrays' identity).
        W_x -= 0.3 * want["dW_x"]
        W_h -= 0.3 * want["dW_h"]
        b -= 0.3 * want["db"]
        h_t = visible._states(x[:, None], h_prev, W_x, W_h, b)[:, 0]
        out = visible._unpack(step, call(step, fn, dh, x, h_prev, h_t, W_x, W_h), visible.STEP_NAMES)
        want = _step_exact(dh, x, h_prev, h_t, W_x, W_h)
        for name, got in zip(visible.STEP_NAMES, out):
            _expect_exact(step, f"{name} after the weights were updated in place (W -= lr * dW; {where})", got,
                          want[name], tol=1e-6,
                          hint="the gradients match the weights of the previous call: is something (a transpose, "
                               "a copy) cached and keyed on the arrays' id()? The same array can hold new values")
        for name, got in zip(visible.STEP_NAMES, out):
            _expect_exact(step, f"{name} after an in-place weight update ({where})", got, want[name])


def grade_rnn_backward(fn):
    step = "rnn_backward"
    with using(visible, live):
        visible.check_rnn_backward(fn, CASES)
    for s in CASES:
        p = visible.problem(s)
        X, h0, W_x, W_h, b, dH = (a.copy() for a in (p.X, p.h0, p.W_x, p.W_h, p.b, p.dH))
        H = visible._states(X, h0, W_x, W_h, b)
        out = visible._unpack(step, call(step, fn, dH, X, h0, H, W_x, W_h), visible.BPTT_NAMES)
        want = live.bptt(dH, X, h0, H, W_x, W_h)
        where = f"batch={s.batch}, T={s.time}, input_dim={s.input_dim}, units={s.units}"
        for name, got in zip(visible.BPTT_NAMES, out):
            _expect_exact(step, f"{name} ({where})", got, want[name])


def grade_step_jacobian(fn):
    step = "step_jacobian"
    with using(visible, live):
        visible.check_step_jacobian(fn, CASES)
    for s in CASES:
        p = visible.problem(s)
        x, h_prev = p.X[:1, 0].copy(), p.h0[:1].copy()
        h_t = visible._states(x[:, None], h_prev, p.W_x, p.W_h, p.b)[0, 0]
        W_h = p.W_h.copy()
        _expect_exact(step, f"the Jacobian dh_t/dh_prev for units={s.units}", call(step, fn, h_t, W_h),
                      (1 - h_t ** 2)[:, None] * W_h.T)


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
    # Against the exact float64 norms (each entry to 1e-11 relative; float32 inside loses about 1e-8).
    for s in CASES:
        X, h0, g, H, p = visible._norm_case(s)
        got = call("dh0_norms", fn, H, p.W_h.copy(), g)
        visible._expect_norms("dh0_norms", f"the array of norms for T = 1..{s.time} (units={s.units}), to float64 "
                              f"precision (is something computed in float32?)", got, live._norms(H, p.W_h, g),
                              {}, s.time, tol=EXACT_TOL)
    # The same arrays with new values (the states of the next batch, the weights after an update in place).
    X, h0, g, H, p = visible._norm_case(CASES[2])
    after_in_place_update(call, "dh0_norms", fn, (H.copy(), p.W_h.copy(), g.copy()), live._norms,
                          ("the array of norms",), rtol=1e-9, atol=1e-12)


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
    # Below the limit the gradients come back as they were, as arrays an optimiser may scale in place.
    rng = np.random.default_rng(SEED + 23)
    small = [rng.normal(size=(3, 2)), rng.normal(size=2)]
    clipped, _ = visible._unpack(step, call(step, fn, small, 100.0), ("clipped", "norm"))
    for i, array in enumerate(clipped):
        if isinstance(array, np.ndarray) and not array.flags.writeable:
            fail(step, f"clipped[{i}] (nothing to clip) is a read-only array: an optimiser that updates it in "
                       f"place (g *= lr) fails; return writable arrays (the gradients themselves or copies)")


def grade_softmax_cross_entropy_grad(fn):
    rng = np.random.default_rng(SEED + 40)
    extra = [*visible.LARGE_LOGITS,
        (rng.normal(scale=3, size=(7, 5)), rng.integers(0, 5, size=7)),                 # 2-D: (N, vocab)
        (np.array([[[-2000.0, 0.0, 1500.0]]]), np.array([[0]])),                          # huge logits
        (rng.normal(size=(1, 1, 2)), np.array([[1]])),                                    # one position
        # Each row needs its own max: shifted by the largest logit of the whole array (1000), the first
        # row's exp(0 - 1000) underflows to 0 and its softmax is 0 / 0.
        (np.array([[[0.0, 1.0, 2.0], [1000.0, 0.0, 0.0]]]), np.array([[1, 0]])),
    ]
    with using(visible, live):
        visible.check_softmax_cross_entropy_grad(fn, CASES[1:], extra=extra)
    step = "softmax_cross_entropy_grad"
    for logits, targets in [visible.ce_case(s) for s in CASES[1:]] + extra:
        logits, targets = np.array(logits, np.float64), np.array(targets)
        _, dlogits = call(step, fn, logits.copy(), targets.copy())
        z = np.exp(logits - logits.max(axis=-1, keepdims=True))
        exact = (z / z.sum(axis=-1, keepdims=True) - np.eye(logits.shape[-1])[targets]) / targets.size
        _expect_exact(step, f"dlogits for logits of shape {logits.shape}", dlogits, exact)


def _ks(s: Shapes):
    return tuple(dict.fromkeys(k for k in (1, 2, 3, s.time - 1, s.time, s.time + 5) if k >= 1))


def _tbptt_exact(X, h0, W_x, W_h, b, dH, k):
    """Exact float64 gradients of truncated BPTT: each window's BPTT from the state the forward pass
    carried to its start, summed."""
    H = visible._states(X, h0, W_x, W_h, b)
    total = dict(dW_x=np.zeros_like(W_x), dW_h=np.zeros_like(W_h), db=np.zeros(W_h.shape[0]))
    for start, end in visible.windows(X.shape[1], k):
        h = H[:, start - 1] if start > 0 else h0
        H_w = visible._states(X[:, start:end], h, W_x, W_h, b)
        grads = live.bptt(dH[:, start:end], X[:, start:end], h, H_w, W_x, W_h)
        for name in total:
            total[name] = total[name] + grads[name]
    return total


def grade_truncated_bptt_grads(fn):
    step = "truncated_bptt_grads"
    with using(visible, live):
        visible.check_truncated_bptt_grads(fn, CASES, ks=_ks)
    for s in CASES:
        p = visible.problem(s)
        for k in _ks(s):
            X, h0, W_x, W_h, b, dH = (a.copy() for a in (p.X, p.h0, p.W_x, p.W_h, p.b, p.dH))
            out = visible._unpack(step, call(step, fn, dH, X, h0, W_x, W_h, b, k), visible.TBPTT_NAMES)
            want = _tbptt_exact(*visible._arrays(p), k)
            for name, got in zip(visible.TBPTT_NAMES, out):
                _expect_exact(step, f"{name} for T={s.time}, k={k}", got, want[name])
    # A training loop refills dH and updates the weights in place: the same arrays, new values.
    p = visible.problem(CASES[2])
    after_in_place_update(call, step, fn, (p.dH.copy(), p.X.copy(), p.h0.copy(), p.W_x.copy(), p.W_h.copy(),
                                           p.b.copy(), 2),
                          lambda dH, X, h0, W_x, W_h, b, k: tuple(_tbptt_exact(X, h0, W_x, W_h, b, dH, k).values()),
                          visible.TBPTT_NAMES, rtol=1e-9, atol=1e-12)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible)
