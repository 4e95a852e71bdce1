"""Stand-ins that the visible checks hand to an answer: test models with a notebook's interface, and
wrappers that count what an answer does with the objects it is given.

They live outside ``course.checks`` on purpose: every answer is watched while it runs (course/rules.py),
and no answer may call the checks; an answer may call what it is handed. Nothing here knows what an
answer should return: that is in the checks.
"""
from __future__ import annotations

import numpy as np

from .env import import_keras

PAD, START, END = 0, 1, 2


def _numpy(value):
    """A backend tensor, list or array as a numpy array (without copying numpy input)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple, int, float, bool, np.generic)):
        return np.asarray(value)
    return np.asarray(import_keras().ops.convert_to_numpy(value))


def _floats(value):
    return _numpy(value).astype(np.float64)


# --- unit 05: encoder-decoders with the notebook's encode / decode_step ----------------------------

class ToyTranslator:
    """A small encoder-decoder with fixed random weights, written in numpy.

    It has the notebook's interface:

        encode(source_ids) -> (encoder_outputs (batch, Ts, units), mask (batch, Ts), [h, clock])
        decode_step(tokens (batch,), states, encoder_outputs, mask)
            -> (logits (batch, vocab), new states, attention weights (batch, Ts))

    Two states, so that a loop must carry the whole list. ``clock`` counts the
    steps taken; once it reaches a number that depends on the source's length
    the model says END, so rows finish at different steps (or never).
    ``tensors=True`` returns Keras tensors instead of numpy arrays.
    """

    def __init__(self, seed=0, source_vocab=12, target_vocab=9, units=6, tensors=False):
        rng = np.random.default_rng(seed)
        self.source_vocab, self.target_vocab, self.units, self.tensors = source_vocab, target_vocab, units, tensors
        self._source_embedding = rng.normal(size=(source_vocab, units))
        self._target_embedding = rng.normal(size=(target_vocab, units))
        self._recurrent = rng.normal(scale=0.7, size=(units, units))
        self._from_context = rng.normal(scale=0.7, size=(units, units))
        self._query = rng.normal(size=(units, units))
        self._readout = rng.normal(size=(units, target_vocab))
        self._bias = rng.normal(scale=0.5, size=target_vocab)
        self._bias[[PAD, START]] = -30.0   # never predicted
        self._bias[END] = -30.0            # only when the clock says so
        self.stop_modulus = 7

    def _out(self, value):
        return import_keras().ops.convert_to_tensor(value) if self.tensors else value

    def stop_steps(self, mask):
        """The step (1 = the first) at which each row says END: 1 + its source length mod 7."""
        return 1 + np.asarray(mask).sum(axis=1) % self.stop_modulus

    def encode(self, source_ids):
        source = _numpy(source_ids).astype(np.int64)
        mask = source != PAD
        outputs = np.tanh(self._source_embedding[source]) * mask[..., None]
        h0 = np.tanh(outputs.sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1))
        clock = np.zeros((len(source), 1))
        return self._out(outputs), self._out(mask), [self._out(h0), self._out(clock)]

    def decode_step(self, tokens, states, encoder_outputs, mask):
        if not isinstance(states, (list, tuple)) or len(states) != 2:
            raise TypeError(f"states should be the list of 2 states from encode(), got {type(states).__name__}")
        token = _numpy(tokens).astype(np.int64)
        if token.ndim != 1:
            raise ValueError(f"tokens should have shape (batch,), got {token.shape}")
        h, clock = _floats(states[0]), _floats(states[1])
        outputs, valid = _floats(encoder_outputs), _numpy(mask).astype(bool)
        scores = np.where(valid, np.einsum("btu,bu->bt", outputs, h @ self._query), -np.inf)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        context = np.einsum("bt,btu->bu", weights, outputs)
        h = np.tanh(self._target_embedding[token] + h @ self._recurrent + context @ self._from_context)
        clock = clock + 1
        logits = h @ self._readout + self._bias
        logits[:, END] += np.where(clock[:, 0] >= self.stop_steps(valid), 60.0, 0.0)
        return self._out(logits), [self._out(h), self._out(clock)], self._out(weights)

class KerasToy:
    """A plain encoder-decoder (no attention) built from Keras layers with fixed weights.

    encode: embeddings of the source, and an initial state from their masked sum;
    decode_step: an embedding and one ``keras.layers.GRUCell`` step, then a Dense
    readout. So its teacher-forced logits are those of ``keras.layers.GRU`` run
    over the whole embedded decoder input, a reference no one in the course wrote.
    """

    def __init__(self, seed=0, source_vocab=12, target_vocab=9, units=5):
        keras = import_keras()
        rng = np.random.default_rng(seed)
        self.units = units
        with keras.device("cpu:0"):
            self.source_embedding = keras.layers.Embedding(source_vocab, units)
            self.target_embedding = keras.layers.Embedding(target_vocab, units)
            self.cell = keras.layers.GRUCell(units)
            self.readout = keras.layers.Dense(target_vocab)
            self.source_embedding.build((None, None))
            self.target_embedding.build((None, None))
            self.cell.build((None, units))
            self.readout.build((None, units))
        for layer in (self.source_embedding, self.target_embedding, self.cell, self.readout):
            layer.set_weights([rng.normal(scale=0.6, size=w.shape).astype("float32") for w in layer.get_weights()])

    def encode(self, source_ids):
        ops = import_keras().ops
        mask = ops.not_equal(source_ids, PAD)
        outputs = self.source_embedding(source_ids)
        h0 = ops.tanh(ops.sum(outputs * ops.expand_dims(ops.cast(mask, outputs.dtype), -1), axis=1))
        return outputs, mask, [h0]

    def decode_step(self, tokens, states, encoder_outputs, mask):
        ops = import_keras().ops
        output, states = self.cell(self.target_embedding(tokens), states)
        return self.readout(output), states, ops.zeros_like(ops.cast(mask, output.dtype))


class TableStep:
    """A step function for beam search with a fixed table of log-probabilities (a Markov model).

    ``step(tokens (k,), states) -> (log_probs (k, vocab), states)``: the log-probabilities depend on the
    last token only, and the states (a list of arrays with k rows) come back as they were given.
    """

    def __init__(self, log_probs):
        self.log_probs = np.asarray(log_probs, np.float64)
        self.vocab = self.log_probs.shape[1]

    def initial_states(self):
        return [np.zeros((1, 1))]

    def __call__(self, tokens, states):
        token = _numpy(tokens).astype(np.int64)
        if token.ndim != 1:
            raise ValueError(f"tokens should have shape (k,), one per hypothesis, got {token.shape}")
        _rows(states, len(token))
        return self.log_probs[token].copy(), [np.array(s, copy=True) for s in states]


class RecurrentStep:
    """A step function for beam search with a state: a small numpy RNN with fixed random weights.

    The states are ``[h (k, units), clock (k, 1)]``; each call returns log-probabilities (k, vocab) that
    depend on the whole history through ``h``, and the new states. ``END`` (2) becomes likely once the
    clock reaches ``end_after`` steps, so hypotheses finish at different lengths.
    """

    def __init__(self, seed=0, vocab=5, units=4, end_after=3, sharpness=1.5):
        rng = np.random.default_rng(seed)
        self.vocab, self.units, self.end_after = vocab, units, end_after
        self._embedding = rng.normal(size=(vocab, units))
        self._recurrent = rng.normal(scale=0.8, size=(units, units))
        self._readout = rng.normal(scale=sharpness, size=(units, vocab))
        self._start = rng.normal(size=(1, units))

    def initial_states(self):
        return [np.tanh(self._start), np.zeros((1, 1))]

    def __call__(self, tokens, states):
        token = _numpy(tokens).astype(np.int64)
        if token.ndim != 1:
            raise ValueError(f"tokens should have shape (k,), one per hypothesis, got {token.shape}")
        if not isinstance(states, (list, tuple)) or len(states) != 2:
            raise TypeError(f"states should be a list of 2 arrays [h, clock], got {type(states).__name__}")
        _rows(states, len(token))
        h, clock = _floats(states[0]), _floats(states[1])
        h = np.tanh(self._embedding[token] + h @ self._recurrent)
        clock = clock + 1
        logits = h @ self._readout
        logits[:, END] += np.where(clock[:, 0] >= self.end_after, 2.0, -2.0)
        logits = logits - logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return log_probs, [h, clock]


def _rows(states, k):
    if not isinstance(states, (list, tuple)):
        raise TypeError(f"states should be a list of arrays, got {type(states).__name__}")
    for state in states:
        if np.shape(state)[0] != k:
            raise ValueError(f"a state with {np.shape(state)[0]} rows for {k} tokens: give each hypothesis "
                             "its own row of every state (states[i][parents])")


# --- unit 04: a recurrent layer that records how many steps each call reads ------------------------

class LayerRecorder:
    """Stands in for a layer, forwards everything to it and records how many steps each call read."""

    def __init__(self, layer):
        object.__setattr__(self, "_layer", layer)
        object.__setattr__(self, "steps", [])

    def __call__(self, inputs, *args, **kwargs):
        self.steps.append(int(np.shape(inputs)[1]) if len(np.shape(inputs)) > 1 else -1)
        return self._layer(inputs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def __setattr__(self, name, value):
        setattr(self._layer, name, value)


# --- unit 06: a function that counts its calls -----------------------------------------------------

def counting(fn, sizes: list):
    """``fn`` that appends the size of its second argument (the ids it reads) to ``sizes`` at each call."""
    def counted(first, ids, *args, **kwargs):
        sizes.append(int(np.size(ids)))
        return fn(first, ids, *args, **kwargs)

    counted.__name__ = getattr(fn, "__name__", "counted")
    return counted


class StreamRecorder:
    """Stands in for a stateful model: forwards everything to it and records how many steps each call read,
    through ``model(x)``, ``model.predict_on_batch(x)`` or ``model.predict(x)`` alike."""

    def __init__(self, model):
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "steps", [])

    def _count(self, inputs) -> None:
        shape = np.shape(inputs)
        self.steps.append(int(shape[1]) if len(shape) > 1 else -1)

    def __call__(self, inputs, *args, **kwargs):
        self._count(inputs)
        return self._model(inputs, *args, **kwargs)

    def predict_on_batch(self, inputs, *args, **kwargs):
        self._count(inputs)
        return self._model.predict_on_batch(inputs, *args, **kwargs)

    def predict(self, inputs, *args, **kwargs):
        self._count(inputs)
        return self._model.predict(inputs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __setattr__(self, name, value):
        setattr(self._model, name, value)
