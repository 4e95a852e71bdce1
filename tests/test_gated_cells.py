"""Unit 03 (gated cells): the facts the notebook teaches, checked against Keras,
and checks that accept every correct answer and name the usual wrong ones."""
import numpy as np
import pytest

from autograder.hidden import gated_cells as hidden
from course.checks import CheckFailed
from course.checks import gated_cells as visible
from autograder.reference import keras_gated as ref


def _sig(z):
    return np.exp(-np.logaddexp(0, -z))   # stable for scores of any size


# Correct answers written another way than the notebook's, computed in the inputs' precision
# (float64 or float32).
def lstm_step(x, h, c, K, U, b):
    f32 = np.result_type(x, h, c, K, U, b)
    x, h, c, K, U, b = (np.asarray(a, f32) for a in (x, h, c, K, U, b))
    u = U.shape[0]
    gate = lambda k: x @ K[:, k * u:(k + 1) * u] + h @ U[:, k * u:(k + 1) * u] + b[k * u:(k + 1) * u]  # noqa: E731
    new_c = _sig(gate(1)) * c + _sig(gate(0)) * np.tanh(gate(2))
    return _sig(gate(3)) * np.tanh(new_c), new_c


def lstm_forward(X, h, c, K, U, b):
    H = []
    for t in range(X.shape[1]):
        h, c = lstm_step(X[:, t], h, c, K, U, b)
        H.append(h)
    return np.stack(H, 1), h, c


def gru_step(x, h, K, U, b):
    dtype = np.result_type(x, h, K, U, b)
    x, h, K, U, b = (np.asarray(a, dtype) for a in (x, h, K, U, b))
    u = U.shape[0]
    xp, hp = x @ K + b[0], h @ U + b[1]
    z = _sig(xp[:, :u] + hp[:, :u])
    r = _sig(xp[:, u:2 * u] + hp[:, u:2 * u])
    return z * h + (1 - z) * np.tanh(xp[:, 2 * u:] + r * hp[:, 2 * u:])


def gru_forward(X, h, K, U, b):
    H = []
    for t in range(X.shape[1]):
        h = gru_step(X[:, t], h, K, U, b)
        H.append(h)
    return np.stack(H, 1), h


def test_float32_inside_fails_where_float64_is_promised():
    def lstm_step_f32(x, h, c, K, U, b):
        return lstm_step(*(np.asarray(a, np.float32) for a in (x, h, c, K, U, b)))

    with pytest.raises(CheckFailed, match="h_t"):
        visible.check_lstm_step(lstm_step_f32)


def test_correct_answers_in_either_precision_pass_visible_and_hidden_checks():
    for fn, check, grade in [(lstm_step, visible.check_lstm_step, hidden.grade_lstm_step),
                             (lstm_forward, visible.check_lstm_forward, hidden.grade_lstm_forward),
                             (gru_step, visible.check_gru_step, hidden.grade_gru_step),
                             (gru_forward, visible.check_gru_forward, hidden.grade_gru_forward)]:
        check(fn)
        grade(fn)


def test_keras_lstm_blocks_are_i_f_c_o_and_dc_dcprev_is_diagonal_f():
    rng = np.random.default_rng(0)
    b, d, u = 2, 3, 4
    x, h, c = rng.normal(size=(b, d)), rng.normal(size=(b, u)), rng.normal(size=(b, u))
    K, U, bias = rng.normal(size=(d, 4 * u)), rng.normal(size=(u, 4 * u)), rng.normal(size=4 * u)
    z = x @ K + h @ U + bias
    i, f, g, o = _sig(z[:, :u]), _sig(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), _sig(z[:, 3 * u:])
    h_t, c_t = ref.lstm_step(x, h, c, K, U, bias)
    np.testing.assert_allclose(c_t, f * c + i * g, rtol=1e-12)
    np.testing.assert_allclose(h_t, o * np.tanh(f * c + i * g), rtol=1e-12)
    np.testing.assert_allclose(ref.cell_state_derivative(x, h, c, K, U, bias), f, rtol=1e-8)
    # Off the diagonal: nudging unit 0 of c_prev leaves every other unit of c_t alone.
    nudged = c.copy()
    nudged[:, 0] += 0.1
    moved = ref.lstm_step(x, h, nudged, K, U, bias)[1] - c_t
    assert np.abs(moved[:, 1:]).max() < 1e-12 and np.abs(moved[:, 0]).min() > 0


def test_keras_gru_convention_and_reset_after_false_is_reset_before_the_product():
    rng = np.random.default_rng(1)
    b, d, u = 2, 3, 4
    x, h = rng.normal(size=(b, d)), rng.normal(size=(b, u))
    K, U, bias = rng.normal(size=(d, 3 * u)), rng.normal(size=(u, 3 * u)), rng.normal(size=(2, 3 * u))
    xp, hp = x @ K + bias[0], h @ U + bias[1]
    z, r = _sig(xp[:, :u] + hp[:, :u]), _sig(xp[:, u:2 * u] + hp[:, u:2 * u])
    after = z * h + (1 - z) * np.tanh(xp[:, 2 * u:] + r * hp[:, 2 * u:])   # z keeps the OLD state
    np.testing.assert_allclose(ref.gru_step(x, h, K, U, bias), after, rtol=1e-12)
    before = z * h + (1 - z) * np.tanh(xp[:, 2 * u:] + (r * h) @ U[:, 2 * u:] + bias[1, 2 * u:])
    np.testing.assert_allclose(ref.gru_step(x, h, K, U, bias[0] + bias[1], reset_after=False), before, rtol=1e-12)


def test_initial_bias_and_counts_come_from_keras():
    np.testing.assert_array_equal(ref.lstm_initial_bias(2), [0, 0, 1, 1, 0, 0, 0, 0])
    for d, u in [(3, 5), (65, 512)]:
        assert ref.lstm_param_count(d, u) == 4 * (d * u + u * u + u)
        assert ref.gru_param_count(d, u) == 3 * (d * u + u * u + 2 * u)
        assert ref.gru_param_count(d, u, reset_after=False) == 3 * (d * u + u * u + u)


@pytest.mark.parametrize("d,u", [(64, 64), (65, 512), (256, 1024), (1000, 128)])
def test_a_gru_has_about_a_quarter_fewer_parameters(d, u):
    ratio = ref.gru_param_count(d, u) / ref.lstm_param_count(d, u)
    assert ratio == pytest.approx(0.75 * (d + u + 2) / (d + u + 1), rel=1e-12)
    assert 0.75 < ratio < 0.76


def _fails(check, fn, pattern):
    with pytest.raises(CheckFailed, match=pattern):
        check(fn)


def test_messages_name_the_mistake():
    def ifoc(x, h, c, K, U, b):
        u = U.shape[0]
        perm = np.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]
        return lstm_step(x, h, c, K[:, perm], U[:, perm], b[perm])

    def reset_before(x, h, K, U, b):
        u = U.shape[0]
        xp, hp = x @ K + b[0], h @ U + b[1]
        z, r = _sig(xp[:, :u] + hp[:, :u]), _sig(xp[:, u:2 * u] + hp[:, u:2 * u])
        return z * h + (1 - z) * np.tanh(xp[:, 2 * u:] + (r * h) @ U[:, 2 * u:] + b[1, 2 * u:])

    def pytorch_order(x, h, K, U, b):   # blocks read as r, z, h
        u = U.shape[0]
        perm = np.r_[u:2 * u, 0:u, 2 * u:3 * u]
        return gru_step(x, h, K[:, perm], U[:, perm], b[:, perm])

    _fails(visible.check_lstm_step, ifoc, r"h_t \(batch=3.*order i, f, o, c")
    _fails(visible.check_gru_step, reset_before, r"reset gate applied before the matrix product")
    _fails(visible.check_gru_step, pytorch_order, r"z and r swapped")
    _fails(visible.check_lstm_param_count, lambda d, u: 4 * (d * u + u * u + 2 * u), "PyTorch stores b_ih and b_hh")
    _fails(visible.check_gru_param_count, lambda d, u: 3 * (d * u + u * u + u), "reset_after=False")
    _fails(visible.check_keras_lstm_initial_bias, lambda u: np.zeros(4 * u), "unit_forget_bias=True")
    _fails(visible.check_lstm_step, lambda *a: lstm_step(*a)[0], r"should return a tuple \(h_t, c_t\)")


# --- the LSTM backward pass ----------------------------------------------------------------------

from autograder.reference import lstm_backward as grads_ref  # noqa: E402


def lstm_step_forward(x, h, c, K, U, b):
    """A correct forward step with another cache than the notebook's: a dict holding the pre-activation."""
    a = x @ K + h @ U + b
    h_t, c_t = lstm_step(x, h, c, K, U, b)
    return h_t, c_t, {"x": x, "h": h, "c": c, "K": K, "U": U, "a": a, "c_t": c_t}


def lstm_step_backward(dh, dc, cache):
    u = cache["U"].shape[0]
    a = cache["a"]
    i, f, g, o = _sig(a[:, :u]), _sig(a[:, u:2 * u]), np.tanh(a[:, 2 * u:3 * u]), _sig(a[:, 3 * u:])
    tc = np.tanh(cache["c_t"])
    dc = dc + dh * o * (1 - tc ** 2)
    da = np.hstack([dc * g * i * (1 - i), dc * cache["c"] * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)])
    return (da @ cache["K"].T, da @ cache["U"].T, dc * f, cache["x"].T @ da, cache["h"].T @ da,
            np.einsum("bk->k", da))


def lstm_forward_with_cache(X, h, c, K, U, b):
    H, caches = [], []
    for t in range(X.shape[1]):
        h, c, step_cache = lstm_step_forward(X[:, t], h, c, K, U, b)
        H.append(h)
        caches.append(step_cache)
    return np.stack(H, 1), h, c, tuple(caches)


def lstm_backward(dH, cache):
    T = dH.shape[1]
    dX = [None] * T
    dh, dc = np.zeros_like(dH[:, 0]), np.zeros_like(dH[:, 0])
    total = None
    for t in range(T - 1, -1, -1):
        dX[t], dh, dc, *weights = lstm_step_backward(dH[:, t] + dh, dc, cache[t])
        total = weights if total is None else [s + w for s, w in zip(total, weights)]
    return (np.stack(dX, 1), dh, dc, *total)


def test_the_numeric_gradients_differentiate_keras_lstm():
    rng = np.random.default_rng(11)
    X, h0, c0 = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    K, U, b = rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), rng.normal(size=16)
    H_keras, _, _ = ref.lstm_states(X, h0, c0, K, U, b)
    np.testing.assert_allclose(grads_ref.states(X, h0, c0, K, U, b), H_keras, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("s", visible.BACKWARD_VISIBLE[:3])
def test_numeric_and_analytic_reference_gradients_agree(s):
    w = visible.backward_problem(s)
    args = (w["dH"], w["X"], w["h0"], w["c0"], w["kernel"], w["recurrent_kernel"], w["bias"])
    numeric = grads_ref.lstm_numeric_gradients(*args)
    analytic = grads_ref._bptt(*args)
    for name in grads_ref.SEQUENCE_NAMES:
        assert visible.relative_error(analytic[name], numeric[name]) < 1e-8, name


def test_the_saturated_case_saturates_every_gate():
    w = visible.saturated_problem()
    u = w["recurrent_kernel"].shape[0]
    a = w["X"][:, 0] @ w["kernel"] + w["h0"] @ w["recurrent_kernel"] + w["bias"]
    assert np.abs(a).min() > 900
    gates = _sig(a[:, :2 * u])
    assert np.all((gates == 0.0) | (gates == 1.0))


def test_a_correct_backward_pass_with_its_own_cache_passes_visible_and_hidden_checks():
    visible.check_lstm_step_backward(lstm_step_backward, lstm_step_forward)
    hidden.grade_lstm_step_backward(lstm_step_backward, lstm_step_forward)
    visible.check_lstm_backward(lstm_backward, lstm_forward_with_cache)
    hidden.grade_lstm_backward(lstm_backward, lstm_forward_with_cache)


def test_backward_messages_name_the_mistake():
    def no_forget_path(dh, dc, cache):
        out = list(lstm_step_backward(dh, dc, cache))
        f = _sig(cache["a"][:, cache["U"].shape[0]:2 * cache["U"].shape[0]])
        out[2] = out[2] / f
        return tuple(out)

    def overwritten(dH, cache):
        dh, dc = np.zeros_like(dH[:, 0]), np.zeros_like(dH[:, 0])
        dX = []
        for t in reversed(range(dH.shape[1])):
            dx, dh, dc, *weights = lstm_step_backward(dH[:, t] + dh, dc, cache[t])
            dX.append(dx)
        return (np.stack(dX[::-1], 1), dh, dc, *weights)

    def bias_per_example(dh, dc, cache):
        out = list(lstm_step_backward(dh, dc, cache))
        out[5] = np.repeat(out[5][None] / len(dh), len(dh), axis=0)
        return tuple(out)

    _fails(lambda fn: visible.check_lstm_step_backward(fn, lstm_step_forward), no_forget_path,
           r"dc_prev .*without the forget gate")
    _fails(lambda fn: visible.check_lstm_backward(fn, lstm_forward_with_cache), overwritten,
           r"overwritten at each step instead of summed")
    _fails(lambda fn: visible.check_lstm_step_backward(fn, lstm_step_forward), bias_per_example,
           r"dbias has shape .*a sum over the batch")
    _fails(lambda fn: visible.check_lstm_step_backward(lstm_step_backward, fn),
           lambda *a: lstm_step_forward(*a)[:2], r"should return a tuple \(h_t, c_t, cache\)")
