"""Unit 02's checks: their references are right, and they name the mistakes they catch."""
import numpy as np
import pytest

from autograder.hidden import bptt_and_gradients as hidden
from course.checks import CheckFailed
from course.checks import bptt_and_gradients as checks
from autograder.reference import bptt as bptt_ref
from autograder.reference import keras_reference as ref


def test_the_checks_forward_pass_is_keras_simple_rnn():
    for s in (*checks.VISIBLE, *hidden.CASES):
        p = checks.problem(s)
        H_keras, _ = ref.simple_rnn_states(p.X, p.h0, p.W_x, p.W_h, p.b)
        np.testing.assert_allclose(checks._states(p.X, p.h0, p.W_x, p.W_h, p.b), H_keras, rtol=1e-12, atol=1e-12)


def test_numeric_gradient_of_a_known_function():
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    grad = checks.numeric_gradient(lambda: float(np.sum(np.sin(x) * x)), x)
    np.testing.assert_allclose(grad, np.sin(x) + x * np.cos(x), rtol=1e-9)
    rows = checks.numeric_gradient_rows(lambda: np.sum(x ** 3, axis=1), x)
    np.testing.assert_allclose(rows, 3 * x ** 2, rtol=1e-9)


def test_keras_clip_reference_leaves_small_gradients_alone_and_scales_large_ones_together():
    small = [np.full((2, 2), 0.1), np.array([0.2])]
    for got, want in zip(bptt_ref.keras_clipped(small, 10.0), small):
        np.testing.assert_array_equal(got, want)
    big = [np.full((2, 2), 3.0), np.array([4.0])]   # global norm sqrt(36 + 16) = sqrt(52)
    for got, want in zip(bptt_ref.keras_clipped(big, 1.0), big):
        np.testing.assert_allclose(got, want / np.sqrt(52.0), rtol=1e-12)


# Correct answers written in another style than the solution must pass, visible and hidden.

def step_backward(dh_t, x_t, h_prev, h_t, W_x, W_h):
    da = np.einsum("bu,bu->bu", dh_t, 1 - h_t * h_t)
    return (np.einsum("bu,iu->bi", da, W_x), np.einsum("bu,vu->bv", da, W_h),
            np.einsum("bi,bu->iu", x_t, da), np.einsum("bv,bu->vu", h_prev, da), da.sum(0))


def backward(dH, X, h0, H, W_x, W_h):
    prevs = np.concatenate([h0[:, None], H[:, :-1]], axis=1)
    out = [np.zeros_like(X), None, np.zeros_like(W_x), np.zeros_like(W_h), np.zeros(W_h.shape[0])]
    carry = np.zeros_like(h0)
    for t in range(X.shape[1])[::-1]:
        out[0][:, t], carry, gx, gh, gb = step_backward(dH[:, t] + carry, X[:, t], prevs[:, t], H[:, t], W_x, W_h)
        out[2], out[3], out[4] = out[2] + gx, out[3] + gh, out[4] + gb
    out[1] = carry
    return tuple(out)


def clip(grads, max_norm):
    norm = float(np.linalg.norm(np.concatenate([np.ravel(g) for g in grads])))
    factor = min(1.0, max_norm / norm) if norm else 1.0
    return [factor * np.array(g) for g in grads], norm


def test_correct_answers_in_another_style_pass():
    checks.check_rnn_step_backward(step_backward)
    hidden.grade_rnn_step_backward(step_backward)
    checks.check_rnn_backward(backward)
    hidden.grade_rnn_backward(backward)
    checks.check_clip_by_global_norm(clip)
    hidden.grade_clip_by_global_norm(clip)


def test_known_mistakes_are_named():
    def jacobian_transposed(h_t, W_h):
        return W_h * (1 - h_t ** 2)[None, :]   # = (diag(1 - h^2) W_h^T)^T

    with pytest.raises(CheckFailed, match="J transposed"):
        checks.check_step_jacobian(jacobian_transposed)

    def per_tensor(grads, max_norm):
        return [g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads], clip(grads, max_norm)[1]

    with pytest.raises(CheckFailed, match="each tensor clipped by its own norm"):
        checks.check_clip_by_global_norm(per_tensor)

    def summed_not_mean(logits, targets):
        z = logits - logits.max(-1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        loss = float(-np.log(np.take_along_axis(p, targets[..., None], -1)).mean())
        return loss, p - np.eye(logits.shape[-1])[targets]

    with pytest.raises(CheckFailed, match="no division by the number of positions"):
        checks.check_softmax_cross_entropy_grad(summed_not_mean)


def test_vanishing_closed_form_is_the_number_the_unit_quotes():
    def norms(H, W_h, g):
        P, out = np.eye(len(g)), []
        for h in H:
            P = ((1 - h ** 2)[:, None] * W_h.T) @ P
            out.append(np.linalg.norm(g @ P))
        return np.array(out)

    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    assert norms(np.zeros((100, 5)), 0.9 * Q, np.eye(5)[0])[-1] == pytest.approx(2.656e-5, rel=1e-3)
    checks.check_dh0_norms(norms)
    hidden.grade_dh0_norms(norms)


def test_truncation_windows_cover_the_sequence_once():
    assert checks.windows(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert checks.windows(4, 10) == [(0, 4)]
    assert checks.windows(3, 1) == [(0, 1), (1, 2), (2, 3)]
