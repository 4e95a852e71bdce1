"""The judge's memory of reference results (autograder/memo.py) changes nothing but the time.

tests/test_judge.py judges every unit's solution, blank and mutants one after the other in one process,
with the memory on, and compares each verdict with the kernel's (where nothing is remembered). These
tests pin down the rules that make that safe.
"""
import random

import numpy as np

from autograder.memo import Memo, remembered


def _counted(fn):
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(args)
        return fn(*args, **kwargs)
    return wrapper, calls


def test_the_same_plain_call_is_answered_from_memory_with_a_fresh_copy():
    memo = Memo()
    fn, calls = _counted(lambda x, scale=1.0: {"y": np.asarray(x) * scale, "n": [1, 2]})
    f = remembered(fn, "t.double", memo)
    x = np.arange(6.0).reshape(2, 3)
    first = f(x, scale=2.0)
    first["y"][0, 0] = 99.0            # a check that changes what it got
    first["n"].append(3)
    second = f(x.copy(), scale=2.0)
    assert len(calls) == 1 and memo.hits == 1
    np.testing.assert_array_equal(second["y"], x * 2.0)
    assert second["n"] == [1, 2]
    f(x, scale=3.0)                    # another argument: computed
    f(x.astype(np.float32), scale=2.0)  # another dtype: computed
    assert len(calls) == 3


def test_random_states_are_part_of_the_key_and_left_as_the_real_call_leaves_them():
    memo = Memo()
    fn, calls = _counted(lambda n: (random.random(), np.random.uniform(size=n)))
    f = remembered(fn, "t.draw", memo)
    random.seed(1), np.random.seed(1)
    real = f(3)
    after_real = (random.random(), np.random.uniform())
    random.seed(1), np.random.seed(1)
    again = f(3)
    after_again = (random.random(), np.random.uniform())
    assert len(calls) == 1 and memo.hits == 1
    assert real[0] == again[0] and np.array_equal(real[1], again[1])
    assert after_real == after_again   # what the check draws next is the same number
    random.seed(2)
    f(3)                               # another state: computed
    assert len(calls) == 2


def test_objects_that_are_not_plain_data_are_never_remembered():
    memo = Memo()

    class Layer:
        weight = 1.0

    fn, calls = _counted(lambda layer, x: layer.weight * x)
    f = remembered(fn, "t.layer", memo)
    layer = Layer()
    f(layer, 2.0)
    layer.weight = 5.0
    assert f(layer, 2.0) == 10.0 and len(calls) == 2 and memo.bypassed == 2
    g, g_calls = _counted(lambda x: Layer())
    g = remembered(g, "t.returns_object", memo)
    assert g(1) is not g(1) and len(g_calls) == 2


def test_a_function_that_changes_its_argument_is_never_remembered_again():
    memo = Memo()

    def scale_in_place(a):
        a *= 2
        return a.sum()

    f = remembered(scale_in_place, "t.in_place", memo)
    a = np.ones(3)
    assert f(a) == 6.0
    b = np.ones(3)
    assert f(b) == 6.0 and np.array_equal(b, [2, 2, 2])   # computed again: the change happened
    assert "t.in_place" in memo.impure and memo.hits == 0


def test_memory_is_bounded():
    memo = Memo(max_bytes=10_000)
    f = remembered(lambda i: np.zeros(500) + i, "t.big", memo)
    for i in range(20):
        f(i)
    assert memo.bytes <= 10_000 and len(memo.entries) < 20


def test_the_judge_remembers_every_reference_module():
    from autograder import judge  # noqa: F401 (installs the memory)
    from autograder.reference import keras_reference

    assert getattr(keras_reference.softmax, "__remembered__", None) is not None
