"""No public function of the student package returns the answer of a graded step of units 04-07.

Each public function of ``course`` is called with the inputs of every step that is written by hand
(numpy or keras.ops, no ready-made layer), and what it returns is compared with what the solution returns.
"""

import numpy as np
import pytest

from course.stand_ins import TableStep
from test_student_package import functions_returning_answers


def _inputs():
    rng = np.random.default_rng(0)
    vocab05 = ["<pad>", "<start>", "<end>", "<unk>", *"-0123456789"]
    ids05 = np.array([[1, 6, 5, 2, 0], [1, 4, 4, 4, 2]])
    chars06 = sorted(set("to be or not"))
    probs05 = np.random.default_rng(5).dirichlet(np.ones(5), size=5)
    probs05[:, 2] = 1e-6   # END (2) unlikely: every kept sequence has max_len tokens
    table05 = TableStep(np.log(probs05 / probs05.sum(axis=1, keepdims=True)))
    a, b, h0 = rng.uniform(-1, 1, size=(2, 5, 3)), rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 3))
    return {
        "04_keras_recurrent_layers": [
            ("recall_task", (50, 6, 3, 4, 1)),
            ("pad_right", ([[5, 2, 7], [3], [4, 4, 1, 8]],)),
            ("later_token_tags", (np.array([[3, 1, 4, 1, 5], [9, 2, 6, 5, 0]], np.int32), 2)),
            ("last_real_outputs", (rng.normal(size=(2, 4, 3)).astype(np.float32),
                                   np.array([[5, 2, 0, 0], [1, 1, 1, 1]]))),
        ],
        "05_seq2seq_attention": [
            ("build_vocab", (["2021-03-04", "Mar 4"],)),
            ("vectorize", (["2021-03-04", "1-1"], vocab05, 12, True)),
            ("decode_ids", (ids05, vocab05)),
            ("teacher_forcing_pairs", (ids05,)),
            ("exposure_bias_rates", (np.array([[6, 4, 9, 2, 0], [5, 2, 0, 0, 0]]), np.array([[6, 5, 9, 2, 0], [5, 2, 0, 0, 0]]))),
            ("beam_search_decode", (table05, [np.zeros((1, 1))], 2, 4, 1, 2)),
        ],
        "06_char_shakespeare": [
            ("build_vocab", ("to be or not",)),
            ("encode", ("to be", {c: i for i, c in enumerate(chars06)})),
            ("decode", (np.array([3, 1, 0, 2]), chars06)),
            ("make_windows", (np.arange(20), 4)),
            ("sequence_loss", (rng.integers(0, 5, size=(2, 3)), rng.normal(size=(2, 3, 5)).astype(np.float32))),
            ("perplexity", (1.25,)),
            ("bits_per_char", (1.25,)),
        ],
        "07_rnn_vs_transformer": [
            ("causal_mask", (5,)),
            ("transformer_param_count", (65, 256, 56, 2, 224)),
            ("linear_recurrence_loop", (a, b, h0)),
        ],
    }


def _flatten(value, depth=0):
    """Every array, string and list of strings inside a result."""
    if depth > 4:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [v for x in value.values() for v in _flatten(x, depth + 1)]
    if isinstance(value, (list, tuple)):
        inner = [v for x in value for v in _flatten(x, depth + 1)]
        if value and all(isinstance(x, str) for x in value):
            inner.append(list(value))
        return inner
    if not isinstance(value, (np.ndarray, np.generic, int, float)) and type(value).__module__.startswith("course"):
        return []   # an object of the package (a stored table, a test model): no answer in itself
    try:
        array = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    except Exception:  # noqa: BLE001 - anything that is not numbers holds no numeric answer
        return []
    return [array] if array.size else []


def _same(got, want) -> bool:
    if isinstance(want, (str, list)) or isinstance(got, (str, list)):
        return type(got) is type(want) and got == want
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-6, atol=1e-9))


def _answers(value):
    """The parts of a step's answer: each item of a returned tuple, or the value itself."""
    parts = list(value) if isinstance(value, tuple) else [value]
    out = []
    for part in parts:
        if isinstance(part, str) or (isinstance(part, list) and all(isinstance(x, str) for x in part)):
            out.append(part)
        elif not isinstance(part, dict):
            out.append(np.asarray(part.numpy() if hasattr(part, "numpy") else part, dtype=np.float64))
    return out


@pytest.mark.parametrize("unit_id", list(_inputs()))
def test_no_public_function_of_the_package_returns_an_answer_of(unit_id, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIRS", "/nonexistent")   # no download from any dataset helper
    found = functions_returning_answers(unit_id, _inputs()[unit_id], answer_parts=_answers,
                                        result_parts=_flatten, same=_same)
    assert not found, "\n".join(found)
