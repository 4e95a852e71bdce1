"""What each graded step may be built from: one table, read by the visible checks, the hidden tests,
the judge and the notebooks' text.

A step's :class:`Rule` names the modules its answer may not call (``forbid``), and, where the step
teaches a mechanism, the calls it must make (``require``). "By hand" steps are numpy only; the Keras
bridge steps use Keras; a layer the student writes uses ``keras.ops`` and the building blocks the text
names, not a ready-made layer that is the answer. No answer, in any unit, may call the course's checks
or grading code.

Enforcement lives in :mod:`course.checks` (the call is watched while it runs) and in the grader (a
look at the answer cell's code); this module only declares.
"""
from __future__ import annotations

from dataclasses import dataclass

# Never callable from an answer: the course's own checks and the instructor's grading code.
GRADING = ("course.checks", "autograder")
# What "by hand" rules out: every framework that could compute the answer, and the libraries that
# hold ready-made versions of the steps (scipy.special.softmax, ...).
FRAMEWORKS = ("keras", "tensorflow", "jax", "torch")
LIBRARIES = ("scipy", "sklearn", "pandas")


@dataclass(frozen=True)
class Rule:
    kind: str                         # "numpy", "keras" or "layer"
    text: str                         # the rule in words, as the notebook and the messages say it
    forbid: tuple[str, ...] = GRADING  # dotted prefixes of modules (or module.Class) the answer may not call
    require: tuple[str, ...] = ()      # dotted names the answer must call (the mechanism the step teaches)


def numpy_only(extra: str = "") -> Rule:
    return Rule("numpy", "written with numpy" + (f" {extra}" if extra else ""),
                forbid=GRADING + FRAMEWORKS + LIBRARIES + ("course",))


def keras_allowed(text: str = "built with Keras") -> Rule:
    return Rule("keras", text, forbid=GRADING)


def layer(text: str, forbid: tuple[str, ...] = (), require: tuple[str, ...] = ()) -> Rule:
    return Rule("layer", text, forbid=GRADING + forbid, require=require)


NUMPY = numpy_only()
KERAS = keras_allowed()

RULES: dict[str, dict[str, Rule]] = {
    "01_rnn_by_hand": {
        "rnn_step": NUMPY,
        "rnn_forward": NUMPY,
        "softmax": NUMPY,
        "next_token_probs": NUMPY,
        "teacher_forcing_pairs": NUMPY,
        "sequence_cross_entropy": NUMPY,
        "rnn_lm_param_count": numpy_only("(a formula, not a Keras model's count_params())"),
        "simple_rnn_from_weights": KERAS,
    },
    "02_bptt_and_gradients": {
        "rnn_step_backward": NUMPY,
        "rnn_backward": NUMPY,
        "step_jacobian": NUMPY,
        "dh0_norms": NUMPY,
        "clip_by_global_norm": NUMPY,
        "softmax_cross_entropy_grad": NUMPY,
        "truncated_bptt_grads": NUMPY,
    },
    "03_gated_cells": {
        "lstm_step": NUMPY,
        "lstm_forward": NUMPY,
        "keras_lstm_initial_bias": NUMPY,
        "cell_state_jacobian_diag": NUMPY,
        "gru_step": NUMPY,
        "gru_forward": NUMPY,
        "lstm_param_count": numpy_only("(a formula, not a Keras layer's count_params())"),
        "gru_param_count": numpy_only("(a formula, not a Keras layer's count_params())"),
    },
    "04_keras_recurrent_layers": {
        "recall_task": NUMPY,
        "build_sequence_classifier": KERAS,
        "pad_right": NUMPY,
        "last_real_outputs": numpy_only("(or keras.ops)"),
        "build_stacked_lstm": KERAS,
        "stream_in_chunks": KERAS,
        "later_token_tags": NUMPY,
        "build_tagger": KERAS,
    },
    "05_seq2seq_attention": {
        "build_vocab": NUMPY,
        "vectorize": NUMPY,
        "decode_ids": NUMPY,
        "teacher_forcing_pairs": NUMPY,
        "teacher_forced_decode": KERAS,
        "greedy_decode": KERAS,
        "BahdanauAttention": layer(
            "written with keras.ops and keras.layers.Dense, not a ready-made attention layer",
            forbid=("keras.layers.AdditiveAttention", "keras.layers.Attention",
                    "keras.layers.MultiHeadAttention", "keras.src.layers.attention")),
    },
    "06_char_shakespeare": {
        "build_vocab": NUMPY,
        "encode": NUMPY,
        "decode": NUMPY,
        "make_windows": NUMPY,
        "batches": NUMPY,
        "build_char_model": KERAS,
        "sequence_loss": layer("written with keras.ops, not a Keras loss",
                               forbid=("keras.losses", "keras.src.losses")),
        "perplexity": NUMPY,
        "bits_per_char": NUMPY,
        "sample_next": NUMPY,
        "char_step": KERAS,
        "generate": KERAS,
    },
    "07_rnn_vs_transformer": {
        "causal_mask": numpy_only("(or keras.ops)"),
        "TransformerBlock": KERAS,
        "TransformerLM": KERAS,
        "transformer_param_count": numpy_only("(a formula, not a Keras model's count_params())"),
        "cached_attention_step": layer("written with keras.ops on the layer's own weights",
                                       forbid=("keras.src.layers.attention",)),
        "linear_recurrence_loop": numpy_only("(or keras.ops), as a loop"),
        "linear_recurrence_scan": layer("written with keras.ops.associative_scan",
                                        require=("keras.ops.associative_scan",)),
    },
}


def rule(unit_id: str, step: str) -> Rule:
    """The rule of one graded step; a step missing from the table is a maintainer's error."""
    try:
        return RULES[unit_id][step]
    except KeyError:
        raise KeyError(f"course/rules.py declares no rule for {unit_id}/{step}") from None
