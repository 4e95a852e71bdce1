"""Unit 06 (a character-level Shakespeare model): the checks accept correct answers written
another way than the notebook's, name the usual wrong ones, and rest on true facts."""
import math

import numpy as np
import pytest

from autograder.hidden import char_shakespeare as hidden
from course import env
from course.checks import CheckFailed
from course.checks import char_shakespeare as visible

keras = env.import_keras()
ops = keras.ops


# --- correct answers, written differently from the notebook's ---------------------------------

def build_vocab(text):
    chars = list(dict.fromkeys(sorted(text)))
    return chars, dict(zip(chars, range(len(chars))))


def encode(text, char_to_id):
    return np.fromiter((char_to_id[c] for c in text), dtype=np.int64, count=len(text))


def decode(ids, chars):
    return "".join(np.asarray(chars, dtype=object)[np.asarray(ids, dtype=np.int64)]) if len(ids) else ""


def make_windows(ids, seq_len, stride=None):
    step = stride or seq_len
    count = (len(ids) - seq_len - 1) // step + 1
    rows = np.arange(count)[:, None] * step + np.arange(seq_len)[None, :]
    ids = np.asarray(ids)
    return ids[rows], ids[rows + 1]


def batches(inputs, targets, batch_size, rng):
    order = np.arange(len(inputs))
    rng.shuffle(order)
    full = len(order) - len(order) % batch_size
    return [(inputs[part], targets[part]) for part in np.split(order[:full], full // batch_size)] if full else []


def build_char_model(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
    model = keras.Sequential()
    model.add(keras.Input(shape=(None,), dtype="int32"))
    model.add(keras.layers.Embedding(vocab_size, embedding_dim))
    for _ in range(layers):
        layer = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
        model.add(layer(units, dropout=dropout, return_sequences=True))
    model.add(keras.layers.Dense(vocab_size, activation=None))
    return model


def sequence_loss(targets, logits):
    log_probs = ops.log_softmax(ops.convert_to_tensor(logits, "float32"), axis=-1)
    one_hot = ops.one_hot(ops.convert_to_tensor(targets, "int32"), ops.shape(log_probs)[-1])
    return -ops.sum(log_probs * one_hot) / ops.cast(ops.size(targets), "float32")


def sample_by_gumbel(logits, temperature, rng):
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return logits.argmax(axis=1)
    return np.argmax(logits / temperature + rng.gumbel(size=logits.shape), axis=1)


def sample_row_by_row(logits, temperature, rng):
    out = []
    for row in np.asarray(logits, np.float64):
        if temperature == 0:
            out.append(int(np.argmax(row)))
            continue
        p = np.exp((row - row.max()) / temperature)
        out.append(int(rng.choice(len(row), p=p / p.sum())))
    return out


def initial_states(model, batch_size):   # the notebook's own (answers may not call the checks)
    return [list(layer.cell.get_initial_state(batch_size)) for layer in model.layers[1:-1]]


def char_step(model, ids_t, states):
    layers = model.layers
    h, carried = layers[0](ids_t), []
    for layer, s in zip(layers[1:-1], states):
        h, new = layer.cell(h, list(s))
        carried.append(tuple(new))          # tuples instead of lists: any structure that feeds back
    return layers[-1](h), carried


def generate(model, prefix_ids, n, temperature=1.0, seed=0):
    rng = np.random.default_rng(seed)
    states = initial_states(model, 1)
    for token in prefix_ids[:-1]:
        _, states = char_step(model, np.array([token]), states)
    token, out = prefix_ids[-1], []
    for _ in range(n):
        logits, states = char_step(model, np.array([token]), states)
        token = int(sample_by_gumbel(ops.convert_to_numpy(logits), temperature, rng)[0])
        out.append(token)
    return out


def loss_by_position(model, inputs, targets):
    # keras.ops' log_softmax and a one-hot product instead of numpy's take_along_axis, the windows one at a time
    rows = []
    for x, y in zip(inputs, targets):
        log_probs = ops.log_softmax(ops.cast(model(x[None], training=False), "float64"), axis=-1)[0]
        rows.append(-ops.convert_to_numpy(ops.sum(log_probs * ops.one_hot(y, log_probs.shape[-1], dtype="float64"),
                                                  axis=-1)))
    return np.mean(np.array(rows, dtype=np.float64), axis=0)


def carried_state_loss(stream_model, ids, chunk_len):
    # the model called directly (not predict_on_batch), every loss kept and averaged at the end
    for layer in stream_model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()
    ids, losses = np.asarray(ids), []
    for start in range(0, len(ids) - 1, chunk_len):
        stop = min(start + chunk_len, len(ids) - 1)
        z = np.asarray(ops.convert_to_numpy(stream_model(ids[None, start:stop])), np.float64)[0]
        log_probs = z - z.max(axis=1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
        losses.append(-log_probs[np.arange(stop - start), ids[start + 1:stop + 1]])
    return np.concatenate(losses).mean()


CORRECT = [
    (build_vocab, visible.check_build_vocab, hidden.grade_build_vocab),
    (encode, visible.check_encode, hidden.grade_encode),
    (decode, visible.check_decode, hidden.grade_decode),
    (make_windows, visible.check_make_windows, hidden.grade_make_windows),
    (batches, visible.check_batches, hidden.grade_batches),
    (build_char_model, visible.check_build_char_model, hidden.grade_build_char_model),
    (sequence_loss, visible.check_sequence_loss, hidden.grade_sequence_loss),
    (lambda loss: math.e ** np.asarray(loss), visible.check_perplexity, hidden.grade_perplexity),
    (lambda loss: np.log2(np.exp(loss)), visible.check_bits_per_char, hidden.grade_bits_per_char),
    (sample_by_gumbel, visible.check_sample_next, hidden.grade_sample_next),
    (sample_row_by_row, visible.check_sample_next, hidden.grade_sample_next),
    (char_step, visible.check_char_step, hidden.grade_char_step),
    (loss_by_position, visible.check_loss_by_position, hidden.grade_loss_by_position),
    (carried_state_loss, visible.check_carried_state_loss, hidden.grade_carried_state_loss),
]


@pytest.mark.parametrize("fn,check,grade", CORRECT, ids=lambda v: getattr(v, "__name__", ""))
def test_correct_answers_written_another_way_pass(fn, check, grade):
    check(fn)
    grade(fn)


def test_generate_written_another_way_passes():
    # generate() uses the module's own char_step and sampler, fed the prefix all but one first.
    visible.check_generate(generate)
    hidden.grade_generate(generate)


# --- facts the notebook states --------------------------------------------------------------

def test_parameter_count_closed_form_matches_keras():
    for case in (visible.ModelCase(65, 32, 128, 1, "lstm"), visible.ModelCase(13, 8, 16, 3, "lstm"),
                 visible.ModelCase(65, 16, 32, 2, "gru")):
        model = visible.reference_stack(case)
        assert model.count_params() == visible.expected_param_count(case)
    assert visible.expected_param_count(visible.ModelCase(65, 128, 512, 2, "lstm")) == 3_453_633


def test_chi_square_limit_is_about_one_in_a_million():
    # For an even number of degrees of freedom 2k the tail is exact and short:
    # P(X > x) = exp(-x/2) * sum_{i<k} (x/2)^i / i!. The limit should leave between 1e-7 and 1e-6.
    def tail(x, df):
        return math.exp(-x / 2) * sum((x / 2) ** i / math.factorial(i) for i in range(df // 2))

    for df in (2, 4, 6, 10):
        assert 1e-7 < tail(visible.chi_square_limit(df), df) <= 1e-6


def test_uniform_model_loss_is_ln_v_and_keras_agrees_on_large_logits():
    V = 65
    targets = np.random.default_rng(0).integers(0, V, size=(2, 3)).astype(np.int32)
    assert float(sequence_loss(targets, np.zeros((2, 3, V), np.float32))) == pytest.approx(math.log(V), rel=1e-6)
    big = visible.loss_inputs(visible.LossCase(2, 4, 6, seed=2, scale=1000.0))
    value = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(*big)
    assert np.isfinite(float(value)) and float(value) > 100


def test_windows_count_in_closed_form_on_the_real_split_lengths():
    for n, T in ((1_003_854, 100), (111_540, 128), (101, 10)):
        inputs, _ = make_windows(np.zeros(n, np.int32), T)
        assert len(inputs) == (n - T - 1) // T + 1


# --- wrong answers get named ------------------------------------------------------------------

def _fails(check, fn, pattern):
    with pytest.raises(CheckFailed, match=pattern):
        check(fn)


def test_messages_name_the_mistake():
    _fails(visible.check_build_vocab, lambda t: (list(dict.fromkeys(t)), {c: i for i, c in enumerate(dict.fromkeys(t))}),
           "order they first appear")
    _fails(visible.check_build_vocab, lambda t: (sorted(set(t)), {c: i + 1 for i, c in enumerate(sorted(set(t)))}),
           "start at 1")
    _fails(visible.check_encode, lambda t, m: np.array([ord(c) for c in t]), "code points")
    _fails(visible.check_decode, lambda ids, chars: " ".join(chars[i] for i in ids), "joined with spaces")
    _fails(visible.check_make_windows, lambda ids, T, stride=None: (make_windows(ids, T, stride)[0],) * 2,
           "not shifted")
    _fails(visible.check_batches, lambda x, y, b, rng: [(x[i:i + b], y[i:i + b]) for i in range(0, len(x) - b + 1, b)],
           "original order")
    _fails(visible.check_sequence_loss, lambda y, z: -ops.mean(ops.take_along_axis(
        ops.log_softmax(ops.convert_to_tensor(z), axis=1), ops.expand_dims(ops.convert_to_tensor(y), -1), axis=-1)),
        "time axis")
    _fails(visible.check_sequence_loss, lambda y, z: ops.mean(
        ops.log(ops.sum(ops.exp(ops.convert_to_tensor(z)), axis=-1)) - ops.squeeze(ops.take_along_axis(
            ops.convert_to_tensor(z), ops.expand_dims(ops.convert_to_tensor(y), -1), axis=-1), -1)), "log-sum-exp")
    _fails(visible.check_perplexity, lambda loss: 2.0 ** np.asarray(loss), "2 \\*\\* loss")
    _fails(visible.check_bits_per_char, lambda loss: np.asarray(loss) * np.log(2), "divide by ln 2")
    _fails(visible.check_sample_next,
           lambda z, T, rng: sample_by_gumbel(np.asarray(z) * T * T, T, rng) if T else np.argmax(z, axis=1),
           "softmax\\(logits \\* T\\): divide by the temperature")

    def no_shift(z, T, rng):
        if T == 0:
            return np.argmax(z, axis=1)
        with np.errstate(over="ignore", invalid="ignore"):
            p = np.exp(np.asarray(z, np.float64) / T)
            p = p / p.sum(axis=1, keepdims=True)
        return (np.nancumsum(p, axis=1) < rng.random((len(p), 1))).sum(axis=1).clip(0, p.shape[1] - 1)

    _fails(visible.check_sample_next, no_shift, "overflows")
    _fails(visible.check_sample_next,
           lambda z, T, rng: sample_by_gumbel(z, 1.0 if T > 0.1 else T, rng), "the temperature is ignored")
    _fails(visible.check_char_step, lambda m, ids, s: (char_step(m, ids, s)[0], s), "not carried")

    def prefix_not_fed(model, prefix_ids, n, temperature=1.0, seed=0):
        return generate(model, prefix_ids[-1:], n, temperature, seed)

    _fails(visible.check_generate, prefix_not_fed, "only the last prefix character fed")


def test_carrying_the_state_over_chunks_equals_one_run_over_the_whole_text():
    # the closed form the check of carried_state_loss rests on, for chunk lengths that do and do not divide the text
    case = visible.CarryCase(visible.StepCase(7, 4, 5, 2, "lstm", batch=1, time=1, seed=3), length=31, chunk=7)
    whole, stream = visible.carry_model(case, stateful=False), visible.carry_model(case, stateful=True)
    ids = visible.carried_ids(case)
    at_once = ops.convert_to_numpy(whole(ids[None, :-1]))
    for chunk in (1, 7, 30):
        for layer in stream.layers[1:-1]:
            layer.reset_state()
        pieces = [ops.convert_to_numpy(stream(ids[None, s:min(s + chunk, 30)])) for s in range(0, 30, chunk)]
        np.testing.assert_allclose(np.concatenate(pieces, axis=1), at_once, rtol=1e-5, atol=1e-6)


def test_loss_and_carry_messages_name_the_mistake():
    _fails(visible.check_loss_by_position, lambda m, x, y: np.float32(1.0) * loss_by_position(m, x, y).astype(
        np.float32), "float64")

    def reset_every_chunk(stream_model, ids, chunk_len):
        ids = np.asarray(ids)
        return float(np.mean(np.concatenate([
            [carried_state_loss(stream_model, ids[s:s + chunk_len + 1], chunk_len)] * len(ids[s + 1:s + chunk_len + 1])
            for s in range(0, len(ids) - 1, chunk_len)])))

    _fails(visible.check_carried_state_loss, reset_every_chunk, "states reset before every chunk")

    def whole_text_at_once(stream_model, ids, chunk_len):
        return carried_state_loss(stream_model, ids, len(ids))

    _fails(visible.check_carried_state_loss, whole_text_at_once, "in one call")


def test_a_functional_model_is_told_to_use_sequential():
    def functional(vocab_size, embedding_dim, units, layers, cell="lstm", dropout=0.0):
        recurrent = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
        tokens = keras.Input(shape=(None,), dtype="int32")
        hidden = keras.layers.Embedding(vocab_size, embedding_dim)(tokens)
        for _ in range(layers):
            hidden = recurrent(units, dropout=dropout, return_sequences=True)(hidden)
        return keras.Model(tokens, keras.layers.Dense(vocab_size)(hidden))

    _fails(visible.check_build_char_model, functional, "keras.Sequential")


def test_sampling_check_cannot_be_failed_by_a_correct_generator_by_chance():
    # Two seeds agree on every new id at temperature 2 with probability at most the product of
    # sum(p ** 2) along the way; along the likeliest path that is already negligible.
    g = visible.GENERATE_CASES[0]
    model, sequence, agree = visible.random_model(g.model), list(g.prefix), 1.0
    for _ in range(g.n):
        z = ops.convert_to_numpy(model(np.array([sequence], np.int32)))[0, -1] / 2.0
        p = np.exp(z - z.max())
        p /= p.sum()
        agree *= float((p ** 2).sum())
        sequence.append(int(p.argmax()))
    assert agree < 1e-6


def test_the_notebook_states_each_steps_rule():
    import nbformat

    from autograder import ROOT
    from course import rules

    nb = nbformat.read(ROOT / "solutions" / "06_char_shakespeare" / "char_shakespeare.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for step, rule in rules.RULES["06_char_shakespeare"].items():
        assert f"`{step}` must be {rule.text}." in text, step


def test_every_step_has_five_mutants_a_delegating_one_if_written_by_hand_and_the_unit_its_kinds():
    from autograder import mutants
    from course import rules

    found = mutants.for_notebook("char_shakespeare")
    for step, rule in rules.RULES["06_char_shakespeare"].items():
        assert sum(m.step == step for m in found) >= 5, step
        if rule.kind != "keras":   # Keras is the material of the other steps: nothing to delegate to
            assert any(m.step == step and m.kind == "delegation" for m in found), f"{step}: no delegating mutant"
    kinds = {"delegation", "in-place", "logic", "mechanism", "precision", "randomness", "return-type",
             "setting", "stability", "state", "training-mode"}
    assert kinds <= {m.kind for m in found}, kinds - {m.kind for m in found}
