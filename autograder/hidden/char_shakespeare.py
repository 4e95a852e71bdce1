"""Hidden tests for unit 06_char_shakespeare (instructor-only; never shipped to students).

The notebook's visible checks (course.checks.char_shakespeare) on cases the
student has not seen: texts with punctuation, digits and non-ASCII letters,
a one-character text; windows with a stride longer than the window, exactly
one window, random ids; a batch of one window, a batch size larger than the
data; GRU and three-layer models, a batch of one and a single time step;
very large logits; other temperatures and logits; a one-character prefix; models with dropout, which
generation must leave off (inference); a single window, logits in the hundreds;
chunks of one id through a three-layer GRU, a float64 model with dropout over
130 ids, its last chunk shorter (the loss kept in float64).
Fixed seeds throughout, so that grading the same notebook twice gives the
same score.
"""
from __future__ import annotations

import math

import numpy as np

from course.checks import char_shakespeare as visible
from course.checks.char_shakespeare import (BatchCase, CarryCase, GenerateCase, LossCase, ModelCase, PositionCase,
                                            SampleCase, StepCase, Windows, call, chi_square_limit, fail)

SEED = 31_415

TEXTS = (
    "KING RICHARD III:\nNow is the winter of our discontent, 1592!",
    "Ça, déjà vu? Œuvre & ½ — fin.",
    "\n",
    "ab ba\tab\n\nBA",
)
ENCODE_CASES = (
    ("", "abc"),                                   # nothing to encode
    ("O Romeo, Romeo!\n", "O Romeo, Romeo! wherefore art thou\n"),
    ("é!", "!é?ab"),
    ("zzzz", "xyz"),
)
WINDOW_CASES = (
    Windows(30, 4, stride=7),                  # gaps between windows
    Windows(6, 5),                             # exactly one window
    Windows(50, 6, stride=1, seed=SEED),       # every start, random ids
    Windows(101, 10, seed=SEED + 1),
    Windows(2, 1),
)
BATCH_CASES = (
    BatchCase(1, 3, 1, SEED),                  # one window, one batch
    BatchCase(3, 2, 4, SEED + 1),              # batch larger than the data: no batch at all
    BatchCase(37, 5, 6, SEED + 2),
    BatchCase(16, 1, 1, SEED + 3),             # batches of one window
)
MODEL_CASES = (
    ModelCase(5, 2, 3, 3, "lstm", seed=SEED),
    ModelCase(2, 1, 1, 2, "gru", 0.25, seed=SEED + 2),
)
LOSS_CASES = (
    LossCase(1, 1, 2, seed=SEED),              # one position, two symbols
    LossCase(4, 7, 65, seed=SEED + 1),
    LossCase(2, 3, 9, seed=SEED + 2, scale=5000.0),
)
LOSS_VALUES = (0.0, 0.25, 1.0, math.log(65), 3.3, 10.0)
SAMPLE_CASES = (
    SampleCase((0.0, 0.2, -0.4, 1.1, 0.6, -0.9, 0.3), (1.0, 0.7, 3.0), seed=SEED),
    SampleCase((1.0, -0.5, 0.3), (0.5, 1.5), seed=SEED + 1),     # three symbols; every one drawn often enough
    # 65 symbols (Shakespeare's alphabet): five likely ones and 60 distinct ones of probability 0.0015..0.0025 at
    # T = 0.02, which together carry 12% of the mass (a top-k, a nucleus or a small-probability cut-off loses part
    # of it); at T = 0.02 and 0.05 the draw is still far from the argmax. Logits 0.02 * ln(p); 20000 draws per
    # row, so every symbol is expected at least 30 times (the chi-square test's false-alarm rate stays about 1e-6).
    SampleCase(tuple(float(v) for v in 0.02 * np.log([0.3, 0.25, 0.15, 0.1, 0.08]
                                                     + np.linspace(0.0015, 0.0025, 60).tolist())),
               (0.02, 0.05, 1.0), draws=20000, seed=SEED + 2),
)
STEP_CASES = (
    StepCase(5, 3, 4, 3, "lstm", batch=2, time=4, seed=SEED),
    StepCase(8, 4, 3, 2, "gru", batch=1, time=6, seed=SEED + 1),
    StepCase(6, 2, 5, 1, "lstm", batch=4, time=1, seed=SEED + 2),
    StepCase(5, 3, 4, 2, "lstm", batch=2, time=3, seed=SEED + 5, dropout=0.3),   # dropout: inference asked
)
GENERATE_CASES = (
    GenerateCase(StepCase(6, 3, 5, 2, "gru", batch=1, time=1, seed=SEED + 3, scale=1.0), (2, 0, 4, 1, 1, 3), 9),
    GenerateCase(StepCase(7, 4, 6, 1, "lstm", batch=1, time=1, seed=SEED + 4, scale=1.0), (5,), 6),
    GenerateCase(StepCase(6, 3, 4, 2, "gru", batch=1, time=1, seed=SEED + 6, scale=1.0, dropout=0.4), (1, 2), 5),
)

POSITION_CASES = (
    PositionCase(StepCase(5, 3, 4, 3, "lstm", batch=1, time=1, seed=SEED + 7)),          # one window of one
    PositionCase(StepCase(8, 4, 6, 2, "gru", batch=5, time=9, seed=SEED + 8, dropout=0.4)),
    PositionCase(StepCase(6, 3, 5, 1, "lstm", batch=3, time=4, seed=SEED + 9), large=True),   # logits in the hundreds
)
CARRY_CASES = (
    CarryCase(StepCase(5, 3, 4, 3, "gru", batch=1, time=1, seed=SEED + 10), length=5, chunk=1),      # one id a call
    CarryCase(StepCase(6, 4, 5, 2, "lstm", batch=1, time=1, seed=SEED + 13, scale=0.4, dropout=0.3), length=131,
              chunk=30, float64=True),
)


def grade_build_vocab(fn):
    visible.check_build_vocab(fn, TEXTS)


def grade_encode(fn):
    visible.check_encode(fn, ENCODE_CASES)
    # the empty text too must give an integer array (np.array([]) alone is float64)
    chars = sorted(set("abc"))
    got = np.asarray(call("encode", fn, "", {c: i for i, c in enumerate(chars)}))
    if got.shape != (0,) or not np.issubdtype(got.dtype, np.integer):
        fail("encode", f"encode('', char_to_id) returned an array of shape {got.shape} and dtype {got.dtype}, "
                       "expected an empty integer array: np.array([]) is float64, so give the dtype "
                       "(np.array(ids, dtype=np.int32))")


def grade_decode(fn):
    visible.check_decode(fn, ENCODE_CASES)


def grade_make_windows(fn):
    visible.check_make_windows(fn, WINDOW_CASES)


def grade_batches(fn):
    visible.check_batches(fn, BATCH_CASES)
    _check_dropped_windows(fn)


def _check_dropped_windows(fn, epochs=350, windows=7, batch_size=3):
    """7 windows in batches of 3: each epoch leaves one window out, and after a shuffle of all the windows
    that one is any of the 7 equally often. 350 epochs from one rng; a chi-square test (6 degrees of freedom)
    of how often each window was left out, false alarm about 1e-6 (50 expected per window).

    The same epochs also show which windows share a batch: after a shuffle, windows 1, 2 or 3 apart (on the
    circle of 7) are in one batch equally often, 700 times each in 350 epochs (standard deviation 20, by
    simulation of rng.permutation). Fewer than 560 for one of them (7 deviations) fails, a false alarm below
    1e-9: batches of neighbouring windows (a random start, then consecutive windows) never pair windows 3
    apart."""
    step = "batches"
    inputs = np.arange(windows, dtype=np.int32)[:, None]
    targets = inputs + visible.OFFSET
    rng = np.random.default_rng(SEED + 40)
    where = f"{windows} windows of one id, batch_size={batch_size}, {epochs} epochs from one rng"
    left_out = np.zeros(windows, np.int64)
    apart = np.zeros(windows // 2 + 1, np.int64)     # pairs in one batch, by how far apart on the circle
    for _ in range(epochs):
        epoch = visible._epoch(step, fn, inputs, targets, batch_size, rng, where, watched=False)
        seen = {int(i) for x, _ in epoch for i in np.ravel(x)}
        if len(seen) != windows // batch_size * batch_size:
            fail(step, f"({where}) an epoch used the windows {sorted(seen)}: expected {windows // batch_size} "
                       f"batches of {batch_size} distinct windows")
        left_out[sorted(set(range(windows)) - seen)] += 1
        for x, _ in epoch:
            ids = [int(i) for i in np.ravel(x)]
            for a in range(len(ids)):
                for b in range(a + 1, len(ids)):
                    d = abs(ids[a] - ids[b]) % windows
                    apart[min(d, windows - d)] += 1
    expected = apart[1:].sum() / (len(apart) - 1)
    if apart[1:].min() < 0.8 * expected:
        fail(step, f"({where}) windows 1, 2 and 3 apart shared a batch {apart[1:].tolist()} times, expected about "
                   f"{expected:.0f} each: a batch must hold windows from anywhere in the shuffled order, not "
                   "neighbouring windows (shuffle the windows themselves: rng.permutation(len(inputs)))")
    stat = visible._chi_square(left_out, np.full(windows, 1.0 / windows), left_out.sum())
    if stat > chi_square_limit(windows - 1):
        fail(step, f"({where}) the windows left out of an epoch were {left_out.tolist()} times each, expected "
                   f"about {left_out.sum() / windows:.0f} for each: shuffle all the windows "
                   "(rng.permutation(len(inputs))), then drop the last, incomplete batch, so that every window "
                   "can be used")


def grade_build_char_model(fn):
    visible.check_build_char_model(fn, MODEL_CASES)
    # every case, GRU included, against Keras' own stack on the same weights; no recurrent dropout
    step = "build_char_model"
    for c in MODEL_CASES:
        where = f"cell={c.cell!r}, layers={c.layers}, dropout={c.dropout}"
        model = call(step, fn, c.vocab_size, c.embedding_dim, c.units, c.layers, c.cell, c.dropout)
        for k, layer in enumerate(model.layers[1:-1]):
            if getattr(layer, "recurrent_dropout", 0.0) != 0.0:
                fail(step, f"({where}) recurrent layer {k} has recurrent_dropout={layer.recurrent_dropout}: only "
                           "`dropout` (on the layer's inputs) is asked; leave recurrent_dropout at 0")
        tokens = np.random.default_rng(c.seed + 100).integers(0, c.vocab_size, size=(3, 6)).astype(np.int32)
        reference = visible.reference_stack(c)
        reference.set_weights(model.get_weights())
        visible.expect_close(step, f"the logits ({where}) against Keras' Embedding -> {c.cell.upper()} -> Dense on "
                                   "the same weights (default activations, reading forwards)",
                             model(tokens), reference(tokens), rtol=1e-5, atol=1e-6)


def grade_sequence_loss(fn):
    visible.check_sequence_loss(fn, LOSS_CASES)


def grade_perplexity(fn):
    visible.check_perplexity(fn, LOSS_VALUES)


def grade_bits_per_char(fn):
    visible.check_bits_per_char(fn, LOSS_VALUES)


def grade_sample_next(fn):
    visible.check_sample_next(fn, SAMPLE_CASES)


def grade_char_step(fn):
    visible.check_char_step(fn, STEP_CASES)


def grade_generate(fn):
    # The visible check has already tested the seed; these cases test the states, then the draws.
    visible.check_generate(fn, GENERATE_CASES, sampling=False)
    _check_generate_draws(fn)


GENERATE_LOGITS = (0.6, 0.3, 0.0, -0.3, -0.6)   # the constant next-character logits of the model below
GENERATE_TEMPERATURE = 0.5
GENERATE_SEEDS = 60
GENERATE_N = 10


def _constant_model():
    """A one-layer GRU model whose Dense kernel is zero: the logits are GENERATE_LOGITS after any text, so
    every new character is an independent draw from softmax(GENERATE_LOGITS / T)."""
    keras = visible._keras()
    V = len(GENERATE_LOGITS)
    model = keras.Sequential([keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(V, 3),
                              keras.layers.GRU(4, return_sequences=True), keras.layers.Dense(V)])
    rng = np.random.default_rng(SEED + 20)
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
    weights[-2] = np.zeros_like(weights[-2])
    weights[-1] = np.array(GENERATE_LOGITS, np.float32)
    model.set_weights(weights)
    return model


def _check_generate_draws(fn):
    """60 calls (seeds 1000..1059) of 10 characters at T = 0.5 from a model with constant logits.

    * the 600 ids pooled: chi-square against softmax(logits / T), false alarm about 1e-6;
    * the first ids of the 60 calls all the argmax: a correct sampler does that with probability 0.475 ** 60;
    * 30 or more calls whose 10 ids are all equal (one draw repeated): each has probability below 1e-3;
    * 30 or more consecutive seeds s, s + 1 whose ids are shifted copies (a fresh default_rng(seed + i) per
      character): each pair has probability 0.32 ** 9 < 1e-4; or 30 or more identical calls.
    Together a correct generate is wrongly failed far less often than once in a million."""
    step = "generate"
    model = _constant_model()
    V, T = len(GENERATE_LOGITS), GENERATE_TEMPERATURE
    probs = visible._softmax(np.array(GENERATE_LOGITS) / T)
    runs = []
    for k in range(GENERATE_SEEDS):
        got = visible._ints(step, "the new ids", call(step, fn, model, np.array([1], np.int32), GENERATE_N, T,
                                                      1000 + k))
        visible.expect_shape(step, f"the new ids (n={GENERATE_N})", got, (GENERATE_N,))
        if got.min() < 0 or got.max() >= V:
            fail(step, f"ids must lie in [0, {V}), got {got.tolist()}")
        runs.append(got)
    runs = np.array(runs)
    where = (f"a model whose logits are {list(GENERATE_LOGITS)} after any text, {GENERATE_SEEDS} calls with seeds "
             f"1000..{999 + GENERATE_SEEDS}, n={GENERATE_N}, temperature {T:g}")
    half = GENERATE_SEEDS // 2
    if np.sum(np.all(runs == runs[:, :1], axis=1)) >= half:
        fail(step, f"({where}) most calls drew one id {GENERATE_N} times over (e.g. {runs[0].tolist()}): "
                   "make one np.random.default_rng(seed) before the loop and draw every character from it, "
                   "not a new generator per character")
    if np.sum(np.all(runs[:-1, 1:] == runs[1:, :-1], axis=1)) >= half:
        fail(step, f"({where}) the ids for seed s + 1 are those for seed s shifted by one (e.g. {runs[0].tolist()} "
                   f"and {runs[1].tolist()}): character i seems drawn from np.random.default_rng(seed + i). Make one "
                   "np.random.default_rng(seed) before the loop and draw every character from it")
    if np.sum(np.all(runs[:-1] == runs[1:], axis=1)) >= half:
        fail(step, f"({where}) different seeds gave the same ids: pass the seed to np.random.default_rng")

    counts = np.bincount(runs.ravel(), minlength=V)
    total = runs.size
    limit = chi_square_limit(V - 1)
    stat = visible._chi_square(counts, probs, total)
    if stat > limit:
        message = (f"({where}) the ids came out with frequencies {np.round(counts / total, 3).tolist()}, expected "
                   f"softmax(logits / T) = {np.round(probs, 3).tolist()} (chi-square {stat:.0f}, a correct "
                   f"generate stays below {limit:.0f})")
        known = {
            "the temperature ignored (softmax(logits))": visible._softmax(np.array(GENERATE_LOGITS)),
            "the temperature applied twice (softmax(logits / T**2)): sample_next divides by T already":
                visible._softmax(np.array(GENERATE_LOGITS) / T ** 2),
        }
        for mistake, wrong in known.items():
            if visible._chi_square(counts, wrong, total) < limit:
                message += f". It matches {mistake}"
                break
        fail(step, message)
    argmax = int(np.argmax(GENERATE_LOGITS))
    if np.all(runs[:, 0] == argmax):
        fail(step, f"({where}) the first new id is the argmax ({argmax}) in every call, though it has probability "
                   f"{probs[argmax]:.2f}: draw the first character with sample_next at the temperature given, "
                   "like the others")


def grade_loss_by_position(fn):
    visible.check_loss_by_position(fn, POSITION_CASES)


def grade_carried_state_loss(fn):
    visible.check_carried_state_loss(fn, CARRY_CASES)


# Recorded in the kernel, judged in another process (autograder/judge.py).
from ._record import judge_all  # noqa: E402

judge_all(globals(), visible, handed={
    "grade_carried_state_loss": ("__call__", "predict_on_batch", "predict"),   # the stateful model it is given
})

