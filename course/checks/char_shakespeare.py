"""Visible self-checks for unit 06_char_shakespeare (a character-level language model).

Each ``check_<step>(fn, cases=...)`` runs the student's function on small fixed
cases and compares it with something written elsewhere: numpy's own
``unique`` and ``sliding_window_view`` for the data steps, a Keras stack built
here for the model, ``keras.losses.SparseCategoricalCrossentropy`` for the
loss, closed forms for perplexity and bits, a chi-square test against
softmax(logits / T) for sampling, and the full-sequence model for the
one-step generator. When an answer is wrong, the message says what is wrong
and, when it matches a known mistake, which one. The same functions run at
grading time on cases you do not see.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import call as _unwatched_call
from . import (CheckFailed, caller_for, expect_close, expect_equal, expect_shape, expect_unchanged, fail, passed,
               to_array)
from ..stand_ins import StreamRecorder, counting

UNIT = "06_char_shakespeare"
# Every answer is called under its step's rule (course/rules.py): what it may be built from.
call = caller_for(UNIT)


def _keras():
    from course import env

    return env.import_keras()


def _ints(step: str, what: str, value) -> np.ndarray:
    """``value`` as an integer numpy array, or a failure that says it is not one."""
    if value is None:
        fail(step, f"{what} is None: did the function forget to `return` it?")
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype == object:
        fail(step, f"{what} should be an array of integers, got a ragged or mixed {type(value).__name__}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        fail(step, f"{what} should hold integer ids (an Embedding layer looks rows up by integer), "
                   f"got dtype {array.dtype}")
    return array.astype(np.int64)


def _pair(step: str, result, names: tuple[str, ...]):
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        got = type(result).__name__ + (f" of {len(result)}" if isinstance(result, (tuple, list)) else "")
        fail(step, f"should return a tuple ({', '.join(names)}), got {got}")
    return result


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# --- 1. the vocabulary -------------------------------------------------------------------

TEXTS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n",
    "To be, or not to be: that is the question.",
    "zyx",        # the text's own order is the reverse of the sorted one
    "aaaa",       # one symbol
)


def _vocabulary(text: str) -> list[str]:
    """The sorted distinct characters, as numpy sorts strings (by code point)."""
    return [str(c) for c in np.unique(np.array(list(text), dtype=str))] if text else []


def _first_seen(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for c in text:
        seen.setdefault(c, None)
    return list(seen)


def check_build_vocab(build_vocab, cases: Sequence[str] = TEXTS) -> None:
    step, count = "build_vocab", 0
    for text in cases:
        chars, char_to_id = _pair(step, call(step, build_vocab, text), ("chars", "char_to_id"))
        want = _vocabulary(text)
        try:
            got = list(chars)
        except TypeError:
            fail(step, f"chars should be a list of characters, got {type(chars).__name__}")
        where = f"for the text {_show(text)}"
        if got != want:
            message = f"chars {where} is {got!r}, expected {want!r}"
            if sorted(got) == sorted(want) and len(got) == len(want):
                hint = ("they are in the order they first appear in the text" if got == _first_seen(text)
                        else "they are in no particular order (a set has none)")
                message += f": the right characters, but {hint}. Sort them: ids must not depend on the text's order"
            elif len(got) > len(want) and sorted(set(got)) == want:
                message += ": some characters appear more than once. Keep each distinct character once"
            fail(step, message)
        if not isinstance(char_to_id, Mapping):
            fail(step, f"char_to_id should be a dict from character to id, got {type(char_to_id).__name__}")
        if set(char_to_id) != set(want):
            fail(step, f"char_to_id {where} has the keys {sorted(char_to_id)!r}, expected one per character "
                       f"{want!r}")
        ids = [char_to_id[c] for c in want]
        if ids != list(range(len(want))):
            message = f"char_to_id {where} gives the sorted characters the ids {ids}, expected {list(range(len(want)))}"
            if ids == list(range(1, len(want) + 1)):
                message += ": the ids start at 1. Nothing is reserved here: the first character gets 0"
            else:
                message += ": char_to_id[chars[i]] must be i, so that decode can index chars with an id"
            fail(step, message)
        count += 1
    passed(step, count, "(sorted distinct characters, as numpy.unique finds them, and their positions)")


# --- 2. encode and decode ----------------------------------------------------------------

ENCODE_CASES = (
    ("hear me speak.\n", "hear me speak.\n"),
    ("Before we proceed,\nany further", "Before we proceed,\nany further"),
    ("dab", "abcdefgh"),    # a vocabulary bigger than the text: ids come from char_to_id, not the text
)


def _vocab_of(source: str):
    chars = _vocabulary(source)
    return chars, dict(zip(chars, range(len(chars))))


def _expected_ids(text: str, chars: list[str]) -> np.ndarray:
    return np.searchsorted(np.array(chars, dtype=str), np.array(list(text), dtype=str)).astype(np.int64)


def check_encode(encode, cases=ENCODE_CASES) -> None:
    step, count = "encode", 0
    for text, vocabulary_source in cases:
        chars, char_to_id = _vocab_of(vocabulary_source)
        before = dict(char_to_id)
        got = _ints(step, f"encode({_show(text)})", call(step, encode, text, char_to_id))
        if char_to_id != before:
            fail(step, "the function changed char_to_id; only read from it")
        want = _expected_ids(text, chars)
        what = f"encode({_show(text)}, char_to_id)"
        if got.shape != want.shape:
            message = f"{what} has shape {got.shape}, expected {want.shape}: one id per character"
            if got.shape == (len(text.replace("\n", "")),):
                message += " (the newlines are missing: they are characters too)"
            elif got.shape == (len(text.split()),):
                message += " (one id per word: this is a character-level model)"
            fail(step, message)
        expect_equal(step, what, got, want, diagnoses={
            "ord(): Unicode code points instead of the vocabulary's ids": [ord(c) for c in text],
            "ids shifted by one (the first character must get 0)": want + 1,
            "ids of the text's own distinct characters instead of char_to_id's": np.unique(
                np.array(list(text), dtype=str), return_inverse=True)[1].ravel()})
        count += 1
    passed(step, count, "(one integer id per character, the id char_to_id gives it)")


def check_decode(decode, cases=ENCODE_CASES) -> None:
    step, count = "decode", 0
    for text, vocabulary_source in cases:
        chars, _ = _vocab_of(vocabulary_source)
        ids = _expected_ids(text, chars)
        for given in (ids, [int(i) for i in ids]):       # a numpy array, then a plain list
            kept, chars_given = list(given), list(chars)
            got = call(step, decode, given, chars_given)
            if list(given) != kept or chars_given != list(chars):
                fail(step, "the function changed its input ids or chars in place (a list emptied with pop, "
                           "sorted or reversed?); only read from them")
            what = f"decode({[int(i) for i in ids][:8]}{'...' if len(ids) > 8 else ''}, chars)"
            if isinstance(got, (list, tuple, np.ndarray)):
                fail(step, f"{what} returned a {type(got).__name__}; return one string: ''.join(...) of "
                           "the characters")
            if not isinstance(got, str):
                fail(step, f"{what} should return a str, got {type(got).__name__}")
            if got != text:
                message = f"{what} is {_show(got)}, expected {_show(text)}"
                known = {
                    "the characters joined with spaces: join them with ''": " ".join(text),
                    "chr(id): ids are positions in chars, not Unicode code points": "".join(chr(i) for i in ids),
                    "chars[id - 1]: off by one": "".join(chars[i - 1] for i in ids),
                    "chars[id + 1]: off by one": "".join(chars[(i + 1) % len(chars)] for i in ids),
                }
                for mistake, wrong in known.items():
                    if got == wrong:
                        message += f": that is what you get with {mistake}"
                        break
                fail(step, message)
        count += 1
    passed(step, count, "(decode(encode(text)) == text)")


# --- 3. windows and batches --------------------------------------------------------------

@dataclass(frozen=True)
class Windows:
    length: int            # len(ids)
    seq_len: int
    stride: int | None = None
    seed: int | None = None   # None: ids = 100, 101, ... (easy to read); else random ids


WINDOW_CASES = (Windows(20, 4), Windows(23, 5), Windows(20, 4, stride=2), Windows(10, 9))


def window_ids(case: Windows) -> np.ndarray:
    if case.seed is None:
        return np.arange(100, 100 + case.length, dtype=np.int32)
    return np.random.default_rng(case.seed).integers(0, 65, size=case.length).astype(np.int32)


def _expected_windows(ids, seq_len, stride):
    if len(ids) < seq_len + 1:
        empty = np.zeros((0, seq_len), np.int64)
        return empty, empty
    spans = np.lib.stride_tricks.sliding_window_view(np.asarray(ids, np.int64), seq_len + 1)[::stride]
    return spans[:, :-1], spans[:, 1:]


def check_make_windows(make_windows, cases=WINDOW_CASES) -> None:
    step, count = "make_windows", 0
    for case in cases:
        ids = window_ids(case)
        before = ids.copy()
        T, stride = case.seq_len, case.stride or case.seq_len
        args = (ids, T) if case.stride is None else (ids, T, case.stride)
        where = f"len(ids)={case.length}, seq_len={T}" + (f", stride={case.stride}" if case.stride else "")
        result = _pair(step, call(step, make_windows, *args), ("inputs", "targets"))
        expect_unchanged(step, "ids", before, ids)
        inputs, targets = (_ints(step, f"{name} ({where})", v) for name, v in zip(("inputs", "targets"), result))
        X, Y = _expected_windows(ids, T, stride)
        n = len(X)
        if inputs.shape != X.shape or targets.shape != Y.shape:
            bad = inputs.shape if inputs.shape != X.shape else targets.shape
            message = (f"({where}) inputs and targets should both have shape (count, seq_len) = {X.shape}, "
                       f"got {inputs.shape} and {targets.shape}")
            if bad[1:] == (T,) and bad[0] == n + 1:
                message += ": one window too many, whose target would run past the end of ids"
            elif bad[1:] == (T,) and bad[0] == n - 1:
                message += ": one window too few: the last start is len(ids) - seq_len - 1 when it fits the stride"
            elif bad[1:] == (T,) and bad[0] == len(_expected_windows(ids, T, 1)[0]) and stride != 1:
                message += f": that is every start position (stride 1); windows start every {stride} ids"
            elif bad[1:] == (T + 1,):
                message += ": a window holds seq_len ids; its target is the same window moved by one"
            fail(step, message)
        expect_equal(step, f"inputs ({where})", inputs, X, diagnoses={
            "inputs and targets swapped": Y})
        expect_equal(step, f"targets ({where})", targets, Y, diagnoses={
            "targets equal to the inputs (not shifted: the target at t is the NEXT id)": X,
            "targets shifted the wrong way (the previous id instead of the next)": np.concatenate(
                [X[:, :1] - 1, X[:, :-1]], axis=1),
            "inputs and targets swapped": X})
        count += 1
    passed(step, count, "(targets are the inputs moved one id later; no window runs past the end)")


@dataclass(frozen=True)
class BatchCase:
    windows: int
    seq_len: int
    batch_size: int
    seed: int


BATCH_CASES = (BatchCase(10, 3, 3, 1), BatchCase(24, 2, 4, 2), BatchCase(5, 4, 5, 3))
OFFSET = 1000     # targets = inputs + OFFSET, so a pair can always be recognised


def _epoch(step, batches, inputs, targets, batch_size, rng, where, watched=True):
    # `watched=False` for the thousands of epochs of the distribution test, once the rule has been checked
    result = (call if watched else _unwatched_call)(step, batches, inputs, targets, batch_size, rng)
    try:
        pairs = list(result)
    except TypeError:
        fail(step, f"({where}) should return or yield (inputs, targets) pairs, got {type(result).__name__}")
    out = []
    for k, pair in enumerate(pairs):
        x, y = _pair(step, pair, ("inputs", "targets"))
        out.append((_ints(step, f"the inputs of batch {k} ({where})", x),
                    _ints(step, f"the targets of batch {k} ({where})", y)))
    return out


def check_batches(batches, cases=BATCH_CASES) -> None:
    step, count = "batches", 0
    for case in cases:
        n, T, B = case.windows, case.seq_len, case.batch_size
        inputs = np.arange(n * T, dtype=np.int32).reshape(n, T)
        targets = inputs + OFFSET
        before = (inputs.copy(), targets.copy())
        where = f"{n} windows, batch_size={B}"
        epoch = _epoch(step, batches, inputs, targets, B, np.random.default_rng(case.seed), where)
        expect_unchanged(step, "inputs", before[0], inputs)
        expect_unchanged(step, "targets", before[1], targets)
        if len(epoch) != n // B:
            message = f"({where}) one epoch should give {n // B} batches, got {len(epoch)}"
            if len(epoch) == -(-n // B):
                message += ": the last, smaller batch is kept. Drop it, so every batch has the same shape"
            fail(step, message)
        seen = []
        for k, (x, y) in enumerate(epoch):
            expect_shape(step, f"the inputs of batch {k} ({where})", x, (B, T))
            expect_shape(step, f"the targets of batch {k} ({where})", y, (B, T))
            if not np.array_equal(y, x + OFFSET):
                fail(step, f"({where}) in batch {k}, the targets do not belong to the inputs beside them: "
                           "inputs and targets must be picked with the same order of windows")
            seen += [int(row[0]) // T for row in x]
        if len(set(seen)) != len(seen):
            fail(step, f"({where}) a window appears twice in one epoch: shuffle a permutation of the windows "
                       "(sampling with replacement repeats some and misses others)")
        if n // B >= 2 and seen == sorted(seen):
            fail(step, f"({where}) the windows come in their original order: shuffle them with rng")
        again = _epoch(step, batches, inputs, targets, B, np.random.default_rng(case.seed), where)
        if [w for x, _ in again for w in x[:, 0] // T] != seen:
            fail(step, f"({where}) two calls with the same seed gave different batches: draw the order "
                       "from the rng you are given (rng.permutation), not from np.random")
        count += 1
    count += _check_shuffle_distribution(step, batches, cases[0].seed if cases else 0)
    passed(step, count, "(every batch a pair of aligned windows, each window at most once, in an order from rng; "
                        "orders uniform over the permutations, epoch after epoch)")


SHUFFLE_WINDOWS, SHUFFLE_EPOCHS = 6, 3000


def _check_shuffle_distribution(step, batches, seed) -> int:
    """Three chi-square tests on SHUFFLE_EPOCHS epochs of 6 windows drawn one after the other from one rng:
    where each window lands, which ordered pair comes first, and whether an epoch's first window is
    independent of the previous epoch's. Each test is run at a false-alarm rate of 1e-7: a correct
    answer fails this check less than once in 3 million gradings."""
    n, T = SHUFFLE_WINDOWS, 1
    inputs = np.arange(n, dtype=np.int32).reshape(n, T)
    targets = inputs + OFFSET
    rng = np.random.default_rng(seed + 12345)
    where = f"{n} windows, batch_size=1, {SHUFFLE_EPOCHS} epochs from one rng"
    orders = []
    for _ in range(SHUFFLE_EPOCHS):
        epoch = _epoch(step, batches, inputs, targets, 1, rng, where, watched=False)
        order = [int(x[0, 0]) for x, _ in epoch]
        if sorted(order) != list(range(n)):
            fail(step, f"({where}) an epoch of batch_size=1 should give each window once, got {order}")
        orders.append(order)
    orders = np.array(orders)
    if len({tuple(o) for o in orders[:50]}) == 1:
        fail(step, f"({where}) every epoch gives the same order {orders[0].tolist()}: draw each epoch's order from "
                   "the rng you are given (rng.permutation), which moves on from one epoch to the next; a new "
                   "np.random.default_rng made inside the function starts over every time")
    limit = functools.partial(chi_square_limit, z=Z_ONE_IN_TEN_MILLION)
    positions = np.zeros((n, n))
    for order in orders:
        positions[order, np.arange(n)] += 1
    stat = _chi_square(positions.ravel(), np.full(n * n, 1.0 / n), SHUFFLE_EPOCHS)
    if stat > limit((n - 1) ** 2):
        fail(step, f"({where}) windows do not land at each position equally often: counts per window (rows) and "
                   f"position (columns) {positions.astype(int).tolist()} (chi-square {stat:.0f}, a correct shuffle "
                   f"stays below {limit((n - 1) ** 2):.0f}). Every permutation must be equally likely: "
                   "rng.permutation(len(inputs))")
    first_two = np.zeros((n, n))
    np.add.at(first_two, (orders[:, 0], orders[:, 1]), 1)
    off_diagonal = first_two[~np.eye(n, dtype=bool)]
    stat = _chi_square(off_diagonal, np.full(n * (n - 1), 1.0 / (n * (n - 1))), SHUFFLE_EPOCHS)
    if stat > limit(n * (n - 1) - 1):
        fail(step, f"({where}) the first two windows of an epoch are not a uniform ordered pair (chi-square "
                   f"{stat:.0f}, a correct shuffle stays below {limit(n * (n - 1) - 1):.0f}): a rotation or a "
                   "reversal of the windows is not a shuffle. Every permutation must be equally likely")
    pairs = np.zeros((n, n))
    np.add.at(pairs, (orders[0::2, 0], orders[1::2, 0]), 1)
    stat = _chi_square(pairs.ravel(), np.full(n * n, 1.0 / (n * n)), SHUFFLE_EPOCHS // 2)
    if stat > limit(n * n - 1):
        fail(step, f"({where}) an epoch's first window depends on the previous epoch's (chi-square {stat:.0f}, "
                   f"independent epochs stay below {limit(n * n - 1):.0f}): each epoch needs a fresh order from rng")
    return 3


# --- 4. the model --------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelCase:
    vocab_size: int
    embedding_dim: int
    units: int
    layers: int
    cell: str = "lstm"
    dropout: float = 0.0
    seed: int = 0


MODEL_CASES = (ModelCase(11, 4, 6, 1, "lstm", seed=1), ModelCase(9, 3, 5, 2, "gru", 0.1, seed=2))


def expected_param_count(c: ModelCase) -> int:
    blocks = 4 if c.cell == "lstm" else 3
    biases = 1 if c.cell == "lstm" else 2          # Keras' GRU (reset_after=True) has two bias rows
    recurrent = sum(blocks * (width * c.units + c.units * c.units + biases * c.units)
                    for width in [c.embedding_dim] + [c.units] * (c.layers - 1))
    return c.vocab_size * c.embedding_dim + recurrent + (c.units + 1) * c.vocab_size


def reference_stack(c: ModelCase):
    """Embedding, the recurrent layers and Dense, through Keras' functional API."""
    keras = _keras()
    layer_type = keras.layers.LSTM if c.cell == "lstm" else keras.layers.GRU
    tokens = keras.Input(shape=(None,), dtype="int32")
    hidden = keras.layers.Embedding(input_dim=c.vocab_size, output_dim=c.embedding_dim)(tokens)
    for _ in range(c.layers):
        hidden = layer_type(units=c.units, dropout=c.dropout, return_sequences=True)(hidden)
    return keras.Model(tokens, keras.layers.Dense(units=c.vocab_size)(hidden))


def check_build_char_model(build_char_model, cases=MODEL_CASES) -> None:
    step, count = "build_char_model", 0
    keras = _keras()
    for index, c in enumerate(cases):
        where = (f"vocab_size={c.vocab_size}, embedding_dim={c.embedding_dim}, units={c.units}, "
                 f"layers={c.layers}, cell={c.cell!r}, dropout={c.dropout}")
        model = call(step, build_char_model, c.vocab_size, c.embedding_dim, c.units, c.layers, c.cell, c.dropout)
        if not isinstance(model, keras.Model):
            fail(step, f"({where}) should return a Keras model, got {type(model).__name__}")
        kind = keras.layers.LSTM if c.cell == "lstm" else keras.layers.GRU
        names = [type(layer).__name__ for layer in model.layers]
        wanted = ["Embedding"] + [kind.__name__] * c.layers + ["Dense"]
        if names != wanted:
            message = f"({where}) model.layers is [{', '.join(names)}], expected [{', '.join(wanted)}]"
            if names[:1] == ["InputLayer"]:
                message += ": build a keras.Sequential (its layers do not list the Input)"
            elif names.count(kind.__name__) != c.layers and len(names) >= 2:
                message += f": `layers` is the number of stacked {kind.__name__} layers"
            elif "LSTM" in names and c.cell == "gru" or "GRU" in names and c.cell == "lstm":
                message += f": cell={c.cell!r} asks for keras.layers.{kind.__name__}"
            fail(step, message)
        lookup, *recurrent, head = model.layers
        if (lookup.input_dim, lookup.output_dim) != (c.vocab_size, c.embedding_dim):
            message = (f"({where}) the Embedding maps {lookup.input_dim} ids to vectors of "
                       f"{lookup.output_dim}, expected {c.vocab_size} ids to {c.embedding_dim}")
            if lookup.input_dim == c.vocab_size + 1:
                message += ": no id is reserved here (no padding), so input_dim is vocab_size"
            fail(step, message)
        for k, layer in enumerate(recurrent):
            if layer.units != c.units:
                fail(step, f"({where}) recurrent layer {k} has {layer.units} units, expected {c.units}")
            if not layer.return_sequences:
                fail(step, f"({where}) recurrent layer {k} has return_sequences=False: every layer must "
                           "return the whole sequence, so the model predicts a next character at every step")
            if abs(layer.dropout - c.dropout) > 1e-9:
                fail(step, f"({where}) recurrent layer {k} has dropout={layer.dropout}, expected {c.dropout}")
        if head.units != c.vocab_size:
            fail(step, f"({where}) the Dense layer has {head.units} units, expected one per character "
                       f"({c.vocab_size})")
        if getattr(head.activation, "__name__", "") != "linear":
            fail(step, f"({where}) the Dense layer applies {getattr(head.activation, '__name__', '?')}: it must "
                       "return logits (no activation); the loss and the sampler apply the softmax themselves")
        rng = np.random.default_rng(c.seed)
        tokens = rng.integers(0, c.vocab_size, size=(2, 7)).astype(np.int32)
        out = expect_shape(step, f"the output for a (2, 7) batch of ids ({where})", model(tokens),
                           (2, 7, c.vocab_size))
        if index == 0:   # the layers are checked one by one above: one whole-model comparison is enough
            reference = reference_stack(c)
            reference.set_weights(model.get_weights())
            expect_close(step, f"the logits ({where}) against Keras' Embedding -> {kind.__name__} -> Dense on the "
                               "same weights", out, reference(tokens), rtol=1e-5, atol=1e-6)
        want = expected_param_count(c)
        if model.count_params() != want:
            fail(step, f"({where}) the model has {model.count_params():,} parameters, expected {want:,}")
        count += 1
    passed(step, count, "(layers in order, logits of shape (batch, time, vocab_size), parameter count in closed form)")


# --- 5. the loss --------------------------------------------------------------------------

@dataclass(frozen=True)
class LossCase:
    batch: int
    time: int
    vocab: int
    seed: int
    scale: float = 2.0     # logits ~ N(0, scale); 1000 makes exp() overflow in float32


LOSS_CASES = (LossCase(3, 5, 7, seed=1), LossCase(2, 4, 6, seed=2, scale=1000.0))


def loss_inputs(c: LossCase):
    rng = np.random.default_rng(c.seed)
    logits = rng.normal(scale=c.scale, size=(c.batch, c.time, c.vocab)).astype(np.float32)
    targets = rng.integers(0, c.vocab, size=(c.batch, c.time)).astype(np.int32)
    return targets, logits


def _log_softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _picked(log_probs, targets):
    return np.take_along_axis(log_probs, np.asarray(targets)[..., None], axis=-1)[..., 0]


def check_sequence_loss(sequence_loss, cases=LOSS_CASES) -> None:
    step, count = "sequence_loss", 0
    keras = _keras()
    for c in cases:
        targets, logits = loss_inputs(c)
        before = (targets.copy(), logits.copy())
        got = call(step, sequence_loss, targets, logits)
        expect_unchanged(step, "targets", before[0], targets)
        expect_unchanged(step, "logits", before[1], logits)
        want = keras.ops.convert_to_numpy(
            keras.losses.SparseCategoricalCrossentropy(from_logits=True)(targets, logits))
        where = f"batch={c.batch}, time={c.time}, vocab={c.vocab}, logits up to {np.abs(logits).max():.3g}"
        got_array = to_array(step, "the loss", got)
        if got_array.shape != ():
            message = f"({where}) the loss has shape {got_array.shape}, expected one number (shape ())"
            if got_array.shape in ((c.batch,), (c.batch, c.time)):
                message += ": average over the batch AND the time steps"
            fail(step, message)

        def mistakes():
            per_position = -_picked(_log_softmax(logits), targets)
            return {
                "the softmax taken over the time axis (axis 1) instead of the vocabulary (axis -1)":
                    -_picked(_log_softmax(logits, axis=1), targets).mean(),
                "the sum over batch and time instead of the mean": per_position.sum(),
                "the sign flipped (the mean log-probability, not its negative)": -per_position.mean(),
                "the targets shifted once more (they are already the next characters)":
                    -_picked(_log_softmax(logits[:, :-1]), targets[:, 1:]).mean(),
            }

        expect_close(step, f"the loss ({where}) against keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
                     got_array, want, rtol=1e-5, atol=1e-5, diagnoses=mistakes,
                     hint="exp() of large logits overflows: use the log-sum-exp form, "
                          "log(sum(exp(z))) = m + log(sum(exp(z - m))) with m the largest logit "
                          "(keras.ops.logsumexp or keras.ops.log_softmax do this)")
        count += 1
    passed(step, count, "(equal to Keras' sparse categorical cross-entropy from logits, large logits included)")


# --- 6. perplexity and bits per character -------------------------------------------------

LOSS_VALUES = (0.0, math.log(2), math.log(65), 1.4697)


def _loss_unit_check(step, fn, values, expected, mistakes, unit):
    for value in values:
        got = call(step, fn, value)
        expect_close(step, f"{step}({value:.4g})", got, expected(value), rtol=1e-6, atol=1e-9,
                     diagnoses=lambda v=value: {k: m(v) for k, m in mistakes.items()})
    array = np.array(values, np.float64)
    before = array.copy()
    got = call(step, fn, array)
    expect_unchanged(step, "loss", before, array)
    expect_close(step, f"{step} of the array {np.round(array, 4).tolist()}", got, expected(array),
                 rtol=1e-6, atol=1e-9, hint=f"use numpy functions so that an array of losses gives an array of {unit}")
    return len(values) + 1


def _extreme_loss(step, fn, value, expected, hint) -> int:
    """A loss far beyond training's, where float64 still holds the answer: float32 arithmetic or a detour
    through exp() overflows to inf."""
    got = call(step, fn, value)
    expect_close(step, f"{step}({value:g})", got, expected, rtol=1e-6, atol=1e-9, hint=hint)
    return 1


def check_perplexity(perplexity, values=LOSS_VALUES) -> None:
    step = "perplexity"
    count = _loss_unit_check(step, perplexity, values, lambda v: np.e ** np.asarray(v, np.float64), {
        "2 ** loss: the loss is in nats (natural log), so the perplexity is e ** loss": lambda v: 2.0 ** v,
        "exp(-loss): perplexity grows with the loss": lambda v: np.exp(-v),
        "the loss itself": lambda v: v,
        "exp(loss / ln 2), which mixes the two units": lambda v: np.exp(v / np.log(2)),
    }, "perplexities")
    count += _extreme_loss(step, perplexity, 100.0, math.exp(100.0),
                           "e ** 100 is about 2.7e43: beyond float32 (at most 3.4e38), fine in float64. "
                           "Compute in float64 (np.exp of a Python float or a float64 array)")
    passed(step, count, "(e ** loss: 1 for a perfect model, V for a uniform guess over V symbols)")


def check_bits_per_char(bits_per_char, values=LOSS_VALUES) -> None:
    step = "bits_per_char"
    count = _loss_unit_check(step, bits_per_char, values, lambda v: np.log2(np.exp(np.asarray(v, np.float64))), {
        "loss * ln 2: to turn nats into bits, divide by ln 2": lambda v: v * np.log(2),
        "log2(loss): the loss is already a logarithm; change its unit, do not take another log":
            lambda v: np.log2(v) if np.all(np.asarray(v) > 0) else np.full(np.shape(v), np.nan),
        "loss / ln 10 (that would be digits, not bits)": lambda v: v / np.log(10),
        "the loss itself (nats, not bits)": lambda v: v,
    }, "bits")
    passed(step, count, "(loss / ln 2: log2(V) bits for a uniform guess over V symbols)")


# --- 7. sampling with a temperature ---------------------------------------------------------

@dataclass(frozen=True)
class SampleCase:
    logits: tuple[float, ...]
    temperatures: tuple[float, ...]
    draws: int = 2000
    seed: int = 0


SAMPLE_CASES = (SampleCase((1.5, 0.8, 0.3, 0.0, -0.6), (1.0, 0.5, 2.0), seed=11),)
Z_ONE_IN_A_MILLION = 4.753     # the standard normal's upper 1e-6 point
Z_ONE_IN_TEN_MILLION = 5.199   # its upper 1e-7 point


def chi_square_limit(df: int, z: float = Z_ONE_IN_A_MILLION) -> float:
    """The chi-square value a correct sampler exceeds about once in a million (Wilson-Hilferty; with z, the
    normal's upper point of another false-alarm rate)."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def _chi_square(counts, probs, n):
    expected = n * np.asarray(probs, np.float64)
    return float(((counts - expected) ** 2 / expected).sum())


def _greedy_rows(rng, vocab, rows):
    """Logits whose largest entry leads the next by at least 0.5, in a random column of each row."""
    logits = rng.normal(size=(rows, vocab))
    top = logits.max(axis=1, keepdims=True)
    winner = rng.integers(0, vocab, size=rows)
    logits = np.minimum(logits, top - 0.5)
    logits[np.arange(rows), winner] = top[:, 0]
    return logits.astype(np.float32), winner


def check_sample_next(sample_next, cases=SAMPLE_CASES) -> None:
    step, count = "sample_next", 0
    for c in cases:
        base = np.array(c.logits, np.float32)
        V = len(base)
        other = base[::-1].copy()       # a second row pattern: the softmax must be taken per row
        rng = np.random.default_rng(c.seed)
        # the distribution at T > 0: chi-square against softmax(logits / T), row by row
        n = c.draws
        rows = np.concatenate([np.repeat(base[None], n, axis=0), np.repeat(other[None], n, axis=0)])
        limit = chi_square_limit(V - 1)
        for temperature in c.temperatures:
            before = rows.copy()
            got = _ints(step, f"the ids at temperature {temperature:g}",
                        call(step, sample_next, rows, temperature, np.random.default_rng(c.seed + 1)))
            expect_unchanged(step, "logits", before, rows)
            expect_shape(step, f"the ids for a batch of {2 * n} rows", got, (2 * n,))
            if got.min() < 0 or got.max() >= V:
                fail(step, f"ids must lie in [0, {V}), got one equal to {got.min() if got.min() < 0 else got.max()}")
            for half, row in ((got[:n], base), (got[n:], other)):
                counts = np.bincount(half, minlength=V)
                stat = _chi_square(counts, _softmax(row / temperature), n)
                if stat > limit:
                    freq = np.round(counts / n, 3).tolist()
                    want = np.round(_softmax(row / temperature), 3).tolist()
                    message = (f"at temperature {temperature:g}, {n} draws from the logits {row.tolist()} came out "
                               f"with frequencies {freq}, expected softmax(logits / T) = {want} "
                               f"(chi-square {stat:.0f}, a correct sampler stays below {limit:.0f})")
                    known = {
                        "softmax(logits * T): divide by the temperature": _softmax(row * temperature),
                        "softmax(logits): the temperature is ignored": _softmax(row),
                        "a uniform draw: the probabilities are not used": np.full(V, 1.0 / V),
                    }
                    for mistake, probs in known.items():
                        if _chi_square(counts, probs, n) < limit:
                            message += f". It matches {mistake}"
                            break
                    fail(step, message)
            count += 1
        count += _check_independent_rows(step, sample_next, base, c.seed + 2)
        # temperature 0 is the argmax; so, in effect, is a tiny temperature, computed without overflow, and
        # so is temperature 1 on logits a thousand apart
        logits, winner = _greedy_rows(rng, V, 6)
        for temperature in (0.0, 1e-3, 1e-6, "large logits"):
            if temperature == "large logits":
                logits, temperature = logits * np.float32(2000.0), 1.0
            before = logits.copy()
            try:
                got = call(step, sample_next, logits, temperature, np.random.default_rng(c.seed))
            except CheckFailed as failure:
                if temperature != 0 or "not implemented" in str(failure):
                    raise
                raise CheckFailed(f"{failure}\n    At temperature 0, return the argmax without dividing: "
                                  "logits / 0 is inf or nan, not a distribution") from failure
            got = _ints(step, f"the ids at temperature {temperature:g}", got)
            expect_unchanged(step, "logits", before, logits)
            expect_shape(step, f"the ids for a batch of 6 rows at temperature {temperature:g}", got, (6,))
            if not np.array_equal(got, winner):
                lead = "1000" if temperature == 1.0 else "0.5"
                message = (f"at temperature {temperature:g} the ids are {got.tolist()}, expected the argmax of each "
                           f"row, {winner.tolist()} (each row's best logit leads the others by {lead} or more)")
                if temperature == 0:
                    message += ": temperature 0 is defined as the argmax (np.argmax over the last axis)"
                elif temperature == 1.0:
                    message += (": logits a thousand apart leave no doubt at temperature 1. Subtract each row's "
                                "largest value before np.exp (exp(1000) alone overflows to inf)")
                else:
                    message += (": as T -> 0 the draw must become the argmax. Divide by T, then subtract each row's "
                                "largest value before np.exp (exp(logits / T) alone overflows to inf)")
                fail(step, message)
            count += 1
        # the rng drives the draws: the same seed gives the same ids
        first = _ints(step, "the ids", call(step, sample_next, rows[:50], 1.0, np.random.default_rng(5)))
        second = _ints(step, "the ids", call(step, sample_next, rows[:50], 1.0, np.random.default_rng(5)))
        if not np.array_equal(first, second):
            fail(step, "two calls with the same seed gave different ids: draw from the rng you are given, "
                       "not from np.random")
        count += 1
    passed(step, count, "(argmax at temperature 0; frequencies match softmax(logits / T); rows drawn independently)")


def _check_independent_rows(step, sample_next, logits, seed) -> int:
    """Rows of one call must be independent draws: two rows with the same logits agree with probability
    sum(p ** 2). A binomial z-test on 2000 pairs, false alarm below 1e-7 (two-sided)."""
    pairs = 2000
    rows = np.repeat(np.asarray(logits, np.float32)[None], 2 * pairs, axis=0)
    got = _ints(step, "the ids", call(step, sample_next, rows, 1.0, np.random.default_rng(seed)))
    expect_shape(step, f"the ids for a batch of {2 * pairs} rows", got, (2 * pairs,))
    p = _softmax(np.asarray(logits, np.float64))
    agree = float(np.sum(p ** 2))
    same = int(np.sum(got[0::2] == got[1::2]))
    z = (same - pairs * agree) / math.sqrt(pairs * agree * (1 - agree))
    if abs(z) > 5.33:
        fail(step, f"{2 * pairs} rows with the same logits at temperature 1: neighbouring rows drew the same id "
                   f"{same} times in {pairs}, expected about {pairs * agree:.0f} for independent draws (z = {z:.1f}). "
                   "Draw one uniform number per row (rng.random((batch, 1))), not one for the whole batch")
    return 1


# --- 8. a stateful one-step generator -------------------------------------------------------

@dataclass(frozen=True)
class StepCase:
    vocab_size: int
    embedding_dim: int
    units: int
    layers: int
    cell: str
    batch: int
    time: int
    seed: int
    scale: float = 0.7
    dropout: float = 0.0   # the recurrent layers' dropout: generation is inference, where it does nothing


STEP_CASES = (StepCase(7, 4, 5, 2, "lstm", batch=3, time=6, seed=1),
              StepCase(6, 3, 4, 1, "gru", batch=2, time=5, seed=2, dropout=0.5))


@functools.lru_cache(maxsize=16)
def random_model(c: StepCase):
    """A Sequential Embedding -> recurrent layers -> Dense with random weights large enough to matter.

    Built once per case and kept: building a Keras model costs more than the check itself."""
    keras = _keras()
    layer_type = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[c.cell]
    parts = [keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(c.vocab_size, c.embedding_dim)]
    parts += [layer_type(c.units, return_sequences=True, dropout=c.dropout) for _ in range(c.layers)]
    model = keras.Sequential(parts + [keras.layers.Dense(c.vocab_size)])
    rng = np.random.default_rng(c.seed)
    model.set_weights([rng.normal(scale=c.scale, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def zero_states(model, batch_size):
    """One entry per recurrent layer: the list of its zero states ([h, c] for an LSTM, [h] for a GRU)."""
    return [list(layer.cell.get_initial_state(batch_size)) for layer in model.layers[1:-1]]


def _numpy(value):
    keras = _keras()
    return np.asarray(keras.ops.convert_to_numpy(value), np.float64)


def _state_values(states):
    """The numbers in a states structure (lists of tensors), copied, to see later whether they changed."""
    if isinstance(states, (list, tuple)):
        return [_state_values(s) for s in states]
    return np.array(_numpy(states), copy=True)


def _same_state_values(before, states) -> bool:
    if isinstance(before, list):
        return (isinstance(states, (list, tuple)) and len(states) == len(before)
                and all(_same_state_values(b, s) for b, s in zip(before, states)))
    try:
        return np.array_equal(before, _numpy(states))
    except Exception:  # noqa: BLE001 - something else than a tensor stands there now
        return False


def check_char_step(char_step, cases=STEP_CASES) -> None:
    step, count = "char_step", 0
    for c in cases:
        model = random_model(c)
        tokens = np.random.default_rng(c.seed + 100).integers(0, c.vocab_size, size=(c.batch, c.time)).astype(np.int32)
        full = _numpy(model(tokens))
        where = (f"{c.layers} {c.cell.upper()} layer(s), batch={c.batch}, T={c.time}"
                 + (f", dropout={c.dropout}" if c.dropout else ""))
        states = zero_states(model, c.batch)
        if c.dropout:   # inference: the same step twice gives the same logits
            once, again = (_numpy(_pair(step, call(step, char_step, model, tokens[:, 0].copy(), states),
                                        ("logits", "states"))[0]) for _ in range(2))
            if not np.allclose(once, again, rtol=1e-6, atol=1e-7):
                fail(step, f"({where}) the same step twice gave different logits: dropout is active. Generating is "
                           "inference: call the layers and cells without training=True (dropout is for training)")
        outputs = []
        for t in range(c.time):
            ids_t = tokens[:, t].copy()
            given = _state_values(states)
            logits, new_states = _pair(step, call(step, char_step, model, ids_t, states), ("logits", "states"))
            expect_unchanged(step, "ids_t", tokens[:, t], ids_t)
            if not _same_state_values(given, states):
                fail(step, f"({where}) the states passed in were changed in place at step {t}: return new states "
                           "and leave the caller's list alone (generate may still need the old ones)")
            states = new_states
            logits = expect_shape(step, f"the logits at step {t} ({where})", _numpy(logits),
                                  (c.batch, c.vocab_size))
            if not isinstance(states, (list, tuple)) or len(states) != c.layers:
                fail(step, f"({where}) the new states should be a list with one entry per recurrent layer "
                           f"({c.layers}), as initial_states gives them; got {type(states).__name__}"
                           f"{f' of {len(states)}' if isinstance(states, (list, tuple)) else ''}")
            outputs.append(logits)
        got = np.stack(outputs, axis=1)

        def mistakes():
            alone = _numpy(model(tokens.reshape(-1, 1))).reshape(c.batch, c.time, c.vocab_size)
            return {"the states not carried: every step starts again from zero states": alone,
                    "probabilities (a softmax) instead of logits": _softmax(full)}

        first_ok = np.allclose(got[:, 0], full[:, 0], rtol=1e-4, atol=1e-5)
        expect_close(step, f"the logits of steps 0..{c.time - 1} ({where}) against the model run over the whole "
                           "sequence", got, full, rtol=1e-4, atol=1e-5, diagnoses=mistakes,
                     hint=("step 0 is right and a later step is wrong: check what you carry from one step to the "
                           "next (each layer's new states, and the last layer's output h for Dense)")
                     if first_ok else "step 0 is already wrong: the embedding feeds the first layer's cell, each "
                                      "cell's output h feeds the next one, and Dense reads the last output h")
        count += 1
    passed(step, count, "(step by step, the logits equal the model run over the whole sequence)")


@dataclass(frozen=True)
class GenerateCase:
    model: StepCase
    prefix: tuple[int, ...]
    n: int


GENERATE_CASES = (
    GenerateCase(StepCase(7, 4, 6, 2, "lstm", batch=1, time=1, seed=3, scale=1.0), (1, 4, 2, 6, 0), 10),
    GenerateCase(StepCase(6, 3, 5, 1, "gru", batch=1, time=1, seed=4, scale=1.0, dropout=0.5), (3, 3, 5, 1), 8),
)


def _greedy_by_rerunning(model, prefix, n):
    """Greedy continuation, re-running the model on the whole sequence for every new character."""
    sequence = list(prefix)
    while len(sequence) < len(prefix) + n:
        sequence.append(int(np.argmax(_numpy(model(np.array([sequence], np.int32)))[0, -1])))
    return sequence[len(prefix):]


def check_generate(generate, cases=GENERATE_CASES, sampling=True) -> None:
    step, count = "generate", 0
    for g in cases:
        model = random_model(g.model)
        prefix = np.array(g.prefix, np.int32)
        before = prefix.copy()
        where = f"{g.model.layers} {g.model.cell.upper()} layer(s), prefix {list(g.prefix)}, n={g.n}"
        got, one_id_per_call = _watched_generate(step, generate, model, prefix, g.n)
        got = _ints(step, f"the new ids ({where})", got)
        expect_unchanged(step, "prefix_ids", before, prefix)
        expect_shape(step, f"the new ids ({where}); return only the n new ones", got, (g.n,))
        # Greedy: every new id must be the argmax of the model re-run over all that precedes it.
        full = _numpy(model(np.concatenate([prefix, got[:-1]])[None].astype(np.int32)))[0]
        for k, token in enumerate(got):
            row = full[len(prefix) - 1 + k]
            if not 0 <= token < g.model.vocab_size or row[token] < row.max() - 1e-4:
                message = (f"({where}) at temperature 0, new id {k} is {int(token)}, but re-running the model over "
                           f"the prefix and the ids generated before it gives its largest logit to "
                           f"{int(row.argmax())}")
                last = list(g.prefix)
                known = {
                    "every character fed from zero states (the states are not carried)":
                        lambda: _alone_greedy(model, last[-1], g.n),
                    "the drawn characters not fed back": lambda: _stuck_greedy(model, last, g.n),
                    "only the last prefix character fed (the prefix is not read)":
                        lambda: _greedy_by_rerunning(model, last[-1:], g.n),
                    "the last prefix character fed twice":
                        lambda: _greedy_by_rerunning(model, last + last[-1:], g.n),
                    "the last prefix character left out":
                        lambda: _greedy_by_rerunning(model, last[:-1], g.n) if len(last) > 1 else None,
                }
                matches = [mistake for mistake, wrong in known.items() if got.tolist() == wrong()]
                if matches:
                    message += ". Your ids are what you get with " + ", or with ".join(matches)
                elif k == 0:
                    message += (". The first new id is already wrong: is the whole prefix read, and is the "
                                "temperature passed on to sample_next (temperature 0 is the argmax)?")
                elif got[k - 1] == got[k]:
                    message += ". Is the new id fed back in before the next one is drawn?"
                fail(step, message)
        if one_id_per_call is not None and one_id_per_call < len(g.prefix) + g.n - 1:
            fail(step, f"({where}) generate called char_step {one_id_per_call} times for a prefix of {len(g.prefix)} "
                       f"and {g.n} new characters: it must read one character per char_step call, carrying the "
                       f"states (at least {len(g.prefix) + g.n - 1} calls), not re-run the model over the text")
        again = _ints(step, f"the new ids ({where})", call(step, generate, model, prefix, g.n, 0.0, 0))
        if not np.array_equal(got, again):
            fail(step, f"({where}) the same call twice gave {got.tolist()}, then {again.tolist()}: something is left "
                       "over from the first call (states kept outside the function?). Start every call from "
                       "initial_states(model, 1)" + (", and call the model without training=True (dropout)"
                                                      if g.model.dropout else ""))
        count += 2
    if sampling:
        count += _check_generate_sampling(step, generate, cases[0])
    passed(step, count, "(greedy ids equal re-running the whole sequence; samples follow the seed)")


def _watched_generate(step, generate, model, prefix, n):
    """generate(model, prefix, n, 0.0, 0), counting its calls of the notebook's char_step that read one
    character each (None when generate does not see a char_step to count)."""
    space = getattr(generate, "__globals__", None)
    original = space.get("char_step") if isinstance(space, dict) else None
    if not callable(original):
        return call(step, generate, model, prefix, n, 0.0, 0), None
    calls: list = []
    space["char_step"] = counting(original, calls)   # a stand-in outside the checks: generate may call it
    try:
        result = call(step, generate, model, prefix, n, 0.0, 0)
    finally:
        space["char_step"] = original
    return result, sum(size == 1 for size in calls)


def _check_generate_sampling(step, generate, g) -> int:
    """The seed decides the draws, and a different seed draws differently."""
    model, prefix, n = random_model(g.model), np.array(g.prefix, np.int32), g.n
    a, b, other = (_ints(step, "the new ids", call(step, generate, model, prefix, n, 2.0, seed)) for seed in (7, 7, 8))
    if not np.array_equal(a, b):
        fail(step, "two calls with seed=7 at temperature 2 gave different ids: make one "
                   "np.random.default_rng(seed) and draw every character from it")
    if np.array_equal(a, other):
        fail(step, f"seeds 7 and 8 at temperature 2 gave the same {n} ids: is the seed passed to "
                   "np.random.default_rng, and the temperature to sample_next?")
    return 1


def _stuck_greedy(model, prefix, n):
    """Greedy ids when the last prefix character is fed again instead of each new one."""
    logits = _numpy(model(np.array([list(prefix) + [prefix[-1]] * (n - 1)], np.int32)))[0]
    return [int(i) for i in logits[len(prefix) - 1:].argmax(axis=-1)]


def _alone_greedy(model, first, n):
    token, out = first, []
    while len(out) < n:
        token = int(np.argmax(_numpy(model(np.array([[token]], np.int32)))[0, -1]))
        out.append(token)
    return out


# --- 9. the loss at each position of a window ------------------------------------------------

@dataclass(frozen=True)
class PositionCase:
    model: StepCase          # model.batch windows of model.time characters
    large: bool = False      # Dense weights scaled up: logits in the hundreds, beyond exp() in float32


POSITION_CASES = (PositionCase(StepCase(7, 4, 5, 2, "lstm", batch=4, time=6, seed=5)),
                  PositionCase(StepCase(6, 3, 4, 1, "gru", batch=3, time=5, seed=6, dropout=0.5)))


@functools.lru_cache(maxsize=16)
def position_model(c: PositionCase):
    """random_model(c.model), with the Dense layer's weights multiplied by 300 when c.large."""
    model = random_model(c.model)
    if not c.large:
        return model
    keras = _keras()
    big = keras.models.clone_model(model)
    weights = model.get_weights()
    big.set_weights(weights[:-2] + [w * np.float32(300.0) for w in weights[-2:]])
    return big


def window_data(c: StepCase):
    rng = np.random.default_rng(c.seed + 200)
    shape = (c.batch, c.time)
    return (rng.integers(0, c.vocab_size, size=shape).astype(np.int32),
            rng.integers(0, c.vocab_size, size=shape).astype(np.int32))


def _keras_per_position(model, inputs, targets) -> np.ndarray:
    """Keras' own cross-entropy from logits at every (window, position), the model in inference mode."""
    keras = _keras()
    logits = model(inputs, training=False)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(targets, logits)
    return _numpy(loss)


def _weights_of(model):
    return [np.array(w, copy=True) for w in model.get_weights()]


def _float64_vector(step, what, value, length) -> np.ndarray:
    if value is None:
        fail(step, f"{what} is None: did the function forget to `return` it?")
    if not isinstance(value, np.ndarray):
        hint = (" (a Keras tensor: ops.convert_to_numpy, then .astype(np.float64))" if hasattr(value, "shape")
                else "")
        fail(step, f"{what} should be a numpy array of float64, got {type(value).__name__}{hint}")
    if value.shape != (length,):
        message = f"{what} has shape {value.shape}, expected ({length},): one mean loss per position"
        if value.shape == ():
            message += ": average over the windows (axis 0) only, not over the positions too"
        elif value.ndim == 1 and value.shape != (length,):
            message += (": that is one number per window; average over the windows (axis 0), keeping the positions"
                        if value.shape[0] != length - 1 else
                        ": one position short. The targets are already the next characters: do not shift them again")
        fail(step, message)
    if value.dtype != np.float64:
        fail(step, f"{what} has dtype {value.dtype}; the docstring asks for float64 "
                   "(np.asarray(..., dtype=np.float64) before the log-softmax)")
    return value


def check_loss_by_position(loss_by_position, cases=POSITION_CASES) -> None:
    step, count = "loss_by_position", 0
    for c in cases:
        m = c.model
        model = position_model(c)
        inputs, targets = window_data(m)
        before, weights = (inputs.copy(), targets.copy()), _weights_of(model)
        where = (f"{m.batch} windows of {m.time}, {m.layers} {m.cell.upper()} layer(s)"
                 + (f", dropout={m.dropout}" if m.dropout else "") + (", logits in the hundreds" if c.large else ""))
        got = call(step, loss_by_position, model, inputs, targets)
        expect_unchanged(step, "inputs", before[0], inputs)
        expect_unchanged(step, "targets", before[1], targets)
        if not all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights())):
            fail(step, f"({where}) the model's weights changed: only run the model, do not train or edit it")
        what = f"the losses by position ({where})"
        got = _float64_vector(step, what, got, m.time)
        per = _keras_per_position(model, inputs, targets)
        want = per.mean(axis=0)

        def mistakes():
            log_probs = _log_softmax(_numpy(model(inputs, training=False)))
            found = {"the inputs used as targets (the targets are the next characters)":
                     -_picked(log_probs, inputs).mean(axis=0)}
            if m.time > 1:
                found["the targets shifted once more"] = np.concatenate(
                    [-_picked(log_probs[:, :-1], targets[:, 1:]).mean(axis=0), [np.nan]])
            return found

        hint = ""
        if m.dropout:
            again = call(step, loss_by_position, model, inputs, targets)
            if isinstance(again, np.ndarray) and again.shape == got.shape and not np.allclose(again, got):
                hint = ("two calls gave different losses: dropout is active. Measuring is inference: "
                        "model(inputs, training=False) (or model.predict_on_batch)")
        if c.large and not hint and not np.all(np.isfinite(got)):
            hint = ("logits in the hundreds overflow exp() in float32: convert them to float64 and subtract each "
                    "row's largest logit before np.exp (the log-sum-exp form of sequence_loss)")
        expect_close(step, f"{what} against keras.losses.SparseCategoricalCrossentropy(from_logits=True, "
                           "reduction=None) averaged over the windows", got, want, rtol=1e-5, atol=1e-5,
                     diagnoses=mistakes, hint=hint)
        count += 1
    passed(step, count, "(the mean over the windows at each position equals Keras' cross-entropy from logits, "
                        "in inference mode, each window from zero states)")


# --- 10. the loss with the state carried over the whole text -----------------------------------

@dataclass(frozen=True)
class CarryCase:
    model: StepCase          # the stateless model whose weights the stateful copy shares (batch, time unused)
    length: int              # n, the ids of the text
    chunk: int
    float64: bool = False    # the model computes in float64: the loss must be accumulated in float64 too


CARRY_CASES = (CarryCase(StepCase(7, 4, 5, 2, "lstm", batch=1, time=1, seed=7, dropout=0.5), length=23, chunk=5),
               CarryCase(StepCase(9, 4, 6, 1, "gru", batch=1, time=1, seed=9, scale=0.4), length=87, chunk=20,
                         float64=True))


def carry_model(c: CarryCase, stateful: bool, batch_size: int = 1):
    """random_model(c.model), or its stateful copy for `batch_size` streams; in float64 when c.float64."""
    keras = _keras()
    m = c.model
    layer_type = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[m.cell]
    dtype = "float64" if c.float64 else "float32"
    shape = dict(batch_shape=(batch_size, None)) if stateful else dict(shape=(None,))
    parts = [keras.Input(dtype="int32", **shape), keras.layers.Embedding(m.vocab_size, m.embedding_dim, dtype=dtype)]
    parts += [layer_type(m.units, return_sequences=True, dropout=m.dropout, stateful=stateful, dtype=dtype)
              for _ in range(m.layers)]
    model = keras.Sequential(parts + [keras.layers.Dense(m.vocab_size, dtype=dtype)])
    rng = np.random.default_rng(m.seed)
    model.set_weights([rng.normal(scale=m.scale, size=w.shape) for w in model.get_weights()])
    return model


_carry_models: dict = {}


def _stream_of(c: CarryCase):
    """The case's stateful model (one per case, kept), its states reset."""
    if c not in _carry_models:
        _carry_models[c] = carry_model(c, stateful=True)
    stream = _carry_models[c]
    for layer in stream.layers[1:-1]:
        layer.reset_state()
    return stream


def carried_ids(c: CarryCase, salt: int = 0) -> np.ndarray:
    return np.random.default_rng(c.model.seed + 300 + salt).integers(0, c.model.vocab_size, size=c.length).astype(
        np.int32)


def _chunk_sizes(n_inputs: int, chunk: int) -> list[int]:
    return [chunk] * (n_inputs // chunk) + ([n_inputs % chunk] if n_inputs % chunk else [])


def _losses_of(model, ids) -> np.ndarray:
    """-log softmax(logits)[next id] at every position of one run of `model` over ids[:-1], in float64."""
    ids = np.asarray(ids, np.int32)
    logits = _numpy(model(ids[None, :-1], training=False))[0]
    return -_picked(_log_softmax(logits), ids[1:])


def check_carried_state_loss(carried_state_loss, cases=CARRY_CASES) -> None:
    step, count = "carried_state_loss", 0
    for c in cases:
        m = c.model
        whole = carry_model(c, stateful=False)
        stream = _stream_of(c)
        where = (f"{m.layers} {m.cell.upper()} layer(s), {c.length} ids, chunk_len={c.chunk}"
                 + (f", dropout={m.dropout}" if m.dropout else "") + (", a float64 model" if c.float64 else ""))
        junk = np.random.default_rng(m.seed + 400).integers(0, m.vocab_size, size=(1, 7)).astype(np.int32)
        stream(junk)                          # the stateful model has read something before: a state is left
        for k in range(2):                    # two texts in a row through the same stateful model
            ids = carried_ids(c, salt=k)
            before = ids.copy()
            recorder = StreamRecorder(stream)
            got = call(step, carried_state_loss, recorder, ids, c.chunk)
            expect_unchanged(step, "ids", before, ids)
            if not recorder.steps:
                fail(step, f"({where}) the stateful model was never called: feed it the text chunk by chunk")
            pieces = _chunk_sizes(c.length - 1, c.chunk)
            if max(recorder.steps) > c.chunk:
                fail(step, f"({where}) the model read {max(recorder.steps)} ids in one call: feed it chunks of at most "
                           "chunk_len ids, carrying the state from one to the next")
            if recorder.steps != pieces:
                message = (f"({where}) the model read chunks of {recorder.steps} ids, expected {pieces}: the inputs "
                           f"ids[:-1] in consecutive chunks of chunk_len, the last one shorter")
                if sum(recorder.steps) == c.length:
                    message += " (the last id is only a target: nothing comes after it to predict)"
                elif sum(recorder.steps) < c.length - 1:
                    message += " (some ids are not read: is the last, shorter chunk left out?)"
                fail(step, message)
            value = to_array(step, f"the loss ({where})", got)
            if value.shape != ():
                fail(step, f"({where}) the loss has shape {value.shape}, expected one number: the mean over all "
                           f"{c.length - 1} predictions")
            if value.dtype != np.float64:
                fail(step, f"({where}) the loss has dtype {value.dtype}: accumulate the losses in float64 "
                           "(np.float64 logits, a float64 total), as the docstring asks")
            per_char = _losses_of(whole, ids)
            want = per_char.mean()

            def mistakes(ids=ids, per_char=per_char):
                starts = range(0, c.length - 1, c.chunk)
                found = {
                    "the states reset before every chunk (carry them from one chunk to the next)":
                        np.concatenate([_losses_of(whole, ids[s:s + c.chunk + 1]) for s in starts]).mean(),
                    "the mean of each chunk's mean (a shorter last chunk counts as much as a full one): average "
                    "over the characters": np.mean([per_char[s:s + c.chunk].mean() for s in starts]),
                }
                left = np.concatenate([junk[0], ids]) if k == 0 else None
                if left is not None:
                    found["the state left over from what the model read before: reset the states at the start"] = \
                        _losses_of(whole, left)[junk.shape[1]:].mean()
                full = (c.length - 1) // c.chunk * c.chunk
                if (c.length - 1) % c.chunk and full:
                    found["the last, shorter chunk left out of the mean"] = per_char[:full].mean()
                return found

            precision = dict(rtol=1e-9, atol=1e-12) if c.float64 else dict(rtol=1e-5, atol=1e-6)
            hint = ""
            if c.float64:
                hint = ("this model computes in float64: a float32 step anywhere (the logits cast to float32, a "
                        "float32 total) loses the digits the check asks for")
            elif m.dropout:
                hint = "is dropout active? Measuring is inference: stream_model.predict_on_batch(x)"
            expect_close(step, f"the loss over text {k + 1} ({where}) against one run of the same weights over the "
                               "whole text at once", value, want, diagnoses=mistakes, hint=hint, **precision)
            count += 1
    passed(step, count, "(chunk by chunk with the state carried equals one run over the whole text; states reset at "
                        "the start; every prediction counted once, in float64)")
