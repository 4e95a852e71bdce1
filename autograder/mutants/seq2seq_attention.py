"""Wrong answers for unit 05_seq2seq_attention, each one a mistake students make.

Names are reused on purpose: each definition is what a student might have
typed for that function or class. They run in the notebook's namespace (np,
keras, ops, the token ids, greedy_decode, the trained `plain` model and
X_train are the notebook's own).
"""
# ruff: noqa: F811
import numpy as np

from course.env import import_keras

from . import mutant

keras = import_keras()   # the classes below subclass keras.layers.Layer, as the notebook's does
ops = keras.ops
greedy_decode = plain = X_train = None  # provided by the notebook's namespace
PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")


# --- build_vocab ---------------------------------------------------------------------------
@mutant("build_vocab", "no special tokens")
def build_vocab(texts):
    return sorted(set("".join(texts)))


@mutant("build_vocab", "characters in order of first appearance")
def build_vocab(texts):
    return list(SPECIALS) + list(dict.fromkeys("".join(texts)))


@mutant("build_vocab", "special tokens after the characters")
def build_vocab(texts):
    return sorted(set("".join(texts))) + list(SPECIALS)


@mutant("build_vocab", "every occurrence kept")
def build_vocab(texts):
    return list(SPECIALS) + sorted("".join(texts))


@mutant("build_vocab", "words instead of characters")
def build_vocab(texts):
    return list(SPECIALS) + sorted({word for text in texts for word in text.split()})


# --- vectorize -----------------------------------------------------------------------------
@mutant("vectorize", "padding on the left")
def vectorize(texts, vocab, maxlen, add_start_end=False):
    index = {tok: i for i, tok in enumerate(vocab)}
    out = np.full((len(texts), maxlen), PAD, dtype=np.int32)
    for r, text in enumerate(texts):
        room = maxlen - 2 if add_start_end else maxlen
        seq = [index.get(c, UNK) for c in text[:room]]
        if add_start_end:
            seq = [START] + seq + [END]
        if seq:
            out[r, -len(seq):] = seq
    return out


@mutant("vectorize", "no END token")
def vectorize(texts, vocab, maxlen, add_start_end=False):
    index = {tok: i for i, tok in enumerate(vocab)}
    out = np.full((len(texts), maxlen), PAD, dtype=np.int32)
    for r, text in enumerate(texts):
        seq = ([START] if add_start_end else []) + [index.get(c, UNK) for c in text]
        seq = seq[:maxlen]
        out[r, :len(seq)] = seq
    return out


@mutant("vectorize", "START added on the source side too (add_start_end ignored)", kind="setting")
def vectorize(texts, vocab, maxlen, add_start_end=False):
    index = {tok: i for i, tok in enumerate(vocab)}
    out = np.full((len(texts), maxlen), PAD, dtype=np.int32)
    for r, text in enumerate(texts):
        seq = [START] + [index.get(c, UNK) for c in text]
        if add_start_end:
            seq = seq[:maxlen - 1] + [END]
        seq = seq[:maxlen]
        out[r, :len(seq)] = seq
    return out


@mutant("vectorize", "truncation cuts the END token")
def vectorize(texts, vocab, maxlen, add_start_end=False):
    index = {tok: i for i, tok in enumerate(vocab)}
    out = np.full((len(texts), maxlen), PAD, dtype=np.int32)
    for r, text in enumerate(texts):
        seq = [index.get(c, UNK) for c in text]
        if add_start_end:
            seq = [START] + seq + [END]
        seq = seq[:maxlen]
        out[r, :len(seq)] = seq
    return out


@mutant("vectorize", "unknown characters mapped to PAD")
def vectorize(texts, vocab, maxlen, add_start_end=False):
    index = {tok: i for i, tok in enumerate(vocab)}
    out = np.full((len(texts), maxlen), PAD, dtype=np.int32)
    for r, text in enumerate(texts):
        room = maxlen - 2 if add_start_end else maxlen
        seq = [index.get(c, PAD) for c in text[:room]]
        if add_start_end:
            seq = [START] + seq + [END]
        out[r, :len(seq)] = seq
    return out


@mutant("vectorize", "a float array (np.zeros' default dtype)", kind="return-type")
def vectorize(texts, vocab, maxlen, add_start_end=False):
    index = {tok: i for i, tok in enumerate(vocab)}
    out = np.zeros((len(texts), maxlen))
    for r, text in enumerate(texts):
        room = maxlen - 2 if add_start_end else maxlen
        seq = [index.get(c, UNK) for c in text[:room]]
        if add_start_end:
            seq = [START] + seq + [END]
        out[r, :len(seq)] = seq
    return out


# --- decode_ids ----------------------------------------------------------------------------
@mutant("decode_ids", "no stop at END")
def decode_ids(ids, vocab):
    return ["".join(vocab[i] for i in row if i >= len(SPECIALS)) for row in np.asarray(ids)]


@mutant("decode_ids", "special tokens written out")
def decode_ids(ids, vocab):
    texts = []
    for row in np.asarray(ids):
        row = list(row)
        stop = row.index(END) if END in row else len(row)
        texts.append("".join(vocab[i] for i in row[:stop] if i != PAD))
    return texts


@mutant("decode_ids", "stops at the first PAD instead of END")
def decode_ids(ids, vocab):
    texts = []
    for row in np.asarray(ids):
        row = list(row)
        stop = row.index(PAD) if PAD in row else len(row)
        texts.append("".join(vocab[i] for i in row[:stop] if i >= len(SPECIALS)))
    return texts


@mutant("decode_ids", "assumes every row starts with START (skips position 0)")
def decode_ids(ids, vocab):
    texts = []
    for row in np.asarray(ids):
        row = list(row)
        stop = row.index(END) if END in row else len(row)
        texts.append("".join(vocab[i] for i in row[1:stop] if i >= len(SPECIALS)))
    return texts


@mutant("decode_ids", "one string for the whole batch", kind="return-type")
def decode_ids(ids, vocab):
    chars = []
    for row in np.asarray(ids):
        for i in row:
            if i == END:
                break
            if i >= len(SPECIALS):
                chars.append(vocab[i])
    return "".join(chars)


# --- teacher_forcing_pairs -----------------------------------------------------------------
@mutant("teacher_forcing_pairs", "not shifted: the input equals the target")
def teacher_forcing_pairs(target_ids):
    return target_ids[:, :-1], target_ids[:, :-1]


@mutant("teacher_forcing_pairs", "shifted the wrong way")
def teacher_forcing_pairs(target_ids):
    return target_ids[:, 1:], target_ids[:, :-1]


@mutant("teacher_forcing_pairs", "END dropped from the target")
def teacher_forcing_pairs(target_ids):
    return target_ids[:, :-2], target_ids[:, 1:-1]


@mutant("teacher_forcing_pairs", "the decoder fed its own predictions (greedy output of the model)")
def teacher_forcing_pairs(target_ids):
    n, T = target_ids.shape
    guesses, _ = greedy_decode(plain, X_train[:n], T - 2)
    decoder_input = np.concatenate([np.full((n, 1), START), guesses], axis=1).astype(np.int32)
    return decoder_input, target_ids[:, 1:]


@mutant("teacher_forcing_pairs", "END replaced by PAD in the target")
def teacher_forcing_pairs(target_ids):
    target = target_ids[:, 1:].copy()
    target[target == END] = PAD
    return target_ids[:, :-1], target


# --- teacher_forced_decode -----------------------------------------------------------------
@mutant("teacher_forced_decode", "the decoder fed its own predictions (free running)", kind="mechanism")
def teacher_forced_decode(model, source_ids, decoder_input):
    encoder_outputs, mask, states = model.encode(source_ids)
    tokens, outputs = decoder_input[:, 0], []
    for t in range(decoder_input.shape[1]):
        logits, states, _ = model.decode_step(tokens, states, encoder_outputs, mask)
        outputs.append(logits)
        tokens = ops.argmax(logits, axis=-1)
    return ops.stack(outputs, axis=1)


@mutant("teacher_forced_decode", "states not carried (the encoder's states at every step)", kind="state")
def teacher_forced_decode(model, source_ids, decoder_input):
    encoder_outputs, mask, states = model.encode(source_ids)
    outputs = []
    for t in range(decoder_input.shape[1]):
        logits, _, _ = model.decode_step(decoder_input[:, t], states, encoder_outputs, mask)
        outputs.append(logits)
    return ops.stack(outputs, axis=1)


@mutant("teacher_forced_decode", "time-major logits (stacked on axis 0)", kind="return-type")
def teacher_forced_decode(model, source_ids, decoder_input):
    encoder_outputs, mask, states = model.encode(source_ids)
    outputs = []
    for t in range(decoder_input.shape[1]):
        logits, states, _ = model.decode_step(decoder_input[:, t], states, encoder_outputs, mask)
        outputs.append(logits)
    return ops.stack(outputs, axis=0)


@mutant("teacher_forced_decode", "np.stack instead of ops.stack (fails inside a model)", kind="return-type")
def teacher_forced_decode(model, source_ids, decoder_input):
    encoder_outputs, mask, states = model.encode(source_ids)
    outputs = []
    for t in range(decoder_input.shape[1]):
        logits, states, _ = model.decode_step(decoder_input[:, t], states, encoder_outputs, mask)
        outputs.append(logits)
    return np.stack(outputs, axis=1)


@mutant("teacher_forced_decode", "one step short (range(T - 1))")
def teacher_forced_decode(model, source_ids, decoder_input):
    encoder_outputs, mask, states = model.encode(source_ids)
    outputs = []
    for t in range(decoder_input.shape[1] - 1):
        logits, states, _ = model.decode_step(decoder_input[:, t], states, encoder_outputs, mask)
        outputs.append(logits)
    return ops.stack(outputs, axis=1)


# --- greedy_decode -------------------------------------------------------------------------
@mutant("greedy_decode", "states reset every step", kind="state")
def greedy_decode(model, source_ids, max_len):
    encoder_outputs, mask, states = model.encode(source_ids)
    batch = source_ids.shape[0]
    tokens = np.full((batch, max_len), PAD, dtype=np.int32)
    weights = np.zeros((batch, max_len, source_ids.shape[1]), dtype=np.float32)
    previous, finished = np.full(batch, START), np.zeros(batch, bool)
    for t in range(max_len):
        logits, _, w = model.decode_step(previous, states, encoder_outputs, mask)
        previous = np.argmax(ops.convert_to_numpy(logits), axis=-1)
        tokens[:, t] = np.where(finished, PAD, previous)
        weights[~finished, t] = ops.convert_to_numpy(w)[~finished]
        finished |= previous == END
    return tokens, weights


@mutant("greedy_decode", "feeds START at every step instead of its prediction")
def greedy_decode(model, source_ids, max_len):
    encoder_outputs, mask, states = model.encode(source_ids)
    batch = source_ids.shape[0]
    tokens = np.full((batch, max_len), PAD, dtype=np.int32)
    weights = np.zeros((batch, max_len, source_ids.shape[1]), dtype=np.float32)
    finished = np.zeros(batch, bool)
    for t in range(max_len):
        logits, states, w = model.decode_step(np.full(batch, START), states, encoder_outputs, mask)
        best = np.argmax(ops.convert_to_numpy(logits), axis=-1)
        tokens[:, t] = np.where(finished, PAD, best)
        weights[~finished, t] = ops.convert_to_numpy(w)[~finished]
        finished |= best == END
    return tokens, weights


@mutant("greedy_decode", "does not stop at END")
def greedy_decode(model, source_ids, max_len):
    encoder_outputs, mask, states = model.encode(source_ids)
    previous, tokens, weights = np.full(source_ids.shape[0], START), [], []
    for t in range(max_len):
        logits, states, w = model.decode_step(previous, states, encoder_outputs, mask)
        previous = np.argmax(ops.convert_to_numpy(logits), axis=-1)
        tokens.append(previous)
        weights.append(ops.convert_to_numpy(w))
    return np.stack(tokens, axis=1), np.stack(weights, axis=1)


@mutant("greedy_decode", "argmax over the batch axis")
def greedy_decode(model, source_ids, max_len):
    encoder_outputs, mask, states = model.encode(source_ids)
    batch = source_ids.shape[0]
    tokens = np.full((batch, max_len), PAD, dtype=np.int32)
    weights = np.zeros((batch, max_len, source_ids.shape[1]), dtype=np.float32)
    previous, finished = np.full(batch, START), np.zeros(batch, bool)
    for t in range(max_len):
        logits, states, w = model.decode_step(previous, states, encoder_outputs, mask)
        previous = np.argmax(ops.convert_to_numpy(logits), axis=0)
        tokens[:, t] = np.where(finished, PAD, previous)
        weights[~finished, t] = ops.convert_to_numpy(w)[~finished]
        finished |= previous == END
    return tokens, weights


@mutant("greedy_decode", "attention weights kept after END")
def greedy_decode(model, source_ids, max_len):
    encoder_outputs, mask, states = model.encode(source_ids)
    batch = source_ids.shape[0]
    tokens = np.full((batch, max_len), PAD, dtype=np.int32)
    weights = np.zeros((batch, max_len, source_ids.shape[1]), dtype=np.float32)
    previous, finished = np.full(batch, START), np.zeros(batch, bool)
    for t in range(max_len):
        logits, states, w = model.decode_step(previous, states, encoder_outputs, mask)
        previous = np.argmax(ops.convert_to_numpy(logits), axis=-1)
        tokens[:, t] = np.where(finished, PAD, previous)
        weights[:, t] = ops.convert_to_numpy(w)
        finished |= previous == END
    return tokens, weights


# --- BahdanauAttention ---------------------------------------------------------------------
# Each wrong class is defined inside a function of its own: inspect.getsource finds a class
# by its qualified name, and eight module-level classes of one name would all read as the first.

def _softmax_over_the_batch():
    @mutant("BahdanauAttention", "softmax over the batch axis")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            scores = ops.squeeze(self.v(ops.tanh(ops.expand_dims(self.W1(query), 1) + self.W2(values))), -1)
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=0)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_softmax_over_the_batch()


def _mask_ignored():
    @mutant("BahdanauAttention", "mask ignored", kind="mechanism")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            scores = ops.squeeze(self.v(ops.tanh(ops.expand_dims(self.W1(query), 1) + self.W2(values))), -1)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_mask_ignored()


def _mask_after_softmax():
    @mutant("BahdanauAttention", "mask applied after the softmax, not renormalised")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            scores = ops.squeeze(self.v(ops.tanh(ops.expand_dims(self.W1(query), 1) + self.W2(values))), -1)
            weights = ops.softmax(scores, axis=-1)
            if mask is not None:
                weights = weights * ops.cast(mask, weights.dtype)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_mask_after_softmax()


def _scores_times_mask():
    @mutant("BahdanauAttention", "scores multiplied by the mask")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            scores = ops.squeeze(self.v(ops.tanh(ops.expand_dims(self.W1(query), 1) + self.W2(values))), -1)
            if mask is not None:
                scores = scores * ops.cast(mask, scores.dtype)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_scores_times_mask()


def _no_tanh():
    @mutant("BahdanauAttention", "tanh missing")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            scores = ops.squeeze(self.v(ops.expand_dims(self.W1(query), 1) + self.W2(values)), -1)
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_no_tanh()


def _w1_w2_swapped():
    @mutant("BahdanauAttention", "W1 and W2 swapped (query through W2, values through W1)")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            scores = ops.squeeze(self.v(ops.tanh(ops.expand_dims(self.W2(query), 1) + self.W1(values))), -1)
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_w1_w2_swapped()


def _unweighted_context():
    @mutant("BahdanauAttention", "context = the plain mean of the values")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            scores = ops.squeeze(self.v(ops.tanh(ops.expand_dims(self.W1(query), 1) + self.W2(values))), -1)
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=-1)
            return ops.mean(values, axis=1), weights


_unweighted_context()


def _numpy_inside_call():
    @mutant("BahdanauAttention", "numpy inside call (works eagerly, fails in a model)", kind="return-type")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            q = np.asarray(self.W1(query))[:, None, :]
            scores = np.asarray(self.v(np.tanh(q + np.asarray(self.W2(values)))))[..., 0]
            if mask is not None:
                scores = np.where(np.asarray(mask), scores, -1e9)
            weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
            weights = weights / weights.sum(axis=-1, keepdims=True)
            return (weights[..., None] * np.asarray(values)).sum(axis=1), weights


_numpy_inside_call()


# --- kinds of mistakes: inputs changed in place, state kept across calls ---------------------------
@mutant("build_vocab", "the caller's list of texts sorted in place", kind="in-place")
def build_vocab(texts):
    texts.sort()
    return list(SPECIALS) + sorted(set("".join(texts)))


@mutant("decode_ids", "END and everything after it overwritten with PAD in the caller's array", kind="in-place")
def decode_ids(ids, vocab):
    ids = np.asarray(ids)
    for row in ids:
        ends = np.flatnonzero(row == END)
        if ends.size:
            row[ends[0]:] = PAD
    return ["".join(vocab[i] for i in row if i >= len(SPECIALS)) for row in ids]


def _query_kept_from_the_first_call():
    @mutant("BahdanauAttention", "the projected query kept from the first call (state across calls)", kind="state")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")
            self.projected_query = None

        def call(self, query, values, mask=None):
            if self.projected_query is None or self.projected_query.shape[0] != query.shape[0]:
                self.projected_query = self.W1(query)
            scores = ops.squeeze(self.v(ops.tanh(ops.expand_dims(self.projected_query, 1) + self.W2(values))), -1)
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_query_kept_from_the_first_call()


# --- answers built from what the step may not use (course/rules.py) --------------------------------
@mutant("vectorize", "keras.layers.StringLookup instead of numpy (the rule: numpy only)", kind="delegation")
def vectorize(texts, vocab, maxlen, add_start_end=False):
    lookup = keras.layers.StringLookup(vocabulary=list(vocab[len(SPECIALS):]), num_oov_indices=1, mask_token=None)
    ids = np.full((len(texts), maxlen), PAD, dtype=np.int32)
    for row, text in enumerate(texts):
        room = maxlen - 2 if add_start_end else maxlen
        body = [int(i) + UNK for i in ops.convert_to_numpy(lookup(list(text[:room])))] if text[:room] else []
        body = [START, *body, END] if add_start_end else body
        ids[row, :len(body)] = body
    return ids


def _ready_made_attention():
    @mutant("BahdanauAttention", "keras.layers.AdditiveAttention on the projections (a ready-made layer)",
            kind="delegation")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")
            self.additive = keras.layers.AdditiveAttention(use_scale=True)

        def call(self, query, values, mask=None):
            # AdditiveAttention scores sum(scale * tanh(q + k)): with q = W1 s, k = W2 h + b and scale = v,
            # that is Bahdanau's v^T tanh(W1 s + W2 h + b)
            if not self.additive.built:
                self.additive.build([(None, 1, self.units), (None, None, values.shape[-1]), (None, None, self.units)])
            self.additive.scale.assign(ops.reshape(self.v.kernel, (-1,)))
            context, weights = self.additive([ops.expand_dims(self.W1(query), 1), values, self.W2(values)],
                                             mask=None if mask is None else [None, mask],
                                             return_attention_scores=True)
            return context[:, 0], weights[:, 0]


_ready_made_attention()


@mutant("build_vocab", "keras.layers.StringLookup adapted to the characters (the rule: numpy only)", kind="delegation")
def build_vocab(texts):
    lookup = keras.layers.StringLookup(num_oov_indices=0, mask_token=None)
    lookup.adapt([c for text in texts for c in text] or [""])
    return list(SPECIALS) + sorted(c for c in lookup.get_vocabulary() if c)


@mutant("decode_ids", "keras.layers.StringLookup(invert=True) (the rule: numpy only)", kind="delegation")
def decode_ids(ids, vocab):
    to_text = keras.layers.StringLookup(vocabulary=list(vocab[len(SPECIALS):]), invert=True, num_oov_indices=1,
                                        mask_token=None, oov_token="")
    texts = []
    for row in np.asarray(ids):
        ends = np.flatnonzero(row == END)
        row = row[:ends[0]] if ends.size else row
        kept = [int(i) - len(SPECIALS) + 1 for i in row if i >= len(SPECIALS)]
        texts.append("".join(c.decode() if isinstance(c, bytes) else str(c)
                             for c in ops.convert_to_numpy(to_text(kept))) if kept else "")
    return texts


@mutant("teacher_forcing_pairs", "keras.ops slices instead of numpy (the rule: numpy only)", kind="delegation")
def teacher_forcing_pairs(target_ids):
    ids = ops.convert_to_tensor(target_ids)
    return ops.convert_to_numpy(ids[:, :-1]), ops.convert_to_numpy(ids[:, 1:])


# --- beam_search_decode ------------------------------------------------------------------------
# The notebook's answer, with one thing changed in each: the loop below is shared in spirit, written out in full
# so that each mutant is a complete answer a student could have typed.

@mutant("beam_search_decode", "candidates sorted worst first (ascending scores)")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(0.0, [], False)], [np.asarray(s) for s in initial_states], np.array([start_id])
    for _ in range(max_len):
        live = [i for i, b in enumerate(beam) if not b[2]]
        if not live:
            break
        log_probs, new_states = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = [(s, t, True, None) for s, t, done in beam if done]
        for row, i in enumerate(live):
            for token in range(log_probs.shape[1]):
                candidates.append((beam[i][0] + log_probs[row, token], beam[i][1] + [token], token == end_id, row))
        candidates.sort(key=lambda c: (c[0], c[1]))
        kept = candidates[:beam_width]
        beam = [(s, t, d) for s, t, d, _ in kept]
        states = [np.asarray(s)[[r for _, _, d, r in kept if not d]] for s in new_states]
        last = np.array([t[-1] for _, t, d, _ in kept if not d], np.int64)
    return [t for _, t, _ in beam], np.array([s for s, _, _ in beam], np.float64)


@mutant("beam_search_decode", "each hypothesis keeps its own best continuation (top-k per beam, not of all)",
        kind="mechanism")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(0.0, [], False)], [np.asarray(s) for s in initial_states], np.array([start_id])
    for step_index in range(max_len):
        live = [i for i, b in enumerate(beam) if not b[2]]
        if not live:
            break
        log_probs, new_states = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = [(s, t, True, None) for s, t, done in beam if done]
        for row, i in enumerate(live):
            per_beam = beam_width if step_index == 0 else 1      # the first step fills the beam, then one each
            for token in np.argsort(-log_probs[row], kind="stable")[:per_beam]:
                token = int(token)
                candidates.append((beam[i][0] + log_probs[row, token], beam[i][1] + [token], token == end_id, row))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        kept = candidates[:beam_width]
        beam = [(s, t, d) for s, t, d, _ in kept]
        states = [np.asarray(s)[[r for _, _, d, r in kept if not d]] for s in new_states]
        last = np.array([t[-1] for _, t, d, _ in kept if not d], np.int64)
    return [t for _, t, _ in beam], np.array([s for s, _, _ in beam], np.float64)


@mutant("beam_search_decode", "probabilities multiplied in float32 (underflow on long sequences)", kind="precision")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(np.float32(1.0), [], False)], [np.asarray(s) for s in initial_states], np.array([start_id])
    for _ in range(max_len):
        live = [i for i, b in enumerate(beam) if not b[2]]
        if not live:
            break
        log_probs, new_states = step_fn(last, states)
        probs = np.exp(np.asarray(log_probs)).astype(np.float32)
        candidates = [(p, t, True, None) for p, t, done in beam if done]
        for row, i in enumerate(live):
            for token in range(probs.shape[1]):
                candidates.append((beam[i][0] * probs[row, token], beam[i][1] + [token], token == end_id, row))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        kept = candidates[:beam_width]
        beam = [(p, t, d) for p, t, d, _ in kept]
        states = [np.asarray(s)[[r for _, _, d, r in kept if not d]] for s in new_states]
        last = np.array([t[-1] for _, t, d, _ in kept if not d], np.int64)
    with np.errstate(divide="ignore"):
        return [t for _, t, _ in beam], np.log(np.array([p for p, _, _ in beam], np.float32)).astype(np.float64)


@mutant("beam_search_decode", "finished hypotheses dropped instead of kept as candidates")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(0.0, [])], [np.asarray(s) for s in initial_states], np.array([start_id])
    for step_index in range(max_len):
        log_probs, new_states = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = []
        for row, (score, tokens) in enumerate(beam):
            for token in range(log_probs.shape[1]):
                if token != end_id or step_index == max_len - 1:
                    candidates.append((score + log_probs[row, token], tokens + [token], row))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        kept = candidates[:beam_width]
        beam = [(s, t) for s, t, _ in kept]
        states = [np.asarray(s)[[r for _, _, r in kept]] for s in new_states]
        last = np.array([t[-1] for _, t, _ in kept], np.int64)
    return [t for _, t in beam], np.array([s for s, _ in beam], np.float64)


@mutant("beam_search_decode", "finished hypotheses extended past END")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(0.0, [])], [np.asarray(s) for s in initial_states], np.array([start_id])
    for _ in range(max_len):
        log_probs, new_states = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = []
        for row, (score, tokens) in enumerate(beam):
            for token in range(log_probs.shape[1]):
                candidates.append((score + log_probs[row, token], tokens + [token], row))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        kept = candidates[:beam_width]
        beam = [(s, t) for s, t, _ in kept]
        states = [np.asarray(s)[[r for _, _, r in kept]] for s in new_states]
        last = np.array([t[-1] for _, t, _ in kept], np.int64)
    return [t for _, t in beam], np.array([s for s, _ in beam], np.float64)


@mutant("beam_search_decode", "the initial states given to every step (the states are not carried)", kind="state")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, last = [(0.0, [], False)], np.array([start_id])
    for _ in range(max_len):
        live = [i for i, b in enumerate(beam) if not b[2]]
        if not live:
            break
        states = [np.repeat(np.asarray(s), len(live), axis=0) for s in initial_states]
        log_probs, _ = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = [(s, t, True, None) for s, t, done in beam if done]
        for row, i in enumerate(live):
            for token in range(log_probs.shape[1]):
                candidates.append((beam[i][0] + log_probs[row, token], beam[i][1] + [token], token == end_id, row))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        kept = candidates[:beam_width]
        beam = [(s, t, d) for s, t, d, _ in kept]
        last = np.array([t[-1] for _, t, d, _ in kept if not d], np.int64)
    return [t for _, t, _ in beam], np.array([s for s, _, _ in beam], np.float64)


@mutant("beam_search_decode", "scores divided by the length (a normalisation the text does not ask for)",
        kind="setting")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(0.0, [], False)], [np.asarray(s) for s in initial_states], np.array([start_id])
    for _ in range(max_len):
        live = [i for i, b in enumerate(beam) if not b[2]]
        if not live:
            break
        log_probs, new_states = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = [(s, t, True, None) for s, t, done in beam if done]
        for row, i in enumerate(live):
            for token in range(log_probs.shape[1]):
                candidates.append((beam[i][0] + log_probs[row, token], beam[i][1] + [token], token == end_id, row))
        candidates.sort(key=lambda c: (-c[0] / len(c[1]), c[1]))
        kept = candidates[:beam_width]
        beam = [(s, t, d) for s, t, d, _ in kept]
        states = [np.asarray(s)[[r for _, _, d, r in kept if not d]] for s in new_states]
        last = np.array([t[-1] for _, t, d, _ in kept if not d], np.int64)
    return [t for _, t, _ in beam], np.array([s / len(t) for s, t, _ in beam], np.float64)


@mutant("beam_search_decode", "the caller's list of initial states reused and overwritten", kind="in-place")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(0.0, [], False)], initial_states, np.array([start_id])
    for _ in range(max_len):
        live = [i for i, b in enumerate(beam) if not b[2]]
        if not live:
            break
        log_probs, new_states = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = [(s, t, True, None) for s, t, done in beam if done]
        for row, i in enumerate(live):
            for token in range(log_probs.shape[1]):
                candidates.append((beam[i][0] + log_probs[row, token], beam[i][1] + [token], token == end_id, row))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        kept = candidates[:beam_width]
        beam = [(s, t, d) for s, t, d, _ in kept]
        parents = [r for _, _, d, r in kept if not d]
        for j, s in enumerate(new_states):
            states[j] = np.asarray(s)[parents]
        last = np.array([t[-1] for _, t, d, _ in kept if not d], np.int64)
    return [t for _, t, _ in beam], np.array([s for s, _, _ in beam], np.float64)


@mutant("beam_search_decode", "the scores returned as a Python list", kind="return-type")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(0.0, [], False)], [np.asarray(s) for s in initial_states], np.array([start_id])
    for _ in range(max_len):
        live = [i for i, b in enumerate(beam) if not b[2]]
        if not live:
            break
        log_probs, new_states = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = [(s, t, True, None) for s, t, done in beam if done]
        for row, i in enumerate(live):
            for token in range(log_probs.shape[1]):
                candidates.append((beam[i][0] + log_probs[row, token], beam[i][1] + [token], token == end_id, row))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        kept = candidates[:beam_width]
        beam = [(s, t, d) for s, t, d, _ in kept]
        states = [np.asarray(s)[[r for _, _, d, r in kept if not d]] for s in new_states]
        last = np.array([t[-1] for _, t, d, _ in kept if not d], np.int64)
    return [t for _, t, _ in beam], [float(s) for s, _, _ in beam]


@mutant("beam_search_decode", "keras.ops.top_k picks the beam (the rule: numpy only)", kind="delegation")
def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=1, end_id=2):
    beam, states, last = [(0.0, [], False)], [np.asarray(s) for s in initial_states], np.array([start_id])
    for _ in range(max_len):
        live = [i for i, b in enumerate(beam) if not b[2]]
        if not live:
            break
        log_probs, new_states = step_fn(last, states)
        log_probs = np.asarray(log_probs, np.float64)
        candidates = [(s, t, True, None) for s, t, done in beam if done]
        for row, i in enumerate(live):
            for token in range(log_probs.shape[1]):
                candidates.append((beam[i][0] + log_probs[row, token], beam[i][1] + [token], token == end_id, row))
        candidates.sort(key=lambda c: c[1])
        _, best = ops.top_k(np.array([c[0] for c in candidates]), k=min(beam_width, len(candidates)))
        kept = [candidates[int(j)] for j in ops.convert_to_numpy(best)]
        beam = [(s, t, d) for s, t, d, _ in kept]
        states = [np.asarray(s)[[r for _, _, d, r in kept if not d]] for s in new_states]
        last = np.array([t[-1] for _, t, d, _ in kept if not d], np.int64)
    return [t for _, t, _ in beam], np.array([s for s, _, _ in beam], np.float64)


# --- LuongAttention ------------------------------------------------------------------------------

def _luong_mask_ignored():
    @mutant("LuongAttention", "mask ignored", kind="mechanism")
    class LuongAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W = keras.layers.Dense(units, use_bias=False, name="W")

        def call(self, query, values, mask=None):
            scores = ops.sum(ops.expand_dims(self.W(query), 1) * values, axis=-1)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_luong_mask_ignored()


def _luong_softmax_over_the_batch():
    @mutant("LuongAttention", "softmax over the batch axis")
    class LuongAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W = keras.layers.Dense(units, use_bias=False, name="W")

        def call(self, query, values, mask=None):
            scores = ops.sum(ops.expand_dims(self.W(query), 1) * values, axis=-1)
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=0)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_luong_softmax_over_the_batch()


def _luong_w_on_the_values():
    @mutant("LuongAttention", "W applied to the values instead of the query (the scores transposed)")
    class LuongAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W = keras.layers.Dense(units, use_bias=False, name="W")

        def call(self, query, values, mask=None):
            scores = ops.sum(ops.expand_dims(query, 1) * self.W(values), axis=-1)
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_luong_w_on_the_values()


def _luong_scaled():
    @mutant("LuongAttention", "scores divided by sqrt(d) (the Transformer's scale, not Luong's)", kind="setting")
    class LuongAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W = keras.layers.Dense(units, use_bias=False, name="W")

        def call(self, query, values, mask=None):
            scores = ops.sum(ops.expand_dims(self.W(query), 1) * values, axis=-1)
            scores = scores / np.sqrt(values.shape[-1])
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_luong_scaled()


def _luong_mask_after_softmax():
    @mutant("LuongAttention", "mask applied after the softmax, not renormalised")
    class LuongAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W = keras.layers.Dense(units, use_bias=False, name="W")

        def call(self, query, values, mask=None):
            scores = ops.sum(ops.expand_dims(self.W(query), 1) * values, axis=-1)
            weights = ops.softmax(scores, axis=-1)
            if mask is not None:
                weights = weights * ops.cast(mask, weights.dtype)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_luong_mask_after_softmax()


def _luong_numpy_inside_call():
    @mutant("LuongAttention", "numpy inside call (works eagerly, fails on symbolic tensors)", kind="return-type")
    class LuongAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W = keras.layers.Dense(units, use_bias=False, name="W")

        def call(self, query, values, mask=None):
            scores = np.einsum("bd,btd->bt", np.asarray(self.W(query)), np.asarray(values))
            if mask is not None:
                scores = np.where(np.asarray(mask), scores, -1e9)
            weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
            weights = weights / weights.sum(axis=-1, keepdims=True)
            return (weights[..., None] * np.asarray(values)).sum(axis=1), weights


_luong_numpy_inside_call()


def _luong_keras_attention():
    @mutant("LuongAttention", "keras.layers.Attention on the projected query (a ready-made layer)", kind="delegation")
    class LuongAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W = keras.layers.Dense(units, use_bias=False, name="W")
            self.dot = keras.layers.Attention(use_scale=False, score_mode="dot")

        def call(self, query, values, mask=None):
            context, weights = self.dot([ops.expand_dims(self.W(query), 1), values, values],
                                        mask=None if mask is None else [None, mask], return_attention_scores=True)
            return context[:, 0], weights[:, 0]


_luong_keras_attention()


# --- exposure_bias_rates ---------------------------------------------------------------------------

@mutant("exposure_bias_rates", "the first wrong character counted among those after it")
def exposure_bias_rates(predicted, target):
    on = wrong_on = after = wrong_after = 0
    for guess, truth in zip(np.asarray(predicted), np.asarray(target)):
        derailed = False
        for g, t in zip(guess, truth):
            if t == PAD:
                break
            if derailed:
                after, wrong_after = after + 1, wrong_after + int(g != t)
            else:
                on, wrong_on = on + 1, wrong_on + int(g != t)
                if g != t:
                    derailed = True
                    after, wrong_after = after + 1, wrong_after + 1
            if t == END:
                break
    return np.array([wrong_on / on if on else 0.0, wrong_after / after if after else 0.0])


@mutant("exposure_bias_rates", "off by one: the first wrong character left out of the true path")
def exposure_bias_rates(predicted, target):
    on = wrong_on = after = wrong_after = 0
    for guess, truth in zip(np.asarray(predicted), np.asarray(target)):
        derailed = False
        for g, t in zip(guess, truth):
            if t == PAD:
                break
            if derailed:
                after, wrong_after = after + 1, wrong_after + int(g != t)
            elif g != t:
                derailed = True
            else:
                on += 1
            if t == END:
                break
    return np.array([wrong_on / on if on else 0.0, wrong_after / after if after else 0.0])


@mutant("exposure_bias_rates", "padding counted as characters")
def exposure_bias_rates(predicted, target):
    predicted, target = np.asarray(predicted), np.asarray(target)
    wrong = predicted != target
    earlier = np.cumsum(wrong, axis=1) - wrong
    on, off = earlier == 0, earlier > 0
    return np.array([wrong[on].mean() if on.any() else 0.0, wrong[off].mean() if off.any() else 0.0])


@mutant("exposure_bias_rates", "END left out of the counted positions", kind="setting")
def exposure_bias_rates(predicted, target):
    predicted, target = np.asarray(predicted), np.asarray(target)
    valid = (np.cumsum(target == END, axis=1) == 0) & (target != PAD)
    wrong = (predicted != target) & valid
    earlier = np.cumsum(wrong, axis=1) - wrong
    on, off = valid & (earlier == 0), valid & (earlier > 0)
    return np.array([wrong[on].sum() / max(on.sum(), 1), wrong[off].sum() / max(off.sum(), 1)])


@mutant("exposure_bias_rates", "rates per row, then averaged: a row without a mistake divides 0 by 0 (nan)",
        kind="stability")
def exposure_bias_rates(predicted, target):
    predicted, target = np.asarray(predicted), np.asarray(target)
    valid = (np.cumsum(target == END, axis=1) - (target == END) == 0) & (target != PAD)
    wrong = (predicted != target) & valid
    earlier = np.cumsum(wrong, axis=1) - wrong
    on, off = valid & (earlier == 0), valid & (earlier > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.array([np.mean((wrong & on).sum(1) / on.sum(1)), np.mean((wrong & off).sum(1) / off.sum(1))])


@mutant("exposure_bias_rates", "a Python list returned instead of an array", kind="return-type")
def exposure_bias_rates(predicted, target):
    predicted, target = np.asarray(predicted), np.asarray(target)
    valid = (np.cumsum(target == END, axis=1) - (target == END) == 0) & (target != PAD)
    wrong = (predicted != target) & valid
    earlier = np.cumsum(wrong, axis=1) - wrong
    on, off = valid & (earlier == 0), valid & (earlier > 0)
    return [float(wrong[on].sum() / max(on.sum(), 1)), float(wrong[off].sum() / max(off.sum(), 1))]


@mutant("exposure_bias_rates", "the predictions after the target's END overwritten with PAD in place",
        kind="in-place")
def exposure_bias_rates(predicted, target):
    target = np.asarray(target)
    valid = (np.cumsum(target == END, axis=1) - (target == END) == 0) & (target != PAD)
    predicted[~valid] = PAD
    wrong = predicted != target
    earlier = np.cumsum(wrong, axis=1) - wrong
    on, off = valid & (earlier == 0), valid & (earlier > 0)
    return np.array([wrong[on].sum() / max(on.sum(), 1), wrong[off].sum() / max(off.sum(), 1)])


@mutant("exposure_bias_rates", "keras.ops for the counts (the rule: numpy only)", kind="delegation")
def exposure_bias_rates(predicted, target):
    target = np.asarray(target)
    valid = (np.cumsum(target == END, axis=1) - (target == END) == 0) & (target != PAD)
    wrong = ops.convert_to_numpy(ops.logical_and(ops.not_equal(predicted, target), valid))
    earlier = np.cumsum(wrong, axis=1) - wrong
    on, off = valid & (earlier == 0), valid & (earlier > 0)
    return np.array([wrong[on].sum() / max(on.sum(), 1), wrong[off].sum() / max(off.sum(), 1)])


# --- softmax without subtracting the max (red-team survivors) --------------------------------------

def _luong_unstable_softmax():
    @mutant("LuongAttention", "hand-written softmax exp(s) / sum exp(s) without subtracting the max "
            "(nan once a score passes about 88)", kind="stability")
    class LuongAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W = keras.layers.Dense(units, use_bias=False, name="W")

        def call(self, query, values, mask=None):
            projected = ops.expand_dims(self.W(query), axis=1)
            scores = ops.sum(projected * values, axis=-1)
            e = ops.exp(scores)
            if mask is not None:
                e = e * ops.cast(mask, e.dtype)
            weights = e / ops.sum(e, axis=-1, keepdims=True)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_luong_unstable_softmax()


def _bahdanau_unstable_softmax():
    @mutant("BahdanauAttention", "hand-written softmax exp(s) / sum exp(s) without subtracting the max "
            "(nan once a score passes about 88)", kind="stability")
    class BahdanauAttention(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
            self.W2 = keras.layers.Dense(units, name="W2")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")

        def call(self, query, values, mask=None):
            scores = ops.squeeze(self.v(ops.tanh(ops.expand_dims(self.W1(query), 1) + self.W2(values))), -1)
            e = ops.exp(scores)
            if mask is not None:
                e = e * ops.cast(mask, e.dtype)
            weights = e / ops.sum(e, axis=-1, keepdims=True)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights


_bahdanau_unstable_softmax()
