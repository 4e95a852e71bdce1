"""Primitives for visible self-checks: comparisons that explain themselves.

Every check raises :class:`CheckFailed` (an AssertionError) with a message
naming the step, the quantity and what is wrong: the shape, where the values
differ, and, when the wrong answer matches a known mistake, which one.
Values are converted to plain float64 numpy arrays before any comparison, so
an object with a creative ``__eq__`` cannot pass for a correct answer.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


class CheckFailed(AssertionError):
    """A self-check found a wrong answer; the message says what is wrong."""

    def _render_traceback_(self) -> list[str]:
        """What Jupyter and Colab show for this error: the message alone.

        IPython calls this instead of formatting a traceback, so a student sees
        what is wrong, not the checks' own frames or the exceptions they caught
        on the way ("During handling of the above exception...").
        """
        lines = str(self).splitlines() or [type(self).__name__]
        return [f"\x1b[0;31m✗ {lines[0]}\x1b[0m", *lines[1:]]


def fail(step: str, message: str) -> None:
    raise CheckFailed(f"{step}: {message}")


def to_array(step: str, what: str, value: Any, *, dtype=np.float64) -> np.ndarray:
    """``value`` as a plain numpy array, or a failure saying why it is not one."""
    if value is None:
        fail(step, f"{what} is None: did the function forget to `return` it?")
    try:
        if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
            value = value.numpy()  # a backend tensor
        array = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as err:
        fail(step, f"{what} should be a numeric array, got {type(value).__name__} ({err})")
    return array


def expect_shape(step: str, what: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = to_array(step, what, value)
    if array.shape != tuple(shape):
        hint = ""
        if array.shape == tuple(shape)[::-1] and len(shape) > 1:
            hint = " (the axes are reversed: is something transposed?)"
        fail(step, f"{what} has shape {array.shape}, expected {tuple(shape)}{hint}")
    return array


def expect_finite(step: str, what: str, array: np.ndarray, hint: str = "") -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        fail(step, f"{what} contains {int(bad.sum())} non-finite value(s) "
                   f"(first at index {where}: {array[where]}){'; ' + hint if hint else ''}")


def _describe_difference(actual: np.ndarray, expected: np.ndarray) -> str:
    diff = np.abs(actual - expected)
    where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    where_text = f" at index {tuple(int(i) for i in where)}" if diff.ndim else ""
    return (f"largest difference {float(diff[where]):.3g}{where_text} "
            f"(got {float(actual[where]):.6g}, expected {float(expected[where]):.6g})")


def expect_close(
    step: str,
    what: str,
    actual: Any,
    expected: Any,
    *,
    rtol: float = 1e-5,   # loose enough for a correct answer computed in float32
    atol: float = 1e-6,
    diagnoses: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    hint: str = "",
) -> np.ndarray:
    """``actual`` equals ``expected`` to tolerance, or a failure that explains.

    ``diagnoses`` maps a known mistake ("sigmoid instead of tanh") to the value
    that mistake would produce; when the wrong answer matches one, the message
    names it. A callable is called only once the answer is wrong, for
    diagnoses that are costly to compute (each may run a Keras layer).
    """
    expected = np.asarray(expected, dtype=np.float64)
    actual = expect_shape(step, what, actual, expected.shape)
    expect_finite(step, what, actual, hint)
    if np.allclose(actual, expected, rtol=rtol, atol=atol):
        return actual
    message = f"{what} is wrong: {_describe_difference(actual, expected)}"
    if callable(diagnoses):
        diagnoses = diagnoses()
    for mistake, wrong in (diagnoses or {}).items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if wrong.shape == actual.shape and np.allclose(actual, wrong, rtol=rtol, atol=atol):
            message += f". It matches what you get with {mistake}"
            break
    else:
        if hint:
            message += f". {hint}"
    fail(step, message)


def expect_equal(step: str, what: str, actual: Any, expected: Any,
                 diagnoses: Mapping[str, Any] | None = None) -> None:
    """Exact equality of integers or integer arrays."""
    got = to_array(step, what, actual, dtype=np.int64)
    want = np.asarray(expected, dtype=np.int64)
    if got.shape != want.shape:
        fail(step, f"{what} has shape {got.shape}, expected {want.shape}")
    if not np.array_equal(got, want):
        message = f"{what} is {got.tolist() if got.size < 12 else 'wrong'}, expected {want.tolist() if want.size < 12 else 'something else'}"
        for mistake, wrong in (diagnoses or {}).items():
            if np.array_equal(got, np.asarray(wrong, dtype=np.int64)):
                message += f": that is what you get with {mistake}"
                break
        fail(step, message)


def snapshot(*arrays) -> list[np.ndarray]:
    """Copies of the inputs, to compare with :func:`expect_unchanged` after the call."""
    return [np.array(a, copy=True) for a in arrays]


def expect_unchanged(step: str, name: str, before: np.ndarray, after: np.ndarray) -> None:
    if not np.array_equal(before, after):
        fail(step, f"the function changed its input `{name}` in place; work on a copy instead")


def call(step: str, fn: Callable, *args, **kwargs):
    """Call the student's function; turn an exception into a failure that names the step."""
    if not callable(fn):
        fail(step, f"expected a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        fail(step, "not implemented yet: replace `raise NotImplementedError()` with your code")
    except CheckFailed:
        raise
    except Exception as err:  # the student's bug: report it with the step's name
        shapes = ", ".join(
            f"{type(a).__name__}{getattr(a, 'shape', '')}" for a in args
        )
        raise CheckFailed(
            f"{step}: raised {type(err).__name__}: {err}\n    (called with {shapes})"
        ) from err


def passed(step: str, count: int, note: str = "") -> None:
    print(f"✓ {step}: {count} checks passed{' ' + note if note else ''}")
