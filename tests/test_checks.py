"""The check primitives: clear messages, and no passing by trickery."""
import subprocess
import sys

import numpy as np
import pytest

from course.checks import CheckFailed, call, expect_close, expect_equal, expect_shape


def test_shape_message_names_the_quantity_and_spots_a_transpose():
    with pytest.raises(CheckFailed, match=r"h_t has shape \(5, 3\), expected \(3, 5\).*transposed"):
        expect_shape("rnn_step", "h_t", np.zeros((5, 3)), (3, 5))


def test_close_names_the_known_mistake():
    want, wrong = np.ones(3), np.full(3, 2.0)
    with pytest.raises(CheckFailed, match="It matches what you get with a missing bias"):
        expect_close("s", "x", wrong, want, diagnoses={"a missing bias": wrong})


def test_nan_is_reported_with_the_hint():
    with pytest.raises(CheckFailed, match="non-finite.*subtract the max"):
        expect_close("softmax", "p", [np.nan, 1.0], [0.5, 0.5], hint="subtract the max")


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


def test_objects_that_claim_equality_do_not_pass():
    with pytest.raises(CheckFailed, match="numeric array"):
        expect_close("s", "x", AlwaysEqual(), np.ones(2))
    with pytest.raises(CheckFailed):
        expect_equal("s", "n", AlwaysEqual(), 3)


def test_none_means_a_missing_return():
    with pytest.raises(CheckFailed, match="forget to `return`"):
        expect_close("s", "x", None, np.ones(2))


def test_call_explains_not_implemented_and_student_errors():
    def todo(*_):
        raise NotImplementedError()

    def broken(a):
        return a @ np.ones((7, 2))

    with pytest.raises(CheckFailed, match="not implemented yet"):
        call("rnn_step", todo, 1)
    with pytest.raises(CheckFailed, match=r"(?s)rnn_step: raised ValueError.*ndarray\(3, 4\)"):
        call("rnn_step", broken, np.ones((3, 4)))


def test_keras_imports_without_a_word_on_stderr():
    code = ("from course import env; keras = env.import_keras();"
            "import numpy as np; keras.layers.SimpleRNN(2)(np.zeros((1, 3, 2), 'float32'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr == "", done.stderr


def test_correct_answers_in_float32_pass_visible_and_hidden_checks():
    # No correct answer may lose points to precision: students may well work in float32.
    from autograder.hidden import rnn_by_hand as hidden
    from course.checks import rnn_by_hand as visible

    f32 = np.float32

    def rnn_step(x, h, W_x, W_h, b):
        return np.tanh(x.astype(f32) @ W_x.astype(f32) + h.astype(f32) @ W_h.astype(f32) + b.astype(f32))

    def softmax(z):
        z = np.asarray(z, f32)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def sequence_cross_entropy(logits, targets):
        z = np.asarray(logits, f32)
        z = z - z.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return float(-np.take_along_axis(log_p, targets[..., None], axis=-1).mean())

    for check in (visible.check_rnn_step, hidden.grade_rnn_step):
        check(rnn_step)
    for check in (visible.check_softmax, hidden.grade_softmax):
        check(softmax)
    for check in (visible.check_sequence_cross_entropy, hidden.grade_sequence_cross_entropy):
        check(sequence_cross_entropy)
