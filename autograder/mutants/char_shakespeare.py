"""Wrong answers for unit 06_char_shakespeare, each one a mistake students make.

Names are reused on purpose: each definition is what a student might have
typed for that function. They run in the notebook's namespace (np, keras,
ops, initial_states, char_step and sample_next are the notebook's own).
"""
# ruff: noqa: F811
import numpy as np

from . import mutant

keras = ops = initial_states = char_step = sample_next = stateful_copy = None  # the notebook's namespace


# --- build_vocab ------------------------------------------------------------------
@mutant("build_vocab", "set order instead of sorted")
def build_vocab(text):
    chars = list(set(text))
    return chars, {c: i for i, c in enumerate(chars)}


@mutant("build_vocab", "order of first appearance in the text")
def build_vocab(text):
    chars = list(dict.fromkeys(text))
    return chars, {c: i for i, c in enumerate(chars)}


@mutant("build_vocab", "sorted(text): every occurrence, duplicates kept")
def build_vocab(text):
    chars = sorted(text)
    return chars, {c: i for i, c in enumerate(chars)}


@mutant("build_vocab", "ids start at 1 (0 reserved for padding that this model does not use)")
def build_vocab(text):
    chars = sorted(set(text))
    return chars, {c: i + 1 for i, c in enumerate(chars)}


@mutant("build_vocab", "chars sorted, but char_to_id numbered in set order")
def build_vocab(text):
    return sorted(set(text)), {c: i for i, c in enumerate(set(text))}


# --- encode -----------------------------------------------------------------------
@mutant("encode", "ord(c): Unicode code points")
def encode(text, char_to_id):
    return np.array([ord(c) for c in text], dtype=np.int32)


@mutant("encode", "ids shifted by one")
def encode(text, char_to_id):
    return np.array([char_to_id[c] + 1 for c in text], dtype=np.int32)


@mutant("encode", "newlines dropped")
def encode(text, char_to_id):
    return np.array([char_to_id[c] for c in text.replace("\n", "")], dtype=np.int32)


@mutant("encode", "ids from the text's own characters, not char_to_id")
def encode(text, char_to_id):
    return np.unique(list(text), return_inverse=True)[1].astype(np.int32)


@mutant("encode", "float ids", kind="return-type")
def encode(text, char_to_id):
    return np.array([char_to_id[c] for c in text], dtype=np.float32)


# --- decode -----------------------------------------------------------------------
@mutant("decode", "joined with spaces")
def decode(ids, chars):
    return " ".join(chars[i] for i in ids)


@mutant("decode", "returns the list of characters", kind="return-type")
def decode(ids, chars):
    return [chars[i] for i in ids]


@mutant("decode", "chr(id)")
def decode(ids, chars):
    return "".join(chr(i) for i in ids)


@mutant("decode", "off by one (chars[id - 1])")
def decode(ids, chars):
    return "".join(chars[i - 1] for i in ids)


# --- make_windows -----------------------------------------------------------------
@mutant("make_windows", "targets not shifted")
def make_windows(ids, seq_len, stride=None):
    stride = stride or seq_len
    starts = range(0, len(ids) - seq_len, stride)
    inputs = np.stack([ids[s:s + seq_len] for s in starts])
    return inputs, inputs.copy()


@mutant("make_windows", "shifted the wrong way (inputs one id later than the targets)")
def make_windows(ids, seq_len, stride=None):
    stride = stride or seq_len
    starts = range(0, len(ids) - seq_len, stride)
    return (np.stack([ids[s + 1:s + seq_len + 1] for s in starts]),
            np.stack([ids[s:s + seq_len] for s in starts]))


@mutant("make_windows", "the last window runs past the end")
def make_windows(ids, seq_len, stride=None):
    stride = stride or seq_len
    starts = range(0, len(ids) - seq_len + 1, stride)
    inputs = np.stack([ids[s:s + seq_len] for s in starts])
    targets = np.stack([np.resize(ids[s + 1:s + seq_len + 1], seq_len) for s in starts])
    return inputs, targets


@mutant("make_windows", "one window too few")
def make_windows(ids, seq_len, stride=None):
    stride = stride or seq_len
    starts = range(0, len(ids) - seq_len - 1, stride)
    return (np.array([ids[s:s + seq_len] for s in starts]).reshape(-1, seq_len),
            np.array([ids[s + 1:s + seq_len + 1] for s in starts]).reshape(-1, seq_len))


@mutant("make_windows", "overlapping windows (stride 1) when the default stride is seq_len")
def make_windows(ids, seq_len, stride=1):
    starts = range(0, len(ids) - seq_len, stride)
    return (np.stack([ids[s:s + seq_len] for s in starts]),
            np.stack([ids[s + 1:s + seq_len + 1] for s in starts]))


@mutant("make_windows", "windows of seq_len + 1 (inputs and targets not split)")
def make_windows(ids, seq_len, stride=None):
    stride = stride or seq_len
    starts = range(0, len(ids) - seq_len, stride)
    windows = np.stack([ids[s:s + seq_len + 1] for s in starts])
    return windows, windows


# --- batches ----------------------------------------------------------------------
@mutant("batches", "not shuffled", kind="randomness")
def batches(inputs, targets, batch_size, rng):
    for k in range(len(inputs) // batch_size):
        yield inputs[k * batch_size:(k + 1) * batch_size], targets[k * batch_size:(k + 1) * batch_size]


@mutant("batches", "inputs and targets shuffled separately")
def batches(inputs, targets, batch_size, rng):
    x_order, y_order = rng.permutation(len(inputs)), rng.permutation(len(targets))
    for k in range(len(inputs) // batch_size):
        part = slice(k * batch_size, (k + 1) * batch_size)
        yield inputs[x_order[part]], targets[y_order[part]]


@mutant("batches", "a random start, then batches of neighbouring windows in a shuffled order", kind="randomness")
def batches(inputs, targets, batch_size, rng):
    order = np.roll(np.arange(len(inputs)), -int(rng.integers(len(inputs))))
    for k in rng.permutation(len(inputs) // batch_size):
        rows = order[k * batch_size:(k + 1) * batch_size]
        yield inputs[rows], targets[rows]


@mutant("batches", "the last, smaller batch kept")
def batches(inputs, targets, batch_size, rng):
    order = rng.permutation(len(inputs))
    for start in range(0, len(inputs), batch_size):
        rows = order[start:start + batch_size]
        yield inputs[rows], targets[rows]


@mutant("batches", "windows drawn with replacement", kind="randomness")
def batches(inputs, targets, batch_size, rng):
    for _ in range(len(inputs) // batch_size):
        rows = rng.integers(0, len(inputs), size=batch_size)
        yield inputs[rows], targets[rows]


@mutant("batches", "np.random instead of the rng given", kind="randomness")
def batches(inputs, targets, batch_size, rng):
    order = np.random.permutation(len(inputs))
    for k in range(len(inputs) // batch_size):
        rows = order[k * batch_size:(k + 1) * batch_size]
        yield inputs[rows], targets[rows]


@mutant("batches", "shuffles the caller's arrays in place", kind="in-place")
def batches(inputs, targets, batch_size, rng):
    order = rng.permutation(len(inputs))
    inputs[:], targets[:] = inputs[order], targets[order]
    for k in range(len(inputs) // batch_size):
        yield inputs[k * batch_size:(k + 1) * batch_size], targets[k * batch_size:(k + 1) * batch_size]


# --- build_char_model -------------------------------------------------------------
@mutant("build_char_model", "softmax on the Dense layer (probabilities, not logits)")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    kind = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
    return keras.Sequential([keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)]
                            + [kind(units, return_sequences=True, dropout=dropout) for _ in range(layers)]
                            + [keras.layers.Dense(vocab_size, activation="softmax")])


@mutant("build_char_model", "return_sequences=False on the last recurrent layer", kind="setting")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    kind = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
    model = keras.Sequential([keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)])
    for k in range(layers):
        model.add(kind(units, return_sequences=k < layers - 1, dropout=dropout))
    model.add(keras.layers.Dense(vocab_size))
    return model


@mutant("build_char_model", "always one recurrent layer")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    kind = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
    return keras.Sequential([keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim),
                             kind(units, return_sequences=True, dropout=dropout), keras.layers.Dense(vocab_size)])


@mutant("build_char_model", "always an LSTM, whatever the cell")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    return keras.Sequential([keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)]
                            + [keras.layers.LSTM(units, return_sequences=True, dropout=dropout) for _ in range(layers)]
                            + [keras.layers.Dense(vocab_size)])


@mutant("build_char_model", "Embedding(vocab_size + 1), a padding row nobody uses")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    kind = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
    return keras.Sequential([keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size + 1, embedding_dim)]
                            + [kind(units, return_sequences=True, dropout=dropout) for _ in range(layers)]
                            + [keras.layers.Dense(vocab_size)])


@mutant("build_char_model", "dropout ignored", kind="setting")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    kind = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
    return keras.Sequential([keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)]
                            + [kind(units, return_sequences=True) for _ in range(layers)]
                            + [keras.layers.Dense(vocab_size)])


@mutant("build_char_model", "a functional model (model.layers starts with the InputLayer)", kind="return-type")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    kind = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
    ids = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(vocab_size, embedding_dim)(ids)
    for _ in range(layers):
        x = kind(units, return_sequences=True, dropout=dropout)(x)
    return keras.Model(ids, keras.layers.Dense(vocab_size)(x))


# --- sequence_loss ----------------------------------------------------------------
@mutant("sequence_loss", "softmax over the time axis")
def sequence_loss(targets, logits):
    log_probs = ops.log_softmax(ops.convert_to_tensor(logits), axis=1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(ops.cast(targets, "int32"), -1), axis=-1)
    return -ops.mean(picked)


@mutant("sequence_loss", "no log-sum-exp shift (exp overflows)", kind="stability")
def sequence_loss(targets, logits):
    logits = ops.convert_to_tensor(logits)
    picked = ops.take_along_axis(logits, ops.expand_dims(ops.cast(targets, "int32"), -1), axis=-1)
    return ops.mean(ops.log(ops.sum(ops.exp(logits), axis=-1)) - ops.squeeze(picked, -1))


@mutant("sequence_loss", "sum instead of mean")
def sequence_loss(targets, logits):
    logits = ops.convert_to_tensor(logits)
    picked = ops.take_along_axis(logits, ops.expand_dims(ops.cast(targets, "int32"), -1), axis=-1)
    return ops.sum(ops.logsumexp(logits, axis=-1) - ops.squeeze(picked, -1))


@mutant("sequence_loss", "mean over time only (one loss per sequence)")
def sequence_loss(targets, logits):
    logits = ops.convert_to_tensor(logits)
    picked = ops.take_along_axis(logits, ops.expand_dims(ops.cast(targets, "int32"), -1), axis=-1)
    return ops.mean(ops.logsumexp(logits, axis=-1) - ops.squeeze(picked, -1), axis=1)


@mutant("sequence_loss", "targets shifted once more")
def sequence_loss(targets, logits):
    logits = ops.convert_to_tensor(logits)[:, :-1]
    picked = ops.take_along_axis(logits, ops.expand_dims(ops.cast(targets, "int32")[:, 1:], -1), axis=-1)
    return ops.mean(ops.logsumexp(logits, axis=-1) - ops.squeeze(picked, -1))


@mutant("sequence_loss", "the sign flipped")
def sequence_loss(targets, logits):
    logits = ops.convert_to_tensor(logits)
    picked = ops.take_along_axis(logits, ops.expand_dims(ops.cast(targets, "int32"), -1), axis=-1)
    return ops.mean(ops.squeeze(picked, -1) - ops.logsumexp(logits, axis=-1))


# --- perplexity -------------------------------------------------------------------
@mutant("perplexity", "2 ** loss")
def perplexity(loss):
    return 2.0 ** np.asarray(loss)


@mutant("perplexity", "exp(-loss)")
def perplexity(loss):
    return np.exp(-np.asarray(loss))


@mutant("perplexity", "the loss itself")
def perplexity(loss):
    return loss


@mutant("perplexity", "exp(loss / ln 2)")
def perplexity(loss):
    return np.exp(np.asarray(loss) / np.log(2))


@mutant("perplexity", "math.exp: fails on an array", kind="return-type")
def perplexity(loss):
    import math

    return math.exp(loss)


# --- bits_per_char ----------------------------------------------------------------
@mutant("bits_per_char", "loss * ln 2")
def bits_per_char(loss):
    return np.asarray(loss) * np.log(2)


@mutant("bits_per_char", "log2(loss)")
def bits_per_char(loss):
    return np.log2(loss)


@mutant("bits_per_char", "loss / ln 10")
def bits_per_char(loss):
    return np.asarray(loss) / np.log(10)


@mutant("bits_per_char", "the loss itself (nats)")
def bits_per_char(loss):
    return loss


# --- sample_next ------------------------------------------------------------------
@mutant("sample_next", "logits multiplied by the temperature", kind="randomness")
def sample_next(logits, temperature, rng):
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    z = logits * temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])


@mutant("sample_next", "temperature ignored (except 0)", kind="randomness")
def sample_next(logits, temperature, rng):
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])


@mutant("sample_next", "softmax over the batch axis")
def sample_next(logits, temperature, rng):
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    z = logits / temperature
    p = np.exp(z - z.max(axis=0, keepdims=True))
    p /= p.sum(axis=0, keepdims=True)
    cumulative = np.cumsum(p, axis=-1)
    return np.minimum((cumulative < rng.random((len(p), 1))).sum(axis=-1), p.shape[-1] - 1)


@mutant("sample_next", "temperature 0 not handled (divides by zero)")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, np.float64) / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])


@mutant("sample_next", "no max subtracted (overflow at small temperatures)", kind="stability")
def sample_next(logits, temperature, rng):
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    p = np.exp(logits / temperature)
    p /= p.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(p, axis=-1)
    return np.minimum((cumulative < rng.random((len(p), 1))).sum(axis=-1), p.shape[-1] - 1)


@mutant("sample_next", "always the argmax")
def sample_next(logits, temperature, rng):
    return np.argmax(np.asarray(logits), axis=-1)


@mutant("sample_next", "divides the caller's logits in place", kind="in-place")
def sample_next(logits, temperature, rng):
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    logits /= temperature
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])


# --- char_step --------------------------------------------------------------------
@mutant("char_step", "the states not carried (the old states returned)", kind="state")
def char_step(model, ids_t, states):
    embedding, *recurrent, dense = model.layers
    x = embedding(ids_t)
    for layer, layer_states in zip(recurrent, states):
        x, _ = layer.cell(x, layer_states)
    return dense(x), states


@mutant("char_step", "Dense applied to the LSTM's cell state c instead of h")
def char_step(model, ids_t, states):
    embedding, *recurrent, dense = model.layers
    x = embedding(ids_t)
    new_states = []
    for layer, layer_states in zip(recurrent, states):
        _, layer_states = layer.cell(x, layer_states)
        x = layer_states[-1]
        new_states.append(layer_states)
    return dense(x), new_states


@mutant("char_step", "probabilities (softmax) instead of logits")
def char_step(model, ids_t, states):
    embedding, *recurrent, dense = model.layers
    x = embedding(ids_t)
    new_states = []
    for layer, layer_states in zip(recurrent, states):
        x, layer_states = layer.cell(x, layer_states)
        new_states.append(layer_states)
    return ops.softmax(dense(x)), new_states


@mutant("char_step", "only the first recurrent layer used")
def char_step(model, ids_t, states):
    embedding, *recurrent, dense = model.layers
    x, first = recurrent[0].cell(embedding(ids_t), states[0])
    return dense(x), [first] + list(states[1:])


@mutant("char_step", "every layer reads the embedding (layers not chained)")
def char_step(model, ids_t, states):
    embedding, *recurrent, dense = model.layers
    e = embedding(ids_t)
    new_states = []
    for layer, layer_states in zip(recurrent, states):
        x, layer_states = layer.cell(e, layer_states)
        new_states.append(layer_states)
    return dense(x), new_states


@mutant("char_step", "the states of the layers stored in reverse order")
def char_step(model, ids_t, states):
    embedding, *recurrent, dense = model.layers
    x = embedding(ids_t)
    new_states = []
    for layer, layer_states in zip(recurrent, states):
        x, layer_states = layer.cell(x, layer_states)
        new_states.insert(0, layer_states)
    return dense(x), new_states


# --- generate ---------------------------------------------------------------------
@mutant("generate", "the states reset at every step", kind="state")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    token, new_ids = prefix_ids[-1], []
    for _ in range(n):
        logits, _ = char_step(model, np.array([token]), initial_states(model, 1))
        token = int(sample_next(ops.convert_to_numpy(logits), temperature, rng)[0])
        new_ids.append(token)
    return np.array(new_ids)


@mutant("generate", "the prefix not fed (only its last character, from zero states)")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    logits, states = char_step(model, np.array([prefix_ids[-1]]), initial_states(model, 1))
    new_ids = []
    for _ in range(n):
        token = int(sample_next(ops.convert_to_numpy(logits), temperature, rng)[0])
        new_ids.append(token)
        logits, states = char_step(model, np.array([token]), states)
    return np.array(new_ids)


@mutant("generate", "the last prefix character fed twice")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    states = initial_states(model, 1)
    for token in list(prefix_ids) + [prefix_ids[-1]]:
        logits, states = char_step(model, np.array([token]), states)
    new_ids = []
    for _ in range(n):
        token = int(sample_next(ops.convert_to_numpy(logits), temperature, rng)[0])
        new_ids.append(token)
        logits, states = char_step(model, np.array([token]), states)
    return np.array(new_ids)


@mutant("generate", "the last prefix character skipped")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    states = initial_states(model, 1)
    logits = None
    for token in prefix_ids[:-1]:
        logits, states = char_step(model, np.array([token]), states)
    if logits is None:
        logits, states = char_step(model, np.array([prefix_ids[-1]]), states)
    new_ids = []
    for _ in range(n):
        token = int(sample_next(ops.convert_to_numpy(logits), temperature, rng)[0])
        new_ids.append(token)
        logits, states = char_step(model, np.array([token]), states)
    return np.array(new_ids)


@mutant("generate", "the drawn character not fed back (the last prefix character again)")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    states = initial_states(model, 1)
    for token in prefix_ids:
        logits, states = char_step(model, np.array([token]), states)
    new_ids = []
    for _ in range(n):
        new_ids.append(int(sample_next(ops.convert_to_numpy(logits), temperature, rng)[0]))
        logits, states = char_step(model, np.array([prefix_ids[-1]]), states)
    return np.array(new_ids)


@mutant("generate", "the temperature not passed on (always 1)", kind="setting")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    states = initial_states(model, 1)
    for token in prefix_ids:
        logits, states = char_step(model, np.array([token]), states)
    new_ids = []
    for _ in range(n):
        token = int(sample_next(ops.convert_to_numpy(logits), 1.0, rng)[0])
        new_ids.append(token)
        logits, states = char_step(model, np.array([token]), states)
    return np.array(new_ids)


# --- kinds of mistakes: inputs changed in place, randomness, extreme inputs, state, mode, mechanism ---
@mutant("decode", "the caller's list of ids emptied with pop", kind="in-place")
def decode(ids, chars):
    ids = ids if isinstance(ids, list) else list(ids)
    text = ""
    while ids:
        text += chars[ids.pop(0)]
    return text


@mutant("decode", "the characters of a numpy str_ array, not one str", kind="return-type")
def decode(ids, chars):
    return np.array(chars)[np.asarray(ids, dtype=int)]


@mutant("batches", "a random rotation of the windows (not every order possible)", kind="randomness")
def batches(inputs, targets, batch_size, rng):
    order = np.roll(np.arange(len(inputs)), int(rng.integers(len(inputs))))
    for k in range(len(inputs) // batch_size):
        rows = order[k * batch_size:(k + 1) * batch_size]
        yield inputs[rows], targets[rows]


@mutant("batches", "the windows reversed (a fixed order, not a shuffle)", kind="randomness")
def batches(inputs, targets, batch_size, rng):
    order = np.arange(len(inputs))[::-1]
    for k in range(len(inputs) // batch_size):
        rows = order[k * batch_size:(k + 1) * batch_size]
        yield inputs[rows], targets[rows]


@mutant("batches", "a new generator seeded from the same number every epoch (epochs repeat)", kind="randomness")
def batches(inputs, targets, batch_size, rng):
    order = np.random.default_rng(1234).permutation(len(inputs))
    for k in range(len(inputs) // batch_size):
        rows = order[k * batch_size:(k + 1) * batch_size]
        yield inputs[rows], targets[rows]


@mutant("batches", "a biased shuffle (each window swapped with any position, naive Fisher-Yates)", kind="randomness")
def batches(inputs, targets, batch_size, rng):
    order = np.arange(len(inputs))
    for i in range(len(order)):
        j = int(rng.integers(len(order)))
        order[i], order[j] = order[j], order[i]
    for k in range(len(inputs) // batch_size):
        rows = order[k * batch_size:(k + 1) * batch_size]
        yield inputs[rows], targets[rows]


@mutant("perplexity", "computed in float32 (overflows where float64 does not)", kind="precision")
def perplexity(loss):
    return np.exp(np.asarray(loss, dtype=np.float32))


@mutant("perplexity", "the caller's array overwritten (np.exp(loss, out=loss))", kind="in-place")
def perplexity(loss):
    if isinstance(loss, np.ndarray):
        return np.exp(loss, out=loss)
    return np.exp(loss)


@mutant("bits_per_char", "the caller's array divided in place", kind="in-place")
def bits_per_char(loss):
    if isinstance(loss, np.ndarray):
        loss /= np.log(2)
        return loss
    return loss / np.log(2)


@mutant("bits_per_char", "log2(e) rounded to 1.44")
def bits_per_char(loss):
    return np.asarray(loss) * 1.44


@mutant("sample_next", "one uniform number for the whole batch (rows not independent)", kind="randomness")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return z.argmax(axis=-1)
    z = z / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cumulative = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
    u = rng.random()
    return np.minimum((cumulative < u).sum(axis=-1), z.shape[-1] - 1)


@mutant("sample_next", "no max subtracted at temperature 1 (large logits overflow)", kind="stability")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return z.argmax(axis=-1)
    if temperature < 0.1:
        z = z / temperature
        z = z - z.max(axis=-1, keepdims=True)
    else:
        z = z / temperature
    p = np.exp(z)
    p = p / p.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(p, axis=-1)
    u = rng.random((len(z), 1))
    return np.minimum((cumulative < u).sum(axis=-1), z.shape[-1] - 1)


@mutant("char_step", "the cells called with training=True (dropout active while generating)", kind="training-mode")
def char_step(model, ids_t, states):
    embedding, *recurrent, dense = model.layers
    x = embedding(ids_t)
    new_states = []
    for layer, layer_states in zip(recurrent, states):
        x, layer_states = layer.cell(x, layer_states, training=True)
        new_states.append(layer_states)
    return dense(x), new_states


@mutant("char_step", "the caller's states list updated in place", kind="in-place")
def char_step(model, ids_t, states):
    embedding, *recurrent, dense = model.layers
    x = embedding(ids_t)
    for k, (layer, layer_states) in enumerate(zip(recurrent, states)):
        x, states[k] = layer.cell(x, layer_states)
    return dense(x), states


@mutant("generate", "the states kept between calls in a mutable default argument", kind="state")
def generate(model, prefix_ids, n, temperature=1.0, seed=0, _generate_memory={}):
    draw_from = np.random.default_rng(seed)
    states = _generate_memory.get(id(model)) or initial_states(model, 1)
    for token in prefix_ids:
        logits, states = char_step(model, np.array([token]), states)
    new_ids = []
    while len(new_ids) < n:
        token = int(sample_next(ops.convert_to_numpy(logits), temperature, draw_from)[0])
        new_ids.append(token)
        logits, states = char_step(model, np.array([token]), states)
    _generate_memory[id(model)] = states
    return np.array(new_ids, dtype=np.int32)


@mutant("generate", "the whole text re-run through the model for every character (no states carried)", kind="mechanism")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    draw_from = np.random.default_rng(seed)
    text = [int(t) for t in prefix_ids]
    for _ in range(n):
        logits = ops.convert_to_numpy(model(np.array([text], dtype=np.int32)))[:, -1]
        text.append(int(sample_next(logits, temperature, draw_from)[0]))
    return np.array(text[len(prefix_ids):], dtype=np.int32)


@mutant("generate", "the model called in training mode (dropout while generating)", kind="training-mode")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    draw_from = np.random.default_rng(seed)
    embedding, *recurrent, dense = model.layers
    states = initial_states(model, 1)

    def step(token, states):
        x = embedding(np.array([token]))
        new_states = []
        for layer, layer_states in zip(recurrent, states):
            x, layer_states = layer.cell(x, layer_states, training=True)
            new_states.append(layer_states)
        return dense(x), new_states

    for token in prefix_ids:
        logits, states = step(token, states)
    new_ids = []
    while len(new_ids) < n:
        token = int(sample_next(ops.convert_to_numpy(logits), temperature, draw_from)[0])
        new_ids.append(token)
        logits, states = step(token, states)
    return np.array(new_ids, dtype=np.int32)


# --- answers built from what the step may not use (course/rules.py) --------------------------------
@mutant("sequence_loss", "keras.losses.SparseCategoricalCrossentropy (a Keras loss, not keras.ops)", kind="delegation")
def sequence_loss(targets, logits):
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(targets, logits)


@mutant("perplexity", "keras.ops.exp instead of numpy (the rule: numpy only)", kind="delegation")
def perplexity(loss):
    return ops.convert_to_numpy(ops.exp(ops.convert_to_tensor(np.asarray(loss, dtype=np.float64))))


@mutant("sample_next", "keras.random.categorical instead of the rng given", kind="delegation")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return z.argmax(axis=-1)
    draws = keras.random.categorical(z / temperature, 1, seed=int(rng.integers(2 ** 31)))
    return ops.convert_to_numpy(draws)[:, 0]


@mutant("build_vocab", "keras.layers.StringLookup adapted to the text (the rule: numpy only)", kind="delegation")
def build_vocab(text):
    lookup = keras.layers.StringLookup(num_oov_indices=0, mask_token=None)
    lookup.adapt(list(text))
    chars = sorted(lookup.get_vocabulary())
    return chars, {c: i for i, c in enumerate(chars)}


@mutant("encode", "keras.layers.StringLookup, as the TensorFlow tutorial does (the rule: numpy only)",
        kind="delegation")
def encode(text, char_to_id):
    chars = sorted(char_to_id, key=char_to_id.get)
    lookup = keras.layers.StringLookup(vocabulary=chars, num_oov_indices=0, mask_token=None)
    return ops.convert_to_numpy(lookup(list(text))).astype(np.int32) if text else np.zeros(0, np.int32)


@mutant("decode", "keras.layers.StringLookup(invert=True), as the TensorFlow tutorial does (the rule: numpy only)",
        kind="delegation")
def decode(ids, chars):
    lookup = keras.layers.StringLookup(vocabulary=list(chars), invert=True, num_oov_indices=0, mask_token=None)
    return "".join(c.decode() if isinstance(c, bytes) else str(c)
                   for c in ops.convert_to_numpy(lookup(np.asarray(ids, dtype=np.int64))))


@mutant("make_windows", "keras.utils.timeseries_dataset_from_array (the rule: numpy only)", kind="delegation")
def make_windows(ids, seq_len, stride=None):
    stride = seq_len if stride is None else stride
    data = keras.utils.timeseries_dataset_from_array(np.asarray(ids)[:-1], np.asarray(ids)[seq_len:],
                                                     sequence_length=seq_len, sequence_stride=stride,
                                                     batch_size=None, shuffle=False)
    inputs = np.stack([np.asarray(x) for x, _ in data])
    targets = np.stack([np.concatenate([np.asarray(x)[1:], [int(y)]]) for x, y in data])
    return inputs, targets


@mutant("batches", "keras.random.shuffle of the window indices (the rule: numpy only)", kind="delegation")
def batches(inputs, targets, batch_size, rng):
    order = ops.convert_to_numpy(keras.random.shuffle(np.arange(len(inputs)), seed=int(rng.integers(2 ** 31))))
    for k in range(len(inputs) // batch_size):
        rows = order[k * batch_size:(k + 1) * batch_size]
        yield inputs[rows], targets[rows]


@mutant("bits_per_char", "keras.ops.divide instead of numpy (the rule: numpy only)",
        kind="delegation")
def bits_per_char(loss):
    return ops.convert_to_numpy(ops.divide(ops.convert_to_tensor(np.asarray(loss, np.float64)), np.log(2)))



# --- loss_by_position -------------------------------------------------------------
@mutant("loss_by_position", "the model run with training=True (dropout while measuring)", kind="training-mode")
def loss_by_position(model, inputs, targets):
    z = np.asarray(ops.convert_to_numpy(model(inputs, training=True)), dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.asarray(targets)[..., None], axis=-1)[..., 0].mean(axis=0)


@mutant("loss_by_position", "the mean over the positions (one loss per window)")
def loss_by_position(model, inputs, targets):
    z = np.asarray(ops.convert_to_numpy(model(inputs, training=False)), dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.asarray(targets)[..., None], axis=-1)[..., 0].mean(axis=1)


@mutant("loss_by_position", "no largest logit subtracted (exp overflows in float32)", kind="stability")
def loss_by_position(model, inputs, targets):
    z = ops.convert_to_numpy(model(inputs, training=False))
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.asarray(targets)[..., None], axis=-1)[..., 0].mean(axis=0).astype(
        np.float64)


@mutant("loss_by_position", "float32 result where float64 is asked", kind="return-type")
def loss_by_position(model, inputs, targets):
    z = ops.convert_to_numpy(model(inputs, training=False))
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.asarray(targets)[..., None], axis=-1)[..., 0].mean(axis=0)


@mutant("loss_by_position", "the inputs used as targets (not the next characters)")
def loss_by_position(model, inputs, targets):
    z = np.asarray(ops.convert_to_numpy(model(inputs, training=False)), dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.asarray(inputs)[..., None], axis=-1)[..., 0].mean(axis=0)


@mutant("loss_by_position", "the state carried from one window to the next (a stateful copy, reset once)",
        kind="state")
def loss_by_position(model, inputs, targets):
    stream = stateful_copy(model, 1)
    rows = []
    for x, y in zip(inputs, targets):
        z = np.asarray(ops.convert_to_numpy(stream(x[None], training=False)), dtype=np.float64)[0]
        z = z - z.max(axis=-1, keepdims=True)
        log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        rows.append(-np.take_along_axis(log_probs, np.asarray(y)[:, None], axis=-1)[:, 0])
    return np.mean(rows, axis=0)


@mutant("loss_by_position", "the logits taken as probabilities (-log of a logit)")
def loss_by_position(model, inputs, targets):
    z = np.asarray(ops.convert_to_numpy(model(inputs, training=False)), dtype=np.float64)
    picked = np.take_along_axis(z, np.asarray(targets)[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return -np.log(picked).mean(axis=0)


@mutant("loss_by_position", "keras.losses.SparseCategoricalCrossentropy (a Keras loss, not by hand)",
        kind="delegation")
def loss_by_position(model, inputs, targets):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    return np.asarray(ops.convert_to_numpy(loss(targets, model(inputs, training=False))), np.float64).mean(axis=0)


# --- carried_state_loss -----------------------------------------------------------
@mutant("carried_state_loss", "the states reset before every chunk (zero-state windows again)", kind="state")
def carried_state_loss(stream_model, ids, chunk_len):
    ids, total = np.asarray(ids), 0.0
    for start in range(0, len(ids) - 1, chunk_len):
        for layer in stream_model.layers[1:-1]:
            layer.reset_state()
        y = ids[start + 1:start + chunk_len + 1]
        z = np.asarray(ops.convert_to_numpy(stream_model.predict_on_batch(ids[start:start + len(y)][None])),
                       np.float64)[0]
        z = z - z.max(axis=-1, keepdims=True)
        total -= (z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(len(y)), y].sum()
    return total / (len(ids) - 1)


@mutant("carried_state_loss", "no reset at the start (the state left from what the model read before)",
        kind="state")
def carried_state_loss(stream_model, ids, chunk_len):
    ids, total = np.asarray(ids), 0.0
    for start in range(0, len(ids) - 1, chunk_len):
        y = ids[start + 1:start + chunk_len + 1]
        z = np.asarray(ops.convert_to_numpy(stream_model.predict_on_batch(ids[start:start + len(y)][None])),
                       np.float64)[0]
        z = z - z.max(axis=-1, keepdims=True)
        total -= (z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(len(y)), y].sum()
    return total / (len(ids) - 1)


@mutant("carried_state_loss", "the model called with training=True (dropout while measuring)", kind="training-mode")
def carried_state_loss(stream_model, ids, chunk_len):
    for layer in stream_model.layers[1:-1]:
        layer.reset_state()
    ids, total = np.asarray(ids), 0.0
    for start in range(0, len(ids) - 1, chunk_len):
        y = ids[start + 1:start + chunk_len + 1]
        z = np.asarray(ops.convert_to_numpy(stream_model(ids[start:start + len(y)][None], training=True)),
                       np.float64)[0]
        z = z - z.max(axis=-1, keepdims=True)
        total -= (z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(len(y)), y].sum()
    return total / (len(ids) - 1)


@mutant("carried_state_loss", "the mean of each chunk's mean (the shorter last chunk weighs as much as a full one)")
def carried_state_loss(stream_model, ids, chunk_len):
    for layer in stream_model.layers[1:-1]:
        layer.reset_state()
    ids, means = np.asarray(ids), []
    for start in range(0, len(ids) - 1, chunk_len):
        y = ids[start + 1:start + chunk_len + 1]
        z = np.asarray(ops.convert_to_numpy(stream_model.predict_on_batch(ids[start:start + len(y)][None])),
                       np.float64)[0]
        z = z - z.max(axis=-1, keepdims=True)
        means.append(-(z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(len(y)), y].mean())
    return float(np.mean(means))


@mutant("carried_state_loss", "the logits taken as probabilities (a softmax of the softmax)")
def carried_state_loss(stream_model, ids, chunk_len):
    for layer in stream_model.layers[1:-1]:
        layer.reset_state()
    ids, total = np.asarray(ids), 0.0
    for start in range(0, len(ids) - 1, chunk_len):
        y = ids[start + 1:start + chunk_len + 1]
        z = np.asarray(ops.convert_to_numpy(stream_model.predict_on_batch(ids[start:start + len(y)][None])),
                       np.float64)[0]
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p = p / p.sum(axis=-1, keepdims=True)                   # probabilities...
        p = np.exp(p) / np.exp(p).sum(axis=-1, keepdims=True)   # ...taken for logits once more
        total -= np.log(p[np.arange(len(y)), y]).sum()
    return total / (len(ids) - 1)


@mutant("carried_state_loss", "targets not shifted (each chunk's inputs as its targets)")
def carried_state_loss(stream_model, ids, chunk_len):
    for layer in stream_model.layers[1:-1]:
        layer.reset_state()
    ids, total = np.asarray(ids), 0.0
    for start in range(0, len(ids) - 1, chunk_len):
        x = ids[start:min(start + chunk_len, len(ids) - 1)]
        z = np.asarray(ops.convert_to_numpy(stream_model.predict_on_batch(x[None])), np.float64)[0]
        z = z - z.max(axis=-1, keepdims=True)
        total -= (z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(len(x)), x].sum()
    return total / (len(ids) - 1)


@mutant("carried_state_loss", "the logits cast to float32 before the log-softmax", kind="precision")
def carried_state_loss(stream_model, ids, chunk_len):
    for layer in stream_model.layers[1:-1]:
        layer.reset_state()
    ids, total = np.asarray(ids), 0.0
    for start in range(0, len(ids) - 1, chunk_len):
        y = ids[start + 1:start + chunk_len + 1]
        z = np.asarray(ops.convert_to_numpy(stream_model.predict_on_batch(ids[start:start + len(y)][None])),
                       np.float32)[0]
        z = z - z.max(axis=-1, keepdims=True)
        total -= float((z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(len(y)), y].sum())
    return total / (len(ids) - 1)


@mutant("carried_state_loss", "the last, shorter chunk left out")
def carried_state_loss(stream_model, ids, chunk_len):
    for layer in stream_model.layers[1:-1]:
        layer.reset_state()
    ids, total, count = np.asarray(ids), 0.0, 0
    for start in range(0, len(ids) - chunk_len, chunk_len):
        y = ids[start + 1:start + chunk_len + 1]
        z = np.asarray(ops.convert_to_numpy(stream_model.predict_on_batch(ids[start:start + chunk_len][None])),
                       np.float64)[0]
        z = z - z.max(axis=-1, keepdims=True)
        total -= (z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(len(y)), y].sum()
        count += len(y)
    return total / max(count, 1)


@mutant("carried_state_loss", "one call over the whole text (no chunks: the mechanism not used)", kind="mechanism")
def carried_state_loss(stream_model, ids, chunk_len):
    for layer in stream_model.layers[1:-1]:
        layer.reset_state()
    ids = np.asarray(ids)
    z = np.asarray(ops.convert_to_numpy(stream_model.predict_on_batch(ids[None, :-1])), np.float64)[0]
    z = z - z.max(axis=-1, keepdims=True)
    return float(-(z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[np.arange(len(ids) - 1), ids[1:]].mean())


@mutant("carried_state_loss", "keras.losses.SparseCategoricalCrossentropy on each chunk (a Keras loss)",
        kind="delegation")
def carried_state_loss(stream_model, ids, chunk_len):
    for layer in stream_model.layers[1:-1]:
        layer.reset_state()
    ids, total = np.asarray(ids), 0.0
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    for start in range(0, len(ids) - 1, chunk_len):
        y = ids[start + 1:start + chunk_len + 1]
        total += float(loss(y[None], stream_model.predict_on_batch(ids[start:start + len(y)][None])))
    return total / (len(ids) - 1)


# --- red-team survivors (round 2): sampling truncations, generate's draws, the GRU branch, encode("") --------
@mutant("sample_next", "top-k filter with k=40 (a no-op for fewer than 40 symbols)", kind="randomness")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return z.argmax(axis=-1)
    z = z / temperature
    if z.shape[-1] > 40:
        kth = np.sort(z, axis=-1)[:, -40][:, None]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    u = rng.random((len(z), 1))
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), z.shape[-1] - 1)


@mutant("sample_next", "temperature floored at 0.05", kind="randomness")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return z.argmax(axis=-1)
    z = z / max(temperature, 0.05)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    u = rng.random((len(z), 1))
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), z.shape[-1] - 1)


@mutant("sample_next", "probabilities below 0.005 zeroed (epsilon sampling)", kind="randomness")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return z.argmax(axis=-1)
    z = z / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    p = np.where(p < 0.005, 0.0, p)
    p /= p.sum(axis=-1, keepdims=True)
    u = rng.random((len(z), 1))
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), z.shape[-1] - 1)


@mutant("sample_next", "nucleus sampling at top-p 0.98", kind="randomness")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return z.argmax(axis=-1)
    z = z / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    order = np.argsort(-p, axis=-1)
    sp = np.take_along_axis(p, order, axis=-1)
    keep_sorted = np.cumsum(sp, axis=-1) - sp < 0.98
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    p = np.where(keep, p, 0.0)
    p /= p.sum(axis=-1, keepdims=True)
    u = rng.random((len(z), 1))
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), z.shape[-1] - 1)


@mutant("sample_next", "temperatures below 0.1 treated as the argmax", kind="randomness")
def sample_next(logits, temperature, rng):
    z = np.asarray(logits, dtype=np.float64)
    if temperature < 0.1:
        return z.argmax(axis=-1)
    z = z / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    u = rng.random((len(z), 1))
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), z.shape[-1] - 1)


@mutant("generate", "a new np.random.default_rng(seed) at every character (one draw repeated)", kind="randomness")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    states = initial_states(model, 1)
    for token in prefix_ids:
        logits, states = char_step(model, np.array([token]), states)
    out = []
    for _ in range(n):
        t = int(sample_next(ops.convert_to_numpy(logits), temperature, np.random.default_rng(seed))[0])
        out.append(t)
        logits, states = char_step(model, np.array([t]), states)
    return np.array(out, dtype=np.int32)


@mutant("generate", "character i drawn from np.random.default_rng(seed + i)", kind="randomness")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    states = initial_states(model, 1)
    for token in prefix_ids:
        logits, states = char_step(model, np.array([token]), states)
    out = []
    for i in range(n):
        t = int(sample_next(ops.convert_to_numpy(logits), temperature, np.random.default_rng(seed + i))[0])
        out.append(t)
        logits, states = char_step(model, np.array([t]), states)
    return np.array(out, dtype=np.int32)


@mutant("generate", "the first new character always the argmax", kind="randomness")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    states = initial_states(model, 1)
    for token in prefix_ids:
        logits, states = char_step(model, np.array([token]), states)
    out = []
    for i in range(n):
        t = int(sample_next(ops.convert_to_numpy(logits), temperature if i else 0.0, rng)[0])
        out.append(t)
        logits, states = char_step(model, np.array([t]), states)
    return np.array(out, dtype=np.int32)


@mutant("generate", "the logits divided by the temperature here and in sample_next (applied twice)",
        kind="randomness")
def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    states = initial_states(model, 1)
    for token in prefix_ids:
        logits, states = char_step(model, np.array([token]), states)
    out = []
    for _ in range(n):
        z = ops.convert_to_numpy(logits)
        z = z / temperature if temperature else z
        t = int(sample_next(z, temperature, rng)[0])
        out.append(t)
        logits, states = char_step(model, np.array([t]), states)
    return np.array(out, dtype=np.int32)


@mutant("build_char_model", "recurrent_dropout=dropout as well as dropout", kind="setting")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    rec = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    stack = [keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)]
    stack += [rec(units, return_sequences=True, dropout=dropout, recurrent_dropout=dropout) for _ in range(layers)]
    stack.append(keras.layers.Dense(vocab_size))
    return keras.Sequential(stack)


@mutant("build_char_model", "the GRU branch with activation='relu' (the LSTM branch right)", kind="setting")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    if cell == "lstm":
        make = lambda: keras.layers.LSTM(units, return_sequences=True, dropout=dropout)  # noqa: E731
    else:
        make = lambda: keras.layers.GRU(units, return_sequences=True, dropout=dropout, activation="relu")  # noqa: E731
    stack = [keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)]
    stack += [make() for _ in range(layers)]
    stack.append(keras.layers.Dense(vocab_size))
    return keras.Sequential(stack)


@mutant("build_char_model", "the GRU branch reads right to left (go_backwards=True)", kind="setting")
def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    if cell == "lstm":
        make = lambda: keras.layers.LSTM(units, return_sequences=True, dropout=dropout)  # noqa: E731
    else:
        make = lambda: keras.layers.GRU(units, return_sequences=True, dropout=dropout, go_backwards=True)  # noqa: E731
    stack = [keras.Input(shape=(None,), dtype="int32"), keras.layers.Embedding(vocab_size, embedding_dim)]
    stack += [make() for _ in range(layers)]
    stack.append(keras.layers.Dense(vocab_size))
    return keras.Sequential(stack)


@mutant("encode", "np.array without a dtype: the empty text gives float64", kind="return-type")
def encode(text, char_to_id):
    return np.array([char_to_id[c] for c in text])


@mutant("batches", "only the first n // B * B windows shuffled: the same trailing windows dropped every epoch",
        kind="randomness")
def batches(inputs, targets, batch_size, rng):
    used = len(inputs) // batch_size * batch_size
    order = rng.permutation(used)
    for k in range(len(inputs) // batch_size):
        rows = order[k * batch_size:(k + 1) * batch_size]
        yield inputs[rows], targets[rows]
