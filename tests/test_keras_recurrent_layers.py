"""Unit 04 (Keras recurrent layers): the facts the notebook teaches, checked against Keras,
and checks that accept correct answers written another way and name the usual wrong ones."""
import numpy as np
import pytest

from autograder.hidden import keras_recurrent_layers as hidden
from course.checks import CheckFailed
from course.checks import keras_recurrent_layers as visible
from course.env import import_keras

keras = import_keras()


# Correct answers written another way than the notebook's.
def recall_task(num, T, num_classes, num_distractors, seed):
    rng = np.random.default_rng(seed)
    X = np.empty((num, T), dtype=np.int32)
    y = rng.integers(num_classes, size=num).astype(np.int32)
    X[:] = rng.integers(num_classes + 1, num_classes + num_distractors + 1, size=(num, T))
    for i, p in enumerate(rng.integers(max(1, T // 2), size=num)):
        X[i, p] = y[i] + 1
    return X, y


def build_sequence_classifier(layer_cls, vocab_size, num_classes, units, embed_dim=16):
    return keras.Sequential([keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             layer_cls(units), keras.layers.Dense(num_classes)])


def pad_right(sequences, maxlen=None):   # numpy: keras.utils.pad_sequences is what the step rebuilds
    longest = max(len(s) for s in sequences) if maxlen is None else maxlen
    rows = [list(s)[:longest] + [0] * (longest - min(len(s), longest)) for s in sequences]
    return np.array(rows, dtype=np.int32).reshape(len(sequences), longest)


def last_real_outputs(outputs, padded):   # numpy, one row at a time
    outputs = keras.ops.convert_to_numpy(outputs)
    n = (np.asarray(padded) != 0).sum(axis=1)
    return np.stack([outputs[b, m - 1] if m else np.zeros(outputs.shape[-1]) for b, m in enumerate(n)])


def build_stacked_lstm(input_dim, units, num_layers):
    x = keras.Input((None, input_dim))
    layers = [keras.layers.LSTM(units, return_sequences=True) for _ in range(num_layers - 1)]
    top = keras.layers.LSTM(units, return_sequences=True, return_state=True)
    y = x
    for layer in layers:
        y = layer(y)
    return keras.Model(x, top(y))


def stream_in_chunks(layer, stream, chunk):
    layer.reset_states()   # the older name of reset_state
    T = stream.shape[1]
    return np.concatenate([keras.ops.convert_to_numpy(layer(stream[:, i:i + chunk])) for i in range(0, T, chunk)],
                          axis=1)


def later_token_tags(X, k):
    X = np.asarray(X)
    return np.pad(X, ((0, 0), (0, k)))[:, k:k + X.shape[1]].astype(np.int32)


def build_tagger(vocab_size, num_tags, units, bidirectional, embed_dim=16):
    rnn = keras.layers.LSTM(units, return_sequences=True)
    return keras.Sequential([keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
                             keras.layers.Bidirectional(rnn) if bidirectional else rnn,
                             keras.layers.Dense(num_tags)])


ANSWERS = [(recall_task, "recall_task"), (build_sequence_classifier, "build_sequence_classifier"),
           (pad_right, "pad_right"), (last_real_outputs, "last_real_outputs"),
           (build_stacked_lstm, "build_stacked_lstm"), (stream_in_chunks, "stream_in_chunks"),
           (later_token_tags, "later_token_tags"), (build_tagger, "build_tagger")]


@pytest.mark.parametrize("fn,step", ANSWERS, ids=[s for _, s in ANSWERS])
def test_correct_answers_written_another_way_pass_visible_and_hidden_checks(fn, step):
    getattr(visible, f"check_{step}")(fn)
    getattr(hidden, f"grade_{step}")(fn)


def test_keras_mask_skips_padding_and_an_empty_row_keeps_the_zero_state():
    rng = np.random.default_rng(0)
    layer = keras.layers.GRU(3, return_sequences=True, return_state=True)
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    H, last = (keras.ops.convert_to_numpy(v) for v in layer(x, mask=mask))
    alone = keras.ops.convert_to_numpy(layer(x[:1, :3])[1])
    np.testing.assert_allclose(last[0], alone[0], atol=1e-6)
    np.testing.assert_allclose(H[0, 3:], np.repeat(H[0, 2:3], 2, axis=0), atol=1e-7)  # outputs repeat the last one
    np.testing.assert_array_equal(last[2], 0.0)


def test_bidirectional_backward_half_is_a_go_backwards_layer_reversed():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    bi = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))
    out = keras.ops.convert_to_numpy(bi(x))
    assert out.shape == (2, 6, 8)
    back = keras.layers.LSTM(4, return_sequences=True, go_backwards=True)
    back.build((None, None, 3))
    back.set_weights(bi.backward_layer.get_weights())
    np.testing.assert_allclose(out[..., 4:], keras.ops.convert_to_numpy(back(x))[:, ::-1], atol=1e-6)


def test_stateful_chunks_equal_the_whole_stream_and_keras_pads_on_the_left_by_default():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 10, 3)).astype("float32")
    whole = keras.layers.LSTM(5, return_sequences=True)
    expected = keras.ops.convert_to_numpy(whole(x))
    streaming = keras.layers.LSTM(5, return_sequences=True, stateful=True)
    streaming.build((2, None, 3))
    streaming.set_weights(whole.get_weights())
    got = np.concatenate([keras.ops.convert_to_numpy(streaming(x[:, i:i + 4])) for i in (0, 4, 8)], axis=1)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert keras.utils.pad_sequences([[1, 2, 3], [4]], maxlen=2).tolist() == [[2, 3], [0, 4]]


def _fails(check, fn, pattern):
    with pytest.raises(CheckFailed, match=pattern):
        check(fn)


def test_messages_name_the_mistake():
    def left_pad(sequences, maxlen=None):
        width = max(len(s) for s in sequences) if maxlen is None else maxlen
        rows = [[0] * (width - min(len(s), width)) + list(s)[:width] for s in sequences]
        return np.array(rows, dtype=np.int32).reshape(len(sequences), width)

    def with_keras(sequences, maxlen=None):
        return keras.utils.pad_sequences([list(s) for s in sequences], maxlen=maxlen, padding="post",
                                         truncating="post", dtype="int32")

    def reset_every_chunk(layer, stream, chunk):
        outs = []
        for i in range(0, stream.shape[1], chunk):
            layer.reset_state()
            outs.append(keras.ops.convert_to_numpy(layer(stream[:, i:i + chunk])))
        return np.concatenate(outs, axis=1)

    def unmasked_last(outputs, padded):
        return outputs[:, -1]

    _fails(visible.check_pad_right, left_pad, "padding on the left")
    _fails(visible.check_pad_right, with_keras, "pad_right must be written with numpy.*keras.utils.pad_sequences")
    _fails(visible.check_stream_in_chunks, reset_every_chunk, "reset before every chunk")
    _fails(visible.check_last_real_outputs, unmasked_last, r"outputs\[:, -1\]")
    _fails(visible.check_later_token_tags, lambda X, k: np.roll(X, -k, axis=1), "np.roll")
    _fails(visible.check_recall_task, lambda n, T, K, D, s: recall_task(n, T, K, D, s)[::-1],
           r"should return a tuple|X \(num")
    _fails(visible.check_build_tagger, lambda v, n, u, b, e=16: build_tagger(v, n, u, True, e),
           "bidirectional=False asks for a one-way LSTM")


def test_the_notebook_states_each_steps_rule():
    import nbformat

    from autograder import ROOT
    from course import rules

    nb = nbformat.read(ROOT / "solutions" / "04_keras_recurrent_layers" / "keras_recurrent_layers.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for step, rule in rules.RULES["04_keras_recurrent_layers"].items():
        assert f"`{step}` must be {rule.text}." in text, step


def test_every_step_has_five_mutants_a_delegating_one_if_written_by_hand_and_the_unit_its_kinds():
    from autograder import mutants
    from course import rules

    found = mutants.for_notebook("keras_recurrent_layers")
    for step, rule in rules.RULES["04_keras_recurrent_layers"].items():
        assert sum(m.step == step for m in found) >= 5, step
        if rule.kind != "keras":   # Keras is the material of the other steps: nothing to delegate to
            assert any(m.step == step and m.kind == "delegation" for m in found), f"{step}: no delegating mutant"
    kinds = {"delegation", "in-place", "logic", "mechanism", "randomness", "return-type", "setting", "state"}
    assert kinds <= {m.kind for m in found}, kinds - {m.kind for m in found}
