"""Hidden tests for unit 01_rnn_by_hand (instructor-only; never shipped to students).

They run the same checks as the notebook's visible cells (course.checks.rnn_by_hand)
on cases the student has not seen: the smallest sizes (batch 1, one step, one unit),
square shapes where a transposed matrix or swapped axis no longer fails by shape,
saturating weights, and random shapes drawn from a fixed seed so that grading
the same notebook twice gives the same score.
"""
from __future__ import annotations

import numpy as np

from autograder.reference import keras_reference as live
from autograder.hidden._state import after_in_place_update, two_results_kept
from course.checks import rnn_by_hand as visible
from course.checks.stored import using
from course.checks.rnn_by_hand import Shapes

SEED = 61_803


def _cases() -> tuple[Shapes, ...]:
    rng = np.random.default_rng(SEED)
    cases = [
        Shapes(1, 1, 1, 1, vocab=2, seed=SEED + 1),             # the smallest of everything
        Shapes(4, 4, 4, 4, vocab=4, seed=SEED + 2),             # square: shapes cannot betray a transpose
        Shapes(2, 3, 5, 5, vocab=5, seed=SEED + 3, scale=2.5),  # large weights: tanh saturates
        Shapes(1, 17, 2, 3, vocab=3, seed=SEED + 4),            # one long sequence
    ]
    for i in range(4):
        batch, time, input_dim, units = (int(v) for v in rng.integers(1, 9, size=4))
        cases.append(Shapes(batch, time, input_dim, units, vocab=int(rng.integers(2, 30)),
                            seed=SEED + 10 + i))
    return tuple(cases)


CASES = _cases()
PARAM_CASES = ((2, 1, None), (2, 1, 1), (97, 13, None), (97, 13, 13), (30_000, 1024, 300))


def grade_rnn_step(fn):
    with using(visible, live):
        visible.check_rnn_step(fn, CASES)
    from course.checks import expect_close, expect_finite, expect_shape

    rng = np.random.default_rng(SEED + 30)
    args = (rng.normal(size=(3, 4)), rng.normal(scale=0.5, size=(3, 5)), rng.normal(size=(4, 5)),
            rng.normal(size=(5, 5)), rng.normal(size=5))
    after_in_place_update(visible.call, "rnn_step", fn, args, live.simple_rnn_step, ("h_t",))
    # Pre-activations of about +-1000 (exploding weights): tanh saturates at exactly +-1, nothing overflows.
    x = np.array([[1.0, -1.0], [-1.0, 1.0], [0.5, 2.0]])
    W_x = np.array([[1000.0, -1000.0, 3.0], [-5.0, 1000.0, 0.0]])
    h = np.array([[0.5, -0.5, 0.2], [0.1, 0.0, -0.3], [0.9, 0.2, 0.0]])
    W_h, b = np.eye(3), np.array([1.0, 0.0, -0.5])
    what = "h_t for pre-activations of about +-1000 (tanh saturates at +-1)"
    out = expect_shape("rnn_step", what, visible.call("rnn_step", fn, x, h, W_x, W_h, b), (3, 3))
    expect_finite("rnn_step", what, out, "tanh written with exp overflows (inf / inf = nan) past |a| ~ 710: use np.tanh")
    expect_close("rnn_step", what, out, live.simple_rnn_step(x, h, W_x, W_h, b))


def grade_rnn_forward(fn):
    with using(visible, live):
        visible.check_rnn_forward(fn, CASES)
    from course.checks import fail

    rng = np.random.default_rng(SEED + 31)
    X, h0 = rng.normal(size=(2, 5, 3)), rng.normal(scale=0.5, size=(2, 4))
    W_x, W_h, b = rng.normal(scale=0.6, size=(3, 4)), rng.normal(scale=0.6, size=(4, 4)), rng.normal(size=4)
    H, last = visible.call("rnn_forward", fn, X, h0, W_x, W_h, b)
    for name, value in (("H", H), ("h_last", last)):
        if not isinstance(value, np.ndarray):
            fail("rnn_forward", f"{name} should be a numpy array (np.stack the states along axis 1), got "
                                f"{type(value).__name__}")
    after_in_place_update(visible.call, "rnn_forward", fn, (X, h0, W_x, W_h, b), live.simple_rnn_states,
                          ("H", "h_last"))


def grade_softmax(fn):
    with using(visible, live):
        visible.check_softmax(fn, CASES)
    # A 1-D vector and a 4-D array: "the last axis" for any number of dimensions.
    z = np.random.default_rng(SEED + 20).normal(scale=4, size=(2, 3, 2, 6))
    from course.checks import expect_close
    call = visible.call
    ref = live.softmax

    for arr in (z[0, 0, 0], z):
        expect_close("softmax", f"softmax of an array of shape {arr.shape}", call("softmax", fn, arr), ref(arr))


def grade_next_token_probs(fn):
    with using(visible, live):
        visible.check_next_token_probs(fn, CASES)
    # H of any number of leading axes: one state per example, (batch, units).
    from course.checks import expect_close

    rng = np.random.default_rng(SEED + 21)
    H, W_y, b_y = rng.uniform(-1, 1, size=(5, 4)), rng.normal(size=(4, 9)), rng.normal(size=9)
    expect_close("next_token_probs", "probabilities for H of shape (5, 4)", visible.call("next_token_probs", fn, H, W_y, b_y),
                 live.softmax(H @ W_y + b_y))


def grade_teacher_forcing_pairs(fn):
    with using(visible, live):
        visible.check_teacher_forcing_pairs(fn, CASES)
    from course.checks import expect_equal, fail

    step = "teacher_forcing_pairs"
    rng = np.random.default_rng(SEED + 32)
    # A GPT-2-sized vocabulary (50257 ids): ids past 32767 and 65535 must keep their values.
    tokens = rng.integers(0, 50_257, size=(3, 9))
    tokens[0, :4] = [40_000, 50_256, 32_768, 256]
    first = visible.call(step, fn, tokens)
    for name, got, want in (("inputs", first[0], tokens[:, :-1]), ("targets", first[1], tokens[:, 1:])):
        expect_equal(step, f"{name} for token ids up to 50256", got, want, diagnoses={
            "the ids narrowed to int16 (ids past 32767 wrap to negatives)": want.astype(np.int16),
            "the ids narrowed to uint16 (ids past 65535 wrap)": want.astype(np.uint16),
            "the ids narrowed to uint8 (ids past 255 wrap)": want.astype(np.uint8)})
    # A second call with other tokens of the same shape may not change the first call's results. (Graded
    # through a record, the first results are copied when they come back, so this bites only when the
    # grade runs in the kernel without one.)
    kept = [np.array(a, copy=True) for a in first]
    visible.call(step, fn, rng.integers(0, 50_257, size=tokens.shape))
    for name, now, then in zip(("inputs", "targets"), first, kept):
        if not np.array_equal(np.asarray(now), then):
            fail(step, f"the {name} returned by an earlier call changed when teacher_forcing_pairs was called again: "
                       f"each call must return its own arrays (slices of its tokens), no buffer shared between calls")


def grade_sequence_cross_entropy(fn):
    with using(visible, live):
        visible.check_sequence_cross_entropy(fn, CASES)


# GPT-2 sized: counts past 2**24 (float32 rounds them) and the exact closed form, which equals Keras'
# count_params() on every smaller case above (building these in Keras would allocate 300 MB).
LARGE_PARAM_CASES = ((50_257, 768, 768), (50_257, 1024, 512), (50_257, 768, None))


def grade_rnn_lm_param_count(fn):
    with using(visible, live):
        visible.check_rnn_lm_param_count(fn, PARAM_CASES)
    from course.checks import fail

    step = "rnn_lm_param_count"
    for vocab, units, emb in LARGE_PARAM_CASES:
        args = (vocab, units) if emb is None else (vocab, units, emb)
        got = visible.call(step, fn, *args)
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            fail(step, f"should return an int, got {type(got).__name__}")
        inputs = vocab if emb is None else emb
        want = (0 if emb is None else vocab * emb) + inputs * units + units * units + units + units * vocab + vocab
        if int(got) != want:
            fail(step, f"parameter count for vocab={vocab}, units={units}, embedding_dim={emb} is {int(got)}, expected "
                       f"{want}: count with Python ints (float32 rounds counts past 2**24, int32 overflows past 2**31)")


def grade_simple_rnn_from_weights(fn, rnn_forward=None):
    with using(visible, live):
        visible.check_simple_rnn_from_weights(fn, rnn_forward, CASES)
    from course.checks import CheckFailed, expect_close

    # Two layers of one shape, from two sets of weights, kept side by side: each computes with its own.
    step = "simple_rnn_from_weights"
    w1, w2 = visible.weights(CASES[1]), visible.weights(Shapes(4, 4, 4, 4, vocab=4, seed=SEED + 50))

    def states(layer, w, which):
        try:
            return layer(w["X"], initial_state=[w["h0"]])
        except Exception as err:
            raise CheckFailed(f"{step}: calling the {which} layer raised {type(err).__name__}: {err}") from err

    def check_both(second):
        for layer, w, which in ((first_layer[0], w1, "first"), (second, w2, "second")):
            expect_close(step, f"the {which} of two layers of one shape built one after the other, kept side "
                               f"by side", states(layer, w, which),
                         live.simple_rnn_states(w["X"], w["h0"], w["W_x"], w["W_h"], w["b"])[0], rtol=1e-9,
                         atol=1e-9, hint="build a new layer on every call: one cached layer (per shape) takes the "
                                         "second call's weights, and the first caller's layer changes with it")

    first_layer = []
    two_results_kept(visible.call, step, fn, (w1["W_x"], w1["W_h"], w1["b"]), (w2["W_x"], w2["W_h"], w2["b"]),
                     check_both, change_first=first_layer.append)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible)
