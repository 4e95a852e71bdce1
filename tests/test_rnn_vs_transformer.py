"""Unit 07 (RNN against Transformer): the facts the notebook teaches, checked against Keras,
and checks that accept correct answers written another way and name the usual wrong ones."""
import numpy as np
import pytest

from autograder.hidden import rnn_vs_transformer as hidden
from autograder.reference import rnn_vs_transformer as ref
from course.checks import CheckFailed
from course.checks import rnn_vs_transformer as visible
from course.env import import_keras

keras = import_keras()
ops = keras.ops


# Correct answers written another way than the notebook's.
def causal_mask(T):
    return np.greater_equal.outer(np.arange(T), np.arange(T))


class TransformerBlock(keras.layers.Layer):
    def __init__(self, d_model, heads, mlp_dim, **kwargs):
        super().__init__(**kwargs)
        self.norm1, self.norm2 = (keras.layers.LayerNormalization(epsilon=1e-5) for _ in range(2))
        self.attention = keras.layers.MultiHeadAttention(heads, d_model // heads)
        self.mlp_in = keras.layers.Dense(mlp_dim, activation=keras.activations.gelu)
        self.mlp_out = keras.layers.Dense(d_model)

    def call(self, x):
        T = x.shape[1]
        mask = causal_mask(T)[None]                    # an explicit mask instead of use_causal_mask
        a = self.norm1(x)
        h = ops.add(x, self.attention(query=a, value=a, key=a, attention_mask=mask))
        return ops.add(h, self.mlp_out(self.mlp_in(self.norm2(h))))


class TransformerLM(keras.Model):
    def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
        self.position_embedding = keras.layers.Embedding(max_len, d_model)
        self.blocks = []
        for _ in range(blocks):
            self.blocks.append(TransformerBlock(d_model, heads, mlp_dim))
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.to_logits = keras.layers.Dense(vocab_size)

    def call(self, tokens):
        T = tokens.shape[1]
        x = self.token_embedding(tokens) + self.position_embedding(np.arange(T))[None]
        for block in self.blocks:
            x = block(x)
        return self.to_logits(self.final_norm(x))


def cached_attention_step(mha, x, k_cache, v_cache):
    x = np.asarray(x, np.float32)
    w = {name: [np.asarray(v) for v in getattr(mha, name).weights]
         for name in ("query_dense", "key_dense", "value_dense", "output_dense")}
    q, k, v = (np.tensordot(x, w[n][0], axes=1) + w[n][1] for n in ("query_dense", "key_dense", "value_dense"))
    keys = np.concatenate([np.asarray(k_cache), k[:, None]], axis=1)
    values = np.concatenate([np.asarray(v_cache), v[:, None]], axis=1)
    s = (keys * q[:, None]).sum(-1) / np.sqrt(q.shape[-1])          # (batch, t + 1, heads)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    context = (p[..., None] * values).sum(axis=1)                 # (batch, heads, key_dim)
    return np.tensordot(context, w["output_dense"][0], axes=2) + w["output_dense"][1], keys, values


def recurrence_loop(a, b, h0):
    out, h = [], np.asarray(h0)
    for t in range(np.shape(a)[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return np.stack(out, 1)


def recurrence_scan(a, b, h0):
    # Another correct way: scan without h0, then add the decayed h0 (cumulative products of a).
    def combine(x, y):
        return x[0] * y[0], y[0] * x[1] + y[1]
    prods, sums = ops.associative_scan(combine, (ops.convert_to_tensor(a), ops.convert_to_tensor(b)), axis=1)
    return prods * ops.convert_to_tensor(h0)[:, None] + sums


class MinGRU(keras.layers.Layer):
    """minGRU written another way: one kernel for gate and candidate together, split after the product."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        for name in ("gate", "candidate"):
            setattr(self, f"{name}_kernel", self.add_weight(shape=(input_shape[-1], self.units), name=f"{name}_kernel"))
            setattr(self, f"{name}_bias", self.add_weight(shape=(self.units,), initializer="zeros", name=f"{name}_bias"))

    def call(self, x):
        both = ops.einsum("btd,du->btu", x, ops.concatenate([self.gate_kernel, self.candidate_kernel], axis=1))
        both = both + ops.concatenate([self.gate_bias, self.candidate_bias])
        z, candidate = both[..., : self.units], both[..., self.units:]
        keep = ops.exp(-ops.softplus(z))                   # 1 - sigmoid(z), without a subtraction
        return recurrence_scan(keep, (1 - keep) * candidate, ops.zeros_like(candidate[:, 0]))


def recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    """Associative recall written another way: the whole batch at once, by sorting random numbers."""
    keys = np.argsort(rng.random((batch, n_keys)), axis=1)[:, :n_pairs]
    values = n_keys + rng.integers(0, n_values, size=(batch, n_pairs))
    asked = np.argsort(rng.random((batch, n_pairs)), axis=1)[:, :n_queries]
    pairs = np.stack([keys, values], axis=2).reshape(batch, 2 * n_pairs)
    tokens = np.concatenate([pairs, np.take_along_axis(keys, asked, axis=1)], axis=1)
    return tokens.astype(np.int32), np.take_along_axis(values, asked, axis=1).astype(np.int32)


@pytest.mark.parametrize("step, fn", [
    ("MinGRU", MinGRU), ("associative_recall_batch", recall_batch),
    ("causal_mask", causal_mask), ("TransformerBlock", TransformerBlock), ("TransformerLM", TransformerLM),
    ("cached_attention_step", cached_attention_step), ("linear_recurrence_loop", recurrence_loop),
    ("linear_recurrence_scan", recurrence_scan),
    ("transformer_param_count", lambda V, L, d, n, m: (V + L) * d + n * (4 * d * d + 2 * d * m + m + 9 * d)
                                                      + d * V + V + 2 * d)])
def test_correct_answers_written_differently_pass_visible_and_hidden_checks(step, fn):
    getattr(visible, f"check_{step}")(fn)
    getattr(hidden, f"grade_{step}")(fn)


class BuildsItself(TransformerBlock):
    """A block with its own build(), as the Keras guide recommends: the check must still work."""

    def build(self, input_shape):
        for layer in (self.norm1, self.norm2, self.mlp_in):
            layer.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_out.build((*input_shape[:-1], self.mlp_in.units))


def test_a_block_that_builds_itself_passes():
    visible.check_TransformerBlock(BuildsItself)


def test_closed_form_count_is_keras_count_params_and_gpt2_small():
    for sizes in [(11, 12, 8, 2, 2, 16), (65, 256, 56, 4, 2, 224)]:
        V, L, d, heads, n, m = sizes
        model = TransformerLM(*sizes)
        model(np.zeros((1, 3), "int32"))
        assert model.count_params() == ref.transformer_param_count(V, L, d, n, m)
    # GPT-2 small (12 blocks of 768, 1024 positions) ties its output layer to the token embedding and
    # has no output bias: 124,439,808 parameters, the published figure.
    V, d = 50_257, 768
    assert ref.transformer_param_count(V, 1024, d, 12, 4 * d) - d * V - V == 124_439_808


def test_the_keras_layers_count_is_the_closed_form():
    for sizes in [(1, 1, 1, 1, 1), (65, 256, 56, 2, 224), (10, 5, 6, 0, 24), (7, 3, 8, 3, 10)]:
        assert visible._keras_param_count(*sizes) == ref.transformer_param_count(*sizes)


def test_the_wheel_computes_no_closed_form_answer():
    assert not hasattr(visible, "param_count_reference") and not hasattr(visible, "recurrence_reference")


def test_block_reference_is_keras_and_the_mask_is_what_use_causal_mask_builds():
    rng = np.random.default_rng(0)
    block = TransformerBlock(8, 2, 16)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    block(x)
    visible._randomise(block, rng, scale=1.0)
    np.testing.assert_allclose(np.asarray(block(x)), visible._block64(x.astype(np.float64), block),
                               rtol=1e-4, atol=1e-4)
    got, want = visible._through_keras(causal_mask(6), 6)
    np.testing.assert_array_equal(got, want)


def test_geometric_sum_is_the_loop_for_constant_coefficients():
    s = visible.Recurrence(3, 12, 2, seed=1, constant=True)
    a, b, h0 = visible.recurrence_inputs(s)
    np.testing.assert_allclose(visible.geometric(a[:, 0], b[:, 0], h0, s.time),
                               ref.linear_recurrence(a, b, h0), rtol=1e-12)


def _fails(check, fn, pattern):
    with pytest.raises(CheckFailed, match=pattern):
        check(fn)


class NoMask(TransformerBlock):
    def call(self, x):
        a = self.norm1(x)
        h = x + self.attention(a, a)
        return h + self.mlp_out(self.mlp_in(self.norm2(h)))


class DefaultEpsilon(TransformerBlock):
    def __init__(self, d_model, heads, mlp_dim, **kwargs):
        super().__init__(d_model, heads, mlp_dim, **kwargs)
        self.norm2 = keras.layers.LayerNormalization()


class WithDropout(TransformerBlock):
    def __init__(self, d_model, heads, mlp_dim, **kwargs):
        super().__init__(d_model, heads, mlp_dim, **kwargs)
        self.drop = keras.layers.Dropout(0.5)

    def call(self, x):
        return self.drop(super().call(x))


class NoPositions(TransformerLM):
    def call(self, tokens):
        x = self.token_embedding(tokens)
        for block in self.blocks:
            x = block(x)
        return self.to_logits(self.final_norm(x))


def scaled_by_d_model(mha, x, k_cache, v_cache):
    _, keys, values = cached_attention_step(mha, x, k_cache, v_cache)
    q = np.tensordot(np.asarray(x, np.float32), np.asarray(mha.query_dense.kernel), axes=1) \
        + np.asarray(mha.query_dense.bias)
    s = (keys * q[:, None]).sum(-1) / np.sqrt(np.shape(x)[-1])       # d_model, not key_dim
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    context = (p[..., None] * values).sum(axis=1)
    y = np.tensordot(context, np.asarray(mha.output_dense.kernel), axes=2) + np.asarray(mha.output_dense.bias)
    return y, keys, values


def shifted(a, b, h0):
    return np.concatenate([h0[:, None], recurrence_scan(a, b, h0)[:, :-1]], axis=1)


def test_messages_name_the_mistake():
    _fails(visible.check_causal_mask, lambda T: causal_mask(T).T, "transposed")
    _fails(visible.check_causal_mask, lambda T: np.where(causal_mask(T), 0.0, -1e9), "additive mask")
    _fails(visible.check_TransformerBlock, NoMask, "no causal mask")
    _fails(visible.check_TransformerLM, NoPositions, "no position embedding")
    _fails(visible.check_cached_attention_step, scaled_by_d_model, r"sqrt\(d_model\)")
    _fails(visible.check_cached_attention_step, lambda *args: cached_attention_step(*args)[0], "tuple")
    _fails(visible.check_linear_recurrence_loop, lambda a, b, h0: recurrence_loop(a, b, 0 * h0), "h0 ignored")
    _fails(visible.check_linear_recurrence_scan, shifted, "shifted by one")
    _fails(visible.check_linear_recurrence_scan, recurrence_loop, "never calls keras.ops.associative_scan")
    _fails(visible.check_linear_recurrence_loop, recurrence_scan, "as a loop over time.*associative_scan")
    _fails(visible.check_TransformerBlock, DefaultEpsilon, "epsilon=0.001")
    _fails(visible.check_TransformerBlock, WithDropout, "dropout")


def test_the_notebook_states_each_steps_rule():
    import nbformat

    from autograder import ROOT
    from course import rules

    nb = nbformat.read(ROOT / "solutions" / "07_rnn_vs_transformer" / "rnn_vs_transformer.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for step, rule in rules.RULES["07_rnn_vs_transformer"].items():
        assert f"`{step}` must be {rule.text}." in text, step


def test_every_step_has_five_mutants_a_delegating_one_if_written_by_hand_and_the_unit_its_kinds():
    from autograder import mutants
    from course import rules

    found = mutants.for_notebook("rnn_vs_transformer")
    for step, rule in rules.RULES["07_rnn_vs_transformer"].items():
        assert sum(m.step == step for m in found) >= 5, step
        if rule.kind != "keras":   # Keras is the material of the other steps: nothing to delegate to
            assert any(m.step == step and m.kind == "delegation" for m in found), f"{step}: no delegating mutant"
    kinds = {"delegation", "in-place", "logic", "mechanism", "precision", "return-type", "setting", "state",
             "training-mode"}
    assert kinds <= {m.kind for m in found}, kinds - {m.kind for m in found}


class MinGRUNoSigmoid(MinGRU):
    def call(self, x):
        z = ops.matmul(x, self.gate_kernel) + self.gate_bias
        candidate = ops.matmul(x, self.candidate_kernel) + self.candidate_bias
        return recurrence_scan(1 - z, z * candidate, ops.zeros_like(candidate[:, 0]))


class MinGRUBackwards(MinGRU):
    def call(self, x):
        return ops.flip(super().call(ops.flip(x, axis=1)), axis=1)


class MinGRUWithoutBiases(MinGRU):
    def build(self, input_shape):
        super().build(input_shape)
        self.gate_bias.trainable = False


def recall_shifted(*args):
    tokens, targets = recall_batch(*args)
    n_pairs = args[2]
    values = tokens[:, 1:2 * n_pairs:2]
    pair = np.argmax(tokens[:, 2 * n_pairs:, None] == tokens[:, None, 0:2 * n_pairs:2], axis=2)
    return tokens, np.take_along_axis(values, (pair + 1) % n_pairs, axis=1).astype(np.int32)


def recall_values_from_keys(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens, _ = recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values)
    tokens[:, 1:2 * n_pairs:2] = n_keys + tokens[:, 0:2 * n_pairs:2] % n_values
    pair = np.argmax(tokens[:, 2 * n_pairs:, None] == tokens[:, None, 0:2 * n_pairs:2], axis=2)
    return tokens, np.take_along_axis(tokens[:, 1:2 * n_pairs:2], pair, axis=1)


def test_minGRU_and_recall_messages_name_the_mistake():
    _fails(visible.check_MinGRU, MinGRUNoSigmoid, "no sigmoid on the gate")
    _fails(visible.check_MinGRU, MinGRUBackwards, "backwards in time")
    _fails(visible.check_MinGRU, MinGRUWithoutBiases, "gate_bias` is not trainable")
    _fails(visible.check_associative_recall_batch, recall_shifted, "values of the next pair")
    _fails(visible.check_associative_recall_batch, recall_values_from_keys, "the value given to each key")
    _fails(visible.check_associative_recall_batch,
           lambda rng, *args: recall_batch(np.random.default_rng(int(np.random.randint(1 << 30))), *args),
           "rng` it was given is unchanged")
    _fails(visible.check_associative_recall_batch,
           lambda rng, *args: (rng.random(), recall_batch(np.random.default_rng(np.random.randint(1 << 30)), *args))[1],
           "never from the global np.random")


def test_minGRU_check_loop_is_the_reference_and_gradients_flow_through_the_layer():
    """What the judge cannot replay (Keras' own differentiation of the student's call) holds for the notebook's
    layer: every weight gets a finite, non-zero gradient that equals a numeric derivative of the float64 loop."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 3))
    layer = MinGRU(4, dtype="float64")
    layer(x[:, :2])
    weights = {n: rng.normal(size=tuple(getattr(layer, n).shape)) for n in visible.MINGRU_WEIGHTS}
    for name, value in weights.items():
        getattr(layer, name).assign(value)
    np.testing.assert_allclose(visible.min_gru_loop(x, weights), ref.min_gru(x, *weights.values()), rtol=1e-12)
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient part uses TensorFlow's GradientTape")
    import tensorflow as tf

    project = rng.normal(size=(2, 6, 4))
    with tf.GradientTape() as tape:
        loss = ops.sum(layer(x) * project)
    grads = dict(zip([v.path.split("/")[-1] for v in layer.trainable_weights],
                     tape.gradient(loss, layer.trainable_weights)))
    for name in visible.MINGRU_WEIGHTS:
        grad = np.asarray(grads[name])
        assert np.isfinite(grad).all() and np.abs(grad).max() > 0, name
        direction, eps = rng.normal(size=grad.shape), 1e-6
        loop = [(visible.min_gru_loop(x, {**weights, name: weights[name] + s * eps * direction}) * project).sum()
                for s in (1, -1)]
        assert np.isclose((grad * direction).sum(), (loop[0] - loop[1]) / (2 * eps), rtol=1e-5), name


def test_chi_square_limit_is_the_one_in_ten_million_point():
    """For an even number of degrees of freedom 2k the chi-square tail is a finite sum:
    P(X > x) = exp(-x/2) * sum_{i<k} (x/2)^i / i!. The limit's tail is below 1e-7 (the stated false-alarm
    rate), and not so far below that the test loses its power."""
    import math

    for df in (2, 4, 16, 56, 350):
        half = visible.chi_square_limit(df) / 2
        logs = [i * math.log(half) - math.lgamma(i + 1) - half for i in range(df // 2)]
        top = max(logs)
        tail = math.exp(top) * sum(math.exp(v - top) for v in logs)
        assert 1e-8 < tail < 1e-7, (df, tail)


def test_a_correct_sampler_passes_the_recall_checks_for_many_seeds():
    """The distribution tests, run on the visible case's size with 40 other seeds: no false alarm."""
    s = visible.RECALL_CASES[0]
    for seed in range(40):
        visible.check_associative_recall_batch(recall_batch, (visible.Recall(s.batch, s.n_pairs, s.n_queries,
                                                                             s.n_keys, s.n_values, seed=seed),))
