"""Unit 05 (seq2seq and attention): the references agree with Keras, the test models behave
as the checks assume, every correct answer passes, and the usual wrong ones are named."""
import numpy as np
import pytest

from autograder.hidden import seq2seq_attention as hidden
from autograder.reference import seq2seq_attention as ref
from course.checks import CheckFailed
from course.checks import seq2seq_attention as visible
from course.env import import_keras

keras = import_keras()
ops = keras.ops
PAD, START, END, UNK = visible.PAD, visible.START, visible.END, visible.UNK


# --- correct answers, written another way than the notebook's -------------------------------

def build_vocab(texts):
    chars = {c: None for text in texts for c in text}
    return [*visible.SPECIALS, *sorted(chars)]


def vectorize(texts, vocab, maxlen, add_start_end=False):
    lookup = dict(zip(vocab, range(len(vocab))))
    rows = []
    for text in texts:
        body = [lookup[c] if c in lookup else UNK for c in text]
        row = [START, *body[:max(maxlen - 2, 0)], END] if add_start_end else body[:maxlen]
        rows.append(row + [PAD] * (maxlen - len(row)))
    return np.array(rows, dtype=np.int64).reshape(len(texts), maxlen)


def decode_ids(ids, vocab):
    out = []
    for row in np.asarray(ids).tolist():
        cut = row.index(END) if END in row else len(row)
        out.append("".join(vocab[i] for i in row[:cut] if i not in (PAD, START, END, UNK)))
    return out


def teacher_forcing_pairs(target_ids):
    ids = np.array(target_ids)
    return ids[:, :-1].copy(), ids[:, 1:].copy()


class BahdanauAttention(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.W1 = keras.layers.Dense(units, use_bias=False, name="W1")
        self.W2 = keras.layers.Dense(units, name="W2")
        self.v = keras.layers.Dense(1, use_bias=False, name="v")

    def call(self, query, values, mask=None):   # -inf instead of -1e9, einsum for the context
        energy = ops.tanh(self.W1(query)[:, None, :] + self.W2(values))
        scores = self.v(energy)[..., 0]
        if mask is not None:
            scores = ops.where(ops.cast(mask, "bool"), scores, float("-inf"))
        weights = ops.softmax(scores)
        return ops.einsum("bt,btd->bd", weights, values), weights


def teacher_forced_decode(model, source_ids, decoder_input):
    outputs, mask, states = model.encode(source_ids)
    logits = []
    for column in range(decoder_input.shape[1]):
        step, states, _ = model.decode_step(decoder_input[:, column], states, outputs, mask)
        logits.append(ops.expand_dims(step, 1))
    return ops.concatenate(logits, axis=1)


def greedy_decode(model, source_ids, max_len):   # no early stop; a list of steps, stacked at the end
    outputs, mask, states = model.encode(source_ids)
    batch = np.shape(source_ids)[0]
    fed, alive, tokens, weights = np.full(batch, START), np.ones(batch, bool), [], []
    for _ in range(max_len):
        logits, states, w = model.decode_step(fed, states, outputs, mask)
        fed = ops.convert_to_numpy(ops.argmax(logits, axis=-1))
        tokens.append(np.where(alive, fed, PAD))
        weights.append(np.asarray(ops.convert_to_numpy(w), np.float64) * alive[:, None])
        alive &= fed != END
    return np.stack(tokens, 1).astype(np.int64), np.stack(weights, 1)


def beam_search_decode(step_fn, initial_states, beam_width, max_len, start_id=START, end_id=END):
    # hypotheses as dicts, the whole beam re-scored as one array per step; finished ones kept aside in the pool
    pool = [{"score": 0.0, "tokens": (), "state": [np.asarray(s)[0] for s in initial_states], "done": False}]
    for _ in range(max_len):
        live = [h for h in pool if not h["done"]]
        if not live:
            break
        tokens = np.array([h["tokens"][-1] if h["tokens"] else start_id for h in live])
        states = [np.stack([h["state"][j] for h in live]) for j in range(len(live[0]["state"]))]
        log_probs, new_states = step_fn(tokens, states)
        grown = [h for h in pool if h["done"]]
        for row, h in enumerate(live):
            for token, lp in enumerate(np.asarray(log_probs, np.float64)[row]):
                grown.append({"score": h["score"] + lp, "tokens": h["tokens"] + (token,),
                              "state": [np.asarray(s)[row] for s in new_states], "done": token == end_id})
        pool = sorted(grown, key=lambda h: (-h["score"], list(h["tokens"])))[:beam_width]
    return [list(h["tokens"]) for h in pool], np.array([h["score"] for h in pool])


class LuongAttention(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.W = keras.layers.Dense(units, use_bias=False, name="W")

    def call(self, query, values, mask=None):   # matmul, and -inf for the padding
        scores = ops.squeeze(ops.matmul(values, ops.expand_dims(self.W(query), -1)), -1)
        if mask is not None:
            scores = ops.where(ops.cast(mask, "bool"), scores, float("-inf"))
        weights = ops.softmax(scores, axis=-1)
        return ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), values), 1), weights


def exposure_bias_rates(predicted, target):   # vectorised: where each row's first mistake is
    predicted, target = np.asarray(predicted), np.asarray(target)
    T = target.shape[1]
    stop = np.where((target == END).any(1), np.argmax(target == END, axis=1), T - 1)
    stop = np.minimum(stop, np.where((target == PAD).any(1), np.argmax(target == PAD, axis=1) - 1, T - 1))
    position = np.arange(T)[None, :]
    counted = position <= stop[:, None]
    wrong = (predicted != target) & counted
    first = np.where(wrong.any(1), np.argmax(wrong, axis=1), T)
    on, off = counted & (position <= first[:, None]), counted & (position > first[:, None])
    return np.array([wrong[on].sum() / on.sum() if on.sum() else 0.0, wrong[off].sum() / off.sum() if off.sum() else 0.0])


ANSWERS = [
    (build_vocab, visible.check_build_vocab, hidden.grade_build_vocab),
    (vectorize, visible.check_vectorize, hidden.grade_vectorize),
    (decode_ids, visible.check_decode_ids, hidden.grade_decode_ids),
    (teacher_forcing_pairs, visible.check_teacher_forcing_pairs, hidden.grade_teacher_forcing_pairs),
    (BahdanauAttention, visible.check_BahdanauAttention, hidden.grade_BahdanauAttention),
    (teacher_forced_decode, visible.check_teacher_forced_decode, hidden.grade_teacher_forced_decode),
    (greedy_decode, visible.check_greedy_decode, hidden.grade_greedy_decode),
    (beam_search_decode, visible.check_beam_search_decode, hidden.grade_beam_search_decode),
    (LuongAttention, visible.check_LuongAttention, hidden.grade_LuongAttention),
    (exposure_bias_rates, visible.check_exposure_bias_rates, hidden.grade_exposure_bias_rates),
]


@pytest.mark.parametrize("answer,check,grade", ANSWERS, ids=[a[0].__name__ for a in ANSWERS])
def test_correct_answers_written_another_way_pass_visible_and_hidden_checks(answer, check, grade, capsys):
    check(answer)
    grade(answer)
    assert capsys.readouterr().out.count("✓") == 2


# --- the references against Keras ------------------------------------------------------------

@pytest.mark.parametrize("case", [*visible.ATTENTION_CASES, *hidden.ATTENTION_CASES])
def test_bahdanau_reference_equals_keras_additive_attention_on_projected_inputs(case):
    query, values, mask, w = visible.attention_inputs(case)
    context, weights = ref.attention(query, values, mask, **w)
    keras_context, keras_weights = visible._keras_additive_attention(query, values, mask, **w)
    np.testing.assert_allclose(weights, keras_weights, atol=2e-6)
    np.testing.assert_allclose(context, keras_context, atol=2e-5)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    if mask is not None:
        assert np.all(weights[~mask] == 0.0) and np.all(keras_weights[~mask] == 0.0)


def test_with_identity_projections_bahdanau_is_keras_additive_attention_itself():
    rng = np.random.default_rng(0)
    d, T = 4, 6
    query, values = rng.normal(size=(2, d)), rng.normal(size=(2, T, d))
    mask = np.arange(T)[None, :] < np.array([[6], [2]])
    scale = rng.normal(size=(d, 1))
    context, weights = ref.attention(query, values, mask, np.eye(d), np.eye(d), np.zeros(d), scale)
    layer = keras.layers.AdditiveAttention(use_scale=True)
    layer.build([(2, 1, d), (2, T, d)])
    layer.set_weights([scale[:, 0].astype("float32")])
    out, scores = layer([query[:, None].astype("float32"), values.astype("float32")], mask=[None, mask],
                        return_attention_scores=True)
    np.testing.assert_allclose(weights, np.asarray(scores)[:, 0], atol=2e-6)
    np.testing.assert_allclose(context, np.asarray(out)[:, 0], atol=2e-5)


def test_vectorize_reference_agrees_with_string_lookup_and_round_trips():
    for case in (*visible.VECTORIZE_CASES, *hidden.VECTORIZE_CASES):
        vocab = ref.vocab(case.vocab_texts)
        ours = ref.vectorize(case.texts, vocab, case.maxlen, case.add_start_end)
        room = case.maxlen - 2 if case.add_start_end else case.maxlen
        for row, text in zip(ours, case.texts):
            ids = visible._lookup_ids(text[:room], vocab)
            body = [visible.START, *ids, visible.END] if case.add_start_end else list(ids)
            np.testing.assert_array_equal(row, body + [visible.PAD] * (case.maxlen - len(body)))
    vocab = ref.vocab(["2021-03-04"])
    ids = ref.vectorize(["2021-03-04", "0-1"], vocab, 12, True)
    assert ref.decode(ids, vocab) == ["2021-03-04", "0-1"]


def test_the_wheel_computes_no_answer_of_the_data_steps():
    for name in ("vocab_reference", "vectorize_reference", "decode_reference", "attention_reference"):
        assert not hasattr(visible, name)


def test_keras_toy_decoder_step_by_step_equals_keras_gru():
    for case in visible.TEACHER_CASES:
        toy = visible.KerasToy(seed=case.seed)
        source = visible._sources(case, 12)
        fed = visible._decoder_input(case, 9)
        np.testing.assert_allclose(ops.convert_to_numpy(teacher_forced_decode(toy, source, fed)),
                                   visible._keras_toy_reference(toy, source, fed), atol=1e-5)


# --- the test model behaves as the checks assume ------------------------------------------

@pytest.mark.parametrize("cases", [visible.GREEDY_CASES, hidden.GREEDY_CASES])
def test_toy_rows_finish_at_different_steps_and_mistakes_change_the_answer(cases):
    finish_steps = set()
    for case in cases:
        toy = visible.ToyTranslator(seed=case.seed)
        source = visible._sources(case, toy.source_vocab)
        tokens, weights = visible._toy_greedy(toy, source, case.target_len)
        for row in tokens:
            ends = np.flatnonzero(row == END)
            finish_steps.add(int(ends[0]) if ends.size else None)
        assert not np.isin(tokens, [START]).any()
        if case.batch > 1:
            for options in (dict(carry=False), dict(feed_back=False), dict(stop=False)):
                wrong = visible._toy_greedy(toy, source, case.target_len, **options)[0]
                assert not np.array_equal(wrong, tokens), options
        # re-running the whole prefix with teacher forcing predicts every greedy token
        fed = np.concatenate([np.full((case.batch, 1), START), tokens[:, :-1]], axis=1)
        logits, replay_weights = visible._toy_teacher_forced(toy, source, fed)
        live = np.cumsum(tokens == END, axis=1) - (tokens == END) == 0
        assert np.array_equal(np.argmax(logits, axis=2)[live], tokens[live])
        np.testing.assert_allclose(replay_weights[live], weights[live])
    # rows that say END at once (visible), at several steps, and never within max_len
    assert None in finish_steps and len(finish_steps) >= 4, finish_steps
    assert cases is not visible.GREEDY_CASES or 0 in finish_steps, finish_steps


def test_toy_accepts_keras_tensors_and_returns_them_when_asked():
    case = visible.GREEDY_CASES[0]
    plain, tensors = visible.ToyTranslator(seed=1), visible.ToyTranslator(seed=1, tensors=True)
    source = visible._sources(case, 12)
    out, mask, states = tensors.encode(ops.convert_to_tensor(source))
    assert not isinstance(out, np.ndarray)
    np.testing.assert_array_equal(visible._toy_greedy(plain, source, 5)[0], visible._toy_greedy(tensors, source, 5)[0])


# --- messages ---------------------------------------------------------------------------------

def _fails(check, fn, pattern):
    with pytest.raises(CheckFailed, match=pattern):
        check(fn)


def test_messages_name_the_mistake():
    class MaskIgnored(BahdanauAttention):
        def call(self, query, values, mask=None):
            return super().call(query, values, None)

    class Unnormalised(BahdanauAttention):
        def call(self, query, values, mask=None):
            context, weights = super().call(query, values, None)
            if mask is not None:
                weights = weights * ops.cast(mask, weights.dtype)
            return ops.einsum("bt,btd->bd", weights, values), weights

    def free_running(model, source_ids, decoder_input):
        outputs, mask, states = model.encode(source_ids)
        fed, logits = decoder_input[:, 0], []
        for _ in range(decoder_input.shape[1]):
            step, states, _ = model.decode_step(fed, states, outputs, mask)
            logits.append(step)
            fed = ops.argmax(step, axis=-1)
        return ops.stack(logits, axis=1)

    def no_stop(model, source_ids, max_len):   # every step's argmax kept, END or not
        outputs, mask, states = model.encode(source_ids)
        batch, width = np.shape(source_ids)
        tokens, weights = np.full((batch, max_len), PAD), np.zeros((batch, max_len, width))
        fed = np.full(batch, START)
        for t in range(max_len):
            logits, states, w = model.decode_step(fed, states, outputs, mask)
            fed = np.argmax(ops.convert_to_numpy(logits), axis=-1)
            tokens[:, t], weights[:, t] = fed, ops.convert_to_numpy(w)
        return tokens, weights

    def calls_the_checks(model, source_ids, max_len):
        return visible._toy_greedy(model, source_ids, max_len)

    _fails(visible.check_BahdanauAttention, MaskIgnored, r"masked positions must get exactly 0")
    _fails(visible.check_BahdanauAttention, Unnormalised, r"sum to 1.*mask applied after the softmax")
    _fails(visible.check_teacher_forced_decode, free_running, r"fed its own predictions")
    _fails(visible.check_greedy_decode, no_stop, r"should be <pad>.*no stop at END")
    _fails(visible.check_greedy_decode, calls_the_checks,
           r"greedy_decode must be built with Keras.*it calls course.checks.seq2seq_attention._toy_greedy")
    _fails(visible.check_vectorize, lambda t, v, n, add_start_end=False: vectorize(t, v, n, True),
           r"START and END added although add_start_end=False")
    _fails(visible.check_teacher_forcing_pairs, lambda ids: (ids[:, :-1], ids[:, :-1]), r"target not shifted")
    _fails(visible.check_build_vocab, lambda texts: sorted(set("".join(texts))), r"no special tokens")
    _fails(visible.check_decode_ids, lambda ids, vocab: decode_ids(ids, vocab)[:1], r"one string per row")


def test_the_notebook_states_each_steps_rule():
    import nbformat

    from autograder import ROOT
    from course import rules

    nb = nbformat.read(ROOT / "solutions" / "05_seq2seq_attention" / "seq2seq_attention.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    for step, rule in rules.RULES["05_seq2seq_attention"].items():
        assert f"`{step}` must be {rule.text}." in text, step


def test_every_step_has_five_mutants_a_delegating_one_if_written_by_hand_and_the_unit_its_kinds():
    from autograder import mutants
    from course import rules

    found = mutants.for_notebook("seq2seq_attention")
    for step, rule in rules.RULES["05_seq2seq_attention"].items():
        assert sum(m.step == step for m in found) >= 5, step
        if rule.kind != "keras":   # Keras is the material of the other steps: nothing to delegate to
            assert any(m.step == step and m.kind == "delegation" for m in found), f"{step}: no delegating mutant"
    kinds = {"delegation", "in-place", "logic", "mechanism", "return-type", "setting", "state"}
    assert kinds <= {m.kind for m in found}, kinds - {m.kind for m in found}


# --- beam search, Luong attention, exposure bias --------------------------------------------------

@pytest.mark.parametrize("case", [*visible.BEAM_CASES, *hidden.BEAM_CASES], ids=str)
def test_beam_cases_are_what_the_checks_say(case):
    """The hand-worked answers are brute force's too, and a beam wide enough holds every sequence."""
    model = visible.beam_model(case)
    if case.model in ("trap", "uniform"):
        want = visible.TRAP_ANSWER if case.model == "trap" else visible.UNIFORM_ANSWER
        assert beam_search_decode(model, model.initial_states(), case.beam_width, case.max_len)[0] == want[0]
        sequences, scores = visible._brute_force(model, case.max_len, START, END)
        if case.model == "trap":   # brute force agrees that these two are the best of all
            assert sequences[:2] == want[0]
            np.testing.assert_allclose(scores[:2], want[1], rtol=1e-12)
    if case.model == "long":       # a product of the probabilities underflows in float32 (and nearly in float64)
        sequence = visible._greedy_sequence(model, case.max_len, START, END)
        assert len(sequence) == case.max_len and visible._score_of(model, sequence, START) < np.log(1e-46)
    if case.model == "recurrent":  # the states matter: the same tokens from reset states score otherwise
        sequence = visible._greedy_sequence(model, case.max_len, START, END)
        log_probs, _ = model(np.array([sequence[0]]), model.initial_states())
        later, _ = model(np.array([sequence[0]]), model(np.array([START]), model.initial_states())[1])
        assert not np.allclose(log_probs, later)
    if case.beam_width >= 100:     # the wide cases are meant to hold every sequence (brute force)
        assert case.beam_width >= len(visible._brute_force(model, case.max_len, START, END)[0])


def test_beam_search_on_the_recurrent_model_can_beat_greedy():
    """Somewhere in the cases a wider beam finds a better sequence than greedy: the step is worth its name."""
    better = 0
    for seed in range(20):
        model = visible.RecurrentStep(seed=seed, vocab=4, end_after=2)
        greedy = visible._greedy_sequence(model, 5, START, END)
        _, scores = beam_search_decode(model, model.initial_states(), 4, 5)
        better += scores[0] > visible._score_of(model, greedy, START) + 1e-9
    assert better >= 3


@pytest.mark.parametrize("case", [*visible.LUONG_CASES, *hidden.LUONG_CASES], ids=str)
def test_keras_attention_is_luongs_general_score(case):
    query, values, mask, W = visible.luong_inputs(case)
    scores = np.einsum("bd,btd->bt", query @ W, values)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    context, keras_weights = visible._keras_dot_attention(query, values, mask, W)
    np.testing.assert_allclose(keras_weights, weights, atol=2e-6)
    np.testing.assert_allclose(context, np.einsum("bt,btd->bd", weights, values), atol=2e-5)
    if mask is not None:
        assert np.all(keras_weights[~mask] == 0.0)


def test_exposure_hand_cases_and_random_cases_agree_with_the_closed_form():
    for predicted, target, want in visible.EXPOSURE_HAND_CASES:
        np.testing.assert_allclose(ref.exposure_rates(predicted, target), want, rtol=1e-15)
    for predicted, target in (*visible.EXPOSURE_CASES, *hidden.EXPOSURE_CASES):
        rates = ref.exposure_rates(predicted, target)
        assert rates.dtype == np.float64 and np.all(np.isfinite(rates))
    for predicted, target in (visible.EXPOSURE_CASES[-1], *hidden.EXPOSURE_CASES[-2:]):
        on_path, after = ref.exposure_rates(predicted, target)
        assert after > on_path > 0   # the larger cases are built so that mistakes follow mistakes


def test_messages_of_the_new_steps_name_the_mistake():
    class Scaled(LuongAttention):
        def call(self, query, values, mask=None):
            scores = ops.sum(ops.expand_dims(self.W(query), 1) * values, axis=-1) / np.sqrt(values.shape[-1])
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            weights = ops.softmax(scores, axis=-1)
            return ops.sum(ops.expand_dims(weights, -1) * values, axis=1), weights

    def ascending(step_fn, initial_states, beam_width, max_len, start_id=START, end_id=END):
        sequences, scores = beam_search_decode(step_fn, initial_states, 10_000, max_len, start_id, end_id)
        return sequences[::-1][:beam_width], scores[::-1][:beam_width]

    def nan_rows(predicted, target):
        rates = exposure_bias_rates(predicted, target)
        return np.where(rates == 0, np.nan, rates)

    _fails(visible.check_LuongAttention, Scaled, r"divided by sqrt.*no scale")
    _fails(visible.check_beam_search_decode, ascending, r"not sorted best first")
    _fails(visible.check_exposure_bias_rates, nan_rows, r"0.0, not 0/0")
    _fails(visible.check_exposure_bias_rates, lambda p, t: list(exposure_bias_rates(p, t)), r"numpy array")
