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
