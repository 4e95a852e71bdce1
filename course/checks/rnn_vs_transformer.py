"""Visible self-checks for unit 07_rnn_vs_transformer (why attention won, where recurrence is back).

Each ``check_<step>(fn, cases=...)`` runs the student's function or class on fixed
cases and compares it with something the course did not write:

* the causal mask, by what ``keras.layers.MultiHeadAttention`` computes with it
  against its own ``use_causal_mask=True``;
* the Transformer block and model, by a float64 numpy forward pass over the
  student's own weights (randomised, so that a forgotten bias or a LayerNorm in
  the wrong place shows), and by causality: changing a later token must leave
  every earlier output exactly as it was, and must move the later ones;
* the parameter count, by ``count_params()`` of the Keras layers the model is
  made of (embeddings, one block's sublayers, the final norm and the output);
* the cached attention step, by Keras' ``MultiHeadAttention`` run over the whole
  prefix with ``use_causal_mask=True``, at every step;
* the linear recurrence, by float64 states stored with the release
  (``expected/rnn_vs_transformer.json``) and, for constant coefficients, by the
  geometric sum;
* the minGRU layer, by minGRU's step-by-step loop in float64 on the layer's own
  (randomised) weights, by causality, by the trainable flags and parameter count,
  and by central differences of its outputs along each weight against the loop's;
* associative recall, by the structure of every row (distinct keys, queries among
  them, targets their values), by reproducibility from the generator it is given,
  and by chi-square tests of its draws, each with a false-alarm rate below 1e-7.

Everything runs on the CPU (``keras.device("cpu:0")``), so that a GPU's TF32
matrix products cannot blur a comparison at 1e-4. The same functions run at
grading time on cases the student does not see.
"""
from __future__ import annotations

import ast
import inspect
import math
import textwrap
from dataclasses import dataclass

import numpy as np

from . import caller_for, expect_close, expect_equal, expect_shape, expect_unchanged, fail, passed, snapshot
from ..env import import_keras
from .stored import stored

UNIT = "07_rnn_vs_transformer"
# Every answer is called under its step's rule (course/rules.py): what it may be built from.
call = caller_for(UNIT)
F32 = dict(rtol=1e-4, atol=1e-4)   # Keras' float32 layers against a float64 reference
EPSILON = 1e-5                     # every LayerNormalization's epsilon, as the notebook's table asks


def _keras():
    return import_keras()


def _cpu():
    return _keras().device("cpu:0")


def _np(value):
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)


# --- 1 · causal_mask ------------------------------------------------------------------

MASK_SIZES = (4, 1, 9)


def _allowed(T: int) -> np.ndarray:
    """allowed[i, j]: may position i look at position j?  Only at itself and before."""
    rows, cols = np.indices((T, T))
    return cols <= rows


def _through_keras(mask, T, seed=0):
    """(output with `mask` as attention_mask, output with use_causal_mask=True) of one Keras MHA."""
    keras = _keras()
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, T, 6)).astype("float32")
    with _cpu():
        mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
        want = mha(x, x, use_causal_mask=True)
        got = mha(x, x, attention_mask=np.broadcast_to(mask, (2, T, T)))
    return _np(got), _np(want)


def check_causal_mask(causal_mask, sizes=MASK_SIZES) -> None:
    step, count = "causal_mask", 0
    for T in sizes:
        got = call(step, causal_mask, T)
        array = np.asarray(got.numpy() if hasattr(got, "numpy") else got)
        expect_shape(step, f"causal_mask({T})", array, (T, T))
        want = _allowed(T)
        if array.dtype != np.bool_:
            values = set(np.unique(array.astype(np.float64)).tolist())
            if values <= {0.0, 1.0}:
                fail(step, f"causal_mask({T}) has dtype {array.dtype}: return booleans (dtype=bool), "
                           "True where attention is allowed")
            if T > 1 and any(v < -1e3 or v == -np.inf for v in values):
                fail(step, f"causal_mask({T}) looks like an additive mask (0 and a large negative number "
                           "added to the scores); return booleans instead, True where attention is allowed")
            if T > 1 and any(v > 1e3 or v == np.inf for v in values):
                fail(step, f"causal_mask({T}) looks like an additive mask with the wrong sign (a large "
                           "positive number); return booleans instead, True where attention is allowed")
            fail(step, f"causal_mask({T}) has dtype {array.dtype} and values {sorted(values)[:4]}: "
                       "return booleans, True where attention is allowed")
        if not np.array_equal(array, want):
            mistakes = {
                "the upper triangle: position i sees the future, not the past (the mask is transposed)":
                    want.T,
                "the diagonal left out: a position must be allowed to attend to itself": np.tril(want, -1),
                "every position allowed (no mask at all)": np.ones_like(want),
                "one future position allowed (np.tril(..., k=1))": _allowed(T) | np.eye(T, k=1, dtype=bool),
            }
            message = f"causal_mask({T}) is wrong: row i must be True at columns 0..i and False after"
            for mistake, wrong in mistakes.items():
                if np.array_equal(array, wrong):
                    message += f"; it is {mistake}"
                    break
            fail(step, message)
        got_out, want_out = _through_keras(array, T, seed=T)
        expect_close(step, f"MultiHeadAttention with attention_mask=causal_mask({T})", got_out, want_out, **F32)
        count += 2
    passed(step, count, "(the same outputs from keras.layers.MultiHeadAttention as use_causal_mask=True)")


# --- a float64 reference for the Transformer --------------------------------------------------

def _erf(v):
    return np.vectorize(math.erf)(v)


ACTIVATIONS = {
    "gelu": lambda v: 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0))),
    "gelu, tanh approximation": lambda v: 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))),
    "relu": lambda v: np.maximum(v, 0.0),
    "none": lambda v: v,
}


def _norm(v, layer):
    """LayerNormalization over the last axis with the layer's own gamma, beta and epsilon."""
    centred = v - v.mean(axis=-1, keepdims=True)
    spread = np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + layer.epsilon)
    return centred / spread * _np(layer.gamma) + _np(layer.beta)


def _project(v, dense):
    """A MultiHeadAttention projection: (..., d) times (d, heads, key_dim) plus (heads, key_dim)."""
    return np.einsum("...d,dhk->...hk", v, _np(dense.kernel)) + _np(dense.bias)


@np.errstate(all="ignore")   # a mistaken variant may divide 0 by 0: it is compared, never shown
def _attention64(x, mha, allowed, *, scale=None, softmax_axis="keys", output_bias=True,
                        key_from="key"):
    """Self-attention of x (batch, T, d) by `mha`'s weights; allowed[i, j] = may i attend to j."""
    q = _project(x, mha.query_dense)
    k = _project(x, mha.value_dense if key_from == "value" else mha.key_dense)
    v = _project(x, mha.value_dense)
    key_dim = q.shape[-1]
    scores = np.einsum("bihk,bjhk->bhij", q, k) / math.sqrt(scale or key_dim)
    scores = np.where(allowed, scores, -np.inf)
    axis = {"keys": -1, "queries": -2, "heads": 1}[softmax_axis]
    scores = scores - np.max(np.where(np.isfinite(scores), scores, -1e30), axis=axis, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(axis=axis, keepdims=True)
    context = np.einsum("bhij,bjhk->bihk", weights, v)
    out = np.einsum("bihk,hkd->bid", context, _np(mha.output_dense.kernel))
    return out + _np(mha.output_dense.bias) if output_bias else out


def _block64(x, block, *, allowed=None, pre_norm=True, attention_residual=True, mlp_residual=True,
                    activation="gelu", norm2=None):
    """A pre-LN block on the block's own sublayers, in float64; the keywords make known mistakes."""
    T = x.shape[1]
    allowed = _allowed(T) if allowed is None else allowed
    second_norm = block.norm2 if norm2 is None else norm2
    act = ACTIVATIONS[activation]

    def mlp(v):
        hidden = act(v @ _np(block.mlp_in.kernel) + _np(block.mlp_in.bias))
        return hidden @ _np(block.mlp_out.kernel) + _np(block.mlp_out.bias)

    if pre_norm:
        attended = _attention64(_norm(x, block.norm1), block.attention, allowed)
        mid = x + attended if attention_residual else attended
        fed = mlp(_norm(mid, second_norm))
        return mid + fed if mlp_residual else fed
    # post-LN, as in the 2017 paper: the norm after each residual sum
    mid = _norm(x + _attention64(x, block.attention, allowed), block.norm1)
    return _norm(mid + mlp(mid), second_norm)


def _randomise(layer, rng, scale):
    """Random values for every weight of `layer` (gamma near 1), so that each one matters."""
    for variable in layer.weights:
        shape = tuple(variable.shape)
        name = variable.path.split("/")[-1]
        if name == "gamma":
            value = 1.0 + 0.3 * rng.normal(size=shape)
        elif name in ("beta", "bias"):
            value = 0.3 * rng.normal(size=shape)
        elif name == "embeddings":
            value = rng.normal(size=shape)
        else:   # a kernel: scaled by its fan-in (heads x key_dim for attention's output projection)
            fan_in = shape[0] * shape[1] if "attention_output" in variable.path else shape[0]
            value = scale * rng.normal(size=shape) / math.sqrt(fan_in)
        variable.assign(value.astype(variable.dtype))


def _attribute(step, obj, name, kind, what):
    keras = _keras()
    if not hasattr(obj, name):
        fail(step, f"{what} has no attribute `{name}`: create `self.{name} = keras.layers.{kind}(...)` "
                   "in __init__ (the check reads its weights by that name)")
    found = getattr(obj, name)
    if not isinstance(found, getattr(keras.layers, kind)):
        fail(step, f"`self.{name}` should be a keras.layers.{kind}, got {type(found).__name__}")
    return found


# --- 2 · TransformerBlock ------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    batch: int
    time: int
    d_model: int
    heads: int
    mlp_dim: int
    seed: int = 0


BLOCK_CASES = (Block(2, 6, 8, 2, 16, seed=1), Block(1, 1, 4, 1, 8, seed=2))


def _structure(step, block, s: Block):
    what = "your TransformerBlock"
    for name in ("norm1", "norm2"):
        _attribute(step, block, name, "LayerNormalization", what)
    mha = _attribute(step, block, "attention", "MultiHeadAttention", what)
    mlp_in = _attribute(step, block, "mlp_in", "Dense", what)
    mlp_out = _attribute(step, block, "mlp_out", "Dense", what)
    if block.norm1 is block.norm2:
        fail(step, "norm1 and norm2 are the same layer: each sublayer needs its own LayerNormalization")
    _expect_epsilon(step, {"norm1": block.norm1, "norm2": block.norm2})
    if getattr(mha, "dropout", 0.0):
        fail(step, f"attention has dropout={mha.dropout}: the notebook's Transformer uses no dropout")
    if mha.num_heads != s.heads:
        fail(step, f"attention has num_heads={mha.num_heads}, expected heads={s.heads}")
    if mha.key_dim * s.heads != s.d_model:
        fail(step, f"attention has key_dim={mha.key_dim}: with {s.heads} heads each head should have "
                   f"d_model // heads = {s.d_model // s.heads} dimensions")
    value_dim = getattr(mha, "value_dim", None) or getattr(mha, "_value_dim", None)
    if value_dim is not None and value_dim != mha.key_dim:
        fail(step, f"attention has value_dim={value_dim}: leave value_dim at its default, so that each head's "
                   f"values have key_dim = d_model // heads = {s.d_model // s.heads} dimensions like its keys "
                   "(MultiHeadAttention(num_heads=heads, key_dim=d_model // heads), as the notebook's table asks)")
    if mlp_in.units != s.mlp_dim or mlp_out.units != s.d_model:
        fail(step, f"the MLP should go d_model -> mlp_dim -> d_model = {s.d_model} -> {s.mlp_dim} -> "
                   f"{s.d_model}; got mlp_in with {mlp_in.units} units and mlp_out with {mlp_out.units}")


def _expect_epsilon(step, norms):
    for name, norm in norms.items():
        if not math.isclose(float(norm.epsilon), EPSILON, rel_tol=1e-6):
            fail(step, f"`self.{name}` has epsilon={norm.epsilon:g}: the notebook asks for "
                       f"LayerNormalization(epsilon={EPSILON:g}) (Keras' default is 1e-3)")


def _expect_inference_is_training(step, run, inputs, out, where):
    """No dropout anywhere: a call in training mode gives what inference gives."""
    with _cpu():
        trained = _np(run(inputs, training=True))
    if not np.allclose(trained, _np(out), rtol=1e-5, atol=1e-6):
        fail(step, f"({where}) a call with training=True gives other outputs than inference: the notebook's "
                   "Transformer has no dropout (nor anything else that depends on the mode)")
    return 1


def _block_mistakes(x, block):
    T = x.shape[1]
    return {
        "no causal mask (every position sees the whole sequence)":
            _block64(x, block, allowed=np.ones((T, T), bool)),
        "the mask transposed (each position sees the future, not the past)":
            _block64(x, block, allowed=_allowed(T).T),
        "the residual connection around attention missing": _block64(x, block, attention_residual=False),
        "the residual connection around the MLP missing": _block64(x, block, mlp_residual=False),
        "post-LN (the norm after each residual sum, as in the 2017 paper) instead of pre-LN":
            _block64(x, block, pre_norm=False),
        "no activation between the two Dense layers": _block64(x, block, activation="none"),
        "ReLU instead of GELU": _block64(x, block, activation="relu"),
        "GELU's tanh approximation instead of the exact GELU (activation='gelu')":
            _block64(x, block, activation="gelu, tanh approximation"),
        "norm1 used before the MLP too (norm2 unused)": _block64(x, block, norm2=block.norm1),
    }


def _prebuild_block(block, d_model):
    """Build the sublayers of a block with the documented structure, so that its first call need not
    trace `call` symbolically to find their shapes (that trace is most of a check's time)."""
    if type(block).build is not _keras().layers.Layer.build:
        return   # a block with its own build() builds its sublayers itself
    shape = (None, None, d_model)
    with _cpu():
        for layer, input_shape in ((block.norm1, shape), (block.norm2, shape), (block.mlp_in, shape),
                                   (block.mlp_out, (None, None, block.mlp_in.units))):
            if not layer.built:
                layer.build(input_shape)
        if not block.attention.built:
            block.attention.build(shape, shape)
        if not block.built:
            block.build(shape)


def _run_block(step, block, x):
    with _cpu():
        return call(step, block, x)


def check_TransformerBlock(TransformerBlock, cases=BLOCK_CASES) -> None:
    step, count = "TransformerBlock", 0
    for s in cases:
        rng = np.random.default_rng(s.seed)
        with _cpu():
            block = call(step, TransformerBlock, s.d_model, s.heads, s.mlp_dim)
        _structure(step, block, s)
        try:
            _prebuild_block(block, s.d_model)
        except Exception:  # noqa: BLE001 - sublayers of other shapes: Keras builds them on the first call
            pass
        x = rng.normal(size=(s.batch, s.time, s.d_model)).astype("float32")
        before = snapshot(x)
        where = f"batch={s.batch}, T={s.time}, d_model={s.d_model}, heads={s.heads}, mlp_dim={s.mlp_dim}"
        out = expect_shape(step, f"the output ({where})", _run_block(step, block, x), x.shape)
        expect_unchanged(step, "x", before[0], x)
        with _cpu():
            _randomise(block, rng, scale=1.0)
        out = _run_block(step, block, x)
        want = _block64(x.astype(np.float64), block)
        expect_close(step, f"the output with random weights ({where})", out, want,
                     diagnoses=lambda: _block_mistakes(x.astype(np.float64), block), **F32)
        count += 2
        count += _expect_inference_is_training(step, lambda v, training: call(step, block, v, training=training),
                                               x, out, where)
        count += _expect_causal(step, lambda v: _run_block(step, block, v), x, out,
                                lambda v, t: _new_vectors(v, t, rng), where)
    passed(step, count, "(equal to a float64 pre-LN block on your weights; causal: later inputs never "
                        "reach earlier outputs)")


def _new_vectors(x, t, rng):
    changed = x.copy()
    changed[:, t] = rng.normal(size=changed[:, t].shape)
    return changed


def _new_tokens(tokens, t, rng, vocab):
    changed = tokens.copy()
    changed[:, t] = (changed[:, t] + rng.integers(1, vocab, size=changed.shape[0])) % vocab
    return changed


def _expect_causal(step, run, inputs, base, perturb, where):
    """Change the input at the middle position t: outputs before t must not move, outputs from t on must."""
    t = inputs.shape[1] // 2     # earlier outputs exist when T >= 2, later ones when T >= 3
    moved = np.abs(_np(run(perturb(inputs, t))) - _np(base)).max(axis=-1).max(axis=0)   # per position
    if t > 0 and moved[:t].max() > 1e-5:
        first = int(np.argmax(moved[:t] > 1e-5))
        fail(step, f"not causal ({where}): changing position {t} moved the output at position {first} "
                   f"(by {moved[first]:.3g}); an output may depend only on its own and earlier positions. "
                   "Is the causal mask missing or transposed?")
    if moved[t:].min() <= 1e-7:
        later = t + int(np.argmin(moved[t:]))
        fail(step, f"({where}) changing position {t} left the output at position {later} unchanged: "
                   f"position {later} should attend to position {t}")
    return 1


# --- 3 · TransformerLM ---------------------------------------------------------------

@dataclass(frozen=True)
class LM:
    vocab_size: int
    max_len: int
    d_model: int
    heads: int
    blocks: int
    mlp_dim: int
    batch: int
    time: int
    seed: int = 0

    @property
    def sizes(self):
        return (self.vocab_size, self.max_len, self.d_model, self.heads, self.blocks, self.mlp_dim)


LM_CASES = (LM(11, 12, 8, 2, 2, 16, batch=2, time=7, seed=3),)


def _keras_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    """count_params() of the Keras layers a TransformerLM is made of, built (not initialised: zeros) on
    the CPU: two embeddings, one block's sublayers times `blocks`, the final norm and the output layer."""
    keras = _keras()
    cheap = dict(kernel_initializer="zeros")
    shape = (None, None, d_model)
    with _cpu():
        counted = 0
        for rows in (vocab_size, max_len):
            embedding = keras.layers.Embedding(rows, d_model, embeddings_initializer="zeros")
            embedding.build((None, None))
            counted += embedding.count_params()
        block = 0
        for layer, input_shape in ((keras.layers.LayerNormalization(), shape),
                                   (keras.layers.LayerNormalization(), shape),
                                   (keras.layers.Dense(mlp_dim, **cheap), shape),
                                   (keras.layers.Dense(d_model, **cheap), (None, None, mlp_dim))):
            layer.build(input_shape)
            block += layer.count_params()
        attention = keras.layers.MultiHeadAttention(num_heads=1, key_dim=d_model, **cheap)
        attention.build(shape, shape)
        block += attention.count_params()
        final_norm, head = keras.layers.LayerNormalization(), keras.layers.Dense(vocab_size, **cheap)
        final_norm.build(shape)
        head.build(shape)
    return counted + blocks * block + final_norm.count_params() + head.count_params()


def _lm_reference(model, tokens, *, positions=True, final_norm=True):
    x = _np(model.token_embedding.embeddings)[tokens]
    if positions:
        x = x + _np(model.position_embedding.embeddings)[: tokens.shape[1]]
    for block in model.blocks:
        x = _block64(x, block)
    if final_norm:
        x = _norm(x, model.final_norm)
    return x @ _np(model.to_logits.kernel) + _np(model.to_logits.bias)


def _lm_structure(step, model, s: LM):
    what = "your TransformerLM"
    tokens = _attribute(step, model, "token_embedding", "Embedding", what)
    positions = _attribute(step, model, "position_embedding", "Embedding", what)
    _attribute(step, model, "final_norm", "LayerNormalization", what)
    head = _attribute(step, model, "to_logits", "Dense", what)
    _expect_epsilon(step, {"final_norm": model.final_norm})
    if tokens.input_dim != s.vocab_size or tokens.output_dim != s.d_model:
        fail(step, f"token_embedding should be Embedding({s.vocab_size}, {s.d_model}), got "
                   f"Embedding({tokens.input_dim}, {tokens.output_dim})")
    if positions.input_dim != s.max_len or positions.output_dim != s.d_model:
        hint = " (one row per position, not per token)" if positions.input_dim == s.vocab_size else ""
        fail(step, f"position_embedding should be Embedding(max_len={s.max_len}, {s.d_model}), got "
                   f"Embedding({positions.input_dim}, {positions.output_dim}){hint}")
    if head.units != s.vocab_size:
        fail(step, f"to_logits should have vocab_size={s.vocab_size} units, got {head.units}")
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, (list, tuple)) or len(blocks) != s.blocks:
        got = len(blocks) if isinstance(blocks, (list, tuple)) else type(blocks).__name__
        fail(step, f"`self.blocks` should be a list of {s.blocks} TransformerBlock layers, got {got}")
    if len({id(b) for b in blocks}) != len(blocks):
        fail(step, "`self.blocks` holds the same TransformerBlock more than once: each block needs its own "
                   "weights (create a new TransformerBlock for each)")
    try:   # build the documented sublayers now (see _prebuild_block); any other structure builds on call
        with _cpu():
            for layer in (tokens, positions):
                if not layer.built:
                    layer.build((None, None))
            for layer in (model.final_norm, head):
                if not layer.built:
                    layer.build((None, None, s.d_model))
        for block in blocks:
            _prebuild_block(block, s.d_model)
    except Exception:  # noqa: BLE001 - a block of another shape: Keras builds it on the first call
        pass


def _run_lm(step, model, tokens):
    with _cpu():
        return call(step, model, tokens)


def check_TransformerLM(TransformerLM, cases=LM_CASES) -> None:
    step, count = "TransformerLM", 0
    for s in cases:
        rng = np.random.default_rng(s.seed)
        with _cpu():
            model = call(step, TransformerLM, *s.sizes)
        tokens = rng.integers(0, s.vocab_size, size=(s.batch, s.time)).astype("int32")
        where = (f"vocab_size={s.vocab_size}, max_len={s.max_len}, d_model={s.d_model}, heads={s.heads}, "
                 f"blocks={s.blocks}, mlp_dim={s.mlp_dim}; tokens of shape {tokens.shape}")
        _lm_structure(step, model, s)
        logits = _run_lm(step, model, tokens)
        expect_shape(step, f"the logits ({where})", logits, (s.batch, s.time, s.vocab_size))
        want_count = _keras_param_count(s.vocab_size, s.max_len, s.d_model, s.blocks, s.mlp_dim)
        got_count = int(model.count_params())
        if got_count != want_count:
            d, V, L = s.d_model, s.vocab_size, s.max_len
            expect_equal(step, f"model.count_params() ({where})", got_count, want_count, diagnoses={
                "no final LayerNormalization": want_count - 2 * d,
                "no position embedding": want_count - L * d,
                "a position embedding with vocab_size rows instead of max_len": want_count - L * d + V * d,
                "an output layer without bias": want_count - V})
        with _cpu():
            _randomise(model, rng, scale=1.0)
        logits = _run_lm(step, model, tokens)
        want = _lm_reference(model, tokens)
        p = _np(logits)
        if np.all(p >= 0) and np.allclose(p.sum(-1), 1.0, atol=1e-4):
            fail(step, "the model returns probabilities (a softmax at the end); return logits: the loss "
                       "is computed with from_logits=True")
        expect_close(step, f"the logits with random weights ({where})", logits, want, diagnoses=lambda: {
            "no position embedding added": _lm_reference(model, tokens, positions=False),
            "no final LayerNormalization before to_logits": _lm_reference(model, tokens, final_norm=False)},
            **F32)
        count += 3
        count += _expect_inference_is_training(step, lambda v, training: call(step, model, v, training=training),
                                               tokens, logits, where)

        def run(v, model=model):
            return _run_lm(step, model, v)

        count += _expect_causal(step, run, tokens, logits, lambda v, t: _new_tokens(v, t, rng, s.vocab_size),
                                where)
        if s.time >= 3:   # order: swap the first two tokens; a later output must notice
            swapped = tokens.copy()
            swapped[:, 0] = tokens[:, 1]
            swapped[:, 1] = np.where(tokens[:, 0] == tokens[:, 1], (tokens[:, 0] + 1) % s.vocab_size,
                                     tokens[:, 0])
            moved = np.abs(_np(run(swapped)) - _np(logits))[:, -1].max()
            if moved <= 1e-6:
                fail(step, f"({where}) swapping the first two tokens left the last output unchanged: "
                           "without positions, attention sees a set of tokens, not a sequence. "
                           "Add the position embedding of positions 0..T-1 to the token embedding")
            count += 1
    passed(step, count, "(logits equal to a float64 forward pass on your weights; causal; sees word order)")


# --- 4 · transformer_param_count ----------------------------------------------------------

PARAM_CASES = ((65, 256, 56, 2, 224), (11, 12, 8, 2, 16), (65, 1024, 352, 2, 1408))


def check_transformer_param_count(transformer_param_count, cases=PARAM_CASES) -> None:
    step, count = "transformer_param_count", 0
    for V, L, d, n, m in cases:
        got = call(step, transformer_param_count, V, L, d, n, m)
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            fail(step, f"the count should be an int, got {type(got).__name__}")
        want = _keras_param_count(V, L, d, n, m)
        attention, mlp, norms = 4 * d * d + 4 * d, 2 * d * m + m + d, 4 * d
        expect_equal(step, f"parameters for vocab_size={V}, max_len={L}, d_model={d}, blocks={n}, mlp_dim={m}",
                     int(got), want, diagnoses={
                         "no position embedding (max_len x d_model)": want - L * d,
                         "attention without its biases (4 x d_model)": want - n * 4 * d,
                         "attention with three projections (the output projection forgotten)":
                             want - n * (d * d + d),
                         "the MLP without biases": want - n * (m + d),
                         "LayerNormalization with one vector (gamma) instead of two": want - (2 * n + 1) * d,
                         "no LayerNormalization at all": want - (4 * n + 2) * d,
                         "no final LayerNormalization": want - 2 * d,
                         "the output layer tied to the token embedding (no separate kernel)": want - d * V,
                         "one block only": want - (n - 1) * (attention + mlp + norms),
                     })
        count += 1
    passed(step, count, "(equal to the closed form that Keras' count_params() agrees with)")


# --- 5 · cached_attention_step ---------------------------------------------------------------

@dataclass(frozen=True)
class Attention:
    batch: int
    time: int
    d_model: int
    heads: int
    key_dim: int
    seed: int = 0
    scale: float = 1.0         # the inputs' spread: a large one gives scores that overflow exp in float32


ATTENTION_CASES = (Attention(2, 5, 6, 2, 3, seed=5), Attention(1, 3, 4, 1, 4, seed=6))


def _attention_layer(s: Attention, rng):
    keras = _keras()
    x = (s.scale * rng.normal(size=(s.batch, s.time, s.d_model))).astype("float32")
    with _cpu():
        mha = keras.layers.MultiHeadAttention(num_heads=s.heads, key_dim=s.key_dim)
        mha(x, x)
        _randomise(mha, rng, scale=1.0)
        full = _np(mha(x, x, use_causal_mask=True))
    return mha, x, full


def _step_mistakes(mha, x, t):
    prefix = x[:, : t + 1].astype(np.float64)
    T = t + 1
    last = lambda out: out[:, -1]   # noqa: E731
    only_self = np.zeros((T, T), bool)
    np.fill_diagonal(only_self, True)
    return {
        "attention to the current token only (the cache is not used)":
            last(_attention64(prefix, mha, only_self)),
        "scores divided by sqrt(d_model) instead of sqrt(key_dim)":
            last(_attention64(prefix, mha, _allowed(T), scale=x.shape[-1])),
        "scores not divided by sqrt(key_dim)": last(_attention64(prefix, mha, _allowed(T), scale=1)),
        "softmax over the heads instead of over the cached positions":
            last(_attention64(prefix, mha, _allowed(T), softmax_axis="heads")),
        "the output projection without its bias":
            last(_attention64(prefix, mha, _allowed(T), output_bias=False)),
        "keys made with the value projection": last(_attention64(prefix, mha, _allowed(T), key_from="value")),
    }


def check_cached_attention_step(cached_attention_step, cases=ATTENTION_CASES) -> None:
    step, count = "cached_attention_step", 0
    for s in cases:
        rng = np.random.default_rng(s.seed)
        mha, x, full = _attention_layer(s, rng)
        keys = _project(x.astype(np.float64), mha.key_dense)
        values = _project(x.astype(np.float64), mha.value_dense)
        where = f"batch={s.batch}, d_model={s.d_model}, heads={s.heads}, key_dim={s.key_dim}"
        k_cache = np.zeros((s.batch, 0, s.heads, s.key_dim), "float32")
        v_cache = np.zeros((s.batch, 0, s.heads, s.key_dim), "float32")
        for t in range(s.time):
            x_t = np.array(x[:, t])
            before = snapshot(x_t)
            with _cpu():
                result = call(step, cached_attention_step, mha, x_t, k_cache, v_cache)
            if not isinstance(result, (tuple, list)) or len(result) != 3:
                fail(step, "should return a tuple (y_t, k_cache, v_cache), got "
                           f"{type(result).__name__}{f' of {len(result)}' if isinstance(result, (tuple, list)) else ''}")
            y_t, k_cache, v_cache = result
            expect_unchanged(step, "x_t", before[0], x_t)
            at = f"step t={t} ({where})"
            shape = (s.batch, t + 1, s.heads, s.key_dim)
            for name, cache in (("k_cache", k_cache), ("v_cache", v_cache)):
                projected = keys if name == "k_cache" else values
                got = _cache_shape(step, f"the returned {name} at {at}", cache, shape, t, projected)
                want = projected[:, : t + 1]
                expect_close(step, f"the returned {name} at {at}", got, want, diagnoses=lambda name=name: {
                    "the keys and values swapped": (values if name == "k_cache" else keys)[:, : t + 1]}, **F32)
            expect_close(step, f"y_t at {at}, against Keras' causal attention over positions 0..{t}",
                         y_t, full[:, t], diagnoses=lambda t=t: _step_mistakes(mha, x, t), **F32)
            count += 1
    passed(step, count, "(every step equal to keras.layers.MultiHeadAttention with use_causal_mask=True "
                        "over the whole prefix)")


def _cache_shape(step, what, cache, shape, t, projected):
    """The cache as an array of `shape`, or a failure that says how it failed to grow."""
    array = np.asarray(cache.numpy() if hasattr(cache, "numpy") else cache, dtype=np.float64)
    if array.ndim == 4 and array.shape[1] != shape[1] and array.shape[0] == shape[0]:
        if array.shape[1] == 1 and np.allclose(array[:, 0], projected[:, t], **F32):
            fail(step, f"{what} has shape {array.shape}, expected {shape}: the cache was replaced by the new "
                       "position instead of growing by one (concatenate along axis 1)")
        if array.shape[1] == t:
            fail(step, f"{what} has shape {array.shape}, expected {shape}: the new position was not appended "
                       "(concatenate it to the cache along axis 1)")
    return expect_shape(step, what, array, shape)


# --- 6, 7 · the linear recurrence ----------------------------------------------------------------

@dataclass(frozen=True)
class Recurrence:
    batch: int
    time: int
    dim: int
    seed: int = 0
    constant: bool = False     # a and b the same at every step: the geometric sum applies
    low: float = -1.0          # a drawn from [low, high)
    high: float = 1.0


LOOP_CASES = (Recurrence(2, 7, 3, seed=7), Recurrence(3, 5, 2, seed=8, low=0.5, high=1.0),
              Recurrence(2, 6, 2, seed=9, constant=True))
SCAN_CASES = LOOP_CASES


def recurrence_inputs(s: Recurrence):
    rng = np.random.default_rng(s.seed)
    if s.constant:
        a = np.broadcast_to(rng.uniform(s.low, s.high, size=(s.batch, 1, s.dim)), (s.batch, s.time, s.dim))
        b = np.broadcast_to(rng.normal(size=(s.batch, 1, s.dim)), (s.batch, s.time, s.dim))
        a, b = np.array(a), np.array(b)
    else:
        a = rng.uniform(s.low, s.high, size=(s.batch, s.time, s.dim))
        b = rng.normal(size=(s.batch, s.time, s.dim))
    return a, b, rng.normal(size=(s.batch, s.dim))


# The states of the visible cases come from the instructor's reference, stored with the release
# (course/checks/expected/rnn_vs_transformer.npz); the hidden tests pass the reference itself.
ref = stored("rnn_vs_transformer")


def _mistaken_states(a, b, h0):
    """The loop on the inputs a mistake feeds it (never on the case's own inputs: see _recurrence_mistakes)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.empty_like(b)
    state = np.asarray(h0, np.float64)
    for t in range(b.shape[1]):
        state = a[:, t] * state + b[:, t]
        out[:, t] = state
    return out


def geometric(a, b, h0, T):
    """Closed form for constant a, b (batch, dim): a^(t+1) h0 + b (1 + a + ... + a^t)."""
    powers = a[:, None, :] ** np.arange(1, T + 1)[None, :, None]
    partial = np.cumsum(np.concatenate([np.ones_like(powers[:, :1]), powers[:, :-1]], axis=1), axis=1)
    return powers * h0[:, None, :] + b[:, None, :] * partial


@np.errstate(all="ignore")   # swapping a and b may overflow: compared, never shown
def _recurrence_mistakes(a, b, h0, ref):
    folded = b.copy()
    folded[:, 0] = a[:, 0] * h0 + b[:, 0]

    def fold_left(combine):   # a sequential prefix fold of (a, b) pairs with `combine`
        acc = (a[:, 0], folded[:, 0])
        out = [acc[1]]
        for t in range(1, b.shape[1]):
            acc = combine(acc, (a[:, t], folded[:, t]))
            out.append(acc[1])
        return np.stack(out, axis=1)

    batch_axis = np.empty_like(folded)      # the recurrence run along the batch axis instead of time
    batch_axis[0] = folded[0]
    for i in range(1, b.shape[0]):
        batch_axis[i] = a[i] * batch_axis[i - 1] + folded[i]
    mistakes = {
        "h0 ignored (the recurrence started from zeros)": _mistaken_states(a, b, np.zeros_like(h0)),
        "h0 added to b_0 without the factor a_0": _mistaken_states(a, np.concatenate(
            [b[:, :1] + h0[:, None], b[:, 1:]], axis=1), np.zeros_like(h0)),
        "the states shifted by one step (h0 first, the last state missing)":
            np.concatenate([h0[:, None], ref[:, :-1]], axis=1),
        "a and b swapped (state = b_t * state + a_t)": _mistaken_states(b, a, h0),
        "the combine operator in the wrong order ((a1, b1), (a2, b2) -> (a1 a2, a1 b2 + b1))":
            fold_left(lambda e, l: (e[0] * l[0], e[0] * l[1] + e[1])),
        "the scan run backwards in time (reverse=True)":
            _mistaken_states(a[:, ::-1], folded[:, ::-1], np.zeros_like(h0))[:, ::-1],
        "h0 used at every step (the state is not carried)": a * h0[:, None] + b,
    }
    if b.shape[0] > 1:
        mistakes["the scan over the batch axis (axis=0) instead of time (axis=1)"] = batch_axis
    return mistakes


def _backend_keeps_float64() -> bool:
    """False on JAX without x64 mode, which turns every float64 array into float32."""
    ops = _keras().ops
    return np.asarray(ops.add(ops.convert_to_tensor(np.zeros(1)), 0.0)).dtype == np.float64


def _check_recurrence(step, fn, cases, note, reference=None, mechanism=None):
    """``reference``: has linear_recurrence(a, b, h0) -> float64 states; None: the stored ``ref``."""
    count = 0
    reference = reference or ref
    exact = _backend_keeps_float64()
    for s in cases:
        a, b, h0 = recurrence_inputs(s)
        ref_states = np.asarray(reference.linear_recurrence(*(np.asarray(v, np.float64) for v in (a, b, h0))),
                                np.float64)
        where = f"batch={s.batch}, T={s.time}, dim={s.dim}{', a and b constant in time' if s.constant else ''}"
        tight = dict(rtol=1e-9, atol=1e-9) if exact else dict(rtol=1e-4, atol=1e-5)
        for dtype, tolerance in (("float64", tight), ("float32", dict(rtol=1e-4, atol=1e-5))):
            args = [np.array(v, dtype=dtype) for v in (a, b, h0)]
            before = snapshot(*args)
            with _cpu():
                got = call(step, fn, *args)
            for name, old, new in zip(("a", "b", "h0"), before, args):
                expect_unchanged(step, name, old, new)
            shape = (s.batch, s.time, s.dim)
            array = np.asarray(got.numpy() if hasattr(got, "numpy") else got)
            if array.shape == (s.batch, s.dim) and s.time > 1:
                fail(step, f"returned shape {array.shape}: only the last state; return every state, "
                           f"(batch, T, dim) = {shape}")
            if array.shape == (s.time, s.batch, s.dim) and s.time != s.batch:
                fail(step, f"returned shape {array.shape}: time first; stack the states along axis 1 to get "
                           f"(batch, T, dim) = {shape}")
            expect_shape(step, f"H ({where})", array, shape)
            if dtype == "float64" and exact and np.asarray(array).dtype != np.float64:
                fail(step, f"float64 inputs gave a {np.asarray(array).dtype} result: keep the inputs' dtype "
                           "(no cast to float32)")
            expect_close(step, f"H from {dtype} inputs ({where}), against a float64 loop", array, ref_states,
                         diagnoses=lambda args=args: _recurrence_mistakes(
                             *[np.asarray(v, np.float64) for v in args], ref_states),
                         **tolerance)
            if s.constant:
                closed = geometric(args[0][:, 0].astype(np.float64), args[1][:, 0].astype(np.float64),
                                   args[2].astype(np.float64), s.time)
                expect_close(step, f"H from {dtype} inputs ({where}), against the geometric sum "
                                   "a^(t+1) h0 + b (1 + a + ... + a^t)", array, closed, **tolerance)
            count += 1
    if mechanism is not None:   # after the values: a wrong answer hears about its values first
        mechanism()
        count += 1
    passed(step, count, note)


SCAN_NAMES = ("associative_scan", "scan", "cumprod", "cumsum")


def _code_of(fn):
    """The syntax tree of a function's own code, or None where Python cannot find its source."""
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None


def _called_names(tree) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def _code_trees(fn, depth=2) -> list:
    """The code of ``fn`` and of the functions of its own module that it calls (``depth`` levels down)."""
    trees, seen = [], set()

    def visit(f, left):
        if id(f) in seen:
            return
        seen.add(id(f))
        tree = _code_of(f)
        if tree is None:
            return
        trees.append(tree)
        space = getattr(f, "__globals__", {})
        for name in _called_names(tree) if left else ():
            helper = space.get(name)
            if inspect.isfunction(helper) and helper.__module__ == f.__module__:
                visit(helper, left - 1)

    visit(fn, depth)
    return trees


def _expect_mechanism(step, fn, loop: bool) -> None:
    """The step's mechanism, read off its code (and its own helpers'): a loop over time, or
    keras.ops.associative_scan."""
    trees = _code_trees(fn)
    if not trees:
        return
    called = set().union(*(_called_names(tree) for tree in trees))
    if loop:
        loops = (ast.For, ast.While, ast.comprehension)
        if not any(isinstance(node, loops) for tree in trees for node in ast.walk(tree)):
            fail(step, "the function has no loop: this step computes the states one step at a time with a "
                       "for loop over t (the scan is the next step)")
        used = sorted(called & set(SCAN_NAMES))
        if used:
            fail(step, f"the function calls {', '.join(used)}: this step is the plain loop, h = a_t * h + b_t "
                       "for each t; the scan is the next step")
    elif "associative_scan" not in called:
        fail(step, "the function never calls keras.ops.associative_scan: this step computes the states with "
                   "the parallel scan (ops.associative_scan(combine, (a, b), axis=1)), not a loop")


def check_linear_recurrence_loop(linear_recurrence_loop, cases=LOOP_CASES, reference=None) -> None:
    step = "linear_recurrence_loop"
    _check_recurrence(step, linear_recurrence_loop, cases, "(equal to a float64 loop, and to the geometric sum when "
                      "a and b are constant; a loop over time)", reference, lambda: _expect_mechanism(
                          step, linear_recurrence_loop, loop=True))


def check_linear_recurrence_scan(linear_recurrence_scan, cases=SCAN_CASES, reference=None) -> None:
    step = "linear_recurrence_scan"
    _check_recurrence(step, linear_recurrence_scan, cases, "(equal to a float64 loop, and to the geometric sum when "
                      "a and b are constant; keras.ops.associative_scan)", reference, lambda: _expect_mechanism(
                          step, linear_recurrence_scan, loop=False))


# --- 8 · MinGRU, a trainable layer on the scan -------------------------------------------------------

MINGRU_WEIGHTS = ("gate_kernel", "gate_bias", "candidate_kernel", "candidate_bias")


@dataclass(frozen=True)
class MinGRUCase:
    batch: int
    time: int
    d_in: int
    units: int
    seed: int = 0
    scale: float = 1.0          # spread of the random kernels (large: saturated gates)


MINGRU_CASES = (MinGRUCase(2, 7, 3, 4, seed=21), MinGRUCase(1, 5, 4, 2, seed=22))


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))     # no overflow for large |v|


def min_gru_loop(x, w, *, gate=_sigmoid, candidate=lambda v: v, mix="new", reverse=False, carry=True,
                 bias=True, swap=False):
    """minGRU's states by the plain loop in float64, from the layer's weights ``w`` (a dict by name):
    z_t = sigmoid(x_t W_z + b_z), c_t = x_t W_c + b_c, h_t = (1 - z_t) h_(t-1) + z_t c_t from h_0 = 0.
    The keywords make the known mistakes."""
    x = np.asarray(x, np.float64)
    gk, gb, ck, cb = (np.asarray(w[n], np.float64) for n in MINGRU_WEIGHTS)
    if swap:
        gk, ck, gb, cb = ck, gk, cb, gb
    if not bias:
        gb, cb = np.zeros_like(gb), np.zeros_like(cb)
    z = gate(x @ gk + gb)
    c = candidate(x @ ck + cb)
    order = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    h = np.zeros((x.shape[0], gk.shape[1]))
    out = np.empty((x.shape[0], x.shape[1], gk.shape[1]))
    for t in order:
        keep = h if carry else np.zeros_like(h)
        h = (1 - z[:, t]) * keep + z[:, t] * c[:, t] if mix == "new" else z[:, t] * keep + (1 - z[:, t]) * c[:, t]
        out[:, t] = h
    return out


@np.errstate(all="ignore")
def _min_gru_mistakes(x, w):
    return {
        "no sigmoid on the gate (z_t = x_t W_z + b_z)": min_gru_loop(x, w, gate=lambda v: v),
        "the mixing the other way round (h_t = z_t h_(t-1) + (1 - z_t) c_t)": min_gru_loop(x, w, mix="old"),
        "the scan run backwards in time (each output reads the later inputs)": min_gru_loop(x, w, reverse=True),
        "tanh on the candidate (minGRU's candidate is linear: c_t = x_t W_c + b_c)":
            min_gru_loop(x, w, candidate=np.tanh),
        "the state not carried (h_t = z_t c_t)": min_gru_loop(x, w, carry=False),
        "the biases left out": min_gru_loop(x, w, bias=False),
        "the gate's and the candidate's weights swapped": min_gru_loop(x, w, swap=True),
    }


def _weight(step, layer, name, shape):
    try:
        variable = getattr(layer, name)
    except AttributeError:
        variable = None
    if variable is None:
        fail(step, f"your MinGRU has no attribute `{name}` after its first call: create it in build() with "
                   f"`self.{name} = self.add_weight(shape=..., name=\"{name}\")` (the check reads the weights "
                   "by these names)")
    got = tuple(int(v) for v in variable.shape)
    if got != tuple(shape):
        fail(step, f"`self.{name}` has shape {got}, expected {tuple(shape)}" +
             (" (the axes are reversed: kernels are (input dim, units), as x @ W needs)"
              if got == tuple(shape)[::-1] and len(shape) == 2 else ""))
    if not bool(variable.trainable):
        fail(step, f"`self.{name}` is not trainable: add_weight(..., trainable=True) (the default), or the "
                   "optimiser never changes it")
    return variable


def _construct(step, cls, *args, **kwargs):
    """Make a layer of the student's class under the step's rule, less what only its call must run (the scan)."""
    import dataclasses

    from . import expect_allowed_source, watched_call
    from ..rules import rule as rule_of

    rule = dataclasses.replace(rule_of(UNIT, step), require=())
    if callable(cls):
        expect_allowed_source(step, rule, cls)
    return watched_call(step, rule, cls, *args, **kwargs)


def check_MinGRU(MinGRU, cases=MINGRU_CASES) -> None:
    step, count = "MinGRU", 0
    exact = _backend_keeps_float64()
    for s in cases:
        rng = np.random.default_rng(s.seed)
        where = f"batch={s.batch}, T={s.time}, input dim {s.d_in}, units={s.units}"
        x = rng.normal(size=(s.batch, s.time, s.d_in))
        with _cpu():
            layer = _construct(step, MinGRU, s.units, dtype="float64")
            call(step, layer, x[:, :2])                 # builds the weights
        shapes = {"gate_kernel": (s.d_in, s.units), "gate_bias": (s.units,),
                  "candidate_kernel": (s.d_in, s.units), "candidate_bias": (s.units,)}
        variables = {name: _weight(step, layer, name, shape) for name, shape in shapes.items()}
        trainable = len(layer.trainable_weights)
        if trainable != 4:
            fail(step, f"your MinGRU has {trainable} trainable weights, expected 4 (gate_kernel, gate_bias, "
                       "candidate_kernel, candidate_bias) and nothing else")
        want_count = 2 * (s.d_in * s.units + s.units)
        got_count = int(layer.count_params())
        if got_count != want_count:
            fail(step, f"count_params() is {got_count}, expected 2 * (input dim * units + units) = {want_count}")
        weights = {}
        for name, variable in variables.items():
            size = s.d_in if name.endswith("kernel") else 1
            value = rng.normal(size=shapes[name]) * (s.scale / math.sqrt(size) if size > 1 else 0.5)
            variable.assign(value)
            weights[name] = value
        before = snapshot(x)
        with _cpu():
            got = call(step, layer, x)
        expect_unchanged(step, "x", before[0], x)
        array = np.asarray(got.numpy() if hasattr(got, "numpy") else got)
        if array.shape == (s.batch, s.units) and s.time > 1:
            fail(step, f"the layer returned shape {array.shape}: the last state only; return every state, "
                       f"(batch, T, units) = {(s.batch, s.time, s.units)}")
        want = min_gru_loop(x, weights)
        if exact and array.dtype != np.float64:
            fail(step, f"MinGRU(..., dtype='float64') gave {array.dtype} outputs: compute in the layer's dtype "
                       "(no cast to float32)")
        tight = dict(rtol=1e-9, atol=1e-9) if exact else dict(rtol=1e-4, atol=1e-5)
        expect_close(step, f"the outputs ({where}, float64), against minGRU's step-by-step loop on the layer's "
                           "weights", array, want, diagnoses=lambda: _min_gru_mistakes(x, weights), **tight)
        count += 1
        if exact and s is cases[0]:
            _expect_derivatives(step, layer, variables, weights, x, where)
            count += 1
        if s.time > 1:                                 # causality: the later inputs changed, the earlier kept
            cut = s.time // 2
            moved = np.array(x)
            moved[:, cut:] += rng.normal(size=moved[:, cut:].shape)
            with _cpu():
                again = call(step, layer, moved)
            again = np.asarray(again.numpy() if hasattr(again, "numpy") else again, np.float64)
            if not np.allclose(again[:, :cut], array[:, :cut], rtol=0, atol=1e-12):
                fail(step, f"changing the inputs from position {cut} on changed the outputs before it ({where}): "
                           "the output at t may read x_1..x_t only (is the scan run backwards?)")
            if np.allclose(again[:, cut:], array[:, cut:], rtol=0, atol=1e-12):
                fail(step, f"changing the inputs from position {cut} on left the later outputs unchanged ({where})")
            count += 1
        with _cpu():                                   # float32, as it trains
            layer32 = _construct(step, MinGRU, s.units)
            call(step, layer32, x[:, :2].astype("float32"))
            for name in MINGRU_WEIGHTS:
                getattr(layer32, name).assign(weights[name].astype("float32"))
            got32 = call(step, layer32, x.astype("float32"))
        expect_close(step, f"the outputs ({where}, float32)", got32, want, rtol=1e-4, atol=1e-4)
        count += 1
    passed(step, count, "(equal to minGRU's loop on the layer's own weights in float64 and float32, causal, "
                        "4 trainable weights, each moving the outputs as minGRU's derivative says)")


def _expect_derivatives(step, layer, variables, weights, x, where):
    """Every weight moves the outputs, with the derivative of minGRU itself: a central difference of the layer's
    outputs along a random direction of each weight, against the same difference of the float64 loop. (The
    gradient Keras computes is the derivative of what call() computes from the weights; a weight that call()
    does not use, or uses wrongly, shows here by name.)"""
    rng = np.random.default_rng(7)
    project = rng.normal(size=(x.shape[0], x.shape[1], weights["gate_bias"].shape[0]))
    eps = 1e-5
    for name, variable in variables.items():
        direction = rng.normal(size=weights[name].shape)
        moved = {}
        for sign in (1, -1):
            value = weights[name] + sign * eps * direction
            variable.assign(value)
            with _cpu():
                out = call(step, layer, x)
            moved[sign] = float((np.asarray(out.numpy() if hasattr(out, "numpy") else out, np.float64) * project).sum())
        variable.assign(weights[name])
        got = (moved[1] - moved[-1]) / (2 * eps)
        loops = [float((min_gru_loop(x, {**weights, name: weights[name] + sign * eps * direction}) * project).sum())
                 for sign in (1, -1)]
        want = (loops[0] - loops[1]) / (2 * eps)
        if not np.isfinite(got) or got == 0.0:
            fail(step, f"the outputs do not move when `self.{name}` changes ({where}; derivative {got}): call() must "
                       "use every weight, or no gradient reaches it")
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6):
            fail(step, f"the derivative of the outputs with respect to `self.{name}` is {got:.6g}, minGRU's is "
                       f"{want:.6g} ({where}): see how {name} enters z_t or c_t")


# --- 9 · associative_recall_batch ------------------------------------------------------------------

@dataclass(frozen=True)
class Recall:
    batch: int
    n_pairs: int
    n_queries: int
    n_keys: int
    n_values: int
    seed: int = 0


RECALL_CASES = (Recall(3000, 6, 3, 12, 8, seed=31), Recall(4, 3, 3, 3, 5, seed=32))

Z_ONE_IN_TEN_MILLION = 5.199   # the standard normal's upper 1e-7 point


def chi_square_limit(df: int) -> float:
    """A value that a chi-square variable of ``df`` degrees of freedom exceeds less than once in 10^7
    (Wilson-Hilferty): every test of a distribution below raises a false alarm at most that often."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + Z_ONE_IN_TEN_MILLION * math.sqrt(a)) ** 3


def _uniform_rows(table) -> tuple[float, int]:
    """Chi-square statistic and degrees of freedom of 'each row of counts is uniform over its columns'."""
    table = np.asarray(table, np.float64)
    expected = table.sum(axis=1, keepdims=True) / table.shape[1]
    stat = float(((table - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    return stat, table.shape[0] * (table.shape[1] - 1)


def _expect_uniform(step, table, what, hint):
    stat, df = _uniform_rows(table)
    limit = chi_square_limit(df)
    if df > 0 and stat > limit:
        fail(step, f"{what} is not uniform (chi-square {stat:.0f} with {df} degrees of freedom; a correct sampler "
                   f"stays below {limit:.0f} but once in 10^7): {hint}")


def _recall_arrays(step, result, s: Recall, where):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(step, "should return a tuple (tokens, targets), got "
                   f"{type(result).__name__}{f' of {len(result)}' if isinstance(result, (tuple, list)) else ''}")
    out = []
    for name, value, shape in (("tokens", result[0], (s.batch, 2 * s.n_pairs + s.n_queries)),
                               ("targets", result[1], (s.batch, s.n_queries))):
        array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if array.dtype != np.int32:
            fail(step, f"{name} has dtype {array.dtype}, expected int32 (token ids for an Embedding layer)")
        expect_shape(step, f"{name} ({where})", array, shape)
        out.append(array)
    return out


def _recall_structure(step, tokens, targets, s: Recall, where):
    P, Q, K, V = s.n_pairs, s.n_queries, s.n_keys, s.n_values
    keys, values, queries = tokens[:, 0:2 * P:2], tokens[:, 1:2 * P:2], tokens[:, 2 * P:]
    if keys.size and (keys.min() < 0 or keys.max() >= K):
        fail(step, f"a key (positions 0, 2, 4, ...) is {keys.min() if keys.min() < 0 else keys.max()}; keys are "
                   f"the ids 0..{K - 1} ({where})")
    if values.size and (values.min() < K or values.max() >= K + V):
        fail(step, f"a value (positions 1, 3, 5, ...) is {values.min() if values.min() < K else values.max()}; "
                   f"values are the ids {K}..{K + V - 1}, after the keys ({where})")
    sorted_keys = np.sort(keys, axis=1)
    repeated = (sorted_keys[:, 1:] == sorted_keys[:, :-1]).any(axis=1)
    if repeated.any():
        row = int(np.argmax(repeated))
        fail(step, f"row {row} holds the key {int(sorted_keys[row][np.argmax(sorted_keys[row, 1:] == sorted_keys[row, :-1])])} "
                   f"twice ({where}): the keys of one sequence must be distinct (draw them without replacement), or "
                   "a query would have two answers")
    if queries.min() < 0 or queries.max() >= K:
        fail(step, f"a query is {queries.min() if queries.min() < 0 else queries.max()}; queries are keys, ids "
                   f"0..{K - 1} ({where})")
    match = queries[:, :, None] == keys[:, None, :]              # (batch, Q, P)
    unknown = ~match.any(axis=2)
    if unknown.any():
        row, q = (int(i) for i in np.argwhere(unknown)[0])
        fail(step, f"row {row}: query {q} is the key {int(queries[row, q])}, which is not among that row's keys "
                   f"{keys[row].tolist()} ({where}): query keys seen earlier in the same sequence")
    sorted_queries = np.sort(queries, axis=1)
    if (sorted_queries[:, 1:] == sorted_queries[:, :-1]).any():
        row = int(np.argmax((sorted_queries[:, 1:] == sorted_queries[:, :-1]).any(axis=1)))
        fail(step, f"row {row} queries the same key twice ({queries[row].tolist()}, {where}): choose the queried "
                   "pairs without replacement")
    pair = np.argmax(match, axis=2)                               # (batch, Q): which pair each query asks for
    answer = np.take_along_axis(values, pair, axis=1)
    if not np.array_equal(targets, answer):
        row, q = (int(i) for i in np.argwhere(targets != answer)[0])
        message = (f"row {row}: the target of query {q} (key {int(queries[row, q])}) is {int(targets[row, q])}, "
                   f"but that key's value is {int(answer[row, q])} ({where})")
        shifted = np.take_along_axis(values, np.minimum(pair + 1, P - 1), axis=1)
        if P > 1 and np.array_equal(targets[pair < P - 1], shifted[pair < P - 1]):
            message += "; the targets are the values of the next pair (shifted by one)"
        elif np.array_equal(targets, queries):
            message += "; the targets are the queries themselves"
        elif np.array_equal(targets, answer - K):
            message += f"; the targets are value indices 0..{V - 1}: use the value's token id (index + n_keys)"
        fail(step, message)
    return keys, values, pair


def _recall_distribution(step, keys, values, pair, s: Recall, where):
    P, Q, K, V = s.n_pairs, s.n_queries, s.n_keys, s.n_values
    if s.batch >= 10 * K and K > 1:
        table = np.zeros((P, K))
        np.add.at(table, (np.broadcast_to(np.arange(P), keys.shape), keys), 1)
        _expect_uniform(step, table, f"the key at each pair position ({where})",
                        "draw the keys of a sequence uniformly, without replacement and in random order "
                        "(rng.choice(n_keys, n_pairs, replace=False) or rng.permutation), not sorted")
    if s.batch * P >= 10 * K * V and V > 1:
        table = np.zeros((K, V))
        np.add.at(table, (keys.ravel(), values.ravel() - K), 1)
        _expect_uniform(step, table, f"the value given to each key ({where})",
                        "draw every value uniformly over the n_values ids, on its own: a value must not "
                        "follow from its key, or the task can be solved without looking back")
    if s.batch >= 10 * P and P > 1:
        table = np.zeros((Q, P))
        np.add.at(table, (np.broadcast_to(np.arange(Q), pair.shape), pair), 1)
        _expect_uniform(step, table, f"which pair each query asks for ({where})",
                        "choose the queried pairs uniformly among all pairs, without replacement and in random "
                        "order (not the first or the last ones, not in the order they appeared)")


def _expect_uniform_pairs(step, first, second, shape, what, hint, distinct=False):
    """One (first, second) pair per row, e.g. a row's first two keys: uniform over the `shape` grid (off its
    diagonal when `distinct`), as independent draws make it. Tested only when every cell expects at least ten
    rows; like every test here it raises a false alarm less than once in 10^7 (chi_square_limit)."""
    table = np.zeros(shape)
    np.add.at(table, (first, second), 1)
    cells = table[~np.eye(*shape, dtype=bool)] if distinct else table.ravel()
    if len(first) >= 10 * cells.size and cells.size > 1:
        _expect_uniform(step, cells[None, :], what, hint)


def _recall_rows(step, keys, values, pair, s: Recall, where):
    """Within one row: the first two keys, values and queried pairs, each pair over its rows."""
    P, Q, K, V = s.n_pairs, s.n_queries, s.n_keys, s.n_values
    if P > 1:
        _expect_uniform_pairs(step, keys[:, 0], keys[:, 1], (K, K),
                              f"the pair (first key, second key) of a row ({where})",
                              "the keys of one row follow from each other (a run of consecutive ids?); draw them "
                              "together with rng.choice(n_keys, size=n_pairs, replace=False)", distinct=True)
        _expect_uniform_pairs(step, values[:, 0] - K, values[:, 1] - K, (V, V),
                              f"the pair (first value, second value) of a row ({where})",
                              "the values of one row follow from each other (one value repeated for the whole "
                              "row, or consecutive ids?); draw every value on its own, "
                              "rng.integers(0, n_values, size=n_pairs)")
    if Q > 1:
        _expect_uniform_pairs(step, pair[:, 0], pair[:, 1], (P, P),
                              f"the pairs asked by a row's first two queries ({where})",
                              "the queried pairs of one row follow from each other (a run of consecutive pairs?); "
                              "choose them with rng.choice(n_pairs, size=n_queries, replace=False)", distinct=True)


def check_associative_recall_batch(associative_recall_batch, cases=RECALL_CASES) -> None:
    step, count = "associative_recall_batch", 0
    for s in cases:
        args = (s.batch, s.n_pairs, s.n_queries, s.n_keys, s.n_values)
        where = (f"batch={s.batch}, n_pairs={s.n_pairs}, n_queries={s.n_queries}, n_keys={s.n_keys}, "
                 f"n_values={s.n_values}")
        saved = np.random.get_state()
        try:
            np.random.seed(1)
            rng = np.random.default_rng(s.seed)
            state = rng.bit_generator.state
            tokens, targets = _recall_arrays(step, call(step, associative_recall_batch, rng, *args), s, where)
            if s.batch * s.n_pairs >= 200 and rng.bit_generator.state == state:
                fail(step, "the generator `rng` it was given is unchanged after the call: draw everything from it "
                           "(rng.choice, rng.permutation, rng.integers)")
            np.random.seed(2)
            again = _recall_arrays(step, call(step, associative_recall_batch, np.random.default_rng(s.seed), *args),
                                   s, where)
        finally:
            np.random.set_state(saved)
        if not (np.array_equal(tokens, again[0]) and np.array_equal(targets, again[1])):
            fail(step, f"two generators made from the same seed gave different batches ({where}): draw from the "
                       "`rng` argument only, never from the global np.random")
        count += 1
        keys, values, pair = _recall_structure(step, tokens, targets, s, where)
        count += 1
        if s.batch * s.n_pairs >= 200:
            other = _recall_arrays(step, call(step, associative_recall_batch, np.random.default_rng(s.seed + 1),
                                              *args), s, where)
            if np.array_equal(tokens, other[0]):
                fail(step, f"seeds {s.seed} and {s.seed + 1} gave the same batch: the generator must choose the data")
            _recall_distribution(step, keys, values, pair, s, where)
            _recall_rows(step, keys, values, pair, s, where)
            count += 1
    passed(step, count, "(distinct keys, queries among them, targets their values, uniform and independent draws "
                        "from the rng it is given)")
