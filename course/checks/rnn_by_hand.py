"""Visible self-checks for unit 01_rnn_by_hand.

Each ``check_<step>(fn, cases=None)`` runs the student's function on fixed
cases (or on ``cases`` given by the grader) and compares it with Keras' values
on the same inputs (stored with the release: course.checks.stored) or a closed
form. Every answer is called under its step's rule (course/rules.py). It prints a one-line summary when everything passes and raises
``CheckFailed`` with a precise message otherwise. The same functions run at
grading time with more cases, so passing here means the logic is right for
these shapes; grading adds other shapes and seeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import (CheckFailed, caller_for, expect_close, expect_equal, expect_finite, expect_shape, expect_unchanged, fail,
               passed, snapshot, to_array)
from .stored import stored

UNIT = "01_rnn_by_hand"
# Every answer is called under its step's rule (course/rules.py): what it may be built from.
call = caller_for(UNIT)
# Keras' values on the visible inputs, stored with the release (the grader asks Keras itself).
ref = stored("rnn_by_hand")


@dataclass(frozen=True)
class Shapes:
    batch: int
    time: int
    input_dim: int
    units: int
    vocab: int = 7
    seed: int = 0
    scale: float = 0.6


# Non-square on purpose (batch != time != input_dim != units), so that a
# transposed matrix or a swapped axis fails loudly instead of passing by luck.
VISIBLE = (Shapes(3, 6, 4, 5, vocab=7, seed=1), Shapes(2, 9, 3, 8, vocab=11, seed=2))


def weights(s: Shapes):
    rng = np.random.default_rng(s.seed)
    return dict(
        X=rng.normal(size=(s.batch, s.time, s.input_dim)),
        h0=rng.normal(scale=0.5, size=(s.batch, s.units)),
        W_x=rng.normal(scale=s.scale, size=(s.input_dim, s.units)),
        W_h=rng.normal(scale=s.scale, size=(s.units, s.units)),
        b=rng.normal(size=(s.units,)),
        W_y=rng.normal(size=(s.units, s.vocab)),
        b_y=rng.normal(size=(s.vocab,)),
        tokens=rng.integers(0, s.vocab, size=(s.batch, s.time + 1)),
    )



# --- rnn_step -----------------------------------------------------------------

def check_rnn_step(rnn_step, cases=VISIBLE) -> None:
    step, count = "rnn_step", 0
    for s in cases:
        w = weights(s)
        x, h = w["X"][:, 0, :], w["h0"]
        before = snapshot(x, h, w["W_x"], w["W_h"], w["b"])
        out = call(step, rnn_step, x, h, w["W_x"], w["W_h"], w["b"])
        for name, old, new in zip(("x_t", "h_prev", "W_x", "W_h", "b"), before,
                                  (x, h, w["W_x"], w["W_h"], w["b"])):
            expect_unchanged(step, name, old, new)
        args = (x, h, w["W_x"], w["W_h"])
        expect_close(
            step, f"h_t for batch={s.batch}, input_dim={s.input_dim}, units={s.units}", out,
            ref.simple_rnn_step(*args, w["b"]),
            diagnoses={
                "sigmoid instead of tanh": ref.simple_rnn_step(*args, w["b"], activation="sigmoid"),
                "no tanh at all": ref.simple_rnn_step(*args, w["b"], activation=None),
                "the bias b left out": ref.simple_rnn_step(*args, None),
                "W_h transposed (h_prev @ W_h.T)": ref.simple_rnn_step(x, h, w["W_x"], w["W_h"].T, w["b"]),
                "h_prev left out": ref.simple_rnn_step(x, np.zeros_like(h), w["W_x"], w["W_h"], w["b"]),
            },
        )
        # Called again with the examples in the opposite order: each row of h_t must follow its own
        # row of x_t and h_prev, whatever was passed in earlier calls.
        again = call(step, rnn_step, x[::-1].copy(), h[::-1].copy(), w["W_x"], w["W_h"], w["b"])
        expect_close(step, "h_t when called again with the batch in reverse order", again,
                     ref.simple_rnn_step(*args, w["b"])[::-1],
                     hint="the answer must depend on its arguments only, not on earlier calls")
        count += 1
    passed(step, count, "(equal to Keras' SimpleRNNCell on the same weights)")


# --- rnn_forward --------------------------------------------------------------

def check_rnn_forward(rnn_forward, cases=VISIBLE) -> None:
    step, count = "rnn_forward", 0
    for s in cases:
        w = weights(s)
        names = ("X", "h0", "W_x", "W_h", "b")
        before = snapshot(*(w[n] for n in names))
        result = call(step, rnn_forward, w["X"], w["h0"], w["W_x"], w["W_h"], w["b"])
        if not isinstance(result, tuple) or len(result) != 2:
            fail(step, f"should return a pair (H, h_last), got {type(result).__name__}")
        H, last = result
        for name, old in zip(names, before):
            expect_unchanged(step, name, old, w[name])
        H_ref, last_ref = ref.simple_rnn_states(w["X"], w["h0"], w["W_x"], w["W_h"], w["b"])
        stale = np.stack([ref.simple_rnn_step(w["X"][:, t], w["h0"], w["W_x"], w["W_h"], w["b"])
                          for t in range(s.time)], axis=1)
        expect_shape(step, "H (all hidden states)", H, (s.batch, s.time, s.units))
        expect_close(step, f"H for batch={s.batch}, T={s.time}", H, H_ref,
                     diagnoses={"h0 fed to every step (the state is not carried)": stale})
        wrong_last = {"the first state instead of the last": H_ref[:, 0]}
        if s.time > 1:
            wrong_last["the second-to-last state (one step short)"] = H_ref[:, -2]
        expect_close(step, "h_last", last, last_ref, diagnoses=wrong_last)
        H_again, _ = call(step, rnn_forward, w["X"], w["h0"], w["W_x"], w["W_h"], w["b"])
        expect_close(step, "H when called a second time on the same inputs", H_again, H_ref,
                     hint="every call starts from its own h0: nothing may be kept from an earlier call")
        count += 1
    passed(step, count, "(every state equal to Keras' SimpleRNNCell run through keras.layers.RNN)")


# --- softmax and the output layer ---------------------------------------------

def check_softmax(softmax, cases=VISIBLE) -> None:
    step, count = "softmax", 0
    for s in cases:
        rng = np.random.default_rng(s.seed)
        z = rng.normal(scale=3, size=(s.batch, s.time, s.vocab))
        before = snapshot(z)
        out = call(step, softmax, z)
        expect_unchanged(step, "z", before[0], z)
        expect_close(step, f"softmax of shape {z.shape}", out, ref.softmax(z),
                     diagnoses={"the softmax taken over axis 0": ref.softmax(z, axis=0),
                                "the softmax taken over axis 1": ref.softmax(z, axis=1)},
                     hint="each slice along the LAST axis must be exp(z) / sum(exp(z))")
        count += 1
    # Closed form on huge logits: softmax([1000, 1001]) = [1/(1+e), e/(1+e)].
    # Rows of very different size catch a max taken over the whole array.
    big = np.array([[1000.0, 1001.0], [-3.0, -2.0], [0.0, 0.0]])
    e = np.e
    expected = np.array([[1 / (1 + e), e / (1 + e)]] * 2 + [[0.5, 0.5]])
    out = expect_shape(step, "softmax of [[1000, 1001], [-3, -2], [0, 0]]", call(step, softmax, big), big.shape)
    expect_finite(step, "softmax of [[1000, 1001], [-3, -2], [0, 0]]", out,
                  "exp(1000) overflows: subtract each row's own maximum before exp")
    expect_close(step, "softmax of [[1000, 1001], [-3, -2], [0, 0]]", out, expected, rtol=1e-6,
                 hint="subtract each row's own maximum (keepdims=True), not one maximum for the whole array")
    wide = np.array([[0.0, 1.0], [2000.0, 2001.0]])
    out = expect_shape(step, "softmax of [[0, 1], [2000, 2001]]", call(step, softmax, wide), wide.shape)
    expect_finite(step, "softmax of [[0, 1], [2000, 2001]]", out,
                  "a row underflowed to 0/0: subtract each row's own maximum, not the global one")
    # Wide spread inside one row: only the maximum is safe to subtract (the minimum, the mean or a
    # clipped copy still overflow, or change the answer).
    spread = np.array([[-1000.0, 0.0, 1000.0], [-800.0, 750.0, 749.0]])
    want = np.array([[0.0, 0.0, 1.0], [0.0, 1 / (1 + np.exp(-1.0)), np.exp(-1.0) / (1 + np.exp(-1.0))]])
    what = "softmax of [[-1000, 0, 1000], [-800, 750, 749]]"
    before = snapshot(spread)
    out = expect_shape(step, what, call(step, softmax, spread), spread.shape)
    expect_unchanged(step, "z", before[0], spread)
    expect_finite(step, what, out, "scores 2000 apart overflow unless each row's MAXIMUM is subtracted before exp")
    expect_close(step, what, out, want, rtol=1e-6, atol=1e-12,
                 hint="subtract each row's maximum, and nothing else: softmax(z - max) is exactly softmax(z)")
    passed(step, count + 3, "(equal to keras.ops.softmax; stable on logits of 1000 and more)")


def check_next_token_probs(next_token_probs, cases=VISIBLE) -> None:
    step, count = "next_token_probs", 0
    for s in cases:
        w = weights(s)
        H = ref.simple_rnn_states(w["X"], w["h0"], w["W_x"], w["W_h"], w["b"])[0]
        before = snapshot(H, w["W_y"], w["b_y"])
        out = call(step, next_token_probs, H, w["W_y"], w["b_y"])
        for name, old, new in zip(("H", "W_y", "b_y"), before, (H, w["W_y"], w["b_y"])):
            expect_unchanged(step, name, old, new)
        logits = H @ w["W_y"] + w["b_y"]
        expect_close(step, f"probabilities for H of shape {H.shape}", out, ref.softmax(logits),
                     diagnoses={"the bias b_y left out": ref.softmax(H @ w["W_y"]),
                                "logits returned without a softmax": logits,
                                "the softmax over the time axis": ref.softmax(logits, axis=1)})
        # Large output weights: logits in the thousands, as in a confident trained model.
        big_W, big_b = 500.0 * w["W_y"], 500.0 * w["b_y"]
        out = expect_shape(step, "probabilities for output weights 500 times larger",
                           call(step, next_token_probs, H, big_W, big_b), logits.shape)
        expect_finite(step, "probabilities for output weights 500 times larger", out,
                      "logits in the thousands overflow exp: use your stable softmax")
        expect_close(step, "probabilities for output weights 500 times larger", out,
                     ref.softmax(H @ big_W + big_b), rtol=1e-6, atol=1e-9)
        count += 2
    passed(step, count, "(rows are distributions over the vocabulary)")


# --- teacher forcing and the loss ---------------------------------------------

def check_teacher_forcing_pairs(teacher_forcing_pairs, cases=VISIBLE) -> None:
    step, count = "teacher_forcing_pairs", 0
    for s in cases:
        tokens = weights(s)["tokens"]
        before = tokens.copy()
        result = call(step, teacher_forcing_pairs, tokens)
        if not isinstance(result, tuple) or len(result) != 2:
            fail(step, f"should return a pair (inputs, targets), got {type(result).__name__}")
        inputs, targets = result
        expect_unchanged(step, "tokens", before, tokens)
        for name, value in (("inputs", inputs), ("targets", targets)):
            if not isinstance(value, np.ndarray):
                fail(step, f"{name} should be a numpy array (later cells slice it as [:, t]), got "
                           f"{type(value).__name__}")
            if value.dtype.kind not in "iu":
                fail(step, f"{name} has dtype {value.dtype}: token ids must stay integers (they index an "
                           f"embedding table and pick targets)")
        expect_equal(step, "inputs", inputs, tokens[:, :-1],
                     diagnoses={"the shift the wrong way (tokens[:, 1:])": tokens[:, 1:],
                                "the whole sequence unshifted": tokens})
        expect_equal(step, "targets", targets, tokens[:, 1:],
                     diagnoses={"the shift the wrong way (tokens[:, :-1])": tokens[:, :-1],
                                "the whole sequence unshifted": tokens})
        count += 1
    passed(step, count, "(targets are the inputs moved one step left)")


def check_sequence_cross_entropy(sequence_cross_entropy, cases=VISIBLE) -> None:
    step, count = "sequence_cross_entropy", 0
    for s in cases:
        rng = np.random.default_rng(s.seed + 100)
        logits = rng.normal(scale=2, size=(s.batch, s.time, s.vocab))
        targets = rng.integers(0, s.vocab, size=(s.batch, s.time))
        before = snapshot(logits, targets)
        got = call(step, sequence_cross_entropy, logits, targets)
        expect_unchanged(step, "logits", before[0], logits)
        expect_unchanged(step, "targets", before[1], targets)
        if not isinstance(got, float):
            fail(step, f"should return a Python float (float(...)), got {type(got).__name__}"
                       f"{' of shape ' + str(np.shape(got)) if hasattr(got, 'shape') else ''}")
        want = ref.sparse_cross_entropy(logits, targets)
        log_p = np.log(ref.softmax(logits))
        picked = -np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
        expect_close(step, f"loss for logits of shape {logits.shape}", to_float(step, got),
                     want, rtol=1e-6,
                     diagnoses={"a sum over time, averaged over the batch only": picked.sum(1).mean(),
                                "a sum over every position (no average)": picked.sum(),
                                "the average over the vocabulary too": -log_p.mean()},
                     hint="the loss is the mean over batch AND time of -log softmax(logits)[target]")
        count += 1
    # Closed forms: uniform logits give ln(vocab); a confident, right guess gives ~0;
    # a confident, wrong guess by 1000 gives ~1000 (a naive log(softmax) gives inf).
    V = 13
    flat = np.zeros((2, 5, V))
    expect_close(step, "loss for all-zero logits (should be ln V)", call(step, sequence_cross_entropy, flat,
                 np.zeros((2, 5), dtype=int)), np.log(V), rtol=1e-6)
    huge = np.zeros((1, 2, 3))
    huge[0, :, 0] = 1000.0
    got = to_float(step, call(step, sequence_cross_entropy, huge, np.array([[0, 1]])))
    if not np.isfinite(got):
        fail(step, "loss is not finite when a logit is 1000: compute log-softmax as "
                   "z - max - log(sum(exp(z - max))) instead of log(softmax(z))")
    expect_close(step, "loss for logits [1000, 0, 0] with targets 0 then 1", got, 500.0, rtol=1e-6)
    passed(step, count + 2, "(equal to Keras' sparse categorical cross-entropy; ln V for uniform logits)")


def to_float(step, value) -> float:
    array = to_array(step, "the loss", value)
    if array.size != 1:
        fail(step, f"should return one number, got an array of shape {array.shape}")
    return float(array.reshape(()))


# --- parameter count ----------------------------------------------------------

PARAM_CASES = ((65, 128, None), (65, 128, 32), (10, 3, None), (1000, 256, 64))


def check_rnn_lm_param_count(rnn_lm_param_count, cases=PARAM_CASES) -> None:
    step, count = "rnn_lm_param_count", 0
    for vocab, units, emb in cases:
        args = (vocab, units) if emb is None else (vocab, units, emb)
        got = call(step, rnn_lm_param_count, *args)
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            fail(step, f"should return an int, got {type(got).__name__}")
        want = ref.rnn_lm_param_count(vocab, units, emb)
        mistakes = {"no biases": want - units - vocab,
                    "the output layer left out": want - units * vocab - vocab,
                    "the recurrent matrix left out": want - units * units}
        if emb is not None:
            mistakes["the embedding table left out"] = want - vocab * emb
            mistakes["inputs of size vocab instead of embedding_dim"] = want + (vocab - emb) * units
        expect_equal(step, f"parameter count for vocab={vocab}, units={units}, embedding_dim={emb}",
                     got, want, diagnoses=mistakes)
        count += 1
    passed(step, count, "(equal to Keras' count_params())")


# --- the bridge to Keras ------------------------------------------------------

def check_simple_rnn_from_weights(simple_rnn_from_weights, rnn_forward=None, cases=VISIBLE) -> None:
    from ..env import import_keras

    keras = import_keras()
    step, count = "simple_rnn_from_weights", 0
    for s in cases:
        w = weights(s)
        layer = call(step, simple_rnn_from_weights, w["W_x"], w["W_h"], w["b"])
        if not isinstance(layer, keras.layers.SimpleRNN):
            fail(step, f"should return a keras.layers.SimpleRNN, got {type(layer).__name__}")
        if layer.compute_dtype != "float64":
            fail(step, f"the layer computes in {layer.compute_dtype}: build it with dtype=\"float64\", the "
                       f"precision of your numpy code")

        def run(what, *extra, **options):
            try:
                computed = layer(w["X"].astype(layer.compute_dtype), *extra, **options)
            except Exception as err:
                raise CheckFailed(f"{step}: calling your layer {what} on X of shape {w['X'].shape} raised "
                                  f"{type(err).__name__}: {err}") from err
            return computed

        out = run("", initial_state=[w["h0"].astype(layer.compute_dtype)])
        if isinstance(out, (list, tuple)):
            fail(step, "the layer returns a list: build it with return_state=False")
        H_ref, _ = ref.simple_rnn_states(w["X"], w["h0"], w["W_x"], w["W_h"], w["b"])
        if tuple(out.shape) == (s.batch, s.units):
            fail(step, "the layer returns only the last state: build it with return_sequences=True")
        tol = 1e-5 if layer.compute_dtype == "float32" else 1e-9
        expect_close(step, "the layer's hidden states", out, H_ref, rtol=tol, atol=tol,
                     diagnoses={"activation='relu'": ref.simple_rnn_states(
                         w["X"], w["h0"], w["W_x"], w["W_h"], w["b"], activation="relu")[0],
                                "W_h transposed": ref.simple_rnn_states(
                         w["X"], w["h0"], w["W_x"], w["W_h"].T, w["b"])[0]},
                     hint="set_weights takes [kernel (input_dim, units), recurrent_kernel (units, units), bias (units,)]")
        # The same numbers in training mode (no dropout), and from a zero state on every call (not stateful).
        expect_close(step, "the layer's hidden states when called with training=True",
                     run("with training=True", initial_state=[w["h0"]], training=True), H_ref, rtol=tol, atol=tol,
                     hint="the layer must compute what rnn_forward computes in training too: no dropout")
        zero_ref, _ = ref.simple_rnn_states(w["X"], np.zeros_like(w["h0"]), w["W_x"], w["W_h"], w["b"])
        for attempt in ("first", "second"):
            expect_close(step, f"the layer's hidden states with no initial_state ({attempt} call: from zeros)",
                         run("with no initial_state"), zero_ref, rtol=tol, atol=tol,
                         hint="each call starts from zeros unless given initial_state: stateful=False")
        if rnn_forward is not None:
            H_mine, _ = call("rnn_forward", rnn_forward, w["X"], w["h0"], w["W_x"], w["W_h"], w["b"])
            expect_close(step, "Keras' states against your rnn_forward", out, H_mine, rtol=tol, atol=tol)
        count += 1
    passed(step, count, "(Keras reproduces your hidden states)" if rnn_forward else "")
