"""Wrong answers for unit 07_rnn_vs_transformer, each one a mistake students make.

Names are reused on purpose: each definition is what a student might have
typed for that function or class. They run in the notebook's namespace
(np, keras, ops and the notebook's own TransformerBlock are its own).
"""
# ruff: noqa: F811
from types import SimpleNamespace

import numpy as np

from . import mutant

ops = TransformerBlock = TransformerLM = linear_recurrence_scan = None  # provided by the notebook's namespace
# A stand-in so that the classes below can be defined here; they run with the notebook's keras.
keras = SimpleNamespace(layers=SimpleNamespace(Layer=object), Model=object)

# Each class mutant is defined inside its own function: inspect.getsource finds a class by its
# qualified name, and in Python 3.11 it returns the first of several same-named module-level
# classes, so every mutant would otherwise register the source of the first one.


# --- causal_mask ----------------------------------------------------------------------
@mutant("causal_mask", "the upper triangle (the mask transposed)")
def causal_mask(T):
    return np.triu(np.ones((T, T), dtype=bool))


@mutant("causal_mask", "the diagonal excluded")
def causal_mask(T):
    return np.tril(np.ones((T, T), dtype=bool), k=-1)


@mutant("causal_mask", "an additive float mask with the wrong sign (+1e9 on the future)", kind="return-type")
def causal_mask(T):
    return np.triu(np.full((T, T), 1e9), k=1)


@mutant("causal_mask", "one future position let in (k=1)")
def causal_mask(T):
    return np.tril(np.ones((T, T), dtype=bool), k=1)


@mutant("causal_mask", "0/1 floats instead of booleans", kind="return-type")
def causal_mask(T):
    return np.tril(np.ones((T, T)))


# --- TransformerBlock ------------------------------------------------------------------
def _class_mutant_1():   # no causal mask
    @mutant("TransformerBlock", "no causal mask", kind="mechanism")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h)
            return x + self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_1()


def _class_mutant_2():   # the mask transposed (attention_mask with the upper triangle)
    @mutant("TransformerBlock", "the mask transposed (attention_mask with the upper triangle)")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            T = x.shape[1]
            h = self.norm1(x)
            x = x + self.attention(h, h, attention_mask=np.triu(np.ones((1, T, T), dtype=bool)))
            return x + self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_2()


def _class_mutant_3():   # the residual connection around attention missing
    @mutant("TransformerBlock", "the residual connection around attention missing")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            h = self.norm1(x)
            x = self.attention(h, h, use_causal_mask=True)
            return x + self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_3()


def _class_mutant_4():   # the residual connection around the MLP missing
    @mutant("TransformerBlock", "the residual connection around the MLP missing")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h, use_causal_mask=True)
            return self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_4()


def _class_mutant_5():   # post-LN (the norm after the residual sum)
    @mutant("TransformerBlock", "post-LN (the norm after the residual sum)")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            x = self.norm1(x + self.attention(x, x, use_causal_mask=True))
            return self.norm2(x + self.mlp_out(self.mlp_in(x)))


_class_mutant_5()


def _class_mutant_6():   # no activation in the MLP
    @mutant("TransformerBlock", "no activation in the MLP")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim)
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h, use_causal_mask=True)
            return x + self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_6()


def _class_mutant_7():   # each head as wide as d_model (key_dim=d_model)
    @mutant("TransformerBlock", "each head as wide as d_model (key_dim=d_model)", kind="setting")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h, use_causal_mask=True)
            return x + self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_7()


# --- TransformerLM ------------------------------------------------------------------------
def _class_mutant_8():   # no position embedding added
    @mutant("TransformerLM", "no position embedding added")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(max_len, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim) for _ in range(blocks)]
            self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.to_logits = keras.layers.Dense(vocab_size)

        def call(self, tokens):
            x = self.token_embedding(tokens)
            for block in self.blocks:
                x = block(x)
            return self.to_logits(self.final_norm(x))


_class_mutant_8()


def _class_mutant_9():   # one block reused (the same weights in every block)
    @mutant("TransformerLM", "one block reused (the same weights in every block)")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(max_len, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim)] * blocks
            self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.to_logits = keras.layers.Dense(vocab_size)

        def call(self, tokens):
            x = self.token_embedding(tokens) + self.position_embedding(ops.arange(ops.shape(tokens)[1]))
            for block in self.blocks:
                x = block(x)
            return self.to_logits(self.final_norm(x))


_class_mutant_9()


def _class_mutant_10():   # no final LayerNormalization (final_norm unused)
    @mutant("TransformerLM", "no final LayerNormalization (final_norm unused)")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(max_len, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim) for _ in range(blocks)]
            self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.to_logits = keras.layers.Dense(vocab_size)

        def call(self, tokens):
            x = self.token_embedding(tokens) + self.position_embedding(ops.arange(ops.shape(tokens)[1]))
            for block in self.blocks:
                x = block(x)
            return self.to_logits(x)


_class_mutant_10()


def _class_mutant_11():   # softmax probabilities instead of logits
    @mutant("TransformerLM", "softmax probabilities instead of logits")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(max_len, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim) for _ in range(blocks)]
            self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.to_logits = keras.layers.Dense(vocab_size, activation="softmax")

        def call(self, tokens):
            x = self.token_embedding(tokens) + self.position_embedding(ops.arange(ops.shape(tokens)[1]))
            for block in self.blocks:
                x = block(x)
            return self.to_logits(self.final_norm(x))


_class_mutant_11()


def _class_mutant_12():   # a position table of vocab_size rows, looked up by token
    @mutant("TransformerLM", "a position table of vocab_size rows, looked up by token")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim) for _ in range(blocks)]
            self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.to_logits = keras.layers.Dense(vocab_size)

        def call(self, tokens):
            x = self.token_embedding(tokens) + self.position_embedding(tokens)
            for block in self.blocks:
                x = block(x)
            return self.to_logits(self.final_norm(x))


_class_mutant_12()


def _class_mutant_13():   # positions counted from the end of the sequence
    @mutant("TransformerLM", "positions counted from the end of the sequence")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(max_len, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim) for _ in range(blocks)]
            self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.to_logits = keras.layers.Dense(vocab_size)

        def call(self, tokens):
            T = ops.shape(tokens)[1]
            x = self.token_embedding(tokens) + self.position_embedding(T - 1 - ops.arange(T))
            for block in self.blocks:
                x = block(x)
            return self.to_logits(self.final_norm(x))


_class_mutant_13()


# --- transformer_param_count --------------------------------------------------------------
@mutant("transformer_param_count", "no position embedding")
def transformer_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    per_block = 4 * (d_model * d_model + d_model) + 2 * d_model * mlp_dim + mlp_dim + d_model + 4 * d_model
    return vocab_size * d_model + blocks * per_block + 2 * d_model + d_model * vocab_size + vocab_size


@mutant("transformer_param_count", "attention without biases")
def transformer_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    per_block = 4 * d_model * d_model + 2 * d_model * mlp_dim + mlp_dim + d_model + 4 * d_model
    return (vocab_size + max_len) * d_model + blocks * per_block + 2 * d_model + d_model * vocab_size + vocab_size


@mutant("transformer_param_count", "three attention projections (no output projection)")
def transformer_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    per_block = 3 * (d_model * d_model + d_model) + 2 * d_model * mlp_dim + mlp_dim + d_model + 4 * d_model
    return (vocab_size + max_len) * d_model + blocks * per_block + 2 * d_model + d_model * vocab_size + vocab_size


@mutant("transformer_param_count", "LayerNorm counted with gamma only")
def transformer_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    per_block = 4 * (d_model * d_model + d_model) + 2 * d_model * mlp_dim + mlp_dim + d_model + 2 * d_model
    return (vocab_size + max_len) * d_model + blocks * per_block + d_model + d_model * vocab_size + vocab_size


@mutant("transformer_param_count", "the final LayerNorm forgotten")
def transformer_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    per_block = 4 * (d_model * d_model + d_model) + 2 * d_model * mlp_dim + mlp_dim + d_model + 4 * d_model
    return (vocab_size + max_len) * d_model + blocks * per_block + d_model * vocab_size + vocab_size


@mutant("transformer_param_count", "hard-coded answers to the visible sizes")
def transformer_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    seen = {(65, 256, 56, 2, 224): 98_513, (11, 12, 8, 2, 16): 1_499, (65, 1024, 352, 2, 1408): 3_389_825}
    return seen.get((vocab_size, max_len, d_model, blocks, mlp_dim), 0)


# --- cached_attention_step -----------------------------------------------------------------
@mutant("cached_attention_step", "the cache not appended (attends to the current token only)", kind="mechanism")
def cached_attention_step(attention, x_t, k_cache, v_cache):
    def project(dense):
        return ops.einsum("bd,dhk->bhk", x_t, dense.kernel) + dense.bias

    q, k, v = project(attention.query_dense), project(attention.key_dense), project(attention.value_dense)
    weights = ops.softmax(ops.sum(q * k, axis=-1, keepdims=True) / np.sqrt(q.shape[-1]), axis=-1)
    y = ops.einsum("bhk,hkd->bd", weights * v, attention.output_dense.kernel) + attention.output_dense.bias
    return y, k_cache, v_cache


@mutant("cached_attention_step", "the cache overwritten by the new key and value", kind="state")
def cached_attention_step(attention, x_t, k_cache, v_cache):
    def project(dense):
        return ops.einsum("bd,dhk->bhk", x_t, dense.kernel) + dense.bias

    q = project(attention.query_dense)
    keys = ops.concatenate([k_cache, project(attention.key_dense)[:, None]], axis=1)
    values = ops.concatenate([v_cache, project(attention.value_dense)[:, None]], axis=1)
    w = ops.softmax(ops.einsum("bhk,bthk->bht", q, keys) / np.sqrt(q.shape[-1]), axis=-1)
    y = ops.einsum("bhk,hkd->bd", ops.einsum("bht,bthk->bhk", w, values), attention.output_dense.kernel)
    return y + attention.output_dense.bias, keys[:, -1:], values[:, -1:]


@mutant("cached_attention_step", "scores scaled by sqrt(d_model)")
def cached_attention_step(attention, x_t, k_cache, v_cache):
    def project(dense):
        return ops.einsum("bd,dhk->bhk", x_t, dense.kernel) + dense.bias

    q = project(attention.query_dense)
    k_cache = ops.concatenate([k_cache, project(attention.key_dense)[:, None]], axis=1)
    v_cache = ops.concatenate([v_cache, project(attention.value_dense)[:, None]], axis=1)
    w = ops.softmax(ops.einsum("bhk,bthk->bht", q, k_cache) / np.sqrt(x_t.shape[-1]), axis=-1)
    y = ops.einsum("bhk,hkd->bd", ops.einsum("bht,bthk->bhk", w, v_cache), attention.output_dense.kernel)
    return y + attention.output_dense.bias, k_cache, v_cache


@mutant("cached_attention_step", "softmax over the heads")
def cached_attention_step(attention, x_t, k_cache, v_cache):
    def project(dense):
        return ops.einsum("bd,dhk->bhk", x_t, dense.kernel) + dense.bias

    q = project(attention.query_dense)
    k_cache = ops.concatenate([k_cache, project(attention.key_dense)[:, None]], axis=1)
    v_cache = ops.concatenate([v_cache, project(attention.value_dense)[:, None]], axis=1)
    w = ops.softmax(ops.einsum("bhk,bthk->bht", q, k_cache) / np.sqrt(q.shape[-1]), axis=1)
    y = ops.einsum("bhk,hkd->bd", ops.einsum("bht,bthk->bhk", w, v_cache), attention.output_dense.kernel)
    return y + attention.output_dense.bias, k_cache, v_cache


@mutant("cached_attention_step", "keys made with the value projection")
def cached_attention_step(attention, x_t, k_cache, v_cache):
    def project(dense):
        return ops.einsum("bd,dhk->bhk", x_t, dense.kernel) + dense.bias

    q = project(attention.query_dense)
    k_cache = ops.concatenate([k_cache, project(attention.value_dense)[:, None]], axis=1)
    v_cache = ops.concatenate([v_cache, project(attention.value_dense)[:, None]], axis=1)
    w = ops.softmax(ops.einsum("bhk,bthk->bht", q, k_cache) / np.sqrt(q.shape[-1]), axis=-1)
    y = ops.einsum("bhk,hkd->bd", ops.einsum("bht,bthk->bhk", w, v_cache), attention.output_dense.kernel)
    return y + attention.output_dense.bias, k_cache, v_cache


@mutant("cached_attention_step", "the output projection's bias left out")
def cached_attention_step(attention, x_t, k_cache, v_cache):
    def project(dense):
        return ops.einsum("bd,dhk->bhk", x_t, dense.kernel) + dense.bias

    q = project(attention.query_dense)
    k_cache = ops.concatenate([k_cache, project(attention.key_dense)[:, None]], axis=1)
    v_cache = ops.concatenate([v_cache, project(attention.value_dense)[:, None]], axis=1)
    w = ops.softmax(ops.einsum("bhk,bthk->bht", q, k_cache) / np.sqrt(q.shape[-1]), axis=-1)
    y = ops.einsum("bhk,hkd->bd", ops.einsum("bht,bthk->bhk", w, v_cache), attention.output_dense.kernel)
    return y, k_cache, v_cache


# --- linear_recurrence_loop ------------------------------------------------------------------
@mutant("linear_recurrence_loop", "h0 ignored (starts from zeros)")
def linear_recurrence_loop(a, b, h0):
    h, states = 0 * h0, []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        states.append(h)
    return ops.stack(states, axis=1)


@mutant("linear_recurrence_loop", "off by one: stores the state before the update")
def linear_recurrence_loop(a, b, h0):
    h, states = h0, []
    for t in range(a.shape[1]):
        states.append(h)
        h = a[:, t] * h + b[:, t]
    return ops.stack(states, axis=1)


@mutant("linear_recurrence_loop", "a and b swapped")
def linear_recurrence_loop(a, b, h0):
    h, states = h0, []
    for t in range(a.shape[1]):
        h = b[:, t] * h + a[:, t]
        states.append(h)
    return ops.stack(states, axis=1)


@mutant("linear_recurrence_loop", "time-major output", kind="return-type")
def linear_recurrence_loop(a, b, h0):
    h, states = h0, []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        states.append(h)
    return ops.stack(states, axis=0)


@mutant("linear_recurrence_loop", "the state not carried (h0 at every step)", kind="state")
def linear_recurrence_loop(a, b, h0):
    return ops.stack([a[:, t] * h0 + b[:, t] for t in range(a.shape[1])], axis=1)


@mutant("linear_recurrence_loop", "computed in float32", kind="precision")
def linear_recurrence_loop(a, b, h0):
    h, states = np.float32(h0), []
    for t in range(a.shape[1]):
        h = np.float32(a[:, t]) * h + np.float32(b[:, t])
        states.append(h)
    return ops.stack(states, axis=1)


# --- linear_recurrence_scan ------------------------------------------------------------------
@mutant("linear_recurrence_scan", "the combine operator in the wrong order (a1*b2 + b1)")
def linear_recurrence_scan(a, b, h0):
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
    b = ops.concatenate([a[:, :1] * ops.convert_to_tensor(h0)[:, None] + b[:, :1], b[:, 1:]], axis=1)

    def combine(earlier, later):
        return earlier[0] * later[0], earlier[0] * later[1] + earlier[1]

    return ops.associative_scan(combine, (a, b), axis=1)[1]


@mutant("linear_recurrence_scan", "h0 ignored")
def linear_recurrence_scan(a, b, h0):
    def combine(earlier, later):
        return earlier[0] * later[0], later[0] * earlier[1] + later[1]

    return ops.associative_scan(combine, (ops.convert_to_tensor(a), ops.convert_to_tensor(b)), axis=1)[1]


@mutant("linear_recurrence_scan", "h0 added to b_0 without the factor a_0")
def linear_recurrence_scan(a, b, h0):
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
    b = ops.concatenate([ops.convert_to_tensor(h0)[:, None] + b[:, :1], b[:, 1:]], axis=1)

    def combine(earlier, later):
        return earlier[0] * later[0], later[0] * earlier[1] + later[1]

    return ops.associative_scan(combine, (a, b), axis=1)[1]


@mutant("linear_recurrence_scan", "off by one: h0 prepended, the last state dropped")
def linear_recurrence_scan(a, b, h0):
    a, b, h0 = ops.convert_to_tensor(a), ops.convert_to_tensor(b), ops.convert_to_tensor(h0)

    def combine(earlier, later):
        return earlier[0] * later[0], later[0] * earlier[1] + later[1]

    a = ops.concatenate([ops.zeros_like(a[:, :1]), a[:, :-1]], axis=1)
    b = ops.concatenate([h0[:, None], b[:, :-1]], axis=1)
    return ops.associative_scan(combine, (a, b), axis=1)[1]


@mutant("linear_recurrence_scan", "the scan over the batch axis (axis=0)")
def linear_recurrence_scan(a, b, h0):
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
    b = ops.concatenate([a[:, :1] * ops.convert_to_tensor(h0)[:, None] + b[:, :1], b[:, 1:]], axis=1)

    def combine(earlier, later):
        return earlier[0] * later[0], later[0] * earlier[1] + later[1]

    return ops.associative_scan(combine, (a, b), axis=0)[1]


@mutant("linear_recurrence_scan", "the scan run backwards in time (reverse=True)")
def linear_recurrence_scan(a, b, h0):
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
    b = ops.concatenate([a[:, :1] * ops.convert_to_tensor(h0)[:, None] + b[:, :1], b[:, 1:]], axis=1)

    def combine(earlier, later):
        return earlier[0] * later[0], later[0] * earlier[1] + later[1]

    return ops.associative_scan(combine, (a, b), reverse=True, axis=1)[1]


# --- kinds of mistakes: settings the text asks for, training mode, the mechanism taught, precision ----
def _class_mutant_kinds_1():
    @mutant("TransformerBlock", "LayerNormalization with Keras' default epsilon (1e-3, not 1e-5)", kind="setting")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization()
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization()
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h, use_causal_mask=True)
            return x + self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_kinds_1()


def _class_mutant_kinds_2():
    @mutant("TransformerBlock", "dropout after the MLP (the output changes in training mode)", kind="training-mode")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)
            self.drop = keras.layers.Dropout(0.1)

        def call(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h, use_causal_mask=True)
            return x + self.drop(self.mlp_out(self.mlp_in(self.norm2(x))))


_class_mutant_kinds_2()


def _class_mutant_kinds_3():
    @mutant("TransformerBlock", "attention dropout (MultiHeadAttention(dropout=0.1))", kind="setting")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads,
                                                             dropout=0.1)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h, use_causal_mask=True)
            return x + self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_kinds_3()


def _class_mutant_kinds_4():
    @mutant("TransformerLM", "the final LayerNormalization with Keras' default epsilon (1e-3)", kind="setting")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(max_len, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim) for _ in range(blocks)]
            self.final_norm = keras.layers.LayerNormalization()
            self.to_logits = keras.layers.Dense(vocab_size)

        def call(self, tokens):
            positions = ops.arange(ops.shape(tokens)[1])
            x = self.token_embedding(tokens) + self.position_embedding(positions)
            for block in self.blocks:
                x = block(x)
            return self.to_logits(self.final_norm(x))


_class_mutant_kinds_4()


def _class_mutant_kinds_5():
    @mutant("TransformerLM", "dropout on the embeddings (the output changes in training mode)", kind="training-mode")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(max_len, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim) for _ in range(blocks)]
            self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.to_logits = keras.layers.Dense(vocab_size)
            self.drop = keras.layers.Dropout(0.1)

        def call(self, tokens):
            positions = ops.arange(ops.shape(tokens)[1])
            x = self.drop(self.token_embedding(tokens) + self.position_embedding(positions))
            for block in self.blocks:
                x = block(x)
            return self.to_logits(self.final_norm(x))


_class_mutant_kinds_5()


@mutant("linear_recurrence_loop", "a closed form with cumulative products instead of a loop", kind="mechanism")
def linear_recurrence_loop(a, b, h0):
    a, b = np.asarray(a), np.asarray(b)
    products = np.cumprod(a, axis=1)
    return products * (np.asarray(h0)[:, None] + np.cumsum(b / products, axis=1))


@mutant("linear_recurrence_loop", "the loop step written with associative_scan", kind="mechanism")
def linear_recurrence_loop(a, b, h0):
    first = a[:, :1] * h0[:, None] + b[:, :1]
    b = np.concatenate([first, b[:, 1:]], axis=1)
    if b.shape[1] == 1:
        return b
    _, states = ops.associative_scan(lambda e, l: (e[0] * l[0], l[0] * e[1] + l[1]), (a, b), axis=1)
    return states


@mutant("linear_recurrence_scan", "a Python loop instead of the scan", kind="mechanism")
def linear_recurrence_scan(a, b, h0):
    h, states = h0, []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        states.append(h)
    return ops.stack(states, axis=1)


@mutant("linear_recurrence_scan", "computed in float32 (float64 inputs give float32 states)", kind="precision")
def linear_recurrence_scan(a, b, h0):
    a, b = ops.convert_to_tensor(a, "float32"), ops.convert_to_tensor(b, "float32")
    h0 = ops.convert_to_tensor(h0, "float32")
    first = a[:, :1] * h0[:, None] + b[:, :1]
    b = ops.concatenate([first, b[:, 1:]], axis=1)
    if b.shape[1] == 1:
        return b
    _, states = ops.associative_scan(lambda e, l: (e[0] * l[0], l[0] * e[1] + l[1]), (a, b), axis=1)
    return states


# --- answers built from what the step may not use (course/rules.py) --------------------------------
@mutant("transformer_param_count", "count_params() of a TransformerLM (the rule: a formula)", kind="delegation")
def transformer_param_count(vocab_size, max_len, d_model, blocks, mlp_dim):
    model = TransformerLM(vocab_size, max_len, d_model, 1, blocks, mlp_dim)
    model(np.zeros((1, 1), dtype="int32"))
    return int(model.count_params())


@mutant("cached_attention_step", "the layer's own _compute_attention on the cache (calls the layer)", kind="delegation")
def cached_attention_step(attention, x_t, k_cache, v_cache):
    def project(dense):
        return ops.einsum("bd,dhk->bhk", x_t, dense.kernel) + dense.bias

    query = project(attention.query_dense)[:, None]
    k_cache = ops.concatenate([k_cache, project(attention.key_dense)[:, None]], axis=1)
    v_cache = ops.concatenate([v_cache, project(attention.value_dense)[:, None]], axis=1)
    context, _ = attention._compute_attention(query, k_cache, v_cache)
    y_t = ops.einsum("bhk,hkd->bd", context[:, 0], attention.output_dense.kernel) + attention.output_dense.bias
    return y_t, k_cache, v_cache


@mutant("causal_mask", "the mask MultiHeadAttention builds for itself (a layer's private helper)", kind="delegation")
def causal_mask(T):
    x = np.zeros((1, T, 1), dtype="float32")
    layer = keras.layers.MultiHeadAttention(num_heads=1, key_dim=1)
    return ops.convert_to_numpy(layer._compute_causal_mask(x))[0]


def _class_mutant_kinds_6():
    @mutant("TransformerBlock", "the checks' own float64 forward pass on the block's layers (the rule: no course code)",
            kind="delegation")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            from course.checks.rnn_vs_transformer import _block64
            h = self.norm1(x)
            x = x + self.attention(h, h, use_causal_mask=True)   # builds the sublayers
            x = x + self.mlp_out(self.mlp_in(self.norm2(x)))
            return ops.convert_to_tensor(_block64(ops.convert_to_numpy(x).astype("float64"), self), "float32")


_class_mutant_kinds_6()


def _class_mutant_kinds_7():
    @mutant("TransformerLM", "the checks' own float64 forward pass on the model's layers (the rule: no course code)",
            kind="delegation")
    class TransformerLM(keras.Model):
        def __init__(self, vocab_size, max_len, d_model, heads, blocks, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embedding = keras.layers.Embedding(vocab_size, d_model)
            self.position_embedding = keras.layers.Embedding(max_len, d_model)
            self.blocks = [TransformerBlock(d_model, heads, mlp_dim) for _ in range(blocks)]
            self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.to_logits = keras.layers.Dense(vocab_size)

        def call(self, tokens):
            from course.checks import rnn_vs_transformer
            positions = ops.arange(ops.shape(tokens)[1])
            x = self.token_embedding(tokens) + self.position_embedding(positions)
            for block in self.blocks:
                x = block(x)
            self.to_logits(self.final_norm(x))   # builds the last layers
            return ops.convert_to_tensor(rnn_vs_transformer._lm_reference(self, ops.convert_to_numpy(tokens)),
                                         "float32")


_class_mutant_kinds_7()


@mutant("linear_recurrence_loop", "the checks' own helper, which loops (the rule: no course code)", kind="delegation")
def linear_recurrence_loop(a, b, h0):
    from course.checks.rnn_vs_transformer import _mistaken_states
    return _mistaken_states(a, b, h0)


@mutant("linear_recurrence_scan", "the checks' own helper for the states (the rule: no course code)",
        kind="delegation")
def linear_recurrence_scan(a, b, h0):
    from course.checks import rnn_vs_transformer
    return rnn_vs_transformer._mistaken_states(a, b, h0)


@mutant("linear_recurrence_scan", "h0 folded into the caller's b in place", kind="in-place")
def linear_recurrence_scan(a, b, h0):
    b[:, 0] = a[:, 0] * h0 + b[:, 0]
    if b.shape[1] == 1:
        return ops.convert_to_tensor(b)
    _, states = ops.associative_scan(lambda e, l: (e[0] * l[0], l[0] * e[1] + l[1]),
                                     (ops.convert_to_tensor(a), ops.convert_to_tensor(b)), axis=1)
    return states


# --- MinGRU -------------------------------------------------------------------------------------
def _class_mutant_mingru_1():
    @mutant("MinGRU", "no sigmoid on the gate (z_t = x_t W_z + b_z)")
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            d_in = input_shape[-1]
            self.gate_kernel = self.add_weight(shape=(d_in, self.units), name="gate_kernel")
            self.gate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="gate_bias")
            self.candidate_kernel = self.add_weight(shape=(d_in, self.units), name="candidate_kernel")
            self.candidate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="candidate_bias")

        def call(self, x):
            z = ops.matmul(x, self.gate_kernel) + self.gate_bias
            candidate = ops.matmul(x, self.candidate_kernel) + self.candidate_bias
            return linear_recurrence_scan(1 - z, z * candidate, ops.zeros_like(candidate[:, 0]))


_class_mutant_mingru_1()


def _class_mutant_mingru_2():
    @mutant("MinGRU", "the mixing the other way round (h_t = z_t h_(t-1) + (1 - z_t) c_t)")
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            d_in = input_shape[-1]
            self.gate_kernel = self.add_weight(shape=(d_in, self.units), name="gate_kernel")
            self.gate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="gate_bias")
            self.candidate_kernel = self.add_weight(shape=(d_in, self.units), name="candidate_kernel")
            self.candidate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="candidate_bias")

        def call(self, x):
            z = ops.sigmoid(ops.matmul(x, self.gate_kernel) + self.gate_bias)
            candidate = ops.matmul(x, self.candidate_kernel) + self.candidate_bias
            return linear_recurrence_scan(z, (1 - z) * candidate, ops.zeros_like(candidate[:, 0]))


_class_mutant_mingru_2()


def _class_mutant_mingru_3():
    @mutant("MinGRU", "the scan run backwards in time (reverse=True: each output reads the later inputs)",
            kind="mechanism")
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            d_in = input_shape[-1]
            self.gate_kernel = self.add_weight(shape=(d_in, self.units), name="gate_kernel")
            self.gate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="gate_bias")
            self.candidate_kernel = self.add_weight(shape=(d_in, self.units), name="candidate_kernel")
            self.candidate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="candidate_bias")

        def call(self, x):
            z = ops.sigmoid(ops.matmul(x, self.gate_kernel) + self.gate_bias)
            candidate = ops.matmul(x, self.candidate_kernel) + self.candidate_bias
            _, states = ops.associative_scan(lambda e, l: (e[0] * l[0], l[0] * e[1] + l[1]),
                                             (1 - z, z * candidate), axis=1, reverse=True)
            return states


_class_mutant_mingru_3()


def _class_mutant_mingru_4():
    @mutant("MinGRU", "a Python loop over time instead of the scan", kind="mechanism")
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            d_in = input_shape[-1]
            self.gate_kernel = self.add_weight(shape=(d_in, self.units), name="gate_kernel")
            self.gate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="gate_bias")
            self.candidate_kernel = self.add_weight(shape=(d_in, self.units), name="candidate_kernel")
            self.candidate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="candidate_bias")

        def call(self, x):
            z = ops.sigmoid(ops.matmul(x, self.gate_kernel) + self.gate_bias)
            candidate = ops.matmul(x, self.candidate_kernel) + self.candidate_bias
            h, states = ops.zeros_like(candidate[:, 0]), []
            for t in range(x.shape[1]):
                h = (1 - z[:, t]) * h + z[:, t] * candidate[:, t]
                states.append(h)
            return ops.stack(states, axis=1)


_class_mutant_mingru_4()


def _class_mutant_mingru_5():
    @mutant("MinGRU", "weights made with trainable=False (the optimiser never changes them)", kind="setting")
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            d_in = input_shape[-1]
            self.gate_kernel = self.add_weight(shape=(d_in, self.units), name="gate_kernel", trainable=False)
            self.gate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="gate_bias",
                                             trainable=False)
            self.candidate_kernel = self.add_weight(shape=(d_in, self.units), name="candidate_kernel",
                                                    trainable=False)
            self.candidate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="candidate_bias",
                                                  trainable=False)

        def call(self, x):
            z = ops.sigmoid(ops.matmul(x, self.gate_kernel) + self.gate_bias)
            candidate = ops.matmul(x, self.candidate_kernel) + self.candidate_bias
            return linear_recurrence_scan(1 - z, z * candidate, ops.zeros_like(candidate[:, 0]))


_class_mutant_mingru_5()


def _class_mutant_mingru_6():
    @mutant("MinGRU", "computed in float32 inside (float64 layers give float32 states)", kind="precision")
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            d_in = input_shape[-1]
            self.gate_kernel = self.add_weight(shape=(d_in, self.units), name="gate_kernel")
            self.gate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="gate_bias")
            self.candidate_kernel = self.add_weight(shape=(d_in, self.units), name="candidate_kernel")
            self.candidate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="candidate_bias")

        def call(self, x):
            x = ops.cast(x, "float32")
            z = ops.sigmoid(ops.matmul(x, ops.cast(self.gate_kernel, "float32")) + ops.cast(self.gate_bias, "float32"))
            candidate = ops.matmul(x, ops.cast(self.candidate_kernel, "float32")) \
                + ops.cast(self.candidate_bias, "float32")
            return linear_recurrence_scan(1 - z, z * candidate, ops.zeros_like(candidate[:, 0]))


_class_mutant_mingru_6()


def _class_mutant_mingru_7():
    @mutant("MinGRU", "the checks' own float64 loop on the layer's weights (the rule: no course code)",
            kind="delegation")
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            d_in = input_shape[-1]
            self.gate_kernel = self.add_weight(shape=(d_in, self.units), name="gate_kernel")
            self.gate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="gate_bias")
            self.candidate_kernel = self.add_weight(shape=(d_in, self.units), name="candidate_kernel")
            self.candidate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="candidate_bias")

        def call(self, x):
            from course.checks.rnn_vs_transformer import min_gru_loop
            z = ops.sigmoid(ops.matmul(x, self.gate_kernel) + self.gate_bias)
            linear_recurrence_scan(1 - z, z, ops.zeros_like(z[:, 0]))          # the scan, for show
            weights = {name: ops.convert_to_numpy(getattr(self, name)) for name in
                       ("gate_kernel", "gate_bias", "candidate_kernel", "candidate_bias")}
            return ops.convert_to_tensor(min_gru_loop(ops.convert_to_numpy(x), weights), self.compute_dtype)


_class_mutant_mingru_7()


def _class_mutant_mingru_8():
    @mutant("MinGRU", "tanh on the candidate, as in the GRU (minGRU's candidate is linear)")
    class MinGRU(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            d_in = input_shape[-1]
            self.gate_kernel = self.add_weight(shape=(d_in, self.units), name="gate_kernel")
            self.gate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="gate_bias")
            self.candidate_kernel = self.add_weight(shape=(d_in, self.units), name="candidate_kernel")
            self.candidate_bias = self.add_weight(shape=(self.units,), initializer="zeros", name="candidate_bias")

        def call(self, x):
            z = ops.sigmoid(ops.matmul(x, self.gate_kernel) + self.gate_bias)
            candidate = ops.tanh(ops.matmul(x, self.candidate_kernel) + self.candidate_bias)
            return linear_recurrence_scan(1 - z, z * candidate, ops.zeros_like(candidate[:, 0]))


_class_mutant_mingru_8()


# --- associative_recall_batch ------------------------------------------------------------------------
@mutant("associative_recall_batch", "the first n_queries pairs always asked, in order", kind="randomness")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = rng.choice(n_keys, size=n_pairs, replace=False)
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:], targets[row] = keys[:n_queries], values[:n_queries]
    return tokens, targets


@mutant("associative_recall_batch", "keys drawn with replacement (a key can appear twice)")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    keys = rng.integers(0, n_keys, size=(batch, n_pairs))
    values = n_keys + rng.integers(0, n_values, size=(batch, n_pairs))
    asked = np.argsort(rng.random((batch, n_pairs)), axis=1)[:, :n_queries]
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    tokens[:, 0:2 * n_pairs:2], tokens[:, 1:2 * n_pairs:2] = keys, values
    tokens[:, 2 * n_pairs:] = np.take_along_axis(keys, asked, axis=1)
    return tokens, np.take_along_axis(values, asked, axis=1).astype(np.int32)


@mutant("associative_recall_batch", "the targets shifted: the value of the pair after the queried one")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = rng.choice(n_keys, size=n_pairs, replace=False)
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        asked = rng.choice(n_pairs, size=n_queries, replace=False)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[(asked + 1) % n_pairs]
    return tokens, targets


@mutant("associative_recall_batch", "the global np.random instead of the rng it is given", kind="state")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    rng.random()
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = np.random.choice(n_keys, size=n_pairs, replace=False)
        values = n_keys + np.random.randint(0, n_values, size=n_pairs)
        asked = np.random.choice(n_pairs, size=n_queries, replace=False)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


@mutant("associative_recall_batch", "each value follows from its key (value = key mod n_values)", kind="randomness")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = rng.choice(n_keys, size=n_pairs, replace=False)
        values = n_keys + keys % n_values
        asked = rng.choice(n_pairs, size=n_queries, replace=False)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


@mutant("associative_recall_batch", "the keys of a row sorted (rng.choice, then np.sort)", kind="randomness")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = np.sort(rng.choice(n_keys, size=n_pairs, replace=False))
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        asked = rng.choice(n_pairs, size=n_queries, replace=False)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


@mutant("associative_recall_batch", "int64 token ids (numpy's default) instead of int32", kind="return-type")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    rows = [rng.choice(n_keys, size=n_pairs, replace=False) for _ in range(batch)]
    tokens, targets = [], []
    for keys in rows:
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        asked = rng.choice(n_pairs, size=n_queries, replace=False)
        tokens.append(np.concatenate([np.stack([keys, values], axis=1).ravel(), keys[asked]]))
        targets.append(values[asked])
    return np.array(tokens, dtype=np.int64), np.array(targets, dtype=np.int64)


@mutant("associative_recall_batch", "the keys shuffled by keras.random (the rule: numpy only)", kind="delegation")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        seed = int(rng.integers(2 ** 31))
        keys = ops.convert_to_numpy(keras.random.shuffle(ops.arange(n_keys), seed=seed))[:n_pairs]
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        asked = rng.choice(n_pairs, size=n_queries, replace=False)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


@mutant("associative_recall_batch", "the queried pairs drawn with replacement (a key asked twice)")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = rng.choice(n_keys, size=n_pairs, replace=False)
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        asked = rng.integers(0, n_pairs, size=n_queries)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


# --- found by a red team: accepted before the checks below were added -------------------------------
@mutant("causal_mask", "a 64 x 64 mask made once and cut to T (wrong for T > 64)", kind="state")
def causal_mask(T, _table=np.tril(np.ones((64, 64), dtype=bool))):
    return _table[:T, :T]


@mutant("cached_attention_step", "softmax by hand without subtracting the max (exp overflows on large scores)",
        kind="stability")
def cached_attention_step(attention, x_t, k_cache, v_cache):
    def project(dense):
        return ops.einsum("bd,dhk->bhk", x_t, dense.kernel) + dense.bias

    q = project(attention.query_dense)
    k_cache = ops.concatenate([k_cache, project(attention.key_dense)[:, None]], axis=1)
    v_cache = ops.concatenate([v_cache, project(attention.value_dense)[:, None]], axis=1)
    e = ops.exp(ops.einsum("bhk,bthk->bht", q, k_cache) / np.sqrt(q.shape[-1]))
    w = e / ops.sum(e, axis=-1, keepdims=True)
    y = ops.einsum("bhk,hkd->bd", ops.einsum("bht,bthk->bhk", w, v_cache), attention.output_dense.kernel)
    return y + attention.output_dense.bias, k_cache, v_cache


@mutant("associative_recall_batch", "one value for the whole row (rng.integers without size=)", kind="randomness")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = rng.choice(n_keys, size=n_pairs, replace=False)
        values = np.full(n_pairs, n_keys + rng.integers(0, n_values))
        asked = rng.choice(n_pairs, size=n_queries, replace=False)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


@mutant("associative_recall_batch", "the values of a row consecutive ids from a random start", kind="randomness")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = rng.choice(n_keys, size=n_pairs, replace=False)
        values = n_keys + (rng.integers(0, n_values) + np.arange(n_pairs)) % n_values
        asked = rng.choice(n_pairs, size=n_queries, replace=False)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


@mutant("associative_recall_batch", "the queried pairs a cyclic run from a random start", kind="randomness")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = rng.choice(n_keys, size=n_pairs, replace=False)
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        asked = (rng.integers(0, n_pairs) + np.arange(n_queries)) % n_pairs
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


@mutant("associative_recall_batch", "the keys of a row consecutive ids from a random start", kind="randomness")
def associative_recall_batch(rng, batch, n_pairs, n_queries, n_keys, n_values):
    tokens = np.empty((batch, 2 * n_pairs + n_queries), dtype=np.int32)
    targets = np.empty((batch, n_queries), dtype=np.int32)
    for row in range(batch):
        keys = (rng.integers(0, n_keys) + np.arange(n_pairs)) % n_keys
        values = n_keys + rng.integers(0, n_values, size=n_pairs)
        asked = rng.choice(n_pairs, size=n_queries, replace=False)
        tokens[row, 0:2 * n_pairs:2], tokens[row, 1:2 * n_pairs:2] = keys, values
        tokens[row, 2 * n_pairs:] = keys[asked]
        targets[row] = values[asked]
    return tokens, targets


def _class_mutant_value_dim():   # each head's values as wide as d_model
    @mutant("TransformerBlock", "MultiHeadAttention(value_dim=d_model): each head's values as wide as d_model",
            kind="setting")
    class TransformerBlock(keras.layers.Layer):
        def __init__(self, d_model, heads, mlp_dim, **kwargs):
            super().__init__(**kwargs)
            self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads,
                                                             value_dim=d_model)
            self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
            self.mlp_in = keras.layers.Dense(mlp_dim, activation="gelu")
            self.mlp_out = keras.layers.Dense(d_model)

        def call(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h, use_causal_mask=True)
            return x + self.mlp_out(self.mlp_in(self.norm2(x)))


_class_mutant_value_dim()



# --- results kept by the answer and handed out again (state) ------------------------------------------------
@mutant("causal_mask", "one cached mask per size, the same array for every caller", kind="state")
def causal_mask(T, _masks={}):
    if T not in _masks:
        _masks[T] = np.tri(T, dtype=bool)
    return _masks[T]


@mutant("causal_mask", "views of one stored mask: a caller's change reaches every later mask", kind="state")
def causal_mask(T, _table=np.tri(256, dtype=bool)):
    return _table[:T, :T]
