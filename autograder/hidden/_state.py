"""A hidden check shared by the units whose answers take weight arrays: state kept across calls."""
from __future__ import annotations

import numpy as np


def after_in_place_update(call, step, fn, args, reference, names, **tolerance):
    """Call fn, update every argument IN PLACE (as p -= lr * g does to the weights), call again with the same
    array objects: the second answer must follow the new values, and the first must stay as it was.
    `call` is the unit's own (its step rule enforced); `tolerance` goes to expect_close."""
    from course.checks import expect_close

    def as_tuple(value):
        return tuple(value) if isinstance(value, (tuple, list)) else (value,)

    first = as_tuple(call(step, fn, *args))
    first_arrays = [np.array(a, dtype=np.float64, copy=True) for a in first]
    want_first = as_tuple(reference(*args))
    for k, a in enumerate(args):
        a *= 0.5
        a += 0.1 * (k + 1)
    second = as_tuple(call(step, fn, *args))
    want = as_tuple(reference(*args))
    for name, got, expected in zip(names, second, want):
        expect_close(step, f"{name} after the weights were updated in place (same arrays, new values)", got, expected,
                     **tolerance, hint="do not cache anything computed from the weights between calls (a cache keyed "
                                       "on id() or shape goes stale when training updates the arrays in place): "
                                       "compute from the arguments")
    for name, got, expected in zip(names, first_arrays, want_first):
        expect_close(step, f"the {name} returned by an earlier call, after a later call", got, expected, **tolerance,
                     hint="each call must return new arrays: a later call may not overwrite an earlier result")


def two_results_kept(call, step, fn, first_args, second_args, check_second, *, change_first=None):
    """Two calls whose results the caller keeps side by side, the first one changed by the caller in between
    (as training changes a bias it was given). `call` refuses a second result that is the first one's object
    again or that changed the first (course.checks._Results); `check_second(result)` checks the second's
    value, which a cache shared with the first caller gets wrong."""
    first = call(step, fn, *first_args)
    if change_first is not None:
        change_first(first)
    second = call(step, fn, *second_args)
    check_second(second)
    return first, second


def overwrite(value):
    """A caller's own change to an array it was given (when it may be written to)."""
    if isinstance(value, np.ndarray) and value.flags.writeable and value.size:
        value[...] = 7.0
