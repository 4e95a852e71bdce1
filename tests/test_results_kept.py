"""A step's earlier results stay the caller's: a later call neither hands one back again nor changes it.

Checked where the answer runs (course.checks.call) and through the record, where the check sees copies: the
record shows the check an object of the student's returned again as that earlier result again, and a buffer
changed later as that earlier result changed, so that the kernel and the judge see what the check would see
without a record.
"""
import functools
import json

import numpy as np
import pytest

from autograder.hidden import _record
from course.checks import CheckFailed, call


def _grade(fn):
    """A check that keeps the first result while it makes a second call, as a caller with two results does."""
    first = call("pairs", fn, np.arange(6).reshape(2, 3))
    kept = np.array(first[1], copy=True)
    second = call("pairs", fn, np.arange(6, 12).reshape(2, 3))
    assert np.array_equal(second[1], np.arange(6, 12).reshape(2, 3)[:, 1:])
    assert np.array_equal(first[1], kept), "the first result changed and the check did not notice"
    return True


def fresh(tokens):
    return tokens[:, :-1], tokens[:, 1:].copy()


_buffers = {}


def buffered(tokens):
    buf = _buffers.setdefault(tokens.shape, np.empty((tokens.shape[0], tokens.shape[1] - 1), tokens.dtype))
    buf[...] = tokens[:, 1:]
    return tokens[:, :-1], buf


_owners = {}


def buffered_view(tokens):
    """The same mistake, returning a new view of the buffer each time: the buffer is what it keeps."""
    buf = _owners.setdefault(tokens.shape, np.empty((tokens.shape[0], 2 * tokens.shape[1]), tokens.dtype))
    buf[:, :tokens.shape[1] - 1] = tokens[:, 1:]
    return tokens[:, :-1], buf[:, :tokens.shape[1] - 1]


_same = {}


def same_object(tokens):
    """Returns one cached array for every call (an lru_cache on the shape)."""
    if tokens.shape not in _same:
        _same[tokens.shape] = tokens[:, 1:].copy()
    return tokens[:, :-1], _same[tokens.shape]


@functools.lru_cache(maxsize=None)
def initial_bias(units):
    bias = np.zeros(4 * units)
    bias[units:2 * units] = 1.0
    return bias


def _grade_bias(fn):
    first = call("keras_lstm_initial_bias", fn, 3)
    first[0] = 5.0      # the caller's own change to its own result
    second = call("keras_lstm_initial_bias", fn, 3)
    assert second[0] == 0.0
    return True


def _in_place_step(params, grads):
    params -= 0.1 * grads    # asked for: an update in place, returning the parameters
    return params


def test_fresh_results_pass_and_reused_ones_fail_where_the_answer_runs():
    _buffers.clear(), _owners.clear(), _same.clear()
    assert _grade(fresh)
    with pytest.raises(CheckFailed, match=r"^pairs: it returned the same array object as an earlier call"):
        _grade(buffered)
    with pytest.raises(CheckFailed, match=r"^pairs: an array it returned earlier changed when it was called again"):
        _grade(buffered_view)
    with pytest.raises(CheckFailed, match=r"^pairs: it returned the same array object as an earlier call"):
        _grade(same_object)
    with pytest.raises(CheckFailed, match=r"^keras_lstm_initial_bias: it returned the same array object"):
        _grade_bias(initial_bias)
    assert _grade_bias(lambda units: np.repeat([0.0, 1.0, 0.0, 0.0], units))


def test_the_callers_own_changes_and_updates_asked_for_in_place_are_not_reuse():
    params, grads = np.ones(3), np.ones(3)
    out = call("sgd", _in_place_step, params, grads)
    assert out is params
    out = call("sgd", _in_place_step, out, grads)   # the earlier result is an argument: changing it is the job
    np.testing.assert_allclose(out, 0.8)
    first = call("pairs", fresh, np.arange(6).reshape(2, 3))
    first[1][...] = -1                                # the caller's own change, between calls
    call("pairs", fresh, np.arange(6).reshape(2, 3))


def _record_and_replay(tmp_path, grade, fn):
    """The kernel's run on the record's stand-ins, then the judge's from the record: (kernel, judge) outcomes."""
    def outcome(run):
        try:
            run()
            return "passed"
        except CheckFailed as err:
            return str(err)

    kernel = outcome(lambda: _record.record_call(grade, None, "tests.kept", (fn,), str(tmp_path)))
    document = _record.load_record(str(tmp_path / _record.record_name("tests.kept", grade.__name__)))
    judge = outcome(lambda: _record.replay_call(grade, None, json.loads(json.dumps(document))))
    return kernel, judge


@pytest.mark.parametrize("answer, verdict", [
    (fresh, "passed"),
    (buffered, "pairs: it returned the same array object as a"),
    (buffered_view, "pairs: an array it returned earlier changed"),
    (same_object, "pairs: it returned the same array object as a"),
])
def test_the_record_shows_the_check_what_it_would_see_without_one(tmp_path, answer, verdict):
    _buffers.clear(), _owners.clear(), _same.clear()
    kernel, judge = _record_and_replay(tmp_path, _grade, answer)
    assert kernel == judge and kernel.startswith(verdict), (kernel, judge)


def test_a_layer_cached_and_rebuilt_by_the_answer_is_seen_through_the_record(tmp_path):
    from course.env import import_keras

    keras = import_keras()
    layers = {}

    def cached_layer(weights):
        if "layer" not in layers:
            layers["layer"] = keras.layers.Dense(2, dtype="float64")
            layers["layer"].build((None, 3))
        layers["layer"].set_weights([weights, np.zeros(2)])
        return layers["layer"]

    def new_layer(weights):
        layer = keras.layers.Dense(2, dtype="float64")
        layer.build((None, 3))
        layer.set_weights([weights, np.zeros(2)])
        return layer

    def grade_layer_from_weights(fn):
        first = call("layer_from_weights", fn, np.ones((3, 2)))
        call("layer_from_weights", fn, np.full((3, 2), 2.0))
        assert np.array_equal(first.get_weights()[0], np.ones((3, 2)))
        return True

    assert _record_and_replay(tmp_path, grade_layer_from_weights, new_layer) == ("passed", "passed")
    layers.clear()
    kernel, judge = _record_and_replay(tmp_path, grade_layer_from_weights, cached_layer)
    assert kernel == judge and kernel.startswith("layer_from_weights: it returned the same layer object as an"), \
        (kernel, judge)


def test_a_record_that_claims_a_result_changed_is_checked_like_any_other(tmp_path):
    kernel, judge = _record_and_replay(tmp_path, _grade, buffered)
    path = tmp_path / _record.record_name("tests.kept", "_grade")
    document = json.loads(path.read_text())
    changed = next(e for e in document["events"] if "kept" in e)
    changed["kept"][0][0] = 10_000     # a result the check never got
    with pytest.raises(_record.RecordError, match="bad changed result"):
        _record.replay_call(_grade, None, document)
    changed.pop("kept")
    changed["same"] = [[0, -1]]
    with pytest.raises(_record.RecordError, match="bad result returned again"):
        _record.replay_call(_grade, None, document)


def test_a_layer_returned_earlier_may_be_built_by_calling_it():
    from course.env import import_keras

    keras = import_keras()
    layer = call("MinGRU", lambda units: keras.layers.Dense(units, dtype="float64"), 3)
    out = call("MinGRU", layer, np.ones((2, 4)))     # builds its weights: the layer is what is called
    assert tuple(out.shape) == (2, 3) and len(layer.get_weights()) == 2


def test_a_layer_whose_weights_a_later_call_replaces_is_named_as_a_layer():
    from course.env import import_keras

    keras = import_keras()
    shared = keras.layers.Dense(2, dtype="float64")
    shared.build((None, 3))

    def view_of_one_layer(weights):
        shared.set_weights([weights, np.zeros(2)])
        return keras.Sequential([shared])     # a new model each call, around the one layer it keeps

    first = call("layer_from_weights", view_of_one_layer, np.ones((3, 2)))
    with pytest.raises(CheckFailed, match=r"^layer_from_weights: a layer it returned earlier changed"):
        call("layer_from_weights", view_of_one_layer, np.full((3, 2), 2.0))
    assert np.array_equal(first.get_weights()[0], np.full((3, 2), 2.0))   # what the caller would have found
