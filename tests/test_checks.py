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


# --- what an answer may be built from (course/rules.py) --------------------------------------------

from course.checks import call_step, static_violations, watched_call, watching  # noqa: E402
from course.rules import Rule, rule  # noqa: E402


def _keras():
    from course.env import import_keras

    return import_keras()


def _step_args(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(3, 4)),
            rng.normal(size=(4, 4)), rng.normal(size=4))


def _numpy_step(x_t, h_prev, W_x, W_h, b):
    return np.tanh(x_t @ W_x + h_prev @ W_h + b)


def test_an_answer_written_with_numpy_passes_its_rule():
    out = call_step("01_rnn_by_hand", "rnn_step", _numpy_step, *_step_args())
    assert out.shape == (2, 4)


def test_a_keras_layer_in_a_numpy_step_is_named_in_the_message():
    keras = _keras()

    def rnn_step(x_t, h_prev, W_x, W_h, b):
        cell = keras.layers.SimpleRNNCell(W_h.shape[0])  # noqa: F841
        return _numpy_step(x_t, h_prev, W_x, W_h, b)

    with pytest.raises(CheckFailed, match=r"^rnn_step must be written with numpy; it uses keras.layers.SimpleRNNCell"):
        call_step("01_rnn_by_hand", "rnn_step", rnn_step, *_step_args())
    # The same call seen while it runs (the code itself out of sight).
    with pytest.raises(CheckFailed, match=r"^rnn_step must be written with numpy; it calls keras.layers.SimpleRNNCell$"):
        watched_call("rnn_step", rule("01_rnn_by_hand", "rnn_step"), rnn_step, *_step_args())


def test_a_helper_that_delegates_is_caught_while_it_runs():
    keras = _keras()

    def helper(z):
        return keras.ops.softmax(z)

    def softmax(z):
        return np.asarray(helper(z))

    with pytest.raises(CheckFailed, match="softmax must be written with numpy; it calls keras.ops.softmax"):
        call_step("01_rnn_by_hand", "softmax", softmax, np.zeros((2, 3)))


def test_the_course_checks_are_never_an_answer():
    def softmax(z):
        from course.checks import rnn_by_hand  # noqa: F401
        return np.exp(z) / np.exp(z).sum(-1, keepdims=True)

    with pytest.raises(CheckFailed, match="it imports course.checks"):
        call_step("01_rnn_by_hand", "softmax", softmax, np.zeros((2, 3)))
    # Not even where Keras is allowed.
    only_grading = Rule("keras", "built with Keras")
    with pytest.raises(CheckFailed, match="it calls course.checks"):
        watched_call("s", only_grading, lambda z: call("inner", np.exp, z), np.zeros(2))


def test_static_look_sees_aliases_dynamic_imports_and_not_parameters():
    numpy_rule = rule("01_rnn_by_hand", "softmax")
    src = "def f(z):\n    import tensorflow as T\n    return T.nn.softmax(z)\n"
    assert static_violations(numpy_rule, src) == ["it imports tensorflow (line 2)",
                                                  "it uses tensorflow.nn.softmax (line 3)"]
    assert static_violations(numpy_rule, "def f(z):\n    return __import__('jax').numpy.exp(z)\n") == [
        "it imports jax (line 2)"]
    assert static_violations(numpy_rule, "def f(z):\n    return tf.nn.softmax(z)\n") == [
        "it uses tensorflow.nn.softmax (line 2)"]
    assert static_violations(numpy_rule, "def f(z, keras=None):\n    course = 3\n    return np.exp(z)\n") == []
    assert static_violations(numpy_rule, "def f(z:\n") == []  # not Python: the call says why
    layer_rule = rule("05_seq2seq_attention", "BahdanauAttention")
    assert static_violations(layer_rule, "class A:\n    def build(self):\n        self.W = keras.layers.Dense(3)\n") == []
    assert static_violations(layer_rule, "class A(keras.layers.AdditiveAttention):\n    pass\n") == [
        "it uses keras.layers.AdditiveAttention (line 1)"]


def test_a_required_mechanism_must_be_called():
    keras = _keras()
    scan_rule = rule("07_rnn_vs_transformer", "linear_recurrence_scan")

    def scan(x):
        return keras.ops.associative_scan(lambda u, v: u + v, x, axis=0)

    watched_call("linear_recurrence_scan", scan_rule, scan, np.ones((4, 2)))
    with pytest.raises(CheckFailed, match="it never calls keras.ops.associative_scan"):
        watched_call("linear_recurrence_scan", scan_rule, lambda x: np.cumsum(x, 0), np.ones((4, 2)))


def test_watching_keeps_a_profiler_already_installed():
    seen = []
    sys.setprofile(lambda frame, event, arg: seen.append(event))
    try:
        with watching(rule("01_rnn_by_hand", "softmax")) as watch:
            _numpy_step(*_step_args())
        assert sys.getprofile() is not None
    finally:
        sys.setprofile(None)
    assert watch.violation is None and "call" in seen


@pytest.mark.parametrize("unit_id", ["01_rnn_by_hand", "02_bptt_and_gradients", "03_gated_cells"])
def test_each_step_states_its_rule_in_the_notebook(unit_id, root):
    """The text above every graded answer says what it may be built from, in course/rules.py's words."""
    import nbformat

    from course import syllabus

    unit = syllabus.load().unit(unit_id)
    nb = nbformat.read(root / "solutions" / unit_id / unit.filename, as_version=4)
    missing = []
    for i, cell in enumerate(nb.cells):
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and grading.get("solution"):
            step = grading["grade_id"]
            above = next(c for c in reversed(nb.cells[:i]) if c.cell_type == "markdown")
            if f"`{step}` must be {rule(unit_id, step).text}" not in above.source:
                missing.append(step)
    assert not missing, f"no rule stated above {missing}"


def test_stored_values_survive_another_blas_and_tell_nudges_apart(tmp_path, monkeypatch):
    """A value stored for some inputs is found again when the inputs differ in their last bits (another
    machine's matrix product), and not for inputs nudged by 1e-5 (a numeric derivative's)."""
    import types

    from autograder.expected import Recorder
    from course.checks import stored as store

    reference = types.SimpleNamespace(total=lambda a, scale=1.0: float(np.sum(a) * scale))
    recorder = Recorder(reference)
    z = np.random.default_rng(0).normal(scale=1000.0, size=(4, 5))
    nudged = z.copy()
    nudged[1, 2] += 1e-5
    for inputs in (z, nudged):
        recorder.total(inputs)
    recorder.total(z, scale=2.0)
    monkeypatch.setattr(store, "HERE", tmp_path)
    store.save(tmp_path / "demo.npz", recorder.records, "made by a test")
    stored = store.stored("demo")
    last_bits = z * (1 + 4e-16 * np.random.default_rng(1).choice([-1, 1], size=z.shape))
    assert stored.total(last_bits) == reference.total(z)
    assert stored.total(nudged) == reference.total(nudged) != reference.total(z)
    assert stored.total(z, scale=2.0) == reference.total(z, scale=2.0)
    with pytest.raises(store.MissingExpected, match="run `python -m autograder generate`"):
        stored.total(z + 1.0)


def _framework_module(name):
    """A stand-in module of a forbidden framework, whose objects do framework work when collected."""
    import types

    module = types.ModuleType(name)
    module.np = np
    exec("class Context:\n"
         "    @property\n"
         "    def scope_id(self):\n"
         "        return 1\n"
         "class Function:\n"
         "    def __init__(self):\n"
         "        self.context = Context()\n"
         "    def __del__(self):\n"
         "        key = (self.context.scope_id, 'f')  # noqa: F841\n"
         "        np.asarray(key)  # a C function of a module outside the framework: not forbidden either way\n"
         "def softmax(z):\n"
         "    e = np.exp(z - z.max(-1, keepdims=True))\n"
         "    return e / e.sum(-1, keepdims=True)\n", module.__dict__)
    return module


def test_a_frameworks_finaliser_run_during_the_answer_is_not_the_answers_call():
    """The collector may finalise a framework's object at any line of the answer (TensorFlow's functions
    read their context then); that is not a call the answer made. The answer's own finaliser is watched."""
    tf_like = _framework_module("tensorflow.python.eager.stand_in")
    numpy_rule = rule("01_rnn_by_hand", "softmax")
    box = [tf_like.Function()]

    def softmax(z):
        box.clear()   # the last reference goes: the framework's __del__ runs here
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    assert watched_call("softmax", numpy_rule, softmax, np.zeros((2, 3))).shape == (2, 3)
    assert box == []

    class Sneaky:
        def __init__(self, z, out):
            self.z, self.out = z, out

        def __del__(self):
            self.out.append(tf_like.softmax(self.z))

    def delegating(z):
        out = []
        Sneaky(z, out)   # collected at once: its __del__ calls the framework
        return out[0]

    with pytest.raises(CheckFailed, match="softmax must be written with numpy; it calls tensorflow"):
        watched_call("softmax", numpy_rule, delegating, np.zeros((2, 3)))


def _softmax_elsewhere(z):
    """A helper from another cell: the watch on the answer's thread never enters it."""
    keras = _keras()
    return np.asarray(keras.ops.softmax(keras.ops.convert_to_tensor(z, dtype="float64"), axis=-1))


def test_work_handed_to_another_thread_is_not_by_hand():
    import concurrent.futures
    import threading

    pool = concurrent.futures.ThreadPoolExecutor(1)
    pool.submit(lambda: None).result()     # its thread already running before the answer is called

    def softmax(z):
        return pool.submit(_softmax_elsewhere, z).result()

    def softmax_on_a_thread(z):
        out = []
        thread = threading.Thread(target=lambda: out.append(_softmax_elsewhere(z)))
        thread.start()
        thread.join()
        return out[0]

    numpy_rule = rule("01_rnn_by_hand", "softmax")
    try:
        for answer in (softmax, softmax_on_a_thread):
            with pytest.raises(CheckFailed, match=r"softmax must be written with numpy; it calls (concurrent|threading)"):
                watched_call("softmax", numpy_rule, answer, np.zeros((2, 3)))
    finally:
        pool.shutdown()
    assert static_violations(numpy_rule, "def f(z):\n    import concurrent.futures\n    return z\n") == [
        "it imports concurrent.futures (line 2)"]


def test_printing_and_warning_from_a_numpy_answer_is_not_a_thread():
    """The kernel's output stream asks whether its own thread is alive when an answer prints or warns; numpy's
    generators make locks. Neither is work handed to another thread."""
    import threading
    import warnings

    alive = threading.Thread(target=lambda: None)

    def softmax(z):
        alive.is_alive()
        threading.Lock()
        np.random.default_rng(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = np.exp(z)
        return e / e.sum(-1, keepdims=True)

    watched_call("softmax", rule("01_rnn_by_hand", "softmax"), softmax, np.zeros((2, 3)))
