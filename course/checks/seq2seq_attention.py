"""Visible self-checks for unit 05_seq2seq_attention (encoder, decoder, attention).

Each ``check_<step>(fn, cases=None)`` runs the student's function on fixed
cases and compares it with an answer computed another way:

* the vocabularies, id arrays and texts with values stored with the release
  (``expected/seq2seq_attention.npz``, computed by the instructor's reference
  and checked there against Keras' own ``StringLookup``): this module computes
  no answer itself;
* ``BahdanauAttention`` with Keras' ``AdditiveAttention`` given the layer's own
  weights (the projected query and keys, its scale set to ``v``), and
  ``LuongAttention`` with Keras' ``Attention`` (dot score, no scale) given the
  projected query; each layer is built by a first call, given known weights
  with ``set_weights`` and its ``call`` run on symbolic tensors too, so that
  the grader can replay the checks from plain data;
* ``beam_search_decode`` with small step functions (a table of
  log-probabilities, a tiny numpy RNN whose states matter): against greedy
  decoding for a beam of one, brute force over every sequence for a beam wide
  enough to hold them all, and cases worked out by hand; every score against
  the summed log-probabilities of its tokens, recomputed in float64;
* ``exposure_bias_rates`` with cases worked out by hand and random cases whose
  values are stored with the release;
* the decoding loops with small test models (:class:`ToyTranslator`, numpy,
  two states, one of them a step counter that makes it say END after a number
  of steps that depends on the source; :class:`KerasToy`, a GRU cell whose
  teacher-forced logits must equal ``keras.layers.GRU`` run over the whole
  decoder input) and by re-running the model on the decoded prefix.

When an answer is wrong, the message names the quantity and, when it matches
a known mistake (softmax over the batch, the mask ignored, states not
carried, the model fed its own predictions...), the mistake. The same
functions run at grading time on cases you do not see. Layers run on the CPU
so that a GPU's reduced-precision matrix products cannot blur a comparison.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import CheckFailed, expect_close, expect_equal, expect_shape, expect_unchanged, fail, passed, snapshot
from ..env import import_keras
from ..stand_ins import KerasToy, RecurrentStep, TableStep, ToyTranslator  # noqa: F401 - the test models the checks hand to answers
from . import caller_for
from .stored import stored

PAD, START, END, UNK = 0, 1, 2, 3
UNIT = "05_seq2seq_attention"
# Every answer is called under its step's rule (course/rules.py): what it may be built from.
call = caller_for(UNIT)
KERAS_F32 = dict(rtol=1e-4, atol=1e-5)   # a float32 layer against Keras' float32 AdditiveAttention
SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")


def _short(seq, n=12) -> str:
    seq = list(seq)
    return repr(seq) if len(seq) <= n else repr(seq[:n])[:-1] + f", ... ({len(seq)} in all)]"


def _numpy(value):
    """A backend tensor, list or array as a numpy array (without copying numpy input)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple, int, float, bool, np.generic)):
        return np.asarray(value)
    return np.asarray(import_keras().ops.convert_to_numpy(value))


# --- values stored with the release ---------------------------------------------------------
# The checks ask ``ref.vocab``, ``ref.vectorize`` and ``ref.decode`` of the instructor's reference; in the
# student package ``ref`` answers from course/checks/expected/seq2seq_attention.npz (the visible cases),
# and the hidden tests pass the reference itself.
ref = stored("seq2seq_attention")


def _vocab(reference, texts):
    return list(reference.vocab(list(texts)))


def _vectorized(reference, texts, vocab, maxlen, add_start_end):
    return np.asarray(reference.vectorize(list(texts), list(vocab), int(maxlen), bool(add_start_end)),
                      np.int64).reshape(len(texts), maxlen)


def _decoded(reference, ids, vocab):
    return list(reference.decode(np.asarray(ids, np.int64), list(vocab)))


def _pair(step, result, names):
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        kind = type(result).__name__
        if isinstance(result, (tuple, list)):
            kind += f" of {len(result)}"
        fail(step, f"should return a tuple ({', '.join(names)}), got {kind}")
    return result


def _int_array(step, what, value, shape):
    array = _numpy(value) if value is not None else None
    if array is None:
        fail(step, f"{what} is None: did the function forget to `return` it?")
    if array.dtype.kind not in "iu":
        fail(step, f"{what} should hold integer ids, got dtype {array.dtype} (np.int32 or np.int64 will do)")
    expect_shape(step, what, array, shape)
    return array.astype(np.int64)


# --- build_vocab --------------------------------------------------------------------------

VOCAB_CASES = (
    ("Mar 4, 2021", "04.03.21", "4. März 2021", "jeudi 4 mars 2021"),
    ("1999-12-31", "2021-03-04"),
    ("banana",),
    ("", "Zz aA", "zZ"),
)


def _vocab_mistakes(texts):
    joined = "".join(texts)
    chars = sorted(set(joined))
    first_seen = list(dict.fromkeys(joined))
    words = sorted({w for t in texts for w in t.split()})
    return {
        "no special tokens in front: the ids 0-3 belong to <pad>, <start>, <end>, <unk>": chars,
        "the special tokens after the characters instead of before": [*chars, *SPECIALS],
        "the characters in order of first appearance (sort them)": [*SPECIALS, *first_seen],
        "every occurrence kept (each character should appear once)": [*SPECIALS, *sorted(joined)],
        "words instead of characters": [*SPECIALS, *words],
        "the characters sorted without regard to case (sorted() alone orders by code point)":
            [*SPECIALS, *sorted(chars, key=lambda c: (c.lower(), c))],
    }


def check_build_vocab(build_vocab, cases=VOCAB_CASES, reference=None) -> None:
    step, count = "build_vocab", 0
    reference = reference or ref
    for texts in cases:
        given = list(texts)
        got = call(step, build_vocab, given)
        if given != list(texts):
            fail(step, "the function changed its input list in place")
        if got is None:
            fail(step, "returned None: did the function forget to `return` the vocabulary?")
        if isinstance(got, (str, dict)) or not isinstance(got, (list, tuple)):
            fail(step, f"should return a list of tokens (id -> token), got {type(got).__name__}")
        got = list(got)
        odd = [t for t in got if not isinstance(t, str)]
        if odd:
            fail(step, f"every token should be a str, got {type(odd[0]).__name__} {odd[0]!r}")
        want = _vocab(reference, texts)
        if got != want:
            message = f"for texts {list(texts)!r} the vocabulary is {_short(got)}, expected {_short(want)}"
            for mistake, wrong in _vocab_mistakes(texts).items():
                if got == wrong:
                    message += f": that is what you get with {mistake}"
                    break
            fail(step, message)
        count += 1
    passed(step, count, "(the special tokens, then every character once, sorted)")


# --- vectorize ----------------------------------------------------------------------------

@dataclass(frozen=True)
class VectorizeCase:
    vocab_texts: tuple[str, ...]   # what the vocabulary is built from
    texts: tuple[str, ...]         # what is vectorized (may hold characters the vocabulary lacks)
    maxlen: int
    add_start_end: bool


VECTORIZE_CASES = (
    VectorizeCase(("Mar 4, 2021", "04.03.21"), ("Mar 4, 2021", "4.3.21", "", "Mar 4, 2021 (Thu)"), 14, False),
    VectorizeCase(("2021-03-04", "1999-12-31"), ("2021-03-04", "1999-12-31", "1-1", "2000-01-01x"), 12, True),
    VectorizeCase(("abc",), ("abcabc", "cab", "a"), 4, True),
)


def _lookup_ids(chars, vocab):
    """Ids of characters from Keras' StringLookup: its out-of-vocabulary id 0 lands on <unk> (3).

    StringLookup needs TensorFlow; on a backend installed without it, a dictionary does the lookup.
    """
    keras = import_keras()
    if not chars:
        return np.zeros(0, np.int64)
    try:
        with keras.device("cpu:0"):
            lookup = keras.layers.StringLookup(vocabulary=list(vocab[len(SPECIALS):]), num_oov_indices=1,
                                               mask_token=None)
            return _numpy(lookup(list(chars))).astype(np.int64) + UNK
    except ImportError:
        known = {token: i for i, token in enumerate(vocab) if i >= len(SPECIALS)}
        return np.array([known.get(ch, UNK) for ch in chars], np.int64)


def _vectorize_mistakes(case, vocab, right):
    texts, n = case.texts, case.maxlen
    position = {token: i for i, token in enumerate(vocab)}

    def rows(make):
        out = np.full((len(texts), n), PAD, np.int64)
        for r, text in enumerate(texts):
            seq = list(make(text))[:n]
            out[r, :len(seq)] = seq
        return out

    ids = lambda text, unknown=UNK: [position.get(c, unknown) for c in text]  # noqa: E731
    left = np.zeros_like(right)
    for r, row in enumerate(right):
        kept = row[row != PAD]
        left[r, n - len(kept):] = kept
    found = {"padding on the left (pad after the text, on the right)": left}
    if case.add_start_end:
        found.update({
            "no END token at the end": rows(lambda t: [START, *ids(t)[:n - 1]]),
            "no START token in front": rows(lambda t: [*ids(t)[:n - 1], END]),
            "the END token lost when a long text is cut (keep maxlen - 2 characters)":
                rows(lambda t: [START, *ids(t), END]),
            "unknown characters mapped to <pad> (0) instead of <unk> (3)":
                rows(lambda t: [START, *ids(t, PAD)[:n - 2], END]),
            "unknown characters dropped instead of mapped to <unk>":
                rows(lambda t: [START, *[i for i in ids(t, None) if i is not None][:n - 2], END]),
        })
    else:
        if n >= 2:
            found["START and END added although add_start_end=False (the source side has neither)"] = \
                rows(lambda t: [START, *ids(t)[:n - 2], END])
        found.update({
            "a START token added although add_start_end=False": rows(lambda t: [START, *ids(t)]),
            "unknown characters mapped to <pad> (0) instead of <unk> (3)": rows(lambda t: ids(t, PAD)),
            "unknown characters dropped instead of mapped to <unk>":
                rows(lambda t: [i for i in ids(t, None) if i is not None]),
        })
    return found


def check_vectorize(vectorize, cases=VECTORIZE_CASES, reference=None) -> None:
    step, count = "vectorize", 0
    reference = reference or ref
    for case in cases:
        vocab = _vocab(reference, case.vocab_texts)
        texts, vocab_given = list(case.texts), list(vocab)
        got = call(step, vectorize, texts, vocab_given, case.maxlen, add_start_end=case.add_start_end)
        if texts != list(case.texts) or vocab_given != vocab:
            fail(step, "the function changed its input texts or vocabulary in place")
        where = f"texts={list(case.texts)!r}, maxlen={case.maxlen}, add_start_end={case.add_start_end}"
        got = _int_array(step, f"the ids ({where})", got, (len(texts), case.maxlen))
        want = _vectorized(reference, case.texts, vocab, case.maxlen, case.add_start_end)
        if not np.array_equal(got, want):
            for r in range(len(texts)):
                if not np.array_equal(got[r], want[r]):
                    break
            message = (f"the ids of {texts[r]!r} ({where}) are {got[r].tolist()}, "
                       f"expected {want[r].tolist()}")
            for mistake, wrong in _vectorize_mistakes(case, vocab, want).items():
                if np.array_equal(got, wrong):
                    message += f": that is what you get with {mistake}"
                    break
            fail(step, message)
        count += 1
    passed(step, count, "(ids equal to keras.layers.StringLookup's, PAD on the right, START/END on request)")


# --- decode_ids ---------------------------------------------------------------------------

def _decode_mistakes(ids, vocab, want):
    def join(row_filter):
        return ["".join(vocab[i] for i in row_filter(list(row))) for row in np.asarray(ids)]

    def until(row, token):
        return row[:row.index(token)] if token in row else row

    return {
        "no stop at END (everything after END is not part of the text)":
            join(lambda r: [i for i in r if i >= len(SPECIALS)]),
        "the special tokens written out as text":
            join(lambda r: [i for i in until(r, END) if i != PAD]),
        "the special tokens written out, END included": join(lambda r: [i for i in r if i != PAD]),
        "a stop at the first <pad> rather than at END":
            join(lambda r: [i for i in until(r, PAD) if i >= len(SPECIALS)]),
        "the last character dropped": [t[:-1] for t in want],
    }


def _decode_cases(reference):
    vocab = _vocab(reference, ["0123456789-", "Mar 4, 2021"])
    idx = {c: i for i, c in enumerate(vocab)}
    enc = lambda text: [idx[c] for c in text]  # noqa: E731
    raw = [
        [START, *enc("2021-03-04"), END, PAD],            # a clean target
        [START, *enc("1999"), END, *enc("12-31"), END],   # a decoder that went on after END
        [*enc("Mar 4"), PAD, PAD, PAD, PAD, PAD, PAD],    # no START, no END: read to the last <pad>
        [START, END, *enc("99"), PAD, PAD, PAD, PAD, PAD, PAD],   # END at once: the empty string
        [START, *enc("4"), UNK, *enc("2"), END, PAD, PAD, PAD, PAD, PAD, PAD],   # <unk> gives no character
    ]
    width = max(len(r) for r in raw)
    ids = np.array([r + [PAD] * (width - len(r)) for r in raw], np.int64)
    texts = ["12-31", "2021-03-04", "Mar 4, 2021", "4 Mar 2021"]
    round_trip = _vectorized(reference, texts, vocab, 14, True)
    return ((ids, vocab), (round_trip, vocab), (ids[:1, :6], vocab))


def check_decode_ids(decode_ids, cases=None, reference=None) -> None:
    """``cases``: pairs (ids, vocab); None: the visible ones."""
    step, count = "decode_ids", 0
    reference = reference or ref
    for ids, vocab in (_decode_cases(reference) if cases is None else cases):
        ids_given = ids.copy()
        got = call(step, decode_ids, ids_given, list(vocab))
        expect_unchanged(step, "ids", ids, ids_given)
        if got is None:
            fail(step, "returned None: did the function forget to `return` the list of strings?")
        if isinstance(got, str) or not isinstance(got, (list, tuple)):
            fail(step, f"should return a list of strings, one per row, got {type(got).__name__}")
        got = list(got)
        if len(got) != len(ids):
            fail(step, f"returned {len(got)} strings for {len(ids)} rows of ids: one string per row")
        if not all(isinstance(t, str) for t in got):
            fail(step, "each item should be a str (join the characters: ''.join(...))")
        want = _decoded(reference, ids, vocab)
        if got != want:
            r = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            message = f"row {ids[r].tolist()} gives {got[r]!r}, expected {want[r]!r}"
            for mistake, wrong in _decode_mistakes(ids, vocab, want).items():
                if got == list(wrong):
                    message += f": that is what you get with {mistake}"
                    break
            fail(step, message)
        count += 1
    passed(step, count, "(up to the first END, special tokens skipped; vectorize then decode gives the text back)")


# --- teacher_forcing_pairs ----------------------------------------------------------------

def _target_cases(reference):
    vocab = _vocab(reference, ["0123456789-"])
    isos = ["2021-03-04", "1999-12-31", "1950-01-01"]
    fixed = _vectorized(reference, isos, vocab, 12, True)
    ragged = _vectorized(reference, ["7", "12-31", "", "2021-03-04"], vocab, 13, True)
    return (fixed, ragged, fixed[:1, :2])


def check_teacher_forcing_pairs(teacher_forcing_pairs, cases=None) -> None:
    """``cases``: target id arrays (rows START ... END PAD ...); None: the visible ones."""
    step, count = "teacher_forcing_pairs", 0
    for ids in (_target_cases(ref) if cases is None else cases):
        given = ids.copy()
        result = _pair(step, call(step, teacher_forcing_pairs, given), ("decoder_input", "decoder_target"))
        expect_unchanged(step, "target_ids", ids, given)
        n, T = ids.shape
        where = f"target_ids of shape {ids.shape}"
        want_in, want_out = ids[:, :-1], ids[:, 1:]
        wrong_in = {"the arrays swapped or shifted the wrong way (decoder_input starts with START and "
                    "leaves out the last token)": want_out}
        wrong_out = {"the target not shifted (equal to decoder_input): decoder_target[:, t] must be the token "
                     "that follows decoder_input[:, t]": want_in}
        got_in = _int_array(step, f"decoder_input ({where})", result[0], (n, T - 1))
        got_out = _int_array(step, f"decoder_target ({where})", result[1], (n, T - 1))
        if T > 2:
            no_end = np.where(want_out == END, PAD, want_out)
            wrong_out["END removed from the target: the decoder must learn to say END"] = no_end
        expect_equal(step, f"decoder_input ({where})", got_in, want_in, diagnoses=wrong_in)
        expect_equal(step, f"decoder_target ({where})", got_out, want_out, diagnoses=wrong_out)
        count += 1
    passed(step, count, "(input = START + target[:-1], target = the sequence one step ahead)")


# --- test models with the notebook's interface --------------------------------------------

def _floats(value):
    return _numpy(value).astype(np.float64)


# The test models an answer is given live in course.stand_ins, outside the checks: an answer may call
# what it is handed, never the checks. What they should return, written as plain loops over their
# interface, is here.

def _toy_teacher_forced(toy, source_ids, decoder_input, *, carry=True, own_predictions=False):
    """Logits (batch, T, vocab), and attention weights (batch, T, Ts), for a decoder fed `decoder_input`."""
    outputs, mask, first = toy.encode(source_ids)
    states, logits, weights = first, [], []
    fed = np.asarray(decoder_input)[:, 0]
    for t in range(np.shape(decoder_input)[1]):
        if t and not own_predictions:
            fed = np.asarray(decoder_input)[:, t]
        step_logits, new_states, w = toy.decode_step(fed, states if carry else first, outputs, mask)
        states = new_states
        logits.append(_floats(step_logits))
        weights.append(_floats(w))
        fed = np.argmax(logits[-1], axis=1)
    return np.stack(logits, axis=1), np.stack(weights, axis=1)

def _toy_greedy(toy, source_ids, max_len, *, carry=True, feed_back=True, stop=True):
    """Greedy decoding written as a plain loop; the options make its usual mistakes."""
    outputs, mask, first = toy.encode(source_ids)
    batch, width = np.shape(source_ids)
    tokens = np.full((batch, max_len), PAD, np.int64)
    attention = np.zeros((batch, max_len, width))
    done = np.zeros(batch, bool)
    states, fed = first, np.full(batch, START)
    for step_index in range(max_len):
        logits, new_states, w = toy.decode_step(fed, states if carry else first, outputs, mask)
        states = new_states
        best = np.argmax(_floats(logits), axis=1)
        live = ~done if stop else np.ones(batch, bool)
        tokens[live, step_index] = best[live]
        attention[live, step_index] = _floats(w)[live]
        done |= best == END
        fed = best if feed_back else np.full(batch, START)
    return tokens, attention


def _keras_toy_reference(toy, source_ids, decoder_input):
    """keras.layers.GRU over the embedded decoder input, from the encoder's state."""
    keras = import_keras()
    with keras.device("cpu:0"):
        _, _, (h0,) = toy.encode(source_ids)
        layer = keras.layers.GRU(toy.units, return_sequences=True)
        layer.build((None, None, toy.units))
        layer.set_weights(toy.cell.get_weights())
        sequence = layer(toy.target_embedding(decoder_input), initial_state=[h0])
        return _floats(toy.readout(sequence))


# --- teacher_forced_decode ----------------------------------------------------------------

@dataclass(frozen=True)
class DecodeCase:
    seed: int
    batch: int
    source_len: int
    target_len: int


TEACHER_CASES = (DecodeCase(1, 3, 6, 5), DecodeCase(2, 1, 1, 1), DecodeCase(3, 4, 5, 7))


def _sources(case: DecodeCase, vocab: int, min_len: int = 1):
    """Right-padded source ids of various lengths (at least one real character per row)."""
    rng = np.random.default_rng(case.seed + 500)
    ids = rng.integers(len(SPECIALS), vocab, size=(case.batch, case.source_len))
    lengths = rng.integers(min(min_len, case.source_len), case.source_len + 1, size=case.batch)
    lengths[0] = case.source_len
    ids[np.arange(case.source_len)[None, :] >= lengths[:, None]] = PAD
    return ids.astype(np.int32)


def _decoder_input(case: DecodeCase, vocab: int):
    rng = np.random.default_rng(case.seed + 900)
    ids = rng.integers(len(SPECIALS), vocab, size=(case.batch, case.target_len))
    ids[:, 0] = START
    return ids.astype(np.int32)


def _logits_array(step, what, value, shape, time_first_hint=True):
    if value is None:
        fail(step, f"{what} is None: did the function forget to `return` the logits?")
    if isinstance(value, (list, tuple)):
        fail(step, f"{what} should be one tensor of shape {shape}, got a {type(value).__name__}: stack the steps "
                   "along axis 1 (keras.ops.stack(..., axis=1))")
    array = _floats(value)
    batch, T, vocab = shape
    if time_first_hint and array.shape == (T, batch, vocab) and T != batch:
        fail(step, f"{what} has shape {array.shape}: time first. Stack the steps along axis 1 to get {shape}")
    return array


def check_teacher_forced_decode(teacher_forced_decode, cases=TEACHER_CASES, keras_cases=1) -> None:
    """The numpy toy on every case; the Keras GRU toy on the first ``keras_cases``, then symbolically."""
    step, count = "teacher_forced_decode", 0
    keras = import_keras()
    for index, case in enumerate(cases):
        # 1. The numpy toy: two states, attention weights, numpy in and out.
        toy = ToyTranslator(seed=case.seed)
        source, fed = _sources(case, toy.source_vocab), _decoder_input(case, toy.target_vocab)
        before = snapshot(source, fed)
        got = call(step, teacher_forced_decode, toy, source, fed)
        expect_unchanged(step, "source_ids", before[0], source)
        expect_unchanged(step, "decoder_input", before[1], fed)
        shape = (case.batch, case.target_len, toy.target_vocab)
        where = f"batch={case.batch}, source length {case.source_len}, {case.target_len} decoder steps"
        got = _logits_array(step, f"the logits ({where})", got, shape)
        want, _ = _toy_teacher_forced(toy, source, fed)
        expect_close(step, f"the logits ({where})", got, want, diagnoses=lambda: {
            "the model fed its own predictions (argmax) instead of decoder_input: that is free-running, "
            "not teacher forcing": _toy_teacher_forced(toy, source, fed, own_predictions=True)[0],
            "the encoder's states given to every step (the states are not carried)":
                _toy_teacher_forced(toy, source, fed, carry=False)[0],
            "only the last step's logits, repeated": np.repeat(want[:, -1:], case.target_len, axis=1),
        }, hint="feed decoder_input[:, t] at step t and carry the states returned by decode_step")
        count += 1
        if index >= keras_cases:
            continue
        # 2. A Keras GRU cell, against keras.layers.GRU over the whole sequence.
        keras_toy = KerasToy(seed=case.seed)
        with keras.device("cpu:0"):
            got = call(step, teacher_forced_decode, keras_toy, source, fed)
        shape = (case.batch, case.target_len, 9)
        got = _logits_array(step, f"the logits of a Keras GRU decoder ({where})", got, shape)
        want = _keras_toy_reference(keras_toy, source, fed)
        expect_close(step, f"the logits of a Keras GRU decoder ({where}) against keras.layers.GRU over the "
                           "whole decoder input", got, want, rtol=1e-5, atol=1e-5)
        count += 1
    _check_symbolic_decode(step, teacher_forced_decode, cases[0])
    passed(step, count + 1, "(equal to keras.layers.GRU run over the whole decoder input; works inside a Keras model)")


def _check_symbolic_decode(step, teacher_forced_decode, case: DecodeCase) -> None:
    """The function must build a Keras model from symbolic inputs: it runs inside model.fit."""
    keras = import_keras()
    toy = KerasToy(seed=case.seed)
    source, fed = _sources(case, 12), _decoder_input(case, 9)
    with keras.device("cpu:0"):
        try:
            source_in = keras.Input((case.source_len,), dtype="int32")
            fed_in = keras.Input((case.target_len,), dtype="int32")
            model = keras.Model([source_in, fed_in], teacher_forced_decode(toy, source_in, fed_in))
            got = _floats(model([source, fed]))
        except Exception as err:  # noqa: BLE001 - any failure here has the same cause
            fail(step, f"works on arrays but not on symbolic Keras tensors ({type(err).__name__}: "
                       f"{str(err).splitlines()[0][:160]}). model.fit runs it symbolically: use keras.ops "
                       "(keras.ops.stack, not np.stack) and loop over decoder_input.shape[1]")
    expect_close(step, "the logits inside a Keras model", got, _keras_toy_reference(toy, source, fed),
                 rtol=1e-5, atol=1e-5)


# --- greedy_decode --------------------------------------------------------------------------

GREEDY_CASES = (DecodeCase(32, 6, 12, 6), DecodeCase(12, 1, 1, 3), DecodeCase(13, 5, 4, 8))


def check_greedy_decode(greedy_decode, cases=GREEDY_CASES, tensors=(False, True)) -> None:
    step, count = "greedy_decode", 0
    for case in cases:
        for as_tensors in tensors:
            toy = ToyTranslator(seed=case.seed, tensors=as_tensors)
            source = _sources(case, toy.source_vocab)
            given = source.copy()
            max_len = case.target_len
            result = _pair(step, call(step, greedy_decode, toy, given, max_len), ("tokens", "weights"))
            expect_unchanged(step, "source_ids", source, given)
            kind = "Keras tensors" if as_tensors else "numpy arrays"
            where = f"batch={case.batch}, source length {case.source_len}, max_len={max_len}, a model returning {kind}"
            tokens = _int_array(step, f"tokens ({where})", result[0], (case.batch, max_len))
            weights = expect_shape(step, f"weights ({where})", result[1], (case.batch, max_len, case.source_len))
            _check_greedy_tokens(step, toy, source, tokens, max_len, where)
            want_tokens, want_weights = _toy_greedy(toy, source, max_len)
            expect_equal(step, f"tokens ({where})", tokens, want_tokens)
            expect_close(step, f"weights ({where})", weights, want_weights, diagnoses=lambda: {
                "the weights of the steps after END kept (they should be 0, like the <pad> tokens)":
                    _toy_greedy(toy, source, max_len, stop=False)[1],
            }, hint="weights[:, t] holds the attention weights decode_step returned at step t")
            count += 1
    passed(step, count, "(each token is the model's argmax given the tokens before it; <pad> after END)")


def _check_greedy_tokens(step, toy, source, tokens, max_len, where):
    """Every token is what the model predicts when re-run on the decoded prefix; <pad> after END."""
    batch = len(tokens)
    fed = np.concatenate([np.full((batch, 1), START), tokens[:, :-1]], axis=1)
    logits, _ = _toy_teacher_forced(toy, source, fed)
    predicted = np.argmax(logits, axis=2)
    ended = np.zeros(batch, bool)
    for position in range(max_len):
        for b in range(batch):
            want = PAD if ended[b] else predicted[b, position]
            if tokens[b, position] != want:
                mistakes = {
                    "the encoder's states given to every step (the states are not carried)":
                        _toy_greedy(toy, source, max_len, carry=False)[0],
                    "START fed at every step instead of the token just predicted":
                        _toy_greedy(toy, source, max_len, feed_back=False)[0],
                    "no stop at END (after END every token should be <pad>)":
                        _toy_greedy(toy, source, max_len, stop=False)[0],
                }
                named = [m for m, wrong in mistakes.items() if np.array_equal(tokens, wrong)]
                if ended[b]:
                    message = (f"row {b} said END before step {position}, so tokens[{b}, {position}] should be <pad> (0), "
                               f"got {int(tokens[b, position])}")
                else:
                    message = (f"tokens[{b}, {position}] is {int(tokens[b, position])}, but re-running the model on the "
                               f"tokens before it predicts {int(want)}")
                fail(step, f"{message} ({where})" + (f": that is what you get with {named[0]}" if named else ""))
            ended[b] |= tokens[b, position] == END


# --- BahdanauAttention ----------------------------------------------------------------------

@dataclass(frozen=True)
class AttentionCase:
    seed: int
    batch: int
    source_len: int
    query_dim: int
    value_dim: int
    units: int
    lengths: tuple[int, ...] | None = None   # valid positions per row; None: no mask at all
    scale: float = 1.0


ATTENTION_CASES = (
    AttentionCase(1, 3, 6, 4, 5, 7, lengths=(6, 3, 1)),
    AttentionCase(2, 2, 4, 3, 3, 2, lengths=(2, 4)),
    AttentionCase(3, 2, 5, 2, 6, 4, lengths=None),
)


def attention_inputs(case: AttentionCase):
    """query (batch, dq), values (batch, Ts, dv), mask (batch, Ts) or None, and the weights W1, W2, b2, v."""
    rng = np.random.default_rng(case.seed)
    query = rng.normal(size=(case.batch, case.query_dim))
    values = rng.normal(size=(case.batch, case.source_len, case.value_dim))
    mask = None
    if case.lengths is not None:
        mask = np.arange(case.source_len)[None, :] < np.asarray(case.lengths)[:, None]
    weights = dict(
        W1=rng.normal(scale=case.scale, size=(case.query_dim, case.units)),
        W2=rng.normal(scale=case.scale, size=(case.value_dim, case.units)),
        b2=rng.normal(scale=0.5, size=(case.units,)),
        v=rng.normal(scale=case.scale, size=(case.units, 1)),
    )
    return query, values, mask, weights


def _mistaken_attention(query, values, mask, W1, W2, b2, v, *, softmax_axis=-1, use_mask="before",
                        tanh=True, swap=False, context="weighted", bias=True):
    """What one known mistake gives, in float64, to name it in a message (the expected values come from
    Keras' AdditiveAttention, never from here)."""
    if (softmax_axis, use_mask, tanh, swap, context, bias) == (-1, "before", True, False, "weighted", True):
        raise ValueError("_mistaken_attention reproduces mistakes: name at least one")
    with np.errstate(all="ignore"):   # some mistakes give nan (a softmax over nothing but -inf)
        return _attention(query, values, mask, W1, W2, b2, v, softmax_axis, use_mask, tanh, swap, context, bias)


def _attention(query, values, mask, W1, W2, b2, v, softmax_axis, use_mask, tanh, swap, context, bias):
    q = np.asarray(query, np.float64)
    h = np.asarray(values, np.float64)
    if swap:
        projected_q, projected_h = q @ W2, h @ W1
    else:
        projected_q, projected_h = q @ W1, h @ W2
    if bias:
        projected_h = projected_h + b2
    pre = projected_q[:, None, :] + projected_h
    scores = ((np.tanh(pre) if tanh else pre) @ v)[..., 0]                 # (batch, Ts)
    valid = np.ones(scores.shape, bool) if mask is None else np.asarray(mask, bool)
    if use_mask == "before":
        scores = np.where(valid, scores, -np.inf)
    elif use_mask == "multiply":
        scores = scores * valid
    shifted = np.exp(scores - scores.max(axis=softmax_axis, keepdims=True))
    weights = shifted / shifted.sum(axis=softmax_axis, keepdims=True)
    if use_mask == "after":
        weights = weights * valid
    if context == "weighted":
        ctx = np.einsum("bt,btd->bd", weights, h)
    else:
        ctx = h.mean(axis=1)
    return ctx, weights


def _attention_mistakes(query, values, mask, w):
    found = {
        "softmax over the batch axis (axis 0) instead of the source positions": dict(softmax_axis=0),
        "no tanh: score = v^T (W1 s + W2 h)": dict(tanh=False),
        "the bias of W2 left out": dict(bias=False),
        "the context as the plain mean of the values, not weighted by the attention": dict(context="mean"),
    }
    if mask is not None and not mask.all():
        found.update({
            "the mask ignored: padded positions get attention": dict(use_mask=None),
            "the mask applied after the softmax without renormalising (the weights no longer sum to 1)":
                dict(use_mask="after"),
            "the scores multiplied by the mask (a masked score of 0 still gets weight; use -inf or -1e9 "
            "where the mask is False, e.g. keras.ops.where)": dict(use_mask="multiply"),
        })
    if np.shape(w["W1"]) == np.shape(w["W2"]):
        found["W1 and W2 swapped: W1 projects the query (the decoder state), W2 the values"] = dict(swap=True)
    return {k: _mistaken_attention(query, values, mask, **w, **options) for k, options in found.items()}


def _build_attention(step, BahdanauAttention, case: AttentionCase, w, query, values, mask):
    """The student's layer, called once (which builds W1, W2 and v), then given the weights w.

    The layer is driven through calls only (made, called, get_weights, set_weights), so that the grader can
    replay the checks from plain data.
    """
    made = call(step, BahdanauAttention, case.units)
    if not callable(getattr(made, "set_weights", None)) or not callable(getattr(made, "get_weights", None)):
        fail(step, f"BahdanauAttention(units) should make a keras.layers.Layer, got {type(made).__name__}")
    _run_attention(step, made, query, values, mask)
    want = [np.asarray(w["W1"], "float32"), np.asarray(w["W2"], "float32"), np.asarray(w["b2"], "float32"),
            np.asarray(w["v"], "float32")]
    shapes = [tuple(np.shape(x)) for x in made.get_weights()]
    if shapes != [x.shape for x in want]:
        fail(step, f"after one call the layer's weights have shapes {shapes}, expected {[x.shape for x in want]} "
                   f"(W1's kernel, W2's kernel and bias, v's kernel): keep __init__ as given (W1 without bias, W2 "
                   "with bias, v with one unit and no bias), W1 for the query and W2 for the values")
    made.set_weights(want)
    return made


def _run_attention(step, layer, query, values, mask):
    args = (np.asarray(query, "float32"), np.asarray(values, "float32"))
    kwargs = {} if mask is None else {"mask": np.asarray(mask)}
    try:
        result = call(step, layer, *args, **kwargs)
    except CheckFailed as err:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))   # Keras' messages carry terminal colours
        if "incompatible with the layer" in text and re.search(r"layer '(W1|W2|v)'", text):
            text = (text.split("\n")[0] + f"\n    a layer got an input of the wrong size: W1 takes the query "
                    f"(size {np.shape(query)[-1]}), W2 the values (size {np.shape(values)[-1]}), v the "
                    f"tanh(...) of size units={layer.units if hasattr(layer, 'units') else '?'}")
        raise CheckFailed(text) from None
    return _pair(step, result, ("context", "weights"))


def _expect_finite_weights(step, weights, where) -> None:
    """Large scores (hundreds) overflow exp in float32: a softmax must stay finite all the same."""
    if not np.all(np.isfinite(weights)):
        fail(step, f"the attention weights contain nan or inf ({where}): exp of a score above about 88 "
                   "overflows float32. Subtract each row's largest score before exp (softmax(s) = softmax(s - max s)), "
                   "or use keras.ops.softmax")


def check_BahdanauAttention(BahdanauAttention, cases=ATTENTION_CASES) -> None:  # noqa: N802 - the class's name
    step, count = "BahdanauAttention", 0
    keras = import_keras()
    for case in cases:
        query, values, mask, w = attention_inputs(case)
        where = (f"batch={case.batch}, Ts={case.source_len}, query dim {case.query_dim}, value dim "
                 f"{case.value_dim}, units={case.units}, "
                 + ("no mask" if mask is None else f"valid positions per row {list(case.lengths)}"))
        with keras.device("cpu:0"):
            layer = _build_attention(step, BahdanauAttention, case, w, query, values, mask)
            context, weights = _run_attention(step, layer, query, values, mask)
        want_context, want_weights = _keras_additive_attention(query, values, mask, **w)
        weights = expect_shape(step, f"the attention weights ({where})", weights, want_weights.shape)
        context = expect_shape(step, f"the context ({where})", context, want_context.shape)
        mistakes = lambda: _attention_mistakes(query, values, mask, w)  # noqa: E731
        _expect_finite_weights(step, weights, where)
        if isinstance(mask, np.ndarray):
            leaked = weights[~mask]
            if np.any(leaked != 0.0):
                fail(step, f"masked positions must get exactly 0 weight; the largest is {np.abs(leaked).max():.3g} "
                           f"({where}). Put -inf or -1e9 where the mask is False before the softmax")
        sums = weights.sum(axis=-1)
        if not np.allclose(sums, 1.0, atol=1e-5):
            hint = ". Softmax over the source positions, axis -1"
            named = [k for k, (_, wrong) in mistakes().items() if np.allclose(weights, wrong, atol=1e-6)]
            fail(step, f"the weights of each row must sum to 1; row sums are {np.round(sums, 4).tolist()} ({where})"
                 + (f": that is what you get with {named[0]}" if named else hint))
        expect_close(step, f"the attention weights ({where})", weights, want_weights,
                     diagnoses=lambda: {k: wr for k, (_, wr) in mistakes().items()}, **KERAS_F32,
                     hint="score_i = v^T tanh(W1 query + W2 values_i), then a softmax over i")
        expect_close(step, f"the context ({where})", context, want_context,
                     diagnoses=lambda: {k: c for k, (c, _) in mistakes().items()}, **KERAS_F32,
                     hint="context = sum over i of weights_i * values_i")
        count += 1
    _check_called_twice(step, BahdanauAttention, cases[0])
    _check_symbolic_attention(step, BahdanauAttention, cases[0])
    passed(step, count + 2, "(weights sum to 1, exactly 0 where masked; equal to keras.layers.AdditiveAttention "
                            "on the projected query and keys; the same layer called twice; works on symbolic Keras tensors)")


def _keras_additive_attention(query, values, mask, W1, W2, b2, v):
    """Keras' AdditiveAttention on query W1 and keys values W2 + b2, with its scale set to v."""
    keras = import_keras()
    q = np.asarray(query @ W1, "float32")[:, None, :]
    k = np.asarray(values @ W2 + b2, "float32")
    h = np.asarray(values, "float32")
    with keras.device("cpu:0"):
        layer = keras.layers.AdditiveAttention(use_scale=True)
        layer.build([q.shape, h.shape, k.shape])
        layer.set_weights([np.asarray(v, "float32")[:, 0]])
        out, scores = layer([q, h, k], mask=None if mask is None else [None, np.asarray(mask)],
                            return_attention_scores=True)
    return _floats(out)[:, 0], _floats(scores)[:, 0]


def _check_called_twice(step, BahdanauAttention, case):
    """One layer, two batches of other sizes in a row: the second call owes nothing to the first (a layer
    keeps weights, not the last query, scores or mask)."""
    keras = import_keras()
    query, values, mask, w = attention_inputs(case)
    rng = np.random.default_rng(case.seed + 1)
    query2 = rng.normal(size=(case.batch, case.query_dim))
    values2 = rng.normal(size=(case.batch, case.source_len + 2, case.value_dim))
    mask2 = np.arange(case.source_len + 2)[None, :] < rng.integers(1, case.source_len + 3, size=(case.batch, 1))
    with keras.device("cpu:0"):
        layer = _build_attention(step, BahdanauAttention, case, w, query, values, mask)
        _run_attention(step, layer, query, values, mask)
        context, weights = _run_attention(step, layer, query2, values2, mask2)
    want_context, want_weights = _keras_additive_attention(query2, values2, mask2, **w)
    where = f"a second call of the same layer on other inputs, Ts={case.source_len + 2}"
    expect_close(step, f"the attention weights ({where})", weights, want_weights, **KERAS_F32,
                 hint="does the layer keep something from its first call? Only the weights carry over")
    expect_close(step, f"the context ({where})", context, want_context, **KERAS_F32)


def _run_symbolic(step, layer, case, query, values, mask):
    """(context, weights) of the layer's call on symbolic Keras tensors, batch size unknown, made into a Keras
    model and applied to the arrays: a failure says that a model cannot use the layer."""
    keras = import_keras()
    with keras.device("cpu:0"):
        try:
            q_in = keras.Input((case.query_dim,))
            v_in = keras.Input((case.source_len, case.value_dim))
            m_in = keras.Input((case.source_len,), dtype="bool")
            outputs = call(step, layer.call, q_in, v_in, mask=m_in)
            model = keras.Model([q_in, v_in, m_in], list(_pair(step, outputs, ("context", "weights"))))
            return model([np.asarray(query, "float32"), np.asarray(values, "float32"), mask])
        except CheckFailed:
            raise
        except Exception as err:  # noqa: BLE001 - any failure here has the same cause
            fail(step, f"works on arrays but not on symbolic Keras tensors ({type(err).__name__}: "
                       f"{str(err).splitlines()[0][:160] if str(err) else ''}). Inside a model the batch size is "
                       "unknown and numpy cannot see the values: use keras.ops throughout")


def _check_symbolic_attention(step, BahdanauAttention, case):
    """The layer's call on symbolic Keras tensors, batch size unknown: a graph of keras.ops a model can use."""
    keras = import_keras()
    query, values, mask, w = attention_inputs(case)
    with keras.device("cpu:0"):
        layer = _build_attention(step, BahdanauAttention, case, w, query, values, mask)
    context, weights = _run_symbolic(step, layer, case, query, values, mask)
    want_context, want_weights = _keras_additive_attention(query, values, mask, **w)
    expect_close(step, "the weights inside a Keras model", weights, want_weights, **KERAS_F32)
    expect_close(step, "the context inside a Keras model", context, want_context, **KERAS_F32)


# --- beam_search_decode ---------------------------------------------------------------------
# The step functions handed to an answer are in course.stand_ins: TableStep (a fixed table of log-probabilities
# indexed by the last token) and RecurrentStep (a small numpy RNN whose states matter). The answers they are
# held against are brute force (every sequence scored, then sorted) and a greedy loop.

@dataclass(frozen=True)
class BeamCase:
    model: str              # "table", "uniform" (every token equally likely: ties), "trap", "early_end" or "recurrent"
    seed: int
    vocab: int
    beam_width: int
    max_len: int
    end_after: int = 3      # RecurrentStep: END becomes likely from this step on


def beam_model(case: BeamCase):
    """The step function of a case (fresh each time: it keeps nothing between calls)."""
    if case.model == "recurrent":
        return RecurrentStep(seed=case.seed, vocab=case.vocab, end_after=case.end_after)
    rng = np.random.default_rng(case.seed)
    V = case.vocab
    if case.model == "uniform":
        return TableStep(np.full((V, V), -np.log(V)))
    if case.model == "trap":
        # Worked out by hand (START=1, END=2, vocab 0-3, beam_width=2, max_len=2): START -> 0 (0.5) or 3 (0.4);
        # after 0 everything is flat (0.25 each); after 3, 0 and 3 have 0.45 each. The two best sequences are
        # [3, 0] and [3, 3] (0.18 each, tied: [3, 0] first); [0, x] has only 0.125.
        table = np.full((4, 4), 0.25)
        table[START] = [0.5, 0.05, 0.05, 0.4]
        table[0] = 0.25
        table[3] = [0.45, 0.05, 0.05, 0.45]
        return TableStep(np.log(table))
    table = rng.dirichlet(np.full(V, 0.7), size=V)
    if case.model == "early_end":
        table[START] = np.full(V, 0.4 / (V - 1))
        table[START, END] = 0.6          # the best sequence is END at once
    if case.model == "long":
        table = rng.dirichlet(np.full(V, 5.0), size=V)   # no token is sure: each step costs log(~1/V)
        table[:, END] = 1e-3
        table /= table.sum(axis=1, keepdims=True)
    return TableStep(np.log(table))


TRAP_ANSWER = ([[3, 0], [3, 3]], [np.log(0.4 * 0.45), np.log(0.4 * 0.45)])
# Every token equally likely (vocabulary 3, beam_width=2, max_len=3): all candidates of a step tie, so list order
# decides: [0] and [1] beat [2] (END) at the first step, then [0, 0] and [0, 1], then [0, 0, 0] and [0, 0, 1].
UNIFORM_ANSWER = ([[0, 0, 0], [0, 0, 1]], [3 * np.log(1 / 3), 3 * np.log(1 / 3)])

BEAM_CASES = (
    BeamCase("trap", 0, 4, 2, 2),
    BeamCase("table", 5, 5, 1, 6),          # beam_width=1: greedy
    BeamCase("table", 5, 5, 400, 4),       # wide enough to keep every sequence: brute force
    BeamCase("early_end", 6, 4, 3, 4),
    BeamCase("uniform", 0, 3, 2, 3),       # ties everywhere
    BeamCase("recurrent", 7, 4, 1, 6),
    BeamCase("recurrent", 8, 4, 200, 4, end_after=2),
    BeamCase("recurrent", 9, 5, 3, 5),
    BeamCase("long", 10, 4, 1, 300),       # 300 steps: a product of probabilities underflows
    BeamCase("long", 11, 4, 3, 300),
)


def _score_of(model, sequence, start_id):
    """The summed log-probabilities of one sequence, step by step from the start state (float64)."""
    states, token, total = model.initial_states(), start_id, 0.0
    for nxt in sequence:
        log_probs, states = model(np.array([token]), states)
        total += float(log_probs[0, nxt])
        token = nxt
    return total


def _brute_force(model, max_len, start_id, end_id):
    """Every sequence the search can return (ended by END, or max_len long), best first, ties in list order."""
    found = []

    def grow(prefix, score, token, states):
        log_probs, states = model(np.array([token]), states)
        for nxt in range(log_probs.shape[1]):
            sequence, total = [*prefix, nxt], score + float(log_probs[0, nxt])
            if nxt == end_id or len(sequence) == max_len:
                found.append((total, sequence))
            else:
                grow(sequence, total, nxt, states)

    grow([], 0.0, start_id, model.initial_states())
    found.sort(key=lambda c: (-c[0], c[1]))
    return [c[1] for c in found], np.array([c[0] for c in found])


def _greedy_sequence(model, max_len, start_id, end_id):
    states, token, sequence = model.initial_states(), start_id, []
    for _position in range(max_len):
        log_probs, states = model(np.array([token]), states)
        token = int(np.argmax(log_probs[0]))
        sequence.append(token)
        if token == end_id:
            break
    return sequence


def _beam_result(step, result, case, where):
    sequences, scores = _pair(step, result, ("sequences", "scores"))
    if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
        sequences = list(sequences)
    if not isinstance(sequences, (list, tuple)):
        fail(step, f"sequences should be a list of lists of token ids, got {type(sequences).__name__} ({where})")
    try:
        sequences = [[int(t) for t in np.asarray(seq).reshape(-1)] for seq in sequences]
    except (TypeError, ValueError):
        fail(step, f"each of the sequences should be a list of integer token ids ({where})")
    if not isinstance(scores, np.ndarray):
        fail(step, f"scores should be a numpy array of float64, got {type(scores).__name__} ({where}): "
                   "np.array(scores, dtype=np.float64)")
    if scores.dtype != np.float64:
        fail(step, f"scores should be float64, got {scores.dtype} ({where}): sum log-probabilities in float64 "
                   "(a long sequence loses precision, or underflows, in float32)")
    if scores.shape != (len(sequences),):
        fail(step, f"scores has shape {scores.shape} for {len(sequences)} sequences ({where}): one score per sequence")
    return sequences, scores


def check_beam_search_decode(beam_search_decode, cases=BEAM_CASES) -> None:
    step, count = "beam_search_decode", 0
    for case in cases:
        model = beam_model(case)
        states = model.initial_states()
        before = [np.array(s, copy=True) for s in states]
        given = list(states)
        where = (f"a {case.model} model, vocabulary {case.vocab}, beam_width={case.beam_width}, "
                 f"max_len={case.max_len}")
        result = call(step, beam_search_decode, model, given, case.beam_width, case.max_len, START, END)
        if len(given) != len(before) or any(g is not s for g, s in zip(given, states)):
            fail(step, f"the function changed the list initial_states in place ({where}): build a new list")
        for b, s in zip(before, states):
            expect_unchanged(step, "initial_states", b, s)
        sequences, scores = _beam_result(step, result, case, where)
        if not sequences:
            fail(step, f"no sequence returned ({where})")
        if len(sequences) > case.beam_width:
            fail(step, f"{len(sequences)} sequences returned for beam_width={case.beam_width} ({where}): keep "
                       "the beam_width best of all candidates")
        for seq in sequences:
            if END in seq[:-1]:
                fail(step, f"the sequence {_short(seq)} goes on after END ({where}): a hypothesis that has said END "
                           "is finished and is not extended")
            if not seq or len(seq) > case.max_len or (seq[-1] != END and len(seq) != case.max_len):
                fail(step, f"the sequence {_short(seq)} neither ends with END nor has max_len={case.max_len} tokens "
                           f"({where})")
        if len({tuple(s) for s in sequences}) != len(sequences):
            fail(step, f"a sequence is returned twice ({where}): {_short(sequences, 4)}")
        for seq, score in zip(sequences, scores):
            want = _score_of(model, seq, START)
            if not np.isclose(score, want, rtol=1e-12, atol=1e-12):
                hint = ("the states were not carried with their hypotheses, or reset"
                        if case.model == "recurrent" else "add the log-probability of every token, END included, in float64")
                fail(step, f"the score of {_short(seq)} is {score!r}, but its tokens' log-probabilities sum to "
                           f"{want!r} ({where}): {hint}")
        order = sorted(range(len(sequences)), key=lambda i: (-scores[i], sequences[i]))
        if order != list(range(len(sequences))):
            fail(step, f"the sequences are not sorted best first ({where}): scores {np.round(scores, 4).tolist()}; "
                       "sort by score, highest first, and equal scores by the list of ids")
        if case.model == "trap":
            want_seqs, want_scores = TRAP_ANSWER
        elif case.model == "uniform":
            want_seqs, want_scores = UNIFORM_ANSWER
        elif case.beam_width == 1:
            want_seqs = [_greedy_sequence(model, case.max_len, START, END)]
            want_scores = [_score_of(model, want_seqs[0], START)]
        else:
            all_seqs, all_scores = _brute_force(model, case.max_len, START, END) if case.max_len <= 6 else ([], [])
            if case.beam_width >= len(all_seqs) > 0:   # a beam wide enough for every sequence: brute force
                want_seqs, want_scores = all_seqs, all_scores
            elif all_seqs and case.model == "early_end":
                # END at once is the best sequence, and the first step of any beam keeps it
                want_seqs, want_scores = all_seqs[:1], all_scores[:1]
            else:
                want_seqs = None
        if want_seqs is not None:
            got_seqs = sequences[:len(want_seqs)]
            if got_seqs != [list(w) for w in want_seqs] or len(sequences) < len(want_seqs):
                what = ("greedy decoding (the argmax at every step)" if case.beam_width == 1 else
                        "brute force over every sequence" if len(want_seqs) > 1 and case.model != "trap" else
                        "the best sequence")
                if case.model in ("trap", "uniform"):
                    what = "worked out by hand: keep the beam_width best of all candidates, ties in list order"
                fail(step, f"the sequences are {_short(sequences, 4)}, expected {_short(want_seqs, 4)} ({what}; "
                           f"{where})")
            expect_close(step, f"the scores ({where})", scores[:len(want_seqs)], want_scores, rtol=1e-12, atol=1e-12)
        count += 1
    passed(step, count, "(greedy with beam_width=1, brute force when the beam holds every sequence, scores the "
                        "summed log-probabilities in float64, best first)")


# --- LuongAttention ---------------------------------------------------------------------------
# The layer is driven through calls only (made, called, its weights read and loaded with get_weights and
# set_weights, its `call` run on symbolic inputs), so that the grader can replay the checks from plain data.

LUONG_CASES = (
    AttentionCase(21, 3, 6, 4, 5, 5, lengths=(6, 3, 1)),
    AttentionCase(22, 2, 4, 3, 3, 3, lengths=(2, 4)),     # square: W and its transpose both fit
    AttentionCase(23, 2, 5, 2, 6, 6, lengths=None),
)


def luong_inputs(case: AttentionCase):
    """query (batch, dq), values (batch, Ts, dv), mask (batch, Ts) or None, and W (dq, dv)."""
    rng = np.random.default_rng(case.seed)
    query = rng.normal(size=(case.batch, case.query_dim))
    values = rng.normal(size=(case.batch, case.source_len, case.value_dim))
    mask = None
    if case.lengths is not None:
        mask = np.arange(case.source_len)[None, :] < np.asarray(case.lengths)[:, None]
    W = rng.normal(scale=case.scale / np.sqrt(case.query_dim), size=(case.query_dim, case.value_dim))
    return query, values, mask, W


def _keras_dot_attention(query, values, mask, W):
    """Keras' Attention (Luong's dot score, no scale) on the query projected by W, the values as keys."""
    keras = import_keras()
    q = np.asarray(np.asarray(query, np.float64) @ W, "float32")[:, None, :]
    h = np.asarray(values, "float32")
    with keras.device("cpu:0"):
        layer = keras.layers.Attention(use_scale=False, score_mode="dot")
        out, scores = layer([q, h, h], mask=None if mask is None else [None, np.asarray(mask)],
                            return_attention_scores=True)
    return _floats(out)[:, 0], _floats(scores)[:, 0]


def _mistaken_luong(query, values, mask, W, *, softmax_axis=-1, use_mask="before", transpose=False, scale=1.0,
                    context="weighted"):
    """What one known mistake gives, in float64, to name it in a message (the expected values come from
    Keras' Attention, never from here)."""
    if (softmax_axis, use_mask, transpose, scale, context) == (-1, "before", False, 1.0, "weighted"):
        raise ValueError("_mistaken_luong reproduces mistakes: name at least one")
    q, h = np.asarray(query, np.float64), np.asarray(values, np.float64)
    with np.errstate(all="ignore"):
        if transpose:
            scores = np.einsum("btd,bd->bt", h @ W.T, q) if W.shape[0] == W.shape[1] else np.full(h.shape[:2], np.nan)
        else:
            scores = np.einsum("bd,btd->bt", q @ W, h)
        scores = scores * scale
        valid = np.ones(scores.shape, bool) if mask is None else np.asarray(mask, bool)
        if use_mask == "before":
            scores = np.where(valid, scores, -np.inf)
        shifted = np.exp(scores - scores.max(axis=softmax_axis, keepdims=True))
        weights = shifted / shifted.sum(axis=softmax_axis, keepdims=True)
        if use_mask == "after":
            weights = weights * valid
        ctx = np.einsum("bt,btd->bd", weights, h) if context == "weighted" else h.mean(axis=1)
    return ctx, weights


def _luong_mistakes(query, values, mask, W):
    found = {
        "softmax over the batch axis (axis 0) instead of the source positions": dict(softmax_axis=0),
        f"the scores divided by sqrt({np.shape(values)[-1]}) (the Transformer's scaled dot product; Luong's "
        "score has no scale)": dict(scale=1 / np.sqrt(np.shape(values)[-1])),
        "the context as the plain mean of the values, not weighted by the attention": dict(context="mean"),
    }
    if W.shape[0] == W.shape[1]:
        found["W applied to the values instead of the query (the scores of W transposed)"] = dict(transpose=True)
    if mask is not None and not mask.all():
        found.update({
            "the mask ignored: padded positions get attention": dict(use_mask=None),
            "the mask applied after the softmax without renormalising (the weights no longer sum to 1)":
                dict(use_mask="after"),
        })
    return {k: _mistaken_luong(query, values, mask, W, **options) for k, options in found.items()}


def _luong_layer(step, LuongAttention, case: AttentionCase, W, query, values, mask):
    """The student's layer, called once (which builds W), then given the weights W."""
    made = call(step, LuongAttention, case.value_dim)
    if not callable(getattr(made, "set_weights", None)) or not callable(getattr(made, "get_weights", None)):
        fail(step, f"LuongAttention(units) should make a keras.layers.Layer, got {type(made).__name__}")
    _run_attention(step, made, query, values, mask)
    shapes = [tuple(np.shape(w)) for w in made.get_weights()]
    if shapes != [tuple(np.shape(W))]:
        fail(step, f"after one call the layer's weights have shapes {shapes}, expected one kernel of shape "
                   f"{tuple(np.shape(W))} (query size {case.query_dim} by value size {case.value_dim}): keep "
                   "__init__ as given (one Dense layer W, no bias) and apply W to the query")
    made.set_weights([np.asarray(W, "float32")])
    return made


def check_LuongAttention(LuongAttention, cases=LUONG_CASES) -> None:  # noqa: N802 - the class's name
    step, count = "LuongAttention", 0
    keras = import_keras()
    for case in cases:
        query, values, mask, W = luong_inputs(case)
        where = (f"batch={case.batch}, Ts={case.source_len}, query dim {case.query_dim}, value dim "
                 f"{case.value_dim}, " + ("no mask" if mask is None else f"valid positions per row {list(case.lengths)}"))
        with keras.device("cpu:0"):
            layer = _luong_layer(step, LuongAttention, case, W, query, values, mask)
            context, weights = _run_attention(step, layer, query, values, mask)
        want_context, want_weights = _keras_dot_attention(query, values, mask, W)
        weights = expect_shape(step, f"the attention weights ({where})", weights, want_weights.shape)
        context = expect_shape(step, f"the context ({where})", context, want_context.shape)
        mistakes = lambda: _luong_mistakes(query, values, mask, W)  # noqa: E731
        _expect_finite_weights(step, weights, where)
        if isinstance(mask, np.ndarray):
            leaked = weights[~mask]
            if np.any(leaked != 0.0):
                fail(step, f"masked positions must get exactly 0 weight; the largest is {np.abs(leaked).max():.3g} "
                           f"({where}). Put -1e9 where the mask is False before the softmax")
        sums = weights.sum(axis=-1)
        if not np.allclose(sums, 1.0, atol=1e-5):
            named = [k for k, (_, wrong) in mistakes().items() if np.allclose(weights, wrong, atol=1e-6)]
            fail(step, f"the weights of each row must sum to 1; row sums are {np.round(sums, 4).tolist()} ({where})"
                 + (f": that is what you get with {named[0]}" if named else ". Softmax over the source positions, axis -1"))
        expect_close(step, f"the attention weights ({where})", weights, want_weights,
                     diagnoses=lambda: {k: wr for k, (_, wr) in mistakes().items()}, **KERAS_F32,
                     hint="score_i = (query W) . values_i, then a softmax over i")
        expect_close(step, f"the context ({where})", context, want_context,
                     diagnoses=lambda: {k: c for k, (c, _) in mistakes().items()}, **KERAS_F32,
                     hint="context = sum over i of weights_i * values_i")
        count += 1
    _check_luong_twice_and_symbolic(step, LuongAttention, cases[0])
    passed(step, count + 2, "(weights sum to 1, exactly 0 where masked; equal to keras.layers.Attention's dot score "
                            "on the projected query; the same layer called twice; works on symbolic Keras tensors)")


def _check_luong_twice_and_symbolic(step, LuongAttention, case: AttentionCase) -> None:
    keras = import_keras()
    query, values, mask, W = luong_inputs(case)
    rng = np.random.default_rng(case.seed + 1)
    query2 = rng.normal(size=(case.batch, case.query_dim))
    values2 = rng.normal(size=(case.batch, case.source_len + 2, case.value_dim))
    mask2 = np.arange(case.source_len + 2)[None, :] < rng.integers(1, case.source_len + 3, size=(case.batch, 1))
    with keras.device("cpu:0"):
        layer = _luong_layer(step, LuongAttention, case, W, query, values, mask)
        context, weights = _run_attention(step, layer, query2, values2, mask2)
    want_context, want_weights = _keras_dot_attention(query2, values2, mask2, W)
    where = f"a second call of the same layer on other inputs, Ts={case.source_len + 2}"
    expect_close(step, f"the attention weights ({where})", weights, want_weights, **KERAS_F32,
                 hint="does the layer keep something from its first call? Only the weights carry over")
    expect_close(step, f"the context ({where})", context, want_context, **KERAS_F32)
    # Symbolic tensors, batch size unknown: the layer's call builds a graph of keras.ops (a model can use it).
    context, weights = _run_symbolic(step, layer, case, query, values, mask)
    want_context, want_weights = _keras_dot_attention(query, values, mask, W)
    expect_close(step, "the weights inside a Keras model", weights, want_weights, **KERAS_F32)
    expect_close(step, "the context inside a Keras model", context, want_context, **KERAS_F32)


# --- exposure_bias_rates --------------------------------------------------------------------------
# Hand-made cases, worked out in the comments; the random ones are compared with values stored with the
# release (course/checks/expected/seq2seq_attention.npz).

EXPOSURE_HAND_CASES = (
    # row 0: 4 positions up to END, first mistake at 1 -> on the true path 1 wrong of 2, after it 1 of 2 (6 vs 9; END
    #        right); row 1: all 3 right -> 0 of 3 on the path, nothing after; row 2: wrong at once (1 of 1), then
    #        8 instead of END (1 of 1). On the path 2 of 6, after the first mistake 2 of 3.
    (np.array([[4, 9, 9, END, PAD], [4, 4, END, PAD, PAD], [8, 8, PAD, PAD, PAD]]),
     np.array([[4, 5, 6, END, PAD], [4, 4, END, PAD, PAD], [7, END, PAD, PAD, PAD]]),
     (2 / 6, 2 / 3)),
    # every row right: no mistake, nothing after one -> both rates 0 (not 0/0)
    (np.array([[5, END, PAD], [END, PAD, PAD]]), np.array([[5, END, PAD], [END, PAD, PAD]]), (0.0, 0.0)),
    # one row, END predicted too early: wrong at 2 (END for 6), then PAD for END is wrong too -> 1 of 3, 1 of 1
    (np.array([[4, 5, END, PAD, PAD]]), np.array([[4, 5, 6, END, PAD]]), (1 / 3, 1.0)),
)


def exposure_cases(seed: int, shapes=((6, 8), (1, 5), (40, 12))):
    """Random targets (characters, END, padding) and predictions that go wrong more often after a mistake."""
    rng = np.random.default_rng(seed)
    out = []
    for n, T in shapes:
        target = rng.integers(4, 9, size=(n, T))
        ends = rng.integers(0, T, size=n)
        for r, e in enumerate(ends):
            target[r, e] = END
            target[r, e + 1:] = PAD
        predicted = target.copy()
        for r in range(n):
            wrong = False
            for t in range(T):
                if rng.random() < (0.5 if wrong else 0.12):
                    predicted[r, t] = rng.integers(2, 9)
                    wrong = wrong or predicted[r, t] != target[r, t]
        out.append((predicted, target))
    return tuple(out)


EXPOSURE_CASES = exposure_cases(5)


def _exposure_mistakes(predicted, target):
    """What known mistakes give, to name them (the expected values are worked out by hand or stored)."""
    def rates(include_end=True, count_pad=False, first_in_after=False, first_on_path=True):
        ended = np.cumsum(target == END, axis=1) - (target == END if include_end else 0) > 0
        valid = np.ones(target.shape, bool) if count_pad else ~ended & (target != PAD)
        wrong = (predicted != target) & valid
        before = np.cumsum(wrong, axis=1) - wrong
        on = valid & (before == 0) & (first_on_path | ~wrong)
        after = valid & ((before > 0) | (wrong & first_in_after & (before == 0)))
        return np.array([wrong[on].sum() / max(on.sum(), 1), wrong[after].sum() / max(after.sum(), 1)])

    return {
        "the first wrong character counted among those after it": rates(first_in_after=True),
        "the first wrong character left out of the true path's count": rates(first_on_path=False),
        "padding counted as characters (stop at the target's END)": rates(count_pad=True),
        "END left out (count up to and including the target's END)": rates(include_end=False),
    }


def check_exposure_bias_rates(exposure_bias_rates, cases=None, reference=None) -> None:
    """``cases``: pairs (predicted, target) compared with ``reference.exposure_rates``; None: the visible ones."""
    step, count = "exposure_bias_rates", 0
    reference = reference or ref
    hand = [(p, t, np.array(w)) for p, t, w in EXPOSURE_HAND_CASES] if cases is None else []
    for predicted, target, want in [*hand, *[(p, t, None) for p, t in (EXPOSURE_CASES if cases is None else cases)]]:
        given_p, given_t = predicted.copy(), target.copy()
        got = call(step, exposure_bias_rates, given_p, given_t)
        expect_unchanged(step, "predicted", predicted, given_p)
        expect_unchanged(step, "target", target, given_t)
        where = f"{len(target)} row(s) of {target.shape[1]} positions"
        if got is None:
            fail(step, "returned None: did the function forget to `return` the rates?")
        if not isinstance(got, np.ndarray):
            fail(step, f"should return a numpy array [on the true path, after the first mistake], got "
                       f"{type(got).__name__} ({where}): the next cell does arithmetic on it and plots it")
        if want is None:
            want = np.asarray(reference.exposure_rates(np.asarray(predicted, np.int64), np.asarray(target, np.int64)),
                              np.float64)
        got = expect_shape(step, f"the rates ({where})", got, (2,))
        if not np.all(np.isfinite(got)):
            fail(step, f"the rates are {got.tolist()} ({where}): a rate over no characters is 0.0, not 0/0 "
                       "(a row without a mistake has nothing after one)")
        expect_close(step, f"the rates [on the true path, after the first mistake] ({where})", got, want,
                     rtol=1e-12, atol=1e-12, diagnoses=lambda: _exposure_mistakes(predicted, target),
                     hint="count each row's positions up to and including the target's END: up to and including "
                          "the first wrong one on the true path, the ones after it after the first mistake")
        count += 1
    passed(step, count, "(positions up to the target's END, padding ignored; the first mistake is on the true path; "
                        "0.0 when there is nothing to count)")
