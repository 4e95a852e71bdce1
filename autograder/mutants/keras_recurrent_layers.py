"""Wrong answers for unit 04_keras_recurrent_layers, each one a mistake students make.

Names are reused on purpose: each definition is what a student might have
typed for that function. They run in the notebook's namespace (np and keras
are the notebook's own).
"""
# ruff: noqa: F811
import numpy as np

from . import mutant

keras = None  # provided by the notebook's namespace


# --- recall_task -----------------------------------------------------------------------
@mutant("recall_task", "the key always at position 0", kind="randomness")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=num)
    X = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    X[:, 0] = y + 1
    return X.astype(np.int32), y.astype(np.int32)


@mutant("recall_task", "the key anywhere in the sequence, not in the first half")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=num)
    X = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    X[np.arange(num), rng.integers(0, T, size=num)] = y + 1
    return X.astype(np.int32), y.astype(np.int32)


@mutant("recall_task", "the label is the key token itself (1..num_classes)")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(1, num_classes + 1, size=num)
    X = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    X[np.arange(num), rng.integers(0, max(1, T // 2), size=num)] = y
    return X.astype(np.int32), y.astype(np.int32)


@mutant("recall_task", "distractors drawn from every id, keys included")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=num)
    X = rng.integers(1, num_classes + num_distractors + 1, size=(num, T))
    X[np.arange(num), rng.integers(0, max(1, T // 2), size=num)] = y + 1
    return X.astype(np.int32), y.astype(np.int32)


@mutant("recall_task", "the global np.random instead of the seed", kind="randomness")
def recall_task(num, T, num_classes, num_distractors, seed):
    y = np.random.randint(0, num_classes, size=num)
    X = np.random.randint(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    X[np.arange(num), np.random.randint(0, max(1, T // 2), size=num)] = y + 1
    return X.astype(np.int32), y.astype(np.int32)


@mutant("recall_task", "the last class never drawn (integers' upper bound is exclusive)", kind="randomness")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes - 1, size=num)
    X = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    X[np.arange(num), rng.integers(0, max(1, T // 2), size=num)] = y + 1
    return X.astype(np.int32), y.astype(np.int32)


# --- build_sequence_classifier ---------------------------------------------------------
@mutant("build_sequence_classifier", "return_sequences=True: Dense applied at every step", kind="setting")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             layer_cls(units, return_sequences=True), keras.layers.Dense(num_classes)])


@mutant("build_sequence_classifier", "softmax on the output while the loss expects logits")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             layer_cls(units), keras.layers.Dense(num_classes, activation="softmax")])


@mutant("build_sequence_classifier", "no mask_zero: the padding is read as tokens", kind="setting")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim),
                             layer_cls(units), keras.layers.Dense(num_classes)])


@mutant("build_sequence_classifier", "a Masking layer after the Embedding instead of mask_zero")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim), keras.layers.Masking(0.0),
                             layer_cls(units), keras.layers.Dense(num_classes)])


@mutant("build_sequence_classifier", "always an LSTM, whatever layer_cls says")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             keras.layers.LSTM(units), keras.layers.Dense(num_classes)])


@mutant("build_sequence_classifier", "units and embed_dim swapped")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, units, mask_zero=True),
                             layer_cls(embed_dim), keras.layers.Dense(num_classes)])


# --- pad_right ---------------------------------------------------------------------------
@mutant("pad_right", "padding on the left")
def pad_right(sequences, maxlen=None):
    maxlen = max(len(s) for s in sequences) if maxlen is None else maxlen
    out = np.zeros((len(sequences), maxlen), dtype="int32")
    for i, s in enumerate(sequences):
        s = list(s)[:maxlen]
        if s:
            out[i, maxlen - len(s):] = s
    return out


@mutant("pad_right", "keras.utils.pad_sequences with its defaults (pre-padding, pre-truncation)", kind="delegation")
def pad_right(sequences, maxlen=None):
    return keras.utils.pad_sequences([list(s) for s in sequences], maxlen=maxlen)


@mutant("pad_right", "truncation keeps the last maxlen tokens")
def pad_right(sequences, maxlen=None):
    maxlen = max(len(s) for s in sequences) if maxlen is None else maxlen
    out = np.zeros((len(sequences), maxlen), dtype="int32")
    for i, s in enumerate(sequences):
        s = list(s)[-maxlen:] if len(s) > maxlen else list(s)
        out[i, :len(s)] = s
    return out


@mutant("pad_right", "pads with -1")
def pad_right(sequences, maxlen=None):
    maxlen = max(len(s) for s in sequences) if maxlen is None else maxlen
    out = np.full((len(sequences), maxlen), -1, dtype="int32")
    for i, s in enumerate(sequences):
        s = list(s)[:maxlen]
        out[i, :len(s)] = s
    return out


@mutant("pad_right", "maxlen=None taken as the first sequence's length")
def pad_right(sequences, maxlen=None):
    maxlen = len(sequences[0]) if maxlen is None else maxlen
    out = np.zeros((len(sequences), maxlen), dtype="int32")
    for i, s in enumerate(sequences):
        s = list(s)[:maxlen]
        out[i, :len(s)] = s
    return out


@mutant("pad_right", "pads the caller's lists in place", kind="in-place")
def pad_right(sequences, maxlen=None):
    maxlen = max(len(s) for s in sequences) if maxlen is None else maxlen
    for s in sequences:
        s.extend([0] * (maxlen - len(s)))
    return np.array([list(s)[:maxlen] for s in sequences], dtype="int32")


# --- last_real_outputs ---------------------------------------------------------------------
@mutant("last_real_outputs", "the output at the last position, padding or not")
def last_real_outputs(outputs, padded):
    return outputs[:, -1, :]


@mutant("last_real_outputs", "one step too far (index = length)")
def last_real_outputs(outputs, padded):
    lengths = keras.ops.sum(keras.ops.cast(padded != 0, "int32"), axis=1)
    index = keras.ops.minimum(lengths, keras.ops.shape(outputs)[1] - 1)
    return keras.ops.take_along_axis(outputs, index[:, None, None], axis=1)[:, 0, :]


@mutant("last_real_outputs", "index length - 1 wraps to the last step for a fully padded row")
def last_real_outputs(outputs, padded):
    lengths = np.sum(np.asarray(padded) != 0, axis=1)
    return keras.ops.convert_to_numpy(outputs)[np.arange(len(lengths)), lengths - 1]


@mutant("last_real_outputs", "the length found with argmin (the first 0), wrong for a row without padding")
def last_real_outputs(outputs, padded):
    lengths = keras.ops.argmin(padded, axis=1)
    index = keras.ops.maximum(lengths - 1, 0)
    picked = keras.ops.take_along_axis(outputs, index[:, None, None], axis=1)[:, 0, :]
    return keras.ops.where(lengths[:, None] > 0, picked, 0.0)


# --- build_stacked_lstm ---------------------------------------------------------------------
@mutant("build_stacked_lstm", "every layer reads the input (side by side, not stacked)")
def build_stacked_lstm(input_dim, units, num_layers):
    inputs = keras.Input((None, input_dim))
    for _ in range(num_layers):
        outs = keras.layers.LSTM(units, return_sequences=True, return_state=True)(inputs)
    return keras.Model(inputs, outs)


@mutant("build_stacked_lstm", "returns the first layer's states")
def build_stacked_lstm(input_dim, units, num_layers):
    inputs = keras.Input((None, input_dim))
    x, states = inputs, []
    for _ in range(num_layers):
        x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True)(x)
        states.append((h, c))
    return keras.Model(inputs, [x, *states[0]])


@mutant("build_stacked_lstm", "returns [sequence, c, h]")
def build_stacked_lstm(input_dim, units, num_layers):
    inputs = keras.Input((None, input_dim))
    x = inputs
    for _ in range(num_layers):
        x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True)(x)
    return keras.Model(inputs, [x, c, h])


@mutant("build_stacked_lstm", "always two layers")
def build_stacked_lstm(input_dim, units, num_layers):
    inputs = keras.Input((None, input_dim))
    x = keras.layers.LSTM(units, return_sequences=True)(inputs)
    x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True)(x)
    return keras.Model(inputs, [x, h, c])


@mutant("build_stacked_lstm", "each layer starts from the states of the layer below")
def build_stacked_lstm(input_dim, units, num_layers):
    inputs = keras.Input((None, input_dim))
    x, states = inputs, None
    for _ in range(num_layers):
        x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True)(x, initial_state=states)
        states = [h, c]
    return keras.Model(inputs, [x, h, c])


# --- stream_in_chunks -----------------------------------------------------------------------
@mutant("stream_in_chunks", "the state reset before every chunk", kind="mechanism")
def stream_in_chunks(layer, stream, chunk):
    outs = []
    for start in range(0, stream.shape[1], chunk):
        layer.reset_state()
        outs.append(layer(stream[:, start:start + chunk]))
    return keras.ops.concatenate(outs, axis=1)


@mutant("stream_in_chunks", "never reset: a new stream starts from the old one's state", kind="state")
def stream_in_chunks(layer, stream, chunk):
    outs = [layer(stream[:, start:start + chunk]) for start in range(0, stream.shape[1], chunk)]
    return keras.ops.concatenate(outs, axis=1)


@mutant("stream_in_chunks", "the last, shorter chunk dropped")
def stream_in_chunks(layer, stream, chunk):
    layer.reset_state()
    outs = [layer(stream[:, start:start + chunk]) for start in range(0, stream.shape[1] - chunk + 1, chunk)]
    return keras.ops.concatenate(outs, axis=1)


@mutant("stream_in_chunks", "the whole stream in one call", kind="mechanism")
def stream_in_chunks(layer, stream, chunk):
    layer.reset_state()
    return layer(stream)


@mutant("stream_in_chunks", "chunks joined along the batch axis")
def stream_in_chunks(layer, stream, chunk):
    layer.reset_state()
    outs = [layer(stream[:, start:start + chunk]) for start in range(0, stream.shape[1], chunk)]
    return keras.ops.concatenate(outs, axis=0)


# --- later_token_tags -------------------------------------------------------------------------
@mutant("later_token_tags", "the token k steps earlier")
def later_token_tags(X, k):
    X = np.asarray(X)
    tags = np.zeros_like(X)
    if k < X.shape[1]:
        tags[:, k:] = X[:, :X.shape[1] - k]
    return tags


@mutant("later_token_tags", "np.roll: the first tokens wrap around to the end")
def later_token_tags(X, k):
    return np.roll(np.asarray(X), -k, axis=1)


@mutant("later_token_tags", "off by one: the token k + 1 steps later")
def later_token_tags(X, k):
    X = np.asarray(X)
    tags = np.zeros_like(X)
    if k + 1 < X.shape[1]:
        tags[:, :X.shape[1] - k - 1] = X[:, k + 1:]
    return tags


@mutant("later_token_tags", "tags[:, :-k] = X[:, k:] (breaks for k = 0 and k >= T)")
def later_token_tags(X, k):
    X = np.asarray(X)
    tags = np.zeros_like(X)
    tags[:, :-k] = X[:, k:]
    return tags


@mutant("later_token_tags", "the last k tags copy the last token instead of 0")
def later_token_tags(X, k):
    X = np.asarray(X)
    T = X.shape[1]
    return X[:, np.minimum(np.arange(T) + k, T - 1)]


@mutant("later_token_tags", "shifts X in place and returns it", kind="in-place")
def later_token_tags(X, k):
    T = X.shape[1]
    if k < T:
        X[:, :T - k] = X[:, k:].copy()
    X[:, max(T - k, 0):] = 0
    return X


# --- build_tagger -----------------------------------------------------------------------------
@mutant("build_tagger", "merge_mode='sum' (units features per step, not 2*units)", kind="setting")
def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    rnn = keras.layers.LSTM(units, return_sequences=True)
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             keras.layers.Bidirectional(rnn, merge_mode="sum") if bidirectional else rnn,
                             keras.layers.Dense(num_tags)])


@mutant("build_tagger", "always bidirectional")
def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True)),
                             keras.layers.Dense(num_tags)])


@mutant("build_tagger", "no return_sequences: one tag per sequence", kind="setting")
def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    rnn = keras.layers.LSTM(units)
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             keras.layers.Bidirectional(rnn) if bidirectional else rnn,
                             keras.layers.Dense(num_tags)])


@mutant("build_tagger", "softmax on the output")
def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    rnn = keras.layers.LSTM(units, return_sequences=True)
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             keras.layers.Bidirectional(rnn) if bidirectional else rnn,
                             keras.layers.Dense(num_tags, activation="softmax")])


@mutant("build_tagger", "no mask_zero: the backward LSTM reads the padding first", kind="setting")
def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    rnn = keras.layers.LSTM(units, return_sequences=True)
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim),
                             keras.layers.Bidirectional(rnn) if bidirectional else rnn,
                             keras.layers.Dense(num_tags)])


@mutant("build_tagger", "one-way LSTM reading right to left (go_backwards=True)")
def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    rnn = keras.layers.LSTM(units, return_sequences=True, go_backwards=not bidirectional)
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             keras.layers.Bidirectional(rnn) if bidirectional else rnn,
                             keras.layers.Dense(num_tags)])


# --- kinds of mistakes: independent draws, promised dtypes, inputs changed in place, state and mechanism --
@mutant("recall_task", "the labels and the key positions from two generators made with the same seed",
         kind="randomness")
def recall_task(num, T, num_classes, num_distractors, seed):
    y = np.random.default_rng(seed).integers(0, num_classes, size=num)
    where = np.random.default_rng(seed).integers(0, max(1, T // 2), size=num)
    X = np.random.default_rng(seed + 1).integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    X[np.arange(num), where] = y + 1
    return X.astype(np.int32), y.astype(np.int32)


@mutant("recall_task", "int64 tokens and labels (the docstring asks for int32)", kind="setting")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, size=num)
    X = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    X[np.arange(num), rng.integers(0, max(1, T // 2), size=num)] = y + 1
    return X, y


@mutant("pad_right", "an int64 array (the docstring asks for int32)", kind="setting")
def pad_right(sequences, maxlen=None):
    width = max(len(s) for s in sequences) if maxlen is None else maxlen
    out = np.zeros((len(sequences), width), dtype=int)
    for i, s in enumerate(sequences):
        s = list(s)[:width]
        out[i, :len(s)] = s
    return out


@mutant("last_real_outputs", "the padding steps of the caller's outputs zeroed in place", kind="in-place")
def last_real_outputs(outputs, padded):
    out = outputs if isinstance(outputs, np.ndarray) else keras.ops.convert_to_numpy(outputs)
    real = np.asarray(padded) != 0
    out[~real] = 0.0
    n = real.sum(axis=1)
    return np.where((n > 0)[:, None], out[np.arange(len(n)), np.maximum(n - 1, 0)], 0.0)


@mutant("last_real_outputs", "the mask's sum taken over the batch axis (axis 0)")
def last_real_outputs(outputs, padded):
    real = keras.ops.cast(keras.ops.not_equal(padded, 0), "int32")
    n = keras.ops.sum(real, axis=0)[: keras.ops.shape(padded)[0]]
    index = keras.ops.maximum(n - 1, 0)
    picked = keras.ops.take_along_axis(outputs, index[:, None, None], axis=1)[:, 0, :]
    return keras.ops.where(n[:, None] > 0, picked, keras.ops.zeros_like(picked))


@mutant("later_token_tags", "int64 tags (the docstring asks for int32)", kind="setting")
def later_token_tags(X, k):
    X = np.asarray(X)
    out = np.zeros(X.shape, dtype=np.int64)
    shift = min(k, X.shape[1])
    out[:, :X.shape[1] - shift] = X[:, shift:]
    return out


@mutant("stream_in_chunks", "the layer's states set to zeros by hand only once, at the first call ever", kind="state")
def stream_in_chunks(layer, stream, chunk):
    if not getattr(layer, "_streamed_before", False):
        layer.reset_state()
        layer._streamed_before = True
    outs = [layer(stream[:, start:start + chunk]) for start in range(0, stream.shape[1], chunk)]
    return keras.ops.concatenate(outs, axis=1)


# --- answers built from what the step may not use (course/rules.py) --------------------------------
@mutant("later_token_tags", "keras.ops instead of numpy (the rule: numpy only)", kind="delegation")
def later_token_tags(X, k):
    X = keras.ops.convert_to_tensor(np.asarray(X, dtype=np.int32))
    shift = min(k, X.shape[1])
    padded = keras.ops.pad(X, ((0, 0), (0, shift)))
    return keras.ops.convert_to_numpy(padded[:, shift:shift + X.shape[1]]).astype(np.int32)


@mutant("recall_task", "keras.random with the seed instead of numpy (the rule: numpy only)", kind="delegation")
def recall_task(num, T, num_classes, num_distractors, seed):
    y = keras.ops.convert_to_numpy(keras.random.randint((num,), 0, num_classes, seed=seed))
    X = keras.ops.convert_to_numpy(keras.random.randint((num, T), num_classes + 1, num_classes + num_distractors + 1,
                                                        seed=seed + 1))
    where = keras.ops.convert_to_numpy(keras.random.randint((num,), 0, max(1, T // 2), seed=seed + 2))
    X[np.arange(num), where] = y + 1
    return X.astype(np.int32), y.astype(np.int32)


@mutant("last_real_outputs", "the ops wrapped in a keras.layers.Lambda layer (the rule: no layer)", kind="delegation")
def last_real_outputs(outputs, padded):
    def pick(args):
        values, tokens = args
        n = keras.ops.sum(keras.ops.cast(keras.ops.not_equal(tokens, 0), "int32"), axis=1)
        picked = keras.ops.take_along_axis(values, keras.ops.maximum(n - 1, 0)[:, None, None], axis=1)[:, 0, :]
        return keras.ops.where(n[:, None] > 0, picked, keras.ops.zeros_like(picked))

    return keras.layers.Lambda(pick)([outputs, padded])


@mutant("pad_right", "a list of lists instead of one int32 array", kind="return-type")
def pad_right(sequences, maxlen=None):
    width = max(len(s) for s in sequences) if maxlen is None else maxlen
    return [[int(t) for t in list(s)[:width]] + [0] * (width - min(len(s), width)) for s in sequences]


# --- second red-team round: Keras' defaults, leftover state, edge cases ------------------------
@mutant("build_sequence_classifier", "dropout=0.3 and recurrent_dropout=0.3 on the recurrent layer (not Keras' defaults)",
        kind="training-mode")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    token_ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True)(token_ids)
    x = layer_cls(units, dropout=0.3, recurrent_dropout=0.3)(x)
    return keras.Model(token_ids, keras.layers.Dense(num_classes)(x))


@mutant("build_sequence_classifier", "an extra Dropout(0.5) layer before Dense", kind="training-mode")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             layer_cls(units), keras.layers.Dropout(0.5), keras.layers.Dense(num_classes)])


@mutant("build_sequence_classifier", "all-zero initializers on the recurrent layer", kind="setting")
def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    token_ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True)(token_ids)
    x = layer_cls(units, kernel_initializer="zeros", recurrent_initializer="zeros")(x)
    return keras.Model(token_ids, keras.layers.Dense(num_classes)(x))


@mutant("pad_right", "`maxlen or longest`: maxlen=0 taken as None")
def pad_right(sequences, maxlen=None):
    width = maxlen or max(len(s) for s in sequences)
    out = np.zeros((len(sequences), width), dtype=np.int32)
    for i, s in enumerate(sequences):
        s = list(s)[:width]
        out[i, :len(s)] = s
    return out


@mutant("build_stacked_lstm", "Dropout(0.2) between the layers", kind="training-mode")
def build_stacked_lstm(input_dim, units, num_layers):
    inp = keras.Input(shape=(None, input_dim))
    x = inp
    for i in range(num_layers):
        if i:
            x = keras.layers.Dropout(0.2)(x)
        x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True)(x)
    return keras.Model(inp, [x, h, c])


@mutant("build_stacked_lstm", "recurrent_dropout=0.25 in every layer", kind="training-mode")
def build_stacked_lstm(input_dim, units, num_layers):
    inp = keras.Input(shape=(None, input_dim))
    x = inp
    for _ in range(num_layers):
        x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True, recurrent_dropout=0.25)(x)
    return keras.Model(inp, [x, h, c])


@mutant("build_stacked_lstm", "unit_forget_bias=False (not Keras' default)", kind="setting")
def build_stacked_lstm(input_dim, units, num_layers):
    inp = keras.Input(shape=(None, input_dim))
    x = inp
    for _ in range(num_layers):
        x, h, c = keras.layers.LSTM(units, return_sequences=True, return_state=True, unit_forget_bias=False)(x)
    return keras.Model(inp, [x, h, c])


@mutant("stream_in_chunks", "reset_state() after the stream instead of before", kind="state")
def stream_in_chunks(layer, stream, chunk):
    T = stream.shape[1]
    outs = [layer(stream[:, i:i + chunk]) for i in range(0, T, chunk)]
    layer.reset_state()
    return keras.ops.concatenate(outs, axis=1)


@mutant("later_token_tags", "later[:, :T - k] = X[:, k:] (raises for T < k < 2T)")
def later_token_tags(X, k):
    X = np.asarray(X)
    T = X.shape[1]
    later = np.zeros(X.shape, dtype=np.int32)
    later[:, :T - k] = X[:, k:]
    return later


@mutant("later_token_tags", "np.zeros_like(X): the tags take X's dtype (int64 for an int64 X)", kind="setting")
def later_token_tags(X, k):
    later = np.zeros_like(X)
    T = X.shape[1]
    if k < T:
        later[:, :T - k] = X[:, k:]
    return later


@mutant("build_tagger", "recurrent_dropout=0.2 in the LSTM", kind="training-mode")
def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True)(ids)
    lstm = keras.layers.LSTM(units, return_sequences=True, recurrent_dropout=0.2)
    x = (keras.layers.Bidirectional(lstm) if bidirectional else lstm)(x)
    return keras.Model(ids, keras.layers.Dense(num_tags)(x))


@mutant("build_tagger", "a Dropout(0.3) on the embeddings", kind="training-mode")
def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True)(ids)
    x = keras.layers.Dropout(0.3)(x)
    lstm = keras.layers.LSTM(units, return_sequences=True)
    x = (keras.layers.Bidirectional(lstm) if bidirectional else lstm)(x)
    return keras.Model(ids, keras.layers.Dense(num_tags)(x))


@mutant("recall_task", "labels dealt out evenly (a shuffled arange % num_classes), not drawn", kind="randomness")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num) % num_classes)
    tokens = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    key_at = rng.integers(0, max(1, T // 2), size=num)
    tokens[np.arange(num), key_at] = labels + 1
    return tokens.astype(np.int32), labels.astype(np.int32)


@mutant("recall_task", "key positions dealt out evenly (a shuffled arange % half), not drawn", kind="randomness")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    half = max(1, T // 2)
    labels = rng.integers(0, num_classes, size=num)
    tokens = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    key_at = rng.permutation(np.arange(num) % half)
    tokens[np.arange(num), key_at] = labels + 1
    return tokens.astype(np.int32), labels.astype(np.int32)


@mutant("recall_task", "the key's position from the label and the row index, not drawn", kind="randomness")
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    half = max(1, T // 2)
    labels = rng.integers(0, num_classes, size=num)
    tokens = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    key_at = (labels + np.arange(num)) % half
    tokens[np.arange(num), key_at] = labels + 1
    return tokens.astype(np.int32), labels.astype(np.int32)
