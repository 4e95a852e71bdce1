"""Visible self-checks for unit 04_keras_recurrent_layers (LSTM, GRU and Bidirectional in Keras).

Each ``check_<step>(fn, cases=...)`` runs the student's function on fixed cases
and compares it with something the course did not write: Keras' own layers
(run by the check on the student's weights, one unpadded sequence at a time),
``keras.utils.pad_sequences``, ``count_params()`` of fresh Keras layers, or a
property the answer must have (a seed gives the same data twice, labels are
uniform). Models are checked on random weights that the check loads into
them, so that every weight matters. When an answer is wrong, the message says
what is wrong and, when it matches a known mistake (left padding, the mask
ignored, the state not carried between chunks...), which one.
The same functions run at grading time on cases you do not see.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import caller_for, expect_close, expect_equal, expect_shape, expect_unchanged, fail, passed, to_array
from ..env import import_keras
from ..stand_ins import LayerRecorder

UNIT = "04_keras_recurrent_layers"
# Every answer is called under its step's rule (course/rules.py): what it may be built from.
call = caller_for(UNIT)

F32 = dict(rtol=1e-4, atol=2e-5)   # Keras float32 layers against the same layers run another way
# Weights the check sets itself need no costly initialization (the orthogonal one runs a QR).
_CHEAP = dict(kernel_initializer="zeros", recurrent_initializer="zeros")


def _keras():
    return import_keras()


def _expect_int32(step, what, value):
    """The dtype the docstring promises: int32, what keras.Input(dtype="int32") and Embedding read."""
    if isinstance(value, (list, tuple)):
        fail(step, f"{what} should be one numpy array of int32, got a {type(value).__name__} "
                   "(np.zeros(..., dtype=np.int32), then fill its rows)")
    dtype = np.asarray(value.numpy() if hasattr(value, "numpy") and not isinstance(value, np.ndarray)
                       else value).dtype
    if dtype != np.int32:
        fail(step, f"{what} has dtype {dtype}; the docstring asks for int32 (np.zeros(..., dtype=np.int32), "
                   "or .astype(np.int32) at the end)")


def _pair(step, result, names):
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        size = f" of {len(result)}" if isinstance(result, (tuple, list)) else ""
        fail(step, f"should return a tuple ({', '.join(names)}), got {type(result).__name__}{size}")
    return result


def _integers(step, what, value):
    """``value`` as an int64 array, or a failure if it does not hold integers."""
    if value is None:
        fail(step, f"{what} is None: did the function forget to `return` it?")
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype == object:
        fail(step, f"{what} should be one rectangular integer array, got ragged rows (dtype object)")
    if array.dtype.kind not in "iu":
        fail(step, f"{what} should hold integer token ids (int32), got dtype {array.dtype}")
    return array.astype(np.int64)


def _model(step, value, what="the function"):
    keras = _keras()
    if not isinstance(value, keras.Model):
        fail(step, f"{what} should return a keras.Model (keras.Sequential or keras.Model(inputs, outputs)), "
                   f"got {type(value).__name__}")
    return value


def _layers(model):
    """The model's layers in order, nested models opened up (a wrapper such as Bidirectional stays whole)."""
    keras = _keras()
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def _only(step, layers, kind, what):
    chosen = [layer for layer in layers if isinstance(layer, kind)]
    if len(chosen) != 1:
        names = ", ".join(type(layer).__name__ for layer in layers) or "none"
        fail(step, f"expected exactly one {what} in the model, found {len(chosen)} (layers: {names})")
    return chosen[0]


def _randomize(model, seed):
    """Random weights in every variable of the model, so that no weight can be left out unnoticed."""
    noise = np.random.default_rng(seed)
    model.set_weights([noise.normal(scale=0.5, size=np.shape(w)).astype(np.asarray(w).dtype)
                       for w in model.get_weights()])


def _run(layer, x, **kwargs):
    return _keras().ops.convert_to_numpy(layer(np.asarray(x, np.float32), **kwargs))


def _recurrent(kind, units, weights, input_dim, **options):
    """A fresh Keras layer of class ``kind`` holding ``weights``: the reference that no one here wrote.

    Unrolled: the same arithmetic as Keras' loop, step by step, and faster on the short sequences
    of the checks."""
    reference = kind(units, unroll=True, **_CHEAP, **options)
    reference.build((None, None, input_dim))
    reference.set_weights(weights)
    return reference


def _count(kind, units, input_dim):
    """count_params() of a fresh ``kind(units)`` on inputs of size input_dim."""
    counted = kind(units, **_CHEAP)
    counted.build((None, None, input_dim))
    return counted.count_params()


# The settings a recurrent layer keeps when it is made with Keras' defaults (what the docstrings ask for).
_DEFAULT_SETTINGS = ("activation", "recurrent_activation", "use_bias", "unit_forget_bias", "reset_after",
                     "dropout", "recurrent_dropout", "kernel_regularizer", "recurrent_regularizer",
                     "bias_regularizer", "activity_regularizer", "kernel_constraint", "recurrent_constraint",
                     "bias_constraint")
_INITIALIZERS = ("kernel_initializer", "recurrent_initializer", "bias_initializer")


def _expect_default_settings(step, rnn, what):
    """``rnn`` made as type(rnn)(units) would be: no dropout, the default initializers and gates."""
    got, fresh = rnn.get_config(), type(rnn)(rnn.units).get_config()
    for key in _DEFAULT_SETTINGS:
        if key in fresh and got.get(key) != fresh[key]:
            extra = (" (dropout is not asked for: it makes the outputs random while training)"
                     if "dropout" in key else "")
            fail(step, f"{what} has {key}={got.get(key)!r}; the docstring asks for Keras' default "
                       f"({fresh[key]!r}){extra}")
    for key in _INITIALIZERS:
        name = (got.get(key) or {}).get("class_name") if isinstance(got.get(key), dict) else got.get(key)
        if name != fresh[key]["class_name"]:
            fail(step, f"{what} has {key}={name!r}; keep Keras' default ({fresh[key]['class_name']}): "
                       f"the check sets the weights itself, but the model must train from the usual start")


def _expect_only(step, layers, allowed, asked):
    """No layer besides those the docstring asks for (a Dropout, a Masking, ... would change the model)."""
    extra = [type(layer).__name__ for layer in layers if not isinstance(layer, allowed)]
    if extra:
        fail(step, f"the model has layer(s) the docstring does not ask for: {', '.join(extra)}. "
                   f"Build exactly {asked}")


def _expect_same_in_training(step, model, x, want, where):
    """training=True gives what training=False gives: nothing random (no dropout) in the model."""
    keras = _keras()
    trained = call(step, model, x, training=True)
    parts = trained if isinstance(trained, (list, tuple)) else [trained]
    wants = want if isinstance(want, (list, tuple)) else [want]
    for got, expected in zip(parts, wants):
        got = keras.ops.convert_to_numpy(got)
        if np.shape(got) != np.shape(expected) or not np.allclose(got, expected, rtol=1e-4, atol=2e-5):
            fail(step, f"the model gives other outputs with training=True than with training=False ({where}): "
                       f"something in it acts only while training (dropout?); the docstring asks for none")


def _expect_mask_zero(step, embedding):
    if not embedding.mask_zero:
        fail(step, "the Embedding has mask_zero=False: with mask_zero=True, token 0 is padding and the "
                   "recurrent layer skips it (a right-padded row then gives what the sequence alone gives)")


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def _padded_batch(lengths, time, vocab, seed):
    """Right-padded token rows (0 = padding) of the given lengths, tokens 1..vocab-1."""
    draw = np.random.default_rng(seed)
    batch = np.zeros((len(lengths), time), np.int32)
    for row, n in enumerate(lengths):
        batch[row, :n] = draw.integers(1, vocab, size=n)
    return batch


def _same_integers(step, what, got, want, mistakes: Callable[[], dict]):
    if got.shape != want.shape or not np.array_equal(got, want):
        expect_equal(step, what, got, want, diagnoses=mistakes())


# --- 1 · recall_task ---------------------------------------------------------------------

@dataclass(frozen=True)
class Recall:
    num: int
    T: int
    num_classes: int
    num_distractors: int
    seed: int


RECALL_VISIBLE = (Recall(3000, 12, 4, 10, seed=0), Recall(5, 3, 3, 2, seed=1))   # positions 0..5; position 0


def _binomial_ok(counts, total, p):
    """Every count within 5 standard deviations of total * p (a correct sampler fails about once in 10^6)."""
    sigma = math.sqrt(total * p * (1 - p))
    return np.all(np.abs(counts - total * p) <= 5 * sigma + 1)


Z_ONE_IN_TEN_MILLION = 5.199   # the standard normal's upper 1e-7 point


def _chi_square_limit(df: int) -> float:
    """The chi-square value a correct answer exceeds less than once in 10^7 (Wilson-Hilferty)."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + Z_ONE_IN_TEN_MILLION * math.sqrt(a)) ** 3


def _expect_independent(step, y, position, K, half, where):
    """A chi-square test of independence of the label and the key's position (false alarm below 1e-7): each
    must be drawn on its own, not from a second generator with the same seed or from the same numbers."""
    table = np.zeros((K, half))
    np.add.at(table, (y, position), 1)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    limit = _chi_square_limit((K - 1) * (half - 1))
    if stat > limit:
        fail(step, f"the label and the key's position depend on each other ({where}; chi-square {stat:.0f}, "
                   f"independent draws stay below {limit:.0f}): draw them one after the other from ONE "
                   "np.random.default_rng(seed); two generators made from the same seed give related numbers")


def check_recall_task(recall_task, cases=RECALL_VISIBLE) -> None:
    step, count = "recall_task", 0
    for c in cases:
        K, D = c.num_classes, c.num_distractors
        half = max(1, c.T // 2)
        where = f"num={c.num}, T={c.T}, num_classes={K}, num_distractors={D}, seed={c.seed}"
        X, y = _pair(step, call(step, recall_task, c.num, c.T, K, D, c.seed), ("X", "y"))
        _expect_int32(step, f"X ({where})", X)
        _expect_int32(step, f"y ({where})", y)
        X, y = _integers(step, f"X ({where})", X), _integers(step, f"y ({where})", y)
        if X.shape == (c.T, c.num) and c.T != c.num:
            fail(step, f"X has shape {X.shape}: (T, num). One row per example: (num, T) = {(c.num, c.T)}")
        expect_shape(step, f"X ({where})", X, (c.num, c.T))
        expect_shape(step, f"y ({where})", y, (c.num,))
        if X.min() < 1 or X.max() > K + D:
            fail(step, f"X holds token ids {X.min()}..{X.max()}; keys are 1..{K} and distractors {K + 1}..{K + D}"
                       + (" (0 is the padding id: no token of this task is 0)" if X.min() == 0 else ""))
        is_key = X <= K
        keys_per_row = is_key.sum(axis=1)
        if np.any(keys_per_row != 1):
            row = int(np.argmax(keys_per_row != 1))
            fail(step, f"row {row} holds {keys_per_row[row]} key tokens (ids 1..{K}); every row needs exactly one"
                       + (": are the distractors drawn from the keys' ids too? They have their own, "
                          f"{K + 1}..{K + D}" if keys_per_row[row] > 1 else ""))
        position = np.argmax(is_key, axis=1)
        key = X[np.arange(c.num), position]
        if y.min() < 0 or y.max() >= K:
            hint = (" They look like the key tokens themselves: the label of key token k is k - 1"
                    if np.array_equal(y, key) else "")
            fail(step, f"y holds {y.min()}..{y.max()}; the labels must lie in 0..{K - 1}.{hint}")
        if not np.array_equal(key, y + 1):
            fail(step, f"the key of row i should be y[i] + 1 ({where}); row {int(np.argmax(key != y + 1))} "
                       f"has key {key[np.argmax(key != y + 1)]} and label {y[np.argmax(key != y + 1)]}")
        if position.max() >= half:
            fail(step, f"a key sits at position {position.max()} ({where}); it must lie in the first half, "
                       f"positions 0..{half - 1} (max(1, T // 2) positions), so that at least T/2 steps follow it")
        X2, y2 = _pair(step, call(step, recall_task, c.num, c.T, K, D, c.seed), ("X", "y"))
        if not (np.array_equal(X, _integers(step, "X", X2)) and np.array_equal(y, _integers(step, "y", y2))):
            fail(step, f"two calls with seed={c.seed} gave different data: draw everything from "
                       f"np.random.default_rng(seed), not from the global np.random")
        if c.num * c.T >= 200:
            X3, _ = _pair(step, call(step, recall_task, c.num, c.T, K, D, c.seed + 1), ("X", "y"))
            if np.array_equal(X, _integers(step, "X", X3)):
                fail(step, f"seeds {c.seed} and {c.seed + 1} gave the same data: the seed must choose the data")
        if c.num >= 20 * K:
            label_counts = np.bincount(y, minlength=K)
            if not _binomial_ok(label_counts, c.num, 1 / K):
                fail(step, f"the labels are not uniform over 0..{K - 1}: counts {label_counts.tolist()} for "
                           f"{c.num} examples (chance must be 1/num_classes; is a class never drawn? "
                           f"rng.integers(low, high) excludes high)")
        if half > 1 and c.num >= 20 * half:
            position_counts = np.bincount(position, minlength=half)
            if not _binomial_ok(position_counts, c.num, 1 / half):
                fail(step, f"the key positions are not uniform over 0..{half - 1}: counts "
                           f"{position_counts.tolist()}" + (" (always position 0?)" if position.max() == 0 else ""))
        if half > 1 and c.num >= 20 * K * half:
            _expect_independent(step, y, position, K, half, where)
        rest = X[~is_key]
        if rest.size >= 20 * D:
            distractor_counts = np.bincount(rest - K - 1, minlength=D)
            if not _binomial_ok(distractor_counts, rest.size, 1 / D):
                fail(step, f"the distractors are not uniform over {K + 1}..{K + D}: counts "
                           f"{distractor_counts.tolist()} (rng.integers(low, high) excludes high)")
        count += 1
    passed(step, count, "(one key in the first half, distractors from their own ids, uniform draws, "
                        "the same data for the same seed)")


# --- 2 · build_sequence_classifier ----------------------------------------------------------

@dataclass(frozen=True)
class Classifier:
    kind: str           # "SimpleRNN", "LSTM" or "GRU"
    vocab: int
    num_classes: int
    units: int
    embed_dim: int
    lengths: tuple      # lengths of the right-padded rows of the test batch
    time: int
    seed: int = 0


CLASSIFIER_VISIBLE = (
    Classifier("LSTM", 11, 4, 6, 5, lengths=(5, 2, 3, 1), time=5, seed=1),
    Classifier("GRU", 9, 3, 4, 7, lengths=(2, 4), time=4, seed=2),
    Classifier("SimpleRNN", 7, 5, 3, 4, lengths=(3, 3, 1), time=3, seed=3),
)


def check_build_sequence_classifier(build_sequence_classifier, cases=CLASSIFIER_VISIBLE) -> None:
    step, count = "build_sequence_classifier", 0
    keras = _keras()
    for c in cases:
        kind = getattr(keras.layers, c.kind)
        where = (f"{c.kind}, vocab_size={c.vocab}, num_classes={c.num_classes}, units={c.units}, "
                 f"embed_dim={c.embed_dim}")
        model = _model(step, call(step, build_sequence_classifier, kind, c.vocab, c.num_classes, c.units,
                                  c.embed_dim))
        X = _padded_batch(c.lengths, c.time, c.vocab, c.seed)
        out = call(step, model, X[:, :2])   # builds the model; two steps are enough to see the shape
        if isinstance(out, (list, tuple, dict)):
            fail(step, f"the model should return one tensor of logits, got a {type(out).__name__}")
        if np.ndim(out) == 3:
            fail(step, f"the model returns shape {tuple(np.shape(out))}: one output per time step. Keep the "
                       f"recurrent layer's default return_sequences=False, so that Dense sees only the last state")
        expect_shape(step, f"the logits ({where}) for a batch of shape {X[:, :2].shape}", out,
                     (len(X), c.num_classes))

        layers = _layers(model)
        embedding = _only(step, layers, keras.layers.Embedding, "keras.layers.Embedding")
        rnn = _only(step, layers, keras.layers.RNN, "recurrent layer")
        dense = _only(step, layers, keras.layers.Dense, "keras.layers.Dense")
        if type(rnn) is not kind:
            fail(step, f"the recurrent layer is a {type(rnn).__name__}; use the class passed as layer_cls ({c.kind})")
        if layers.index(embedding) > layers.index(rnn) or layers.index(rnn) > layers.index(dense):
            fail(step, "the layers should come in the order Embedding, recurrent layer, Dense")
        if embedding.input_dim != c.vocab or embedding.output_dim != c.embed_dim:
            fail(step, f"Embedding({embedding.input_dim}, {embedding.output_dim}): expected "
                       f"Embedding(vocab_size={c.vocab}, embed_dim={c.embed_dim})")
        if rnn.units != c.units:
            fail(step, f"the {c.kind} has {rnn.units} units, expected units={c.units}")
        if rnn.go_backwards:
            fail(step, f"the {c.kind} has go_backwards=True: it should read the tokens in order")
        _expect_mask_zero(step, embedding)
        _expect_only(step, layers, (keras.layers.Embedding, keras.layers.RNN, keras.layers.Dense),
                     "Embedding -> layer_cls(units) -> Dense")
        _expect_default_settings(step, rnn, f"the {c.kind}")
        if dense.units != c.num_classes:
            fail(step, f"Dense has {dense.units} outputs, expected one per class: {c.num_classes}")
        if dense.get_config().get("activation") not in ("linear", None):
            fail(step, f"Dense has activation={dense.get_config()['activation']!r}: the model must return "
                       f"logits (no activation); the loss applies the softmax itself (from_logits=True)")
        want = c.vocab * c.embed_dim + _count(kind, c.units, c.embed_dim) + c.units * c.num_classes + c.num_classes
        got = model.count_params()
        if got != want:
            fail(step, f"the model has {got:,} parameters, expected {want:,} = Embedding {c.vocab}x{c.embed_dim} "
                       f"+ {c.kind}({c.units}) on {c.embed_dim} inputs + Dense {c.units}x{c.num_classes} + bias "
                       f"{c.num_classes}")

        _randomize(model, c.seed + 100)
        logits = call(step, model, X)
        _expect_same_in_training(step, model, X, _keras().ops.convert_to_numpy(logits), where)
        table = np.asarray(embedding.get_weights()[0], np.float32)
        kernel, bias = (np.asarray(w, np.float64) for w in dense.get_weights())
        ref = _recurrent(kind, c.units, rnn.get_weights(), c.embed_dim, return_sequences=True)

        def head(last_states):
            return last_states @ kernel + bias

        # A row with no token at all keeps the initial state: zeros.
        last = np.stack([_run(ref, table[X[i, :n]][None])[0, -1] if n else np.zeros(c.units)
                         for i, n in enumerate(c.lengths)])
        want_logits = head(last)

        def mistakes():
            unmasked = _run(ref, table[X])[:, -1]
            return {"softmax on the outputs: return logits, the loss applies the softmax": _softmax(want_logits),
                    "a model that reads the padding (token 0) as if it were a token: a padded row "
                    "ends on the state after the padding": head(unmasked)}

        expect_close(step, f"the logits ({where}; each padded row against its sequence run alone)",
                     logits, want_logits, diagnoses=mistakes, **F32)
        count += 1
    passed(step, count, "(Embedding with mask_zero, the recurrent layer's last state, Dense logits; "
                        "padded rows equal to each sequence run alone)")


# --- 3 · pad_right --------------------------------------------------------------------------

PAD_VISIBLE = (
    (((5, 2, 7), (3,), (4, 4, 1, 8), (9, 9)), None),
    (((5, 2, 7), (3,), (4, 4, 1, 8, 6), ()), 3),
)


def _keras_pad(sequences, maxlen, padding="post", truncating="post", value=0):
    keras = _keras()
    if maxlen is None:
        maxlen = max(len(s) for s in sequences)
    return np.asarray(keras.utils.pad_sequences([list(s) for s in sequences], maxlen=maxlen, dtype="int64",
                                                padding=padding, truncating=truncating, value=value))


def check_pad_right(pad_right, cases=PAD_VISIBLE) -> None:
    step, count = "pad_right", 0
    for sequences, maxlen in cases:
        given = [list(s) for s in sequences]
        before = [list(s) for s in given]
        got = call(step, pad_right, given) if maxlen is None else call(step, pad_right, given, maxlen)
        for i, (old, new) in enumerate(zip(before, given)):
            if old != new:
                fail(step, f"the function changed sequences[{i}] in place (now {new}); leave the input alone")
        _expect_int32(step, "the padded array", got)
        got = _integers(step, "the padded array", got)
        want = _keras_pad(sequences, maxlen)
        where = f"sequences of lengths {[len(s) for s in sequences]}, maxlen={maxlen}"
        def mistakes(sequences=sequences, maxlen=maxlen):
            found = {}
            for what, options in (
                    ("padding on the left (padding='pre', the default of keras.utils.pad_sequences)",
                     dict(padding="pre")),
                    ("padding and truncating on the left (the defaults of keras.utils.pad_sequences)",
                     dict(padding="pre", truncating="pre")),
                    ("truncation from the front (keep each sequence's first maxlen tokens, not its last)",
                     dict(truncating="pre")),
                    ("padding with -1 (0 is the padding id, the one mask_zero=True skips)", dict(value=-1)),
                    ("padding with 1 (0 is the padding id, the one mask_zero=True skips)", dict(value=1))):
                try:   # keras.utils.pad_sequences itself fails on some of these for maxlen=0
                    found[what] = _keras_pad(sequences, maxlen, **options)
                except ValueError:
                    pass
            return found

        _same_integers(step, f"pad_right ({where})", got, want, mistakes)
        count += 1
    passed(step, count, "(equal to keras.utils.pad_sequences(..., padding='post', truncating='post'))")


# --- 4 · last_real_outputs --------------------------------------------------------------------

@dataclass(frozen=True)
class Padded:
    lengths: tuple
    time: int
    units: int
    seed: int = 0


LAST_VISIBLE = (Padded((5, 2, 4), time=5, units=3, seed=1), Padded((1, 6), time=6, units=2, seed=2))


def check_last_real_outputs(last_real_outputs, cases=LAST_VISIBLE) -> None:
    step, count = "last_real_outputs", 0
    keras = _keras()
    for c in cases:
        rng = np.random.default_rng(c.seed)
        padded = _padded_batch(c.lengths, c.time, 8, c.seed)
        inputs = rng.normal(size=(len(c.lengths), c.time, 3)).astype(np.float32)
        inputs[padded == 0] = rng.normal(size=(int(np.sum(padded == 0)), 3))   # padding steps still read junk
        layer = keras.layers.GRU(c.units, return_sequences=True, return_state=True, unroll=True, **_CHEAP)
        layer.build((None, None, 3))
        layer.set_weights([rng.normal(scale=0.7, size=np.shape(w)) for w in layer.get_weights()])
        outputs, _ = layer(inputs)   # no mask: every step, padding included, was read
        # What Keras' mask gives: the state after each row's last real step (zeros for an empty row).
        _, masked_last = layer(inputs, mask=padded != 0)
        want = keras.ops.convert_to_numpy(masked_last)
        before = np.array(padded, copy=True)
        H = keras.ops.convert_to_numpy(outputs)
        given = np.array(H, copy=True) if c.seed % 2 else outputs   # numpy arrays and backend tensors
        got = call(step, last_real_outputs, given, padded)
        expect_unchanged(step, "padded", before, padded)
        if isinstance(given, np.ndarray):
            expect_unchanged(step, "outputs", H, given)
        n = np.asarray(c.lengths)
        rows = np.arange(len(n))
        where = f"lengths {list(c.lengths)}, T={c.time}, units={c.units}"

        def mistakes():
            found = {"outputs[:, -1]: for a padded row that is the state after reading the padding": H[:, -1],
                     "the output one step after the last real token (index = length)": H[rows, np.minimum(n, c.time - 1)],
                     "the output one step before the last real token (index = length - 2)": H[rows, np.maximum(n - 2, 0)]}
            if np.any(n == 0):
                found["for a fully padded row, the output at index -1 (the last step) instead of zeros"] = \
                    np.where((n > 0)[:, None], want, H[:, -1])
                found["for a fully padded row, the output at index 0 instead of zeros"] = \
                    np.where((n > 0)[:, None], want, H[:, 0])
            return found

        expect_close(step, f"the last real outputs ({where})", got, want, diagnoses=mistakes, **F32,
                     hint="row b needs outputs[b, length_b - 1], where length_b counts the nonzero tokens of "
                          "padded[b] (and zeros, the initial state, for a row with no token)")
        count += 1
    passed(step, count, "(equal to the last state of keras.layers.GRU run with the padding masked)")


# --- 5 · build_stacked_lstm ---------------------------------------------------------------------

@dataclass(frozen=True)
class Stack:
    input_dim: int
    units: int
    num_layers: int
    batch: int
    time: int
    seed: int = 0


STACK_VISIBLE = (Stack(3, 5, 2, batch=2, time=4, seed=1), Stack(4, 2, 3, batch=1, time=3, seed=2))


def check_build_stacked_lstm(build_stacked_lstm, cases=STACK_VISIBLE) -> None:
    step, count = "build_stacked_lstm", 0
    keras = _keras()
    for c in cases:
        where = f"input_dim={c.input_dim}, units={c.units}, num_layers={c.num_layers}"
        model = _model(step, call(step, build_stacked_lstm, c.input_dim, c.units, c.num_layers))
        x = np.random.default_rng(c.seed).normal(size=(c.batch, c.time, c.input_dim)).astype(np.float32)
        out = call(step, model, x)
        if not isinstance(out, (list, tuple)) or len(out) != 3:
            fail(step, f"the model should return three tensors [sequence, h, c], got "
                       f"{type(out).__name__}{f' of {len(out)}' if isinstance(out, (list, tuple)) else ''}")
        lstms = [layer for layer in _layers(model) if isinstance(layer, keras.layers.LSTM)]
        if len(lstms) != c.num_layers:
            fail(step, f"the model's outputs come through {len(lstms)} LSTM layer(s), expected num_layers="
                       f"{c.num_layers} stacked: each layer reads the sequence of the layer below it (a layer "
                       f"whose outputs lead nowhere is not part of the model)")
        for i, layer in enumerate(lstms):
            reads = c.input_dim if i == 0 else c.units
            shape = tuple(np.shape(layer.get_weights()[0]))
            if layer.units != c.units:
                fail(step, f"LSTM layer {i + 1} has {layer.units} units, expected units={c.units}")
            if shape != (reads, 4 * c.units):
                fail(step, f"LSTM layer {i + 1} reads vectors of size {shape[0]}, expected {reads}: "
                           + ("each layer above the first reads the sequence of the layer below it"
                              if i else "the first layer reads the input"))

        _expect_only(step, _layers(model), keras.layers.LSTM, f"{c.num_layers} LSTM layer(s), one on another")
        for i, layer in enumerate(lstms):
            _expect_default_settings(step, layer, f"LSTM layer {i + 1}")

        _randomize(model, c.seed + 100)
        sequence, h, c_state = call(step, model, x)
        _expect_same_in_training(step, model, x, [keras.ops.convert_to_numpy(v) for v in (sequence, h, c_state)],
                                 where)
        refs = [_recurrent(keras.layers.LSTM, c.units, layer.get_weights(), c.input_dim if i == 0 else c.units,
                           return_sequences=True, return_state=True) for i, layer in enumerate(lstms)]
        seqs, hs, cs, below = [], [], [], x
        for ref in refs:
            S, h_i, c_i = (keras.ops.convert_to_numpy(v) for v in ref(below))
            seqs.append(S), hs.append(h_i), cs.append(c_i)
            below = S
        expect_shape(step, f"the sequence ({where})", sequence, seqs[-1].shape)
        def seeded_from_below():   # each layer started from the final states of the layer below
            below, states = x, None
            for ref in refs:
                below, *states = (keras.ops.convert_to_numpy(v) for v in ref(below, initial_state=states))
            return below

        expect_close(step, f"the sequence ({where})", sequence, seqs[-1], **F32, diagnoses=lambda: {
            "the first layer's sequence (return the top layer's)": seqs[0],
            "each layer starting from the final states of the layer below (initial_state is for a decoder; "
            "stacked layers each start from zeros)": seeded_from_below()})
        expect_close(step, f"h ({where})", h, hs[-1], **F32, diagnoses=lambda: {
            "c of the top layer: Keras returns [outputs, h, c], h before c": cs[-1],
            "the first layer's h (return the top layer's state)": hs[0],
            "the first layer's c": cs[0]},
            hint="h is the top layer's last hidden state, equal to sequence[:, -1]")
        expect_close(step, f"c ({where})", c_state, cs[-1], **F32, diagnoses=lambda: {
            "h of the top layer: Keras returns [outputs, h, c], h before c": hs[-1],
            "the first layer's c (return the top layer's state)": cs[0],
            "the first layer's h": hs[0]})
        count += 1
    passed(step, count, "(each layer reads the sequence below it; equal to Keras LSTMs chained by the check)")


# --- 6 · stream_in_chunks -----------------------------------------------------------------------

@dataclass(frozen=True)
class Stream:
    kind: str
    units: int
    batch: int
    time: int
    features: int
    chunk: int
    seed: int = 0


STREAM_VISIBLE = (Stream("LSTM", 4, 2, 9, 3, chunk=4, seed=1), Stream("GRU", 3, 1, 6, 2, chunk=3, seed=2))


def check_stream_in_chunks(stream_in_chunks, cases=STREAM_VISIBLE) -> None:
    step, count = "stream_in_chunks", 0
    keras = _keras()
    for c in cases:
        kind = getattr(keras.layers, c.kind)
        rng = np.random.default_rng(c.seed)
        streaming = kind(c.units, stateful=True, return_sequences=True, unroll=True, **_CHEAP)
        streaming.build((c.batch, None, c.features))
        weights = [rng.normal(scale=0.6, size=np.shape(w)).astype(np.float32) for w in streaming.get_weights()]
        streaming.set_weights(weights)
        whole = _recurrent(kind, c.units, weights, c.features, return_sequences=True)
        streams = [rng.normal(size=(c.batch, c.time, c.features)).astype(np.float32) for _ in range(2)]
        where = f"{c.kind}, T={c.time}, chunk={c.chunk}"
        pieces = [c.chunk] * (c.time // c.chunk) + ([c.time % c.chunk] if c.time % c.chunk else [])
        # The layer has read something before the first stream too: a stream must not start from that state.
        earlier = np.random.default_rng(c.seed + 7).normal(size=(c.batch, 3, c.features)).astype(np.float32)
        _run(streaming, earlier)
        for k, stream in enumerate(streams):
            recorder = LayerRecorder(streaming)
            before = np.array(stream, copy=True)
            got = call(step, stream_in_chunks, recorder, stream, c.chunk)
            expect_unchanged(step, "stream", before, stream)
            if not recorder.steps:
                fail(step, "the layer was never called: feed it the stream, one chunk at a time")
            if max(recorder.steps) > c.chunk:
                fail(step, f"the layer read {max(recorder.steps)} steps in one call ({where}): feed it chunks of at "
                           f"most `chunk` steps, as a stream arrives")
            want = _run(whole, stream)
            got_array = to_array(step, "the outputs", got)
            if (got_array.shape != want.shape and got_array.shape[:1] == (c.batch * len(pieces),)
                    and got_array.shape[1] == min(c.chunk, c.time)):
                fail(step, f"the outputs have shape {got_array.shape}: the chunks were joined along the batch "
                           f"axis; join them along time (axis 1) to get {want.shape}")
            if got_array.shape != want.shape and got_array.ndim == 3 and got_array.shape[1] < c.time:
                dropped = (" (the last, shorter chunk is missing: range(0, T, chunk) covers it)"
                           if c.time % c.chunk and got_array.shape[1] == c.time - c.time % c.chunk else "")
                fail(step, f"the outputs cover {got_array.shape[1]} of the {c.time} steps{dropped}")
            if got_array.shape != want.shape and got_array.ndim == 3 and got_array.shape[1] > c.time:
                fail(step, f"the outputs cover {got_array.shape[1]} steps for a stream of {c.time}: do the chunks "
                           f"overlap? Chunk i is stream[:, i*chunk:(i+1)*chunk]")

            def mistakes(stream=stream, k=k):
                found = {"the state reset before every chunk (it must be carried from one chunk to the next)":
                         np.concatenate([_run(whole, stream[:, i:i + c.chunk]) for i in range(0, c.time, c.chunk)],
                                        axis=1)}
                stale = kind(c.units, stateful=True, return_sequences=True, unroll=True, **_CHEAP)
                stale.build((c.batch, None, c.features))
                stale.set_weights(weights)
                _run(stale, streams[k - 1] if k else earlier)
                found["the state left over from what the layer read before (call layer.reset_state() first)"] = \
                    _run(stale, stream)
                return found

            expect_close(step, f"the outputs for stream {k + 1} ({where}) against the whole stream at once",
                         got_array, want, diagnoses=mistakes, **F32)
            if recorder.steps != pieces:
                fail(step, f"the layer read chunks of {recorder.steps} steps, expected {pieces}: consecutive chunks "
                           f"of `chunk` steps, the last one shorter when T is not a multiple of chunk")
            count += 1
    passed(step, count, "(chunks through a stateful layer give what the whole stream gives at once, "
                        "and each stream starts from a zero state)")


# --- 7 · later_token_tags ---------------------------------------------------------------------

TAGS_VISIBLE = ((np.array([[3, 1, 4, 1, 5, 9, 2], [2, 7, 1, 8, 2, 8, 1]]), 2),
                (np.array([[5, 6, 7, 8, 0, 0], [1, 2, 3, 4, 5, 6]]), 1))


def _later_reference(X, k):
    grid = np.asarray(X)
    expected = np.zeros(grid.shape, np.int64)
    for position in range(grid.shape[1]):
        source = position + k
        if source < grid.shape[1]:
            expected[:, position] = grid[:, source]
    return expected


def _shifted(X, offset):
    """tags[:, t] = X[:, t + offset] where that exists, 0 elsewhere (offset may be negative)."""
    grid = np.asarray(X, np.int64)
    width = grid.shape[1]
    moved = np.zeros_like(grid)
    for t in range(width):
        if 0 <= t + offset < width:
            moved[:, t] = grid[:, t + offset]
    return moved


def check_later_token_tags(later_token_tags, cases=TAGS_VISIBLE) -> None:
    step, count = "later_token_tags", 0
    for X, k, *dtype in cases:   # a case may name the dtype of X (int32 unless it says)
        X = np.array(X, dtype=dtype[0] if dtype else np.int32)
        before = np.array(X, copy=True)
        got = call(step, later_token_tags, X, k)
        _expect_int32(step, "the tags", got)
        got = _integers(step, "the tags", got)
        expect_unchanged(step, "X", before, X)
        want = _later_reference(X, k)
        where = f"X of shape {X.shape}, k={k}"
        if got.shape != want.shape:
            fail(step, f"the tags have shape {got.shape}, expected {want.shape} ({where}): one tag per token")

        def mistakes():
            width = X.shape[1]
            last = np.repeat(X[:, -1:], min(k, width), axis=1)
            return {"tags from the token k steps EARLIER (a one-way RNN could do that)": _shifted(X, -k),
                    "np.roll: the first k tokens wrap around to the end (the end must be 0)": np.roll(X, -k, axis=1),
                    "the token k + 1 steps later (off by one)": _shifted(X, k + 1),
                    "the token k - 1 steps later (off by one)": _shifted(X, k - 1),
                    "the last token repeated at the end (the last k tags must be 0)":
                        np.concatenate([_shifted(X, k)[:, :width - min(k, width)], last], axis=1)}

        _same_integers(step, f"the tags ({where})", got, want, mistakes)
        count += 1
    passed(step, count, "(tag t is the token k steps later, 0 where there is none)")


# --- 8 · build_tagger -----------------------------------------------------------------------

@dataclass(frozen=True)
class Tagger:
    vocab: int
    num_tags: int
    units: int
    bidirectional: bool
    embed_dim: int
    lengths: tuple
    time: int
    seed: int = 0


TAGGER_VISIBLE = (
    Tagger(9, 6, 4, True, 5, lengths=(5, 2, 4), time=5, seed=1),
    Tagger(7, 4, 3, False, 6, lengths=(2, 4), time=4, seed=2),
)


def check_build_tagger(build_tagger, cases=TAGGER_VISIBLE) -> None:
    step, count = "build_tagger", 0
    keras = _keras()
    for c in cases:
        where = (f"vocab_size={c.vocab}, num_tags={c.num_tags}, units={c.units}, bidirectional={c.bidirectional}, "
                 f"embed_dim={c.embed_dim}")
        model = _model(step, call(step, build_tagger, c.vocab, c.num_tags, c.units, c.bidirectional, c.embed_dim))
        X = _padded_batch(c.lengths, c.time, c.vocab, c.seed)
        out = call(step, model, X[:, :2])   # builds the model; two steps are enough to see the shape
        if isinstance(out, (list, tuple, dict)):
            fail(step, f"the model should return one tensor of logits, got a {type(out).__name__}")
        if np.ndim(out) == 2:
            fail(step, f"the model returns shape {tuple(np.shape(out))}: one output per sequence. A tagger needs "
                       f"one per token: return_sequences=True")
        expect_shape(step, f"the logits ({where}) for a batch of shape {X[:, :2].shape}", out,
                     (len(X), min(2, c.time), c.num_tags))
        layers = _layers(model)
        embedding = _only(step, layers, keras.layers.Embedding, "keras.layers.Embedding")
        dense = _only(step, layers, keras.layers.Dense, "keras.layers.Dense")
        wrappers = [layer for layer in layers if isinstance(layer, keras.layers.Bidirectional)]
        if c.bidirectional:
            if len(wrappers) != 1:
                fail(step, f"bidirectional=True needs one keras.layers.Bidirectional layer, found {len(wrappers)}")
            forward, backward = wrappers[0].forward_layer, wrappers[0].backward_layer
            if wrappers[0].merge_mode != "concat":
                fail(step, f"Bidirectional has merge_mode={wrappers[0].merge_mode!r}: keep the default 'concat', "
                           f"which gives the two directions side by side (2*units features per step)")
            rnns = [forward, backward]
        else:
            if wrappers:
                fail(step, "bidirectional=False asks for a one-way LSTM, but the model has a Bidirectional layer")
            rnns = [_only(step, layers, keras.layers.LSTM, "keras.layers.LSTM")]
        for rnn in rnns:
            if not isinstance(rnn, keras.layers.LSTM):
                fail(step, f"the recurrent layer is a {type(rnn).__name__}; use keras.layers.LSTM")
            if rnn.units != c.units:
                fail(step, f"the LSTM has {rnn.units} units, expected units={c.units}")
        if rnns[0].go_backwards:
            fail(step, "the (forward) LSTM has go_backwards=True: it should read left to right")
        if embedding.input_dim != c.vocab or embedding.output_dim != c.embed_dim:
            fail(step, f"Embedding({embedding.input_dim}, {embedding.output_dim}): expected "
                       f"Embedding(vocab_size={c.vocab}, embed_dim={c.embed_dim})")
        _expect_mask_zero(step, embedding)
        _expect_only(step, layers, (keras.layers.Embedding, keras.layers.LSTM, keras.layers.Bidirectional,
                                    keras.layers.Dense),
                     "Embedding -> LSTM (in Bidirectional if asked) -> Dense")
        for rnn, what in zip(rnns, ("the (forward) LSTM", "the backward LSTM")):
            _expect_default_settings(step, rnn, what)
        if dense.get_config().get("activation") not in ("linear", None):
            fail(step, f"Dense has activation={dense.get_config()['activation']!r}: return logits (no activation)")
        directions = 2 if c.bidirectional else 1
        want = (c.vocab * c.embed_dim + directions * _count(keras.layers.LSTM, c.units, c.embed_dim)
                + directions * c.units * c.num_tags + c.num_tags)
        got = model.count_params()
        if got != want:
            fail(step, f"the model has {got:,} parameters, expected {want:,} = Embedding {c.vocab}x{c.embed_dim} + "
                       f"{directions} LSTM({c.units}) + Dense {directions * c.units}x{c.num_tags} + bias")

        _randomize(model, c.seed + 100)
        logits = keras.ops.convert_to_numpy(call(step, model, X)).astype(np.float64)
        _expect_same_in_training(step, model, X, logits, where)
        table = np.asarray(embedding.get_weights()[0], np.float32)
        kernel, bias = (np.asarray(w, np.float64) for w in dense.get_weights())
        ahead = _recurrent(keras.layers.LSTM, c.units, rnns[0].get_weights(), c.embed_dim, return_sequences=True)
        behind = (_recurrent(keras.layers.LSTM, c.units, rnns[1].get_weights(), c.embed_dim, return_sequences=True,
                             go_backwards=True) if c.bidirectional else None)
        real = X != 0

        def per_row(padded=False):
            rows = []
            for i, n in enumerate(c.lengths):
                if n == 0:   # nothing to compare in a row of padding
                    rows.append(np.zeros((c.time, c.num_tags)))
                    continue
                tokens = X[i] if padded else X[i, :n]
                e = table[tokens][None]
                parts = [_run(ahead, e)[0]]
                if behind is not None:
                    back = _run(behind, e)[0]   # go_backwards: back[j] is the state after reading x_{L-1}..x_{L-1-j}
                    parts.append(back[::-1])
                states = np.concatenate(parts, axis=-1)[:n] @ kernel + bias
                rows.append(np.concatenate([states, np.zeros((c.time - n, c.num_tags))]))
            return np.stack(rows)

        want_logits = per_row()
        masked = np.where(real[..., None], logits, 0.0)

        def mistakes():
            found = {"softmax on the outputs: return logits": np.where(real[..., None], _softmax(want_logits), 0)}
            if c.bidirectional:
                found["a model that reads the padding: the backward LSTM starts on the padding, not on the "
                      "last real token"] = np.where(real[..., None], per_row(padded=True), 0)
            return found

        expect_close(step, f"the logits at the real tokens ({where}; each padded row against its sequence run "
                           f"alone through Keras LSTMs, the backward one with go_backwards=True, reversed)",
                     masked, want_logits, diagnoses=mistakes, **F32)
        count += 1
    passed(step, count, "(Embedding with mask_zero, LSTM or Bidirectional(LSTM) per step, Dense logits; "
                        "equal to Keras LSTMs run forward and backward)")
