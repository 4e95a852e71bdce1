"""References for unit 02_bptt_and_gradients (instructor-only, never in the student wheel).

What Keras computes (a clipped SGD step, the cross-entropy), the numeric gradients of truncated BPTT,
and what known mistakes compute (backpropagation through time with switchable mistakes, norms of
dL/dh_0 with the Jacobians built wrong, clipping done wrong), so that a message can name the mistake.
The visible checks read these values on their own inputs from course/checks/expected/bptt_and_gradients.npz
(written by ``python -m autograder generate``); the hidden tests call this module directly.
"""
from __future__ import annotations

import numpy as np

from course.checks.bptt_and_gradients import _states as states
from course.checks.bptt_and_gradients import numeric_gradient, windows
from course.env import import_keras


def _local(dh, x, h_prev, h_t, W_x, W_h, factor):
    """The five gradients of one step when the pre-activation gradient is dh * factor."""
    da = dh * factor
    return dict(dx_t=np.einsum("bu,iu->bi", da, W_x), dh_prev=np.einsum("bu,vu->bv", da, W_h),
                dW_x=np.einsum("bi,bu->iu", x, da), dW_h=np.einsum("bv,bu->vu", h_prev, da),
                db=np.einsum("bu->u", da))


def _step_mistakes(dh, x, h_prev, h_t, W_x, W_h):
    """{gradient name: {mistake: the value that mistake gives}} for one step."""
    right = dh * (1 - h_t ** 2)
    out = {name: {} for name in ("dx_t", "dh_prev", "dW_x", "dW_h", "db")}
    for mistake, factor in (("the factor (1 - h_t**2) left out", 1.0),
                            ("(1 - h_prev**2) in place of (1 - h_t**2)", 1 - h_prev ** 2),
                            ("(1 - h_t) in place of (1 - h_t**2)", 1 - h_t),
                            ("tanh(h_t) in the derivative: 1 - tanh(h_t)**2", 1 - np.tanh(h_t) ** 2)):
        for name, value in _local(dh, x, h_prev, h_t, W_x, W_h, factor).items():
            out[name][mistake] = value
    out["dh_prev"]["W_h not transposed (da @ W_h instead of da @ W_h.T)"] = np.einsum("bu,uv->bv", right, W_h)
    out["dW_h"]["h_t in place of h_prev"] = np.einsum("bv,bu->vu", h_t, right)
    out["db"]["the mean over the batch instead of the sum"] = right.mean(axis=0)
    return out


def _bptt(dH, X, h0, H, W_x, W_h, *, carry=True, accumulate=True, first_prev=None, factor=True):
    """Backpropagation through time with switchable mistakes (for diagnoses only)."""
    T = X.shape[1]
    grads = dict(dX=np.zeros_like(X), dh0=None, dW_x=np.zeros_like(W_x), dW_h=np.zeros_like(W_h),
                 db=np.zeros(W_h.shape[0]))
    back = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        prev = H[:, t - 1] if t > 0 else (h0 if first_prev is None else first_prev)
        local = _local(dH[:, t] + (back if carry else 0), X[:, t], prev, H[:, t], W_x, W_h,
                       (1 - H[:, t] ** 2) if factor else 1.0)
        grads["dX"][:, t] = local["dx_t"]
        for name in ("dW_x", "dW_h", "db"):
            grads[name] = grads[name] + local[name] if accumulate else local[name]
        back = local["dh_prev"]
    grads["dh0"] = back
    return grads




def _norms(H, W_h, g, *, slope_of="h_t", transpose=True, order="backward"):
    """||dL_T/dh_0|| for T = 1..len(H), with switchable mistakes (for diagnoses only)."""
    H = np.asarray(H, np.float64)
    T, units = H.shape
    slopes = 1 - H ** 2
    if slope_of == "none":
        slopes = np.ones_like(H)
    elif slope_of == "h_prev":
        slopes = np.vstack([np.ones((1, units)), slopes[:-1]])
    factors = [slopes[t][:, None] * (W_h.T if transpose else W_h) for t in range(T)]
    prod, out = np.eye(units), []
    for J in factors:
        prod = np.einsum("jk,ki->ji", J, prod) if order == "backward" else np.einsum("jk,ki->ji", prod, J)
        out.append(np.linalg.norm(np.einsum("j,ji->i", g, prod)))
    return np.array(out)




def _norm_mistakes(H, W_h, g):
    T = len(H)
    return {"the factors (1 - h_t**2) left out": _norms(H, W_h, g, slope_of="none"),
            "W_h not transposed (J = diag(1 - h_t**2) @ W_h)": _norms(H, W_h, g, transpose=False),
            "the Jacobians multiplied in the wrong order (J_1 ... J_T)": _norms(H, W_h, g, order="forward"),
            "the (1 - h**2) of the previous state in each Jacobian": _norms(H, W_h, g, slope_of="h_prev"),
            "one step short (the first entry is ||dh_T||, i.e. T = 0)":
                np.concatenate([[np.linalg.norm(g)], _norms(H, W_h, g)[:-1]]) if T else np.zeros(0)}




def keras_clipped(grads, max_norm):
    """What keras.optimizers.SGD(learning_rate=1, global_clipnorm=max_norm) does to the gradients:
    one step from zero moves each variable to -clipped."""
    keras = import_keras()
    optimizer = keras.optimizers.SGD(learning_rate=1.0, global_clipnorm=max_norm)
    variables = [keras.Variable(np.zeros(np.shape(g)), dtype="float64") for g in grads]
    optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g, dtype="float64") for g in grads], variables))
    return [-np.asarray(v.numpy(), np.float64) for v in variables]




def _clip_mistakes(grads, max_norm):
    flat = np.concatenate([np.ravel(g) for g in grads])
    norm = float(np.linalg.norm(flat))
    per = [float(np.linalg.norm(g)) for g in grads]
    total_of_norms, squares = sum(per), float(np.dot(flat, flat))

    def scaled(n):
        return [g * min(1.0, max_norm / n) for g in grads] if n > 0 else grads

    return {
        "each tensor clipped by its own norm (clipnorm, not global_clipnorm)":
            ([g * min(1.0, max_norm / n) if n > 0 else g for g, n in zip(grads, per)], norm),
        "rescaling to max_norm even when the norm is already below it":
            ([g * (max_norm / norm) for g in grads] if norm > 0 else grads, norm),
        "the global norm taken as the sum of per-tensor norms": (scaled(total_of_norms), total_of_norms),
        "the global norm without the square root (a sum of squares)": (scaled(squares), squares),
    }




def keras_losses(logits, targets):
    """Keras' per-position sparse categorical cross-entropy from logits, float64."""
    keras = import_keras()
    return np.asarray(keras.losses.sparse_categorical_crossentropy(
        np.asarray(targets, np.int64), np.asarray(logits, np.float64), from_logits=True))




def windowed_loss_grads(X, h0, W_x, W_h, b, dH, k, *, carry=True, drop_short=False):
    """Numeric gradients (W_x, W_h, b) of sum over windows of sum(dH_w * H_w), each window run from a
    start state held constant: the state the full forward pass reached there (carry) or h0."""
    T = X.shape[1]
    W_x, W_h, b = (np.array(a, np.float64, copy=True) for a in (W_x, W_h, b))
    H = states(X, h0, W_x, W_h, b)
    spans = [(s, e) for s, e in windows(T, k) if not (drop_short and e - s < k)]
    starts = [(H[:, s - 1] if s > 0 else h0) if carry else h0 for s, _ in spans]

    def total():
        return float(sum(np.sum(dH[:, s:e] * states(X[:, s:e], h, W_x, W_h, b)) for (s, e), h in zip(spans, starts)))

    return dict(dW_x=numeric_gradient(total, W_x), dW_h=numeric_gradient(total, W_h), db=numeric_gradient(total, b))



def step_mistakes(dh, x, h_prev, h_t, W_x, W_h):
    """{gradient name: {mistake: value}} for one step backward."""
    return _step_mistakes(dh, x, h_prev, h_t, W_x, W_h)


def bptt(dH, X, h0, H, W_x, W_h, **mistakes):
    """Backpropagation through time with the named mistakes switched on (carry, accumulate, first_prev,
    factor); for diagnoses only."""
    return _bptt(dH, X, h0, H, W_x, W_h, **mistakes)


def norm_mistakes(H, W_h, g):
    """{mistake: norms of dL_T/dh_0 for T = 1..len(H)} for Jacobians built wrong."""
    return _norm_mistakes(H, W_h, g)


def clip_mistakes(grads, max_norm):
    """{mistake: (clipped, norm)} for clipping done wrong."""
    return _clip_mistakes(grads, max_norm)
