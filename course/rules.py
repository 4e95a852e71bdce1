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


# Work handed to another thread or process, where the watch on the answer's call cannot follow it (a
# helper in another cell that runs Keras on a thread pool): a numpy answer has no use for them. Only
# starting a thread or using a pool counts: numpy's random generators make a lock, and the kernel's output
# stream asks whether its thread is alive when the answer prints or warns.
ELSEWHERE = ("threading.Thread.start", "threading.Thread.run", "_thread.start_new_thread", "_thread.start_new",
             "_thread.start_joinable_thread", "concurrent.futures", "multiprocessing", "_multiprocessing")


def numpy_only(extra: str = "") -> Rule:
    return Rule("numpy", "written with numpy" + (f" {extra}" if extra else ""),
                forbid=GRADING + FRAMEWORKS + LIBRARIES + ELSEWHERE + ("course",))


def keras_allowed(text: str = "built with Keras") -> Rule:
    return Rule("keras", text, forbid=GRADING)


def layer(text: str, forbid: tuple[str, ...] = (), require: tuple[str, ...] = ()) -> Rule:
    return Rule("layer", text, forbid=GRADING + forbid, require=require)


# What "keras.ops only" rules out: Keras' layers and models (ready answers). The watch on a call sees
# everything the answer runs, keras.ops' own backend included, so the backends cannot be ruled out here.
LAYERS = ("keras.layers", "keras.src.layers", "keras.Model", "keras.Sequential", "keras.src.models")
# Ready-made attention and Transformer layers: the answers of the steps that write one.
READY_ATTENTION = ("keras.layers.AdditiveAttention", "keras.layers.Attention", "keras.layers.MultiHeadAttention",
                   "keras.layers.GroupQueryAttention", "keras.src.layers.attention")
READY_TRANSFORMER = ("keras_hub", "keras_nlp")
# Other mechanisms than a loop, for the step that asks for one (the check also reads the answer's code:
# it must hold a loop).
SCANS = ("keras.ops.associative_scan", "keras.ops.scan", "keras.ops.cumsum", "keras.ops.cumprod",
         "keras.src.ops.core.associative_scan", "keras.src.ops.core.scan", "keras.src.ops.numpy.cumsum",
         "keras.src.ops.numpy.cumprod")
# Calling the attention layer itself (its weights may be read, as cached_attention_step does).
ATTENTION_CALLS = ("keras.layers.MultiHeadAttention.call", "keras.layers.MultiHeadAttention._compute_attention",
                   "keras.src.layers.attention.multi_head_attention.MultiHeadAttention.call",
                   "keras.src.layers.attention.multi_head_attention.MultiHeadAttention._compute_attention")


# What the minGRU layer may not run on: Keras' recurrent layers and cells, and the ops that loop over time
# (keras.ops.associative_scan is the mechanism the step asks for).
RECURRENT_LAYERS = ("keras.layers.RNN", "keras.layers.SimpleRNN", "keras.layers.GRU", "keras.layers.LSTM",
                    "keras.layers.SimpleRNNCell", "keras.layers.GRUCell", "keras.layers.LSTMCell",
                    "keras.src.layers.rnn")
LOOPS = ("keras.ops.scan", "keras.ops.fori_loop", "keras.ops.while_loop", "keras.src.ops.core.scan",
         "keras.src.ops.core.fori_loop", "keras.src.ops.core.while_loop")


def keras_ops_only(extra: str = "", forbid: tuple[str, ...] = ()) -> Rule:
    """Arrays by hand, with numpy or keras.ops (any backend's tensors), but no layer or model."""
    return Rule("numpy", "written with numpy or keras.ops" + (f" {extra}" if extra else ""),
                forbid=GRADING + LAYERS + forbid)


# Ready-made cross-entropies: the answer of a step that computes the loss from logits itself.
CROSS_ENTROPY_READY = ("keras.losses", "keras.src.losses", "keras.metrics", "keras.src.metrics",
                       "keras.ops.sparse_categorical_crossentropy", "keras.ops.categorical_crossentropy",
                       "keras.src.ops.nn.sparse_categorical_crossentropy", "keras.src.ops.nn.categorical_crossentropy")

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
        "lstm_step_backward": numpy_only("(the gradients by hand, not tf.GradientTape or any autodiff)"),
        "lstm_backward": numpy_only("(the gradients by hand, not tf.GradientTape or any autodiff)"),
    },
    "04_keras_recurrent_layers": {
        "recall_task": NUMPY,
        "build_sequence_classifier": KERAS,
        "pad_right": numpy_only("(not keras.utils.pad_sequences, which is what the step rebuilds)"),
        "last_real_outputs": keras_ops_only("(no recurrent layer run with a mask: the step rebuilds what the "
                                            "mask gives)"),
        "build_stacked_lstm": KERAS,
        "stream_in_chunks": keras_allowed("built with Keras, feeding the stateful layer chunk by chunk"),
        "later_token_tags": NUMPY,
        "build_tagger": KERAS,
    },
    "05_seq2seq_attention": {
        "build_vocab": NUMPY,
        "vectorize": numpy_only("(not keras.layers.StringLookup)"),
        "decode_ids": NUMPY,
        "teacher_forcing_pairs": NUMPY,
        "teacher_forced_decode": keras_allowed("built with Keras on the model's own encode and decode_step"),
        "greedy_decode": keras_allowed("built with Keras on the model's own encode and decode_step"),
        "BahdanauAttention": layer(
            "written with keras.ops and keras.layers.Dense, not a ready-made attention layer",
            forbid=READY_ATTENTION),
        "beam_search_decode": Rule("numpy", "written with numpy, calling the step function it is given",
                                   forbid=GRADING + FRAMEWORKS + LIBRARIES),
        "LuongAttention": layer(
            "written with keras.ops and keras.layers.Dense, not a ready-made attention layer",
            forbid=READY_ATTENTION),
        "exposure_bias_rates": NUMPY,
    },
    "06_char_shakespeare": {
        "build_vocab": NUMPY,
        "encode": NUMPY,
        "decode": NUMPY,
        "make_windows": NUMPY,
        "batches": NUMPY,
        "build_char_model": KERAS,
        "sequence_loss": layer("written with keras.ops, not a Keras loss",
                               forbid=("keras.losses", "keras.src.losses", "keras.metrics", "keras.src.metrics",
                                       "keras.ops.sparse_categorical_crossentropy",
                                       "keras.ops.categorical_crossentropy",
                                       "keras.src.ops.nn.sparse_categorical_crossentropy",
                                       "keras.src.ops.nn.categorical_crossentropy") + LAYERS),
        "perplexity": NUMPY,
        "bits_per_char": NUMPY,
        "sample_next": numpy_only("(drawing from the rng it is given, not keras.random)"),
        "char_step": keras_allowed("built with Keras, one step of the model's own layers and cells"),
        "generate": keras_allowed("built with Keras, one character at a time with char_step and sample_next"),
        "loss_by_position": layer("built with Keras and numpy: the model run in inference mode, the loss from its "
                                  "logits by hand, not a Keras loss",
                                  forbid=CROSS_ENTROPY_READY),
        "carried_state_loss": layer("built with Keras and numpy: the stateful model fed chunk by chunk, the loss from "
                                    "its logits by hand, not a Keras loss",
                                    forbid=CROSS_ENTROPY_READY),
    },
    "07_rnn_vs_transformer": {
        "causal_mask": keras_ops_only(),
        "TransformerBlock": layer(
            "built from keras.layers.MultiHeadAttention, LayerNormalization and Dense, not a ready-made "
            "Transformer block (keras_hub)",
            forbid=READY_TRANSFORMER),
        "TransformerLM": layer(
            "built from TransformerBlock, Embedding, LayerNormalization and Dense, not a ready-made "
            "Transformer (keras_hub)",
            forbid=READY_TRANSFORMER),
        "transformer_param_count": numpy_only("(a formula, not a Keras model's count_params())"),
        "cached_attention_step": layer(
            "written with keras.ops on the layer's own weights, without calling the layer",
            forbid=ATTENTION_CALLS),
        "linear_recurrence_loop": keras_ops_only(
            "as a loop over time (not a scan or a cumulative product)",
            forbid=SCANS),
        "linear_recurrence_scan": layer("written with keras.ops.associative_scan",
                                        forbid=LAYERS,
                                        require=("keras.ops.associative_scan",)),
        "MinGRU": layer(
            "built on linear_recurrence_scan (keras.ops.associative_scan over time), not a loop over time or a "
            "ready-made recurrent layer",
            forbid=RECURRENT_LAYERS + LOOPS,
            require=("keras.ops.associative_scan",)),
        "associative_recall_batch": numpy_only("(drawing from the rng it is given)"),
    },
}


def rule(unit_id: str, step: str) -> Rule:
    """The rule of one graded step; a step missing from the table is a maintainer's error."""
    try:
        return RULES[unit_id][step]
    except KeyError:
        raise KeyError(f"course/rules.py declares no rule for {unit_id}/{step}") from None
