"""Visible self-checks for unit 03_gated_cells (LSTM and GRU by hand).

Each ``check_<step>(fn, cases=None)`` runs the student's function on fixed
cases and compares it with Keras' own ``LSTM`` and ``GRU`` layers given the
same weights (values stored with the release, see course.checks.stored), with a
numeric derivative of Keras' LSTM, or with
Keras' ``count_params()``. Every cell-level check runs twice: in float64
(tight) and with float32 inputs against Keras' float32 layer (to 1e-5).
When an answer is wrong, the message names the quantity and, when the
wrong answer matches a known mistake (gates in another order, a bias left
out, the reset gate on the wrong side of the product...), the mistake.
The same functions run at grading time on cases you do not see.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import (caller_for, eager_diagnoses, expect_close, expect_equal, expect_finite, expect_shape, expect_unchanged,
               fail, passed)
from .stored import stored

UNIT = "03_gated_cells"
# Every answer is called under its step's rule (course/rules.py): what it may be built from.
call = caller_for(UNIT)
# Keras' values on the visible inputs, stored with the release (the grader asks Keras itself).
ref = stored("gated_cells")


@dataclass(frozen=True)
class Shapes:
    batch: int
    time: int
    input_dim: int
    units: int
    seed: int = 0
    scale: float = 0.5


# Non-square on purpose, and one case of batch 1 and a single time step.
# The last case saturates every gate (pre-activations in the hundreds): a sigmoid or tanh written with
# exp overflows there.
VISIBLE = (Shapes(3, 6, 4, 5, seed=1), Shapes(1, 1, 3, 2, seed=2), Shapes(2, 4, 2, 3, seed=3, scale=1.0),
           Shapes(2, 3, 3, 2, seed=4, scale=200.0))
F32 = dict(rtol=1e-5, atol=1e-5)   # the float32 requirement: equal to Keras' float32 layer to 1e-5
F64 = dict(rtol=1e-9, atol=1e-11)  # the float64 requirement: equal to Keras' float64 layer to rounding


def _reversed_batch(args: Mapping, n_batched: int):
    """The arguments with the examples (axis 0 of the first n_batched) in reverse order."""
    values = list(args.values())
    return [np.array(v[::-1]) if i < n_batched else v for i, v in enumerate(values)]


def _float64(step, what, value):
    """float64 inputs give float64 results: the notebook promises rounding-level agreement in float64."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and dtype != np.float64:
        fail(step, f"{what} has dtype {dtype} for float64 inputs: compute in the inputs' precision "
                   f"(nothing cast to float32 on the way)")
    return value


def lstm_weights(s: Shapes):
    rng = np.random.default_rng(s.seed)
    u = s.units
    return dict(
        X=rng.normal(size=(s.batch, s.time, s.input_dim)),
        h0=rng.normal(scale=0.5, size=(s.batch, u)),
        c0=rng.normal(size=(s.batch, u)),
        kernel=rng.normal(scale=s.scale, size=(s.input_dim, 4 * u)),
        recurrent_kernel=rng.normal(scale=s.scale, size=(u, 4 * u)),
        bias=rng.normal(size=(4 * u,)),
    )


def gru_weights(s: Shapes):
    rng = np.random.default_rng(s.seed + 1000)
    u = s.units
    return dict(
        X=rng.normal(size=(s.batch, s.time, s.input_dim)),
        h0=rng.normal(scale=0.5, size=(s.batch, u)),
        kernel=rng.normal(scale=s.scale, size=(s.input_dim, 3 * u)),
        recurrent_kernel=rng.normal(scale=s.scale, size=(u, 3 * u)),
        bias=rng.normal(size=(2, 3 * u)),
    )


def _f32(*arrays):
    return [np.asarray(a, np.float32) for a in arrays]


def _snapshot(arrays: Mapping):
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def _unchanged(step, before: Mapping, after: Mapping):
    for name, old in before.items():
        expect_unchanged(step, name, old, after[name])


def _pair(step, result, names):
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        fail(step, f"should return a tuple ({', '.join(names)}), got "
                   f"{type(result).__name__}{'' if not isinstance(result, (tuple, list)) else f' of {len(result)}'}")
    return result


# --- lstm_step -------------------------------------------------------------------

def check_lstm_step(lstm_step, cases=VISIBLE) -> None:
    step, count = "lstm_step", 0
    for s in cases:
        w = lstm_weights(s)
        args = dict(x_t=w["X"][:, 0, :], h_prev=w["h0"], c_prev=w["c0"], kernel=w["kernel"],
                    recurrent_kernel=w["recurrent_kernel"], bias=w["bias"])
        before = _snapshot(args)
        h_t, c_t = _pair(step, call(step, lstm_step, *args.values()), ("h_t", "c_t"))
        _unchanged(step, before, args)
        h_ref, c_ref = ref.lstm_step(*args.values())
        where = f"batch={s.batch}, input_dim={s.input_dim}, units={s.units}"
        mistakes = lambda: ref.lstm_step_mistakes(*args.values())  # noqa: E731
        expect_shape(step, f"h_t ({where})", h_t, h_ref.shape)
        expect_close(step, f"h_t ({where})", h_t, h_ref, **F64, diagnoses=lambda: {
            "c_t returned first: return (h_t, c_t), in that order": c_ref,
            **{k: v[0] for k, v in mistakes().items()}})
        expect_close(step, f"c_t ({where})", c_t, c_ref, **F64, diagnoses=lambda: {
            "h_t returned second: return (h_t, c_t), in that order": h_ref,
            **{k: v[1] for k, v in mistakes().items()}})
        _float64(step, "h_t", h_t), _float64(step, "c_t", c_t)
        again = _pair(step, call(step, lstm_step, *_reversed_batch(args, 3)), ("h_t", "c_t"))
        expect_close(step, f"h_t called again with the batch in reverse order ({where})", again[0], h_ref[::-1], **F64,
                     hint="the answer must depend on its arguments only, not on earlier calls")
        # float32 inputs against Keras' float32 layer
        out32 = _pair(step, call(step, lstm_step, *_f32(*args.values())), ("h_t", "c_t"))
        h32, c32 = ref.lstm_step(*args.values(), dtype="float32")
        expect_close(step, f"h_t from float32 inputs ({where})", out32[0], h32, **F32)
        expect_close(step, f"c_t from float32 inputs ({where})", out32[1], c32, **F32)
        count += 2
    passed(step, count, "(equal to keras.layers.LSTM on the same weights, in float64 and float32)")


# --- lstm_forward ----------------------------------------------------------------

def _expect_time_major_hint(step, what, H, s):
    try:
        shape = tuple(np.shape(H))
    except Exception:  # ragged lists and the like: expect_shape explains
        return
    if shape == (s.time, s.batch, s.units) and s.time != s.batch:
        fail(step, f"{what} has shape {shape}: time first. Stack the states along axis 1 to get "
                   f"(batch, time, units) = {(s.batch, s.time, s.units)}")


def check_lstm_forward(lstm_forward, cases=VISIBLE) -> None:
    step, count = "lstm_forward", 0
    for s in cases:
        w = lstm_weights(s)
        args = dict(X=w["X"], h0=w["h0"], c0=w["c0"], kernel=w["kernel"],
                    recurrent_kernel=w["recurrent_kernel"], bias=w["bias"])
        before = _snapshot(args)
        H, h_last, c_last = _pair(step, call(step, lstm_forward, *args.values()), ("H", "h_last", "c_last"))
        _unchanged(step, before, args)
        H_ref, h_ref, c_ref = ref.lstm_states(*args.values())
        wrong = lambda: ref.lstm_forward_mistakes(*args.values())  # noqa: E731

        where = f"batch={s.batch}, T={s.time}, units={s.units}"
        _expect_time_major_hint(step, "H", H, s)
        expect_shape(step, f"H, all hidden states ({where})", H, H_ref.shape)
        expect_close(step, f"H ({where})", H, H_ref, **F64, diagnoses=lambda: {
            **wrong()["H"],
            "h0 stored first (H one step behind)": np.concatenate([w["h0"][:, None], H_ref[:, :-1]], axis=1)})
        last = {"the first state instead of the last": H_ref[:, 0], "the last cell state c_T": c_ref}
        if s.time > 1:
            last["the second-to-last state (one step short)"] = H_ref[:, -2]
        expect_close(step, "h_last", h_last, h_ref, **F64, diagnoses=lambda: last)
        expect_close(step, "c_last", c_last, c_ref, **F64, diagnoses=lambda: {
            "the last hidden state h_T": h_ref, "c0 returned (the cell state is not carried)": w["c0"],
            **wrong()["c_last"]})
        for name, value in (("H", H), ("h_last", h_last), ("c_last", c_last)):
            _float64(step, name, value)
        again = _pair(step, call(step, lstm_forward, *_reversed_batch(args, 3)), ("H", "h_last", "c_last"))
        expect_close(step, f"H called again with the batch in reverse order ({where})", again[0], H_ref[::-1], **F64,
                     hint="every call starts from its own h0 and c0: nothing may be kept from an earlier call")
        out32 = _pair(step, call(step, lstm_forward, *_f32(*args.values())), ("H", "h_last", "c_last"))
        refs32 = ref.lstm_states(*args.values(), dtype="float32")
        for name, got, want in zip(("H", "h_last", "c_last"), out32, refs32):
            expect_close(step, f"{name} from float32 inputs ({where})", got, want, **F32)
        count += 2
    passed(step, count, "(every state equal to keras.layers.LSTM, in float64 and float32)")


# --- the initial bias --------------------------------------------------------------

def check_keras_lstm_initial_bias(keras_lstm_initial_bias, cases=(1, 3, 5)) -> None:
    step, count = "keras_lstm_initial_bias", 0
    for units in cases:
        got = call(step, keras_lstm_initial_bias, units)
        if not isinstance(got, np.ndarray) or got.dtype.kind != "f":
            fail(step, f"should return a numpy array of floats, like a Keras layer's bias, got "
                       f"{type(got).__name__}{' of dtype ' + str(got.dtype) if isinstance(got, np.ndarray) else ''}")
        want = ref.lstm_initial_bias(units)

        def block(k, value=1.0):
            b = np.zeros(4 * units)
            b[k * units:(k + 1) * units] = value
            return b

        got = expect_shape(step, f"the bias for units={units}", got, (4 * units,))
        expect_close(step, f"the bias for units={units}", got, want, rtol=0, atol=1e-7, diagnoses={
            "all zeros: unit_forget_bias=True adds 1 to the forget gate's block": np.zeros(4 * units),
            "all ones: only the forget gate's block starts at 1": np.ones(4 * units),
            "the ones in the first block, which is the input gate i": block(0),
            "the ones in the third block, which is the candidate c": block(2),
            "the ones in the last block, which is the output gate o": block(3)},
            hint="the blocks are [i, f, c, o], each `units` long")
        count += 1
    passed(step, count, "(equal to the bias of a freshly built keras.layers.LSTM)")


# --- the cell-state highway ---------------------------------------------------------

def check_cell_state_jacobian_diag(cell_state_jacobian_diag, cases=VISIBLE) -> None:
    step, count = "cell_state_jacobian_diag", 0
    for s in cases:
        w = lstm_weights(s)
        args = dict(x_t=w["X"][:, 0, :], h_prev=w["h0"], c_prev=w["c0"], kernel=w["kernel"],
                    recurrent_kernel=w["recurrent_kernel"], bias=w["bias"])
        before = _snapshot(args)
        got = call(step, cell_state_jacobian_diag, *args.values())
        _unchanged(step, before, args)
        numeric = ref.cell_state_derivative(*args.values())

        mistakes = lambda: ref.cell_state_jacobian_mistakes(*args.values())  # noqa: E731

        where = f"batch={s.batch}, units={s.units}"
        expect_shape(step, f"dc_t/dc_(t-1) ({where})", got, numeric.shape)
        expect_close(step, f"dc_t/dc_(t-1) ({where}) against a numeric derivative of Keras' LSTM",
               got, numeric, diagnoses=mistakes, rtol=1e-9, atol=1e-11)
        _float64(step, "dc_t/dc_(t-1)", got)
        count += 1
    # Saturated forget gates, scores of +-1000 (a closed form: f_t is exactly 1 or 0 in float64): a
    # sigmoid written with exp(z) overflows here.
    units = 3
    kernel = np.random.default_rng(5).normal(size=(2, 4 * units))
    kernel[:, units:2 * units] = [[1000.0, -1000.0, 1000.0], [0.0, 0.0, 0.0]]
    x = np.array([[1.0, 0.3], [-1.0, -0.3]])
    zeros = np.zeros((2, units))
    got = call(step, cell_state_jacobian_diag, x, zeros, zeros, kernel, np.zeros((units, 4 * units)),
               np.zeros(4 * units))
    want = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    what = "dc_t/dc_(t-1) for forget-gate scores of +-1000"
    got = expect_shape(step, what, got, want.shape)
    expect_finite(step, what, got, "exp(1000) overflows: write the sigmoid so that no exp sees a large positive "
                                   "number (the notebook's sigmoid does)")
    expect_close(step, what, got, want, rtol=0, atol=1e-12)
    passed(step, count + 1, "(equal to central differences of keras.layers.LSTM's c_t with h_(t-1) held fixed)")


# --- GRU ---------------------------------------------------------------------------

def check_gru_step(gru_step, cases=VISIBLE) -> None:
    step, count = "gru_step", 0
    for s in cases:
        w = gru_weights(s)
        args = dict(x_t=w["X"][:, 0, :], h_prev=w["h0"], kernel=w["kernel"],
                    recurrent_kernel=w["recurrent_kernel"], bias=w["bias"])
        before = _snapshot(args)
        got = call(step, gru_step, *args.values())
        _unchanged(step, before, args)
        want = ref.gru_step(*args.values())
        where = f"batch={s.batch}, input_dim={s.input_dim}, units={s.units}"
        if isinstance(got, tuple):
            fail(step, f"should return h_t alone (one array), got a tuple of {len(got)}")
        expect_shape(step, f"h_t ({where})", got, want.shape)
        expect_close(step, f"h_t ({where})", got, want, **F64, diagnoses=lambda: ref.gru_step_mistakes(*args.values()))
        _float64(step, "h_t", got)
        again = call(step, gru_step, *_reversed_batch(args, 2))
        expect_close(step, f"h_t called again with the batch in reverse order ({where})", again, want[::-1], **F64,
                     hint="the answer must depend on its arguments only, not on earlier calls")
        got32 = call(step, gru_step, *_f32(*args.values()))
        expect_close(step, f"h_t from float32 inputs ({where})", got32, ref.gru_step(*args.values(), dtype="float32"),
               **F32)
        count += 2
    passed(step, count, "(equal to keras.layers.GRU with reset_after=True, in float64 and float32)")


def check_gru_forward(gru_forward, cases=VISIBLE) -> None:
    step, count = "gru_forward", 0
    for s in cases:
        w = gru_weights(s)
        args = dict(X=w["X"], h0=w["h0"], kernel=w["kernel"], recurrent_kernel=w["recurrent_kernel"],
                    bias=w["bias"])
        before = _snapshot(args)
        H, h_last = _pair(step, call(step, gru_forward, *args.values()), ("H", "h_last"))
        _unchanged(step, before, args)
        H_ref, h_ref = ref.gru_states(*args.values())

        where = f"batch={s.batch}, T={s.time}, units={s.units}"
        _expect_time_major_hint(step, "H", H, s)
        expect_shape(step, f"H, all hidden states ({where})", H, H_ref.shape)
        expect_close(step, f"H ({where})", H, H_ref, **F64, diagnoses=lambda: {
            "h0 fed to every step (the state is not carried)": ref.gru_stale_states(*args.values()),
            "h0 stored first (H one step behind)": np.concatenate([w["h0"][:, None], H_ref[:, :-1]], axis=1)})
        last = {"the first state instead of the last": H_ref[:, 0]}
        if s.time > 1:
            last["the second-to-last state (one step short)"] = H_ref[:, -2]
        expect_close(step, "h_last", h_last, h_ref, **F64, diagnoses=lambda: last)
        _float64(step, "H", H), _float64(step, "h_last", h_last)
        again = _pair(step, call(step, gru_forward, *_reversed_batch(args, 2)), ("H", "h_last"))
        expect_close(step, f"H called again with the batch in reverse order ({where})", again[0], H_ref[::-1], **F64,
                     hint="every call starts from its own h0: nothing may be kept from an earlier call")
        out32 = _pair(step, call(step, gru_forward, *_f32(*args.values())), ("H", "h_last"))
        refs32 = ref.gru_states(*args.values(), dtype="float32")
        for name, got, want in zip(("H", "h_last"), out32, refs32):
            expect_close(step, f"{name} from float32 inputs ({where})", got, want, **F32)
        count += 2
    passed(step, count, "(every state equal to keras.layers.GRU, in float64 and float32)")


# --- parameter counts -----------------------------------------------------------------

PARAM_CASES = ((3, 5), (65, 128), (128, 128), (10, 1))


def _int(step, what, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        fail(step, f"{what} should be an int, got {type(value).__name__}")
    return int(value)


def _equal(step, what, got, want, mistakes):
    if got != want or eager_diagnoses():
        expect_equal(step, what, got, want, diagnoses=mistakes())


def check_lstm_param_count(lstm_param_count, cases=PARAM_CASES) -> None:
    step, count = "lstm_param_count", 0
    for d, u in cases:
        got = _int(step, "the count", call(step, lstm_param_count, d, u))
        want = ref.lstm_param_count(d, u)
        _equal(step, f"LSTM parameters for input_dim={d}, units={u}", got, want, lambda: {
            "3 gate blocks instead of 4 (i, f, c, o)": 3 * (d * u + u * u + u),
            "one block only (that is a SimpleRNN)": d * u + u * u + u,
            "no recurrent_kernel (u x 4u)": 4 * (d * u + u),
            "no kernel (input_dim x 4u)": 4 * (u * u + u),
            "two bias vectors per gate (PyTorch stores b_ih and b_hh; Keras one)": 4 * (d * u + u * u + 2 * u),
            "no bias": 4 * (d * u + u * u),
            "a recurrent kernel of u x u instead of u x 4u": 4 * (d * u + u) + u * u})
        count += 1
    passed(step, count, "(equal to keras.layers.LSTM(...).count_params())")


def check_gru_param_count(gru_param_count, cases=PARAM_CASES) -> None:
    step, count = "gru_param_count", 0
    for d, u in cases:
        got = _int(step, "the count", call(step, gru_param_count, d, u))
        want = ref.gru_param_count(d, u)
        _equal(step, f"GRU parameters for input_dim={d}, units={u}", got, want, lambda: {
            "one bias row (that is reset_after=False; Keras' default keeps two)": ref.gru_param_count(d, u, False),
            "4 blocks, as in the LSTM": 4 * (d * u + u * u + 2 * u),
            "2 blocks instead of 3 (z, r, h)": 2 * (d * u + u * u + 2 * u),
            "no recurrent_kernel (u x 3u)": 3 * (d * u + 2 * u),
            "no kernel (input_dim x 3u)": 3 * (u * u + 2 * u),
            "no bias": 3 * (d * u + u * u),
            "the LSTM's count": ref.lstm_param_count(d, u)})
        count += 1
    passed(step, count, "(equal to keras.layers.GRU(...).count_params(), reset_after=True)")
