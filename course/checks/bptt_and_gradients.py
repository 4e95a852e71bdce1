"""Visible self-checks for unit 02_bptt_and_gradients.

Gradients are checked against central-difference numeric gradients in float64
(the loss is differentiated by perturbing every input and weight by ±1e-5),
with the relative error max|a - n| / max(|a| + |n|) below 1e-7 for each named
gradient. Clipping is checked against a Keras optimizer with
``global_clipnorm``, the cross-entropy against Keras' own loss, and the
vanishing-gradient norms against closed forms (a linear regime where the norm
is exactly rho**T). Each ``check_<step>(fn, cases=VISIBLE)`` prints one line
when everything passes and raises ``CheckFailed`` with a precise message
otherwise; grading runs the same functions on other shapes and seeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stored import stored
from . import expect_gradient as _expect_gradient, relative_error as _relative_error
from . import caller_for, eager_diagnoses, expect_close, expect_finite, expect_shape, expect_unchanged, fail, passed, snapshot, to_array

UNIT = "02_bptt_and_gradients"
# Every answer is called under its step's rule (course/rules.py): what it may be built from.
call = caller_for(UNIT)
# Keras' values and known mistakes' on the visible inputs, stored with the release (the grader asks
# autograder/reference itself).
ref = stored("bptt_and_gradients")

REL_TOL = 1e-7   # float64 analytic gradient against a central difference
EPS = 1e-5       # the central difference's step


@dataclass(frozen=True)
class Shapes:
    batch: int
    time: int
    input_dim: int
    units: int
    seed: int = 0
    scale: float = 0.6


# Non-square on purpose: a transposed matrix or a swapped axis fails by shape.
VISIBLE = (Shapes(3, 6, 4, 5, seed=1), Shapes(2, 9, 3, 7, seed=2))


@dataclass(frozen=True)
class Problem:
    X: np.ndarray      # (batch, time, input_dim)
    h0: np.ndarray     # (batch, units)
    W_x: np.ndarray    # (input_dim, units)
    W_h: np.ndarray    # (units, units)
    b: np.ndarray      # (units,)
    dH: np.ndarray     # (batch, time, units): dL/dH, the upstream gradient of every state


def _arrays(p: Problem):
    return p.X, p.h0, p.W_x, p.W_h, p.b, p.dH


def problem(s: Shapes) -> Problem:
    rng = np.random.default_rng(s.seed)
    return Problem(
        X=rng.normal(size=(s.batch, s.time, s.input_dim)),
        h0=rng.normal(scale=0.5, size=(s.batch, s.units)),
        W_x=rng.normal(scale=s.scale, size=(s.input_dim, s.units)),
        W_h=rng.normal(scale=s.scale, size=(s.units, s.units)),
        b=rng.normal(scale=0.5, size=(s.units,)),
        dH=rng.normal(size=(s.batch, s.time, s.units)),
    )


def _states(X, h0, W_x, W_h, b):
    """Every hidden state (batch, time, units) of the vanilla RNN, float64: the forward pass that the
    numeric gradients differentiate (given to students in the notebook too); tests compare it with
    Keras' SimpleRNNCell."""
    carry = np.asarray(h0, np.float64)
    seq = []
    for step_input in np.moveaxis(np.asarray(X, np.float64), 1, 0):
        carry = np.tanh(np.einsum("bi,iu->bu", step_input, W_x) + np.einsum("bv,vu->bu", carry, W_h) + b)
        seq.append(carry)
    return np.stack(seq, axis=1)


# --- numeric differentiation ----------------------------------------------------

def numeric_gradient(loss, x, eps=EPS):
    """d loss() / d x by central differences; ``x`` is perturbed in place and restored."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        kept = x[idx]
        x[idx] = kept + eps
        up = loss()
        x[idx] = kept - eps
        down = loss()
        x[idx] = kept
        grad[idx] = (up - down) / (2 * eps)
    return grad


def numeric_gradient_rows(row_losses, x, eps=EPS):
    """Like numeric_gradient for an ``x`` whose axis 0 is the batch and whose loss is a sum of
    per-example terms: one entry is perturbed in every example at once."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape[1:]):
        where = (slice(None), *idx)
        kept = x[where].copy()
        x[where] = kept + eps
        up = row_losses()
        x[where] = kept - eps
        down = row_losses()
        x[where] = kept
        grad[where] = (up - down) / (2 * eps)
    return grad


def relative_error(a, n) -> float:
    return _relative_error(a, n)


def expect_gradient(step, what, actual, numeric, *, diagnoses=None, hint="", tol=REL_TOL) -> float:
    """``actual`` agrees with a numeric gradient (relative error below ``tol``, float64); returns the error."""
    return _expect_gradient(step, what, actual, numeric, tol=tol, diagnoses=diagnoses, hint=hint)



def _unpack(step, result, names):
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = f"{type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list)) \
            else type(result).__name__
        fail(step, f"should return a tuple ({', '.join(names)}), got {got}")
    return list(result)


def _expect_repeatable(step, first, second, names):
    """A second call on the same inputs returns the same gradients: nothing is kept between calls."""
    second = _unpack(step, second, names)
    for name, a, b in zip(names, first, second):
        a, b = to_array(step, name, a), to_array(step, name, b)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=0):
            fail(step, f"{name} changes when the function is called a second time on the same inputs: "
                       f"something (a sum, a buffer, a state) is kept between calls")


def _expect_sum_over_batch(step, what, value, s: Shapes, axis_name="the batch axis (axis 0)"):
    """db of shape (batch, units) is the classic forgotten sum: say so before the generic message."""
    array = to_array(step, what, value)
    if array.ndim == 2 and array.shape[-1] == s.units:
        fail(step, f"{what} has shape {array.shape}, expected ({s.units},): the bias is shared by every "
                   f"example, so its gradient is a sum over {axis_name}")


# --- known mistakes, to name them in messages ----------------------------------

# --- rnn_step_backward ---------------------------------------------------------

STEP_NAMES = ("dx_t", "dh_prev", "dW_x", "dW_h", "db")


def check_rnn_step_backward(rnn_step_backward, cases=VISIBLE) -> None:
    step, count, worst = "rnn_step_backward", 0, 0.0
    for s in cases:
        p = problem(s)
        x, h_prev, W_x, W_h, b = p.X[:, 0].copy(), p.h0.copy(), p.W_x.copy(), p.W_h.copy(), p.b.copy()
        h_t = _states(x[:, None], h_prev, W_x, W_h, b)[:, 0]
        dh = p.dH[:, 0].copy()
        before = snapshot(dh, x, h_prev, h_t, W_x, W_h)
        out = _unpack(step, call(step, rnn_step_backward, dh, x, h_prev, h_t, W_x, W_h), STEP_NAMES)
        for name, old, new in zip(("dh_t", "x_t", "h_prev", "h_t", "W_x", "W_h"), before,
                                  (dh, x, h_prev, h_t, W_x, W_h)):
            expect_unchanged(step, name, old, new)
        _expect_sum_over_batch(step, "db", out[4], s)
        _expect_repeatable(step, out, call(step, rnn_step_backward, dh, x, h_prev, h_t, W_x, W_h), STEP_NAMES)

        def rows():  # L = sum(dh_t * h_t), one term per example
            return np.einsum("bu,bu->b", dh, _states(x[:, None], h_prev, W_x, W_h, b)[:, 0])

        def total():
            return float(rows().sum())

        numeric = dict(dx_t=numeric_gradient_rows(rows, x), dh_prev=numeric_gradient_rows(rows, h_prev),
                       dW_x=numeric_gradient(total, W_x), dW_h=numeric_gradient(total, W_h),
                       db=numeric_gradient(total, b))
        mistakes = ref.step_mistakes(dh, x, h_prev, h_t, W_x, W_h)
        where = f"batch={s.batch}, input_dim={s.input_dim}, units={s.units}"
        for name, got in zip(STEP_NAMES, out):
            worst = max(worst, expect_gradient(step, f"{name} ({where})", got, numeric[name],
                                               diagnoses=mistakes[name]))
            count += 1
    passed(step, count, f"(largest relative error against numeric gradients {worst:.1e}; needs < {REL_TOL:g})")


# --- rnn_backward --------------------------------------------------------------

BPTT_NAMES = ("dX", "dh0", "dW_x", "dW_h", "db")


def check_rnn_backward(rnn_backward, cases=VISIBLE) -> None:
    step, count, worst = "rnn_backward", 0, 0.0
    for s in cases:
        p = problem(s)
        X, h0, W_x, W_h, b, dH = (a.copy() for a in (p.X, p.h0, p.W_x, p.W_h, p.b, p.dH))
        H = _states(X, h0, W_x, W_h, b)
        before = snapshot(dH, X, h0, H, W_x, W_h)
        out = _unpack(step, call(step, rnn_backward, dH, X, h0, H, W_x, W_h), BPTT_NAMES)
        for name, old, new in zip(("dH", "X", "h0", "H", "W_x", "W_h"), before, (dH, X, h0, H, W_x, W_h)):
            expect_unchanged(step, name, old, new)
        _expect_sum_over_batch(step, "db", out[4], s, "the batch and time axes")
        _expect_repeatable(step, out, call(step, rnn_backward, dH, X, h0, H, W_x, W_h), BPTT_NAMES)

        def rows():  # L = sum(dH * H), one term per example
            return np.einsum("btu,btu->b", dH, _states(X, h0, W_x, W_h, b))

        def total():
            return float(rows().sum())

        numeric = dict(dX=numeric_gradient_rows(rows, X), dh0=numeric_gradient_rows(rows, h0),
                       dW_x=numeric_gradient(total, W_x), dW_h=numeric_gradient(total, W_h),
                       db=numeric_gradient(total, b))
        variants = {
            "the gradient from later steps not carried back (step t sees only dH[:, t])": dict(carry=False),
            "parameter gradients overwritten at each step instead of summed (+=)": dict(accumulate=False),
            "H[:, -1] as the previous state at t = 0 (H[:, t - 1] with t = 0) instead of h0":
                dict(first_prev=H[:, -1]),
            "zeros as the previous state at t = 0 instead of h0": dict(first_prev=np.zeros_like(h0)),
            "the factor (1 - h_t**2) left out": dict(factor=False),
        }
        wrong = {m: ref.bptt(dH, X, h0, H, W_x, W_h, **kw) for m, kw in variants.items()}
        where = f"batch={s.batch}, T={s.time}, input_dim={s.input_dim}, units={s.units}"
        for name, got in zip(BPTT_NAMES, out):
            if name == "dX":
                expect_shape(step, f"dX ({where})", got, X.shape)
            worst = max(worst, expect_gradient(step, f"{name} ({where})", got, numeric[name],
                                               diagnoses={m: w[name] for m, w in wrong.items()}))
            count += 1
    passed(step, count, f"(largest relative error against numeric gradients {worst:.1e}; needs < {REL_TOL:g})")


# --- step_jacobian -------------------------------------------------------------

def check_step_jacobian(step_jacobian, cases=VISIBLE) -> None:
    step, count, worst = "step_jacobian", 0, 0.0
    for s in cases:
        p = problem(s)
        x, h_prev = p.X[:1, 0].copy(), p.h0[:1].copy()   # one example, kept 2-D for _states()
        h_t = _states(x[:, None], h_prev, p.W_x, p.W_h, p.b)[0, 0]
        W_h = p.W_h.copy()
        before = snapshot(h_t, W_h)
        got = call(step, step_jacobian, h_t, W_h)
        expect_unchanged(step, "h_t", before[0], h_t)
        expect_unchanged(step, "W_h", before[1], W_h)
        numeric = np.zeros((s.units, s.units))
        for i in range(s.units):   # column i: how every h_t[j] moves with h_prev[i]
            bump = np.zeros_like(h_prev)
            bump[0, i] = EPS
            up = _states(x[:, None], h_prev + bump, p.W_x, W_h, p.b)[0, 0]
            down = _states(x[:, None], h_prev - bump, p.W_x, W_h, p.b)[0, 0]
            numeric[:, i] = (up - down) / (2 * EPS)
        slope = 1 - h_t ** 2
        worst = max(worst, expect_gradient(
            step, f"the Jacobian dh_t/dh_prev for units={s.units}", got, numeric,
            diagnoses={"J transposed (J[i, j] instead of J[j, i] = dh_t[j] / dh_prev[i])": numeric.T,
                       "the factor (1 - h_t**2) left out": W_h.T,
                       "diag(1 - h_t**2) @ W_h: the textbook formula, whose W_hh is this course's W_h.T":
                           slope[:, None] * W_h,
                       "(1 - h_t**2) scaling the columns instead of the rows": W_h.T * slope[None, :]},
            hint="J[j, i] = (1 - h_t[j]**2) * W_h[i, j]"))
        count += 1
    passed(step, count, f"(equal to the numeric Jacobian, relative error {worst:.1e})")


# --- dh0_norms -----------------------------------------------------------------

def _norm_case(s: Shapes):
    p = problem(s)
    x, h0 = p.X[:1], p.h0[:1]
    g = p.dH[0, -1]
    return x, h0, g, _states(x, h0, p.W_x, p.W_h, p.b)[0], p


def _expect_norms(step, what, got, want, diagnoses, T, tol=1e-6):
    got = expect_shape(step, what, got, (T,))
    expect_finite(step, what, got)
    rel = np.abs(got - want) / np.maximum(np.abs(got) + np.abs(want), np.finfo(float).tiny)
    if rel.max() < tol:
        return float(rel.max())
    i = int(np.argmax(rel))
    message = (f"{what} is wrong: at T = {i + 1} (index {i}) got {got[i]:.6g}, expected {want[i]:.6g} "
               f"(relative error {rel[i]:.2g})")
    for mistake, wrong in diagnoses.items():
        if np.allclose(got, wrong, rtol=1e-6, atol=0):
            message += f". It matches what you get with {mistake}"
            break
    fail(step, message)


def check_dh0_norms(dh0_norms, cases=VISIBLE, closed_forms=((0.9, 100), (1.0, 30))) -> None:
    step, count = "dh0_norms", 0
    for s in cases:
        X, h0, g, H, p = _norm_case(s)
        W_h = p.W_h.copy()
        before = snapshot(H, W_h, g)
        got = call(step, dh0_norms, H, W_h, g)
        for name, old, new in zip(("H", "W_h", "dh_T"), before, (H, W_h, g)):
            expect_unchanged(step, name, old, new)
        if not isinstance(got, np.ndarray):
            fail(step, f"should return a numpy array of norms (plots and slices use it), got {type(got).__name__}")
        if got.dtype != np.float64:
            fail(step, f"the norms have dtype {got.dtype}: keep float64 (norms as small as 1e-5 lose digits in float32)")
        # Numeric: dL_T/dh_0 for L_T = dh_T . h_T, for every T at once.
        numeric = np.zeros((s.time, s.units))
        for i in range(s.units):
            bump = np.zeros_like(h0)
            bump[0, i] = EPS
            up = _states(X, h0 + bump, p.W_x, W_h, p.b)[0]
            down = _states(X, h0 - bump, p.W_x, W_h, p.b)[0]
            numeric[:, i] = (up - down) @ g / (2 * EPS)
        _expect_norms(step, f"the array of norms for T = 1..{s.time} (units={s.units})", got,
                      np.linalg.norm(numeric, axis=1), ref.norm_mistakes(H, W_h, g), s.time)
        count += 1
    # Closed form: with h = 0 all along, every Jacobian is W_h.T; W_h = rho * Q with Q orthogonal
    # scales every vector by rho, so ||dL_T/dh_0|| = rho**T * ||dh_T||.
    for rho, T in closed_forms:
        units = 6
        Q, _ = np.linalg.qr(np.random.default_rng(int(rho * 1000) + T).normal(size=(units, units)))
        g = np.linspace(1.0, 2.0, units)
        want = rho ** np.arange(1, T + 1) * np.linalg.norm(g)
        H = np.zeros((T, units))
        got = call(step, dh0_norms, H, rho * Q, g)
        _expect_norms(step, f"the array of norms for W_h = {rho} x (an orthogonal matrix) and h = 0 (it "
                            f"should be {rho}**T x ||dh_T||)", got, want,
                      {"one step short (T starting at 0)": want / rho}, T)
        count += 1
    passed(step, count, "(equal to numeric gradients; rho**T exactly when tanh is linear)")


# --- clip_by_global_norm -------------------------------------------------------

@dataclass(frozen=True)
class ClipCase:
    shapes: tuple
    max_norm: float
    norm: float     # the global norm the gradients are scaled to
    seed: int
    spread: str = "even"   # "even": every tensor below max_norm on its own; "one": one dominates


CLIP_VISIBLE = (
    ClipCase(((4, 5), (5, 5), (5,)), max_norm=1.0, norm=3.0, seed=11),    # clipped; each tensor < 1 alone
    ClipCase(((4, 5), (5, 5), (5,)), max_norm=5.0, norm=2.0, seed=12),    # below the threshold: unchanged
    ClipCase(((3, 7), (7, 7), (7,), (7, 2)), max_norm=0.5, norm=40.0, seed=13, spread="one"),
)


def clip_grads(c: ClipCase):
    rng = np.random.default_rng(c.seed)
    grads = [rng.normal(size=shape) for shape in c.shapes]
    if c.spread == "even":   # equal shares of the squared norm
        grads = [g / np.linalg.norm(g) * c.norm / np.sqrt(len(grads)) for g in grads]
    else:                    # the first tensor carries almost all of it
        grads = [g / np.linalg.norm(g) * (0.999 if i == 0 else 0.01) for i, g in enumerate(grads)]
        whole = np.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        grads = [g * c.norm / whole for g in grads]
    return grads


def check_clip_by_global_norm(clip_by_global_norm, cases=CLIP_VISIBLE) -> None:
    step, count = "clip_by_global_norm", 0
    for c in cases:
        grads = clip_grads(c)
        before = snapshot(*grads)
        result = call(step, clip_by_global_norm, grads, c.max_norm)
        for i, (old, new) in enumerate(zip(before, grads)):
            expect_unchanged(step, f"grads[{i}]", old, new)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(step, f"should return a pair (clipped, norm), got {type(result).__name__}")
        clipped, norm = result
        if not isinstance(clipped, list) or len(clipped) != len(grads):
            fail(step, f"the clipped gradients should be a list of {len(grads)} arrays, one per input, got "
                       f"{type(clipped).__name__}{' of length ' + str(len(clipped)) if hasattr(clipped, '__len__') else ''}")
        want_norm = float(np.linalg.norm(np.concatenate([np.ravel(g) for g in grads])))
        mistakes = ref.clip_mistakes(grads, c.max_norm)
        situation = (f"{len(grads)} tensors of global norm {want_norm:.3g}, max_norm={c.max_norm:g}"
                     + (" (below the threshold: nothing to clip)" if want_norm <= c.max_norm else ""))
        if clipped is grads or any(isinstance(a, np.ndarray) and np.shares_memory(a, g) for a, g in zip(clipped, grads)):
            fail(step, "the clipped list shares arrays with the input: return new arrays (even when nothing is "
                       "clipped), so that updating one never changes the other")
        if not isinstance(norm, float):
            fail(step, f"the returned norm should be a Python float (float(...)), got {type(norm).__name__}")
        norm = to_array(step, "the returned norm", norm)
        if norm.size != 1:
            fail(step, f"the returned norm should be one number, got an array of shape {norm.shape}")
        clipped_norm = float(np.sqrt(sum(np.sum(to_array(step, "a clipped gradient", a) ** 2) for a in clipped)))
        expect_close(step, f"the returned global norm ({situation})", norm.reshape(()), want_norm, rtol=1e-9,
                     diagnoses={"the norm after clipping instead of before": clipped_norm,
                                **{m: v[1] for m, v in mistakes.items()}})
        reference = ref.keras_clipped(grads, c.max_norm)
        for i, (got, want) in enumerate(zip(clipped, reference)):
            expect_close(step, f"clipped[{i}] of shape {want.shape} ({situation})", got, want, rtol=1e-9,
                         atol=1e-12, diagnoses={m: v[0][i] for m, v in mistakes.items()},
                         hint="every tensor is multiplied by the same factor max_norm / global_norm, and only "
                              "when global_norm > max_norm")
            count += 1
    passed(step, count, "(equal to a keras.optimizers.SGD step with global_clipnorm)")


# --- softmax_cross_entropy_grad ------------------------------------------------

def ce_case(s: Shapes, vocab=None):
    rng = np.random.default_rng(s.seed + 500)
    vocab = vocab or s.input_dim + 3
    return (rng.normal(scale=2.0, size=(s.batch, s.time, vocab)),
            rng.integers(0, vocab, size=(s.batch, s.time)))


# Scores of +-1000: exp overflows unless each row is shifted by its maximum first.
LARGE_LOGITS = ((np.array([[[1000.0, 0.0, -1000.0], [3.0, 1001.0, 2.0]]]), np.array([[2, 1]])),)


def check_softmax_cross_entropy_grad(softmax_cross_entropy_grad, cases=VISIBLE, extra=LARGE_LOGITS) -> None:
    step, count, worst = "softmax_cross_entropy_grad", 0, 0.0
    problems = [ce_case(s) for s in cases] + list(extra)
    for logits, targets in problems:
        logits, targets = np.array(logits, np.float64), np.array(targets)
        before = snapshot(logits, targets)
        result = call(step, softmax_cross_entropy_grad, logits, targets)
        expect_unchanged(step, "logits", before[0], logits)
        expect_unchanged(step, "targets", before[1], targets)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(step, f"should return a pair (loss, dlogits), got {type(result).__name__}")
        loss, dlogits = result
        N, V = targets.size, logits.shape[-1]
        if not isinstance(loss, float):
            fail(step, f"the loss should be a Python float (float(...)), got {type(loss).__name__}")
        loss = to_array(step, "the loss", loss)
        if loss.size != 1:
            fail(step, f"the loss should be one number (the mean over every position), got shape {loss.shape}")
        if not np.isfinite(loss).all():
            fail(step, f"the loss is {float(loss.reshape(()))} for logits as large as {np.abs(logits).max():g}: "
                       f"shift each row by its maximum before exp, as in unit 01's softmax")
        expect_close(step, f"the loss for logits of shape {logits.shape}", loss.reshape(()),
                     float(ref.keras_losses(logits, targets).mean()), rtol=1e-9,
                     hint="the loss is the mean over every position of -log softmax(logits)[target]")
        # Numeric gradient of Keras' loss: bumping logit v of every position at once is exact, since
        # each position's loss depends on its own logits only.
        numeric = np.zeros_like(logits)
        for v in range(V):
            bump = np.zeros_like(logits)
            bump[..., v] = EPS
            numeric[..., v] = (ref.keras_losses(logits + bump, targets) - ref.keras_losses(logits - bump, targets)) / (2 * EPS * N)
        onehot = np.eye(V)[targets]
        z = logits - logits.max(axis=-1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        B = logits.shape[0]
        worst = max(worst, expect_gradient(
            step, f"dlogits for logits of shape {logits.shape}", dlogits, numeric,
            diagnoses={"no division by the number of positions (the gradient of the sum)": numeric * N,
                       "a division by the batch size only (not batch x time)": numeric * N / B,
                       "the one-hot target not subtracted": probs / N,
                       "the sign reversed (one_hot - softmax)": -numeric,
                       "a division by the vocabulary size too": numeric / V,
                       "the one-hot of the wrong class": (probs - np.roll(onehot, 1, axis=-1)) / N},
            hint="dL/dlogits = (softmax(logits) - one_hot(targets)) / N, with N the number of positions"))
        count += 2
    passed(step, count, f"(loss equal to Keras'; dlogits against its numeric gradient, relative error {worst:.1e})")


# --- truncated_bptt_grads ------------------------------------------------------

TBPTT_NAMES = ("dW_x", "dW_h", "db")


def windows(T, k):
    return [(start, min(start + k, T)) for start in range(0, T, k)]


def tbptt_ks(s: Shapes):
    return tuple(dict.fromkeys((1, max(2, s.time // 2 + 1), s.time, s.time + 2)))


def check_truncated_bptt_grads(truncated_bptt_grads, cases=VISIBLE, ks=tbptt_ks) -> None:
    step, count, worst = "truncated_bptt_grads", 0, 0.0
    for s in cases:
        p = problem(s)
        for k in ks(s):
            X, h0, W_x, W_h, b, dH = (a.copy() for a in (p.X, p.h0, p.W_x, p.W_h, p.b, p.dH))
            before = snapshot(dH, X, h0, W_x, W_h, b)
            out = _unpack(step, call(step, truncated_bptt_grads, dH, X, h0, W_x, W_h, b, k), TBPTT_NAMES)
            for name, old, new in zip(("dH", "X", "h0", "W_x", "W_h", "b"), before, (dH, X, h0, W_x, W_h, b)):
                expect_unchanged(step, name, old, new)
            want = ref.windowed_loss_grads(*_arrays(p), k)

            def wrong(p=p, k=k, T=s.time):
                if k >= T:
                    return {}
                found = {"no truncation (full BPTT over the whole sequence)": ref.windowed_loss_grads(*_arrays(p), T),
                         "the state not carried (every window starts again from h0)":
                             ref.windowed_loss_grads(*_arrays(p), k, carry=False)}
                if T % k:
                    found["the last, shorter window left out"] = ref.windowed_loss_grads(*_arrays(p), k, drop_short=True)
                return found
            spans = windows(s.time, k)
            what = (f"for T={s.time}, k={k} (windows {', '.join(f'[{a}, {e})' for a, e in spans[:4])}"
                    f"{', ...' if len(spans) > 4 else ''})")
            for name, got in zip(TBPTT_NAMES, out):
                worst = max(worst, expect_gradient(
                    step, f"{name} {what}", got, want[name],
                    diagnoses=lambda name=name, wrong=wrong: {m: w[name] for m, w in wrong().items()}))
                count += 1
    passed(step, count, f"(windows with carried states against numeric gradients, k = 1 to k >= T; "
                        f"relative error {worst:.1e})")
