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


# --- the sealed table handed from the judge's process to a grading kernel ------------------------------

def _judge_with(tmp_path, context_name="autograder.hidden.u"):
    """A judge's memory that computed two results under a unit's context and one under another's."""
    from autograder import memo as memo_module

    judge = Memo()
    fn, calls = _counted(lambda x, n: {"y": np.asarray(x) * 7.25, "draw": np.random.uniform(size=n)})
    f = remembered(fn, "t.scaled", judge)
    np.random.seed(5)
    with memo_module.context(context_name):
        secret = f(np.arange(4.0), 2)
        f(np.ones(3), 1)
    with memo_module.context("autograder.hidden.other"):
        f(np.zeros(2), 1)
    return judge, fn, calls, secret


def test_a_kernel_opens_only_the_calls_it_makes_itself_and_leaves_the_random_state_as_the_call_did(tmp_path):
    judge, fn, calls, secret = _judge_with(tmp_path)
    table = tmp_path / "table"
    assert judge.write_table(table, "autograder.hidden.u") == 2       # the other unit's result is not handed out
    kernel = Memo(store=False)
    assert kernel.read_table(table) == 2
    k = remembered(fn, "t.scaled", kernel)
    before = len(calls)
    np.random.seed(5)
    got = k(np.arange(4.0), 2)
    after_table = np.random.uniform()
    assert len(calls) == before and kernel.table_hits == 1
    np.testing.assert_array_equal(got["y"], secret["y"])
    np.testing.assert_array_equal(got["draw"], secret["draw"])
    np.random.seed(5)
    fn(np.arange(4.0), 2)
    assert after_table == np.random.uniform()                           # the next draw as after the real call
    k(np.arange(5.0), 2)                                                # a call the table does not hold: made,
    k(np.arange(5.0), 2)                                                # and never stored in the kernel
    assert len(calls) == before + 3 and kernel.entries == {} and kernel.misses == 2


def test_the_table_is_sealed_a_result_cannot_be_read_without_the_call_that_made_it(tmp_path):
    judge, fn, calls, secret = _judge_with(tmp_path)
    table = tmp_path / "table"
    judge.write_table(table, "autograder.hidden.u")
    data = table.read_bytes()
    for needle in (secret["y"].tobytes(), secret["draw"].tobytes(), np.float64(7.25 * 3).tobytes(), b"numpy"):
        assert needle not in data
    kernel = Memo(store=False)
    kernel.read_table(table)
    opened = [kernel._open(sealed, b"\0" * 20) for sealed in kernel.table.values()]
    assert opened == [None, None]                                        # a wrong key opens nothing


def test_a_bad_table_changes_nothing_but_the_time(tmp_path):
    judge, fn, calls, _ = _judge_with(tmp_path)
    table = tmp_path / "table"
    judge.write_table(table, "autograder.hidden.u")
    good = table.read_bytes()
    middle = len(good) // 2
    for bad in (b"", b"not a table", good[:-1], good + b"x", good[:-5] + bytes(5),
                good[:middle] + bytes([good[middle] ^ 1]) + good[middle + 1:]):
        table.write_bytes(bad)
        kernel = Memo(store=False)
        kernel.read_table(table)
        k = remembered(fn, "t.scaled", kernel)
        before = len(calls)
        np.random.seed(5)
        got = k(np.arange(4.0), 2)
        np.random.seed(5)
        assert len(calls) == before + (0 if kernel.table_hits else 1)
        np.testing.assert_array_equal(got["y"], np.arange(4.0) * 7.25)
    assert Memo(store=False).read_table(tmp_path / "missing") == 0
    assert Memo().write_table(tmp_path / "none", "autograder.hidden.u") == 0 and not (tmp_path / "none").exists()
