"""Visible self-checks for unit 03_gated_cells (LSTM and GRU by hand).

Each ``check_<step>(fn, cases=None)`` runs the student's function on fixed
cases and compares it with Keras' own ``LSTM`` and ``GRU`` layers given the
same weights (values stored with the release, see course.checks.stored), with a
numeric derivative of Keras' LSTM, or with
Keras' ``count_params()``. Every cell-level check runs twice: in float64
(tight) and with float32 inputs against Keras' float32 layer (to 1e-5).
The backward steps (``check_lstm_step_backward``, ``check_lstm_backward``) compare every gradient
with central differences of the forward pass in float64 instead (see the section at the end).
When an answer is wrong, the message names the quantity and, when the
wrong answer matches a known mistake (gates in another order, a bias left
out, the reset gate on the wrong side of the product...), the mistake.
The same functions run at grading time on cases you do not see.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import expect_gradient as _expect_gradient, relative_error as _relative_error
from . import (caller_for, eager_diagnoses, expect_close, expect_equal, expect_finite, expect_shape, expect_unchanged,
               fail, passed, snapshot)
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
    forget: float = 0.0   # added to the forget gate's block of the bias (near 1: the cell-state path)


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
        bias=rng.normal(size=(4 * u,)) + np.r_[np.zeros(u), np.full(u, s.forget), np.zeros(2 * u)],
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


# --- the LSTM backward pass ----------------------------------------------------------------
#
# The gradients are compared with central differences (a nudge of 1e-5 up and down on every input and
# weight) of the loss L = sum(dh_next * h_t) + sum(dc_next * c_t) for one step, L = sum(dH * H) for a
# sequence, in float64, computed with the release and stored (the grader computes them afresh). The
# relative error max|got - numeric| / max(|got| + |numeric|) must stay below REL_TOL for every gradient
# (the denominator is at least FLOOR, so that a gradient that is zero everywhere, as through a saturated
# gate, is held to an absolute 1e-13).

REL_TOL = 1e-7
FLOOR = 1e-6
STEP_GRADS = ("dx_t", "dh_prev", "dc_prev", "dkernel", "drecurrent_kernel", "dbias")
SEQUENCE_GRADS = ("dX", "dh0", "dc0", "dkernel", "drecurrent_kernel", "dbias")
# Numeric gradients are accurate only where the loss is smooth at the scale of the nudge: moderate
# weights, and one case whose forget gates sit near 1 (the cell-state path carries most of the gradient).
BACKWARD_VISIBLE = (Shapes(3, 6, 4, 5, seed=1), Shapes(1, 1, 3, 2, seed=2), Shapes(2, 4, 2, 3, seed=3, scale=1.0),
                    Shapes(2, 8, 3, 4, seed=5, forget=4.0))


def backward_problem(s: Shapes):
    """The forward inputs of a case and upstream gradients dH (batch, T, units) and dc (batch, units)."""
    w = lstm_weights(s)
    rng = np.random.default_rng(s.seed + 500)
    w["dH"] = rng.normal(size=(s.batch, s.time, s.units))
    w["dc"] = rng.normal(size=(s.batch, s.units))
    return w


def saturated_problem(batch=2, time=3, input_dim=3, units=2, seed=7, level=1000.0):
    """Every gate and candidate saturated: biases of +-level (the other scores are a few units), so that
    sigmoid and tanh are exactly 0, 1 or -1 in float64. Only the cell-state path carries a gradient;
    a slope written with exp(a) overflows here."""
    w = backward_problem(Shapes(batch, time, input_dim, units, seed=seed))
    signs = np.where(np.random.default_rng(seed + 900).random(4 * units) < 0.5, -1.0, 1.0)
    w["bias"] = level * signs
    return w


def _tree_copy(value, depth=0):
    if depth > 8:
        return value
    if isinstance(value, np.ndarray):
        return np.array(value, copy=True)
    if isinstance(value, (list, tuple)):
        return type(value)(_tree_copy(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return {k: _tree_copy(v, depth + 1) for k, v in value.items()}
    return value


def _tree_changed(before, after, depth=0) -> bool:
    if depth > 8:
        return False
    if isinstance(before, np.ndarray):
        return not (isinstance(after, np.ndarray) and before.shape == after.shape
                    and np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
    if isinstance(before, (list, tuple)):
        return not isinstance(after, (list, tuple)) or len(before) != len(after) or \
            any(_tree_changed(b, a, depth + 1) for b, a in zip(before, after))
    if isinstance(before, dict):
        return not isinstance(after, dict) or set(before) != set(after) or \
            any(_tree_changed(before[k], after[k], depth + 1) for k in before)
    return False


SATURATION_HINT = ("where a gate saturates (exactly 0 or 1), a slope written with exp(a) overflows and a division "
                   "by the gate divides by zero: take the slope from the gate's value, s * (1 - s)")


def relative_error(a, n) -> float:
    return _relative_error(a, n, FLOOR)


def expect_gradient(step, what, actual, numeric, *, diagnoses=None, hint="") -> float:
    """``actual`` agrees with a numeric gradient (relative error below REL_TOL, float64); returns the error."""
    return _expect_gradient(step, what, actual, numeric, tol=REL_TOL, diagnoses=diagnoses, hint=hint,
                            finite_hint=hint or SATURATION_HINT, floor=FLOOR,
                            precision_note=" (nothing cast to float32 on the way)")


def _expect_bias_summed(step, value, units):
    try:
        shape = np.shape(value)
    except Exception:  # noqa: BLE001 - ragged: expect_shape explains
        return
    if len(shape) == 2 and shape[-1] == 4 * units:
        fail(step, f"dbias has shape {shape}, expected ({4 * units},): the bias is shared by every example, so its "
                   f"gradient is a sum over the batch")


def _expect_repeatable(step, first, second, names, what):
    second = _pair(step, second, names)
    for name, a, b in zip(names, first, second):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True):
            fail(step, f"{name} changes when {what} is called a second time on the same inputs: something (a sum, "
                       f"a buffer, a state) is kept between calls")


def _expect_cache_unchanged(step, before, after):
    if _tree_changed(before, after):
        fail(step, "the backward pass changed the cache in place; work on copies (the forward pass's values are "
                   "needed again, for instance by a second backward pass)")


def check_lstm_step_backward(lstm_step_backward, lstm_step_forward, cases=BACKWARD_VISIBLE,
                             saturated=(saturated_problem(),)) -> None:
    step, count, worst = "lstm_step_backward", 0, 0.0
    problems = [(s, backward_problem(s)) for s in cases] + [(None, w) for w in saturated]
    for s, w in problems:
        x, h, c = w["X"][:, 0], w["h0"], w["c0"]
        weights = (w["kernel"], w["recurrent_kernel"], w["bias"])
        batch, units = h.shape
        where = (f"batch={batch}, input_dim={x.shape[1]}, units={units}" if s is not None
                 else f"saturated gates, scores of +-{abs(weights[2][0]):g}")
        before = snapshot(x, h, c, *weights)
        h_t, c_t, cache = _pair(step, call(step, lstm_step_forward, x, h, c, *weights), ("h_t", "c_t", "cache"))
        _unchanged(step, dict(zip(("x_t", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias"), before)),
                   dict(zip(("x_t", "h_prev", "c_prev", "kernel", "recurrent_kernel", "bias"), (x, h, c, *weights))))
        h_ref, c_ref = ref.lstm_step(x, h, c, *weights)
        expect_close(step, f"h_t from lstm_step_forward ({where})", h_t, h_ref, **F64,
                     hint="lstm_step_forward computes what lstm_step computes, and keeps a cache")
        expect_close(step, f"c_t from lstm_step_forward ({where})", c_t, c_ref, **F64,
                     hint="lstm_step_forward computes what lstm_step computes, and keeps a cache")
        dh, dc = w["dH"][:, 0], w["dc"]
        kept = _tree_copy(cache)
        upstream = snapshot(dh, dc)
        grads = _pair(step, call(step, lstm_step_backward, dh, dc, cache), STEP_GRADS)
        expect_unchanged(step, "dh_next", upstream[0], dh)
        expect_unchanged(step, "dc_next", upstream[1], dc)
        _expect_cache_unchanged(step, kept, cache)
        _expect_bias_summed(step, grads[5], units)
        _expect_repeatable(step, grads, call(step, lstm_step_backward, dh, dc, cache), STEP_GRADS,
                           "lstm_step_backward")
        numeric = ref.lstm_step_numeric_gradients(dh, dc, x, h, c, *weights)
        mistakes = lambda dh=dh, dc=dc, x=x, h=h, c=c, weights=weights: \
            ref.lstm_step_backward_mistakes(dh, dc, x, h, c, *weights)  # noqa: E731
        for name, got in zip(STEP_GRADS, grads):
            worst = max(worst, expect_gradient(step, f"{name} ({where})", got, numeric[name],
                                               diagnoses=lambda name=name, mistakes=mistakes: mistakes()[name]))
            count += 1
    passed(step, count, f"(largest relative error against numeric gradients {worst:.1e}; needs < {REL_TOL:g})")


def check_lstm_backward(lstm_backward, lstm_forward_with_cache, cases=BACKWARD_VISIBLE,
                        saturated=(saturated_problem(),)) -> None:
    step, count, worst = "lstm_backward", 0, 0.0
    problems = [(s, backward_problem(s)) for s in cases] + [(None, w) for w in saturated]
    for s, w in problems:
        X, h0, c0 = w["X"], w["h0"], w["c0"]
        weights = (w["kernel"], w["recurrent_kernel"], w["bias"])
        batch, T, _ = X.shape
        units = h0.shape[1]
        where = (f"batch={batch}, T={T}, units={units}" if s is not None
                 else f"T={T}, saturated gates, scores of +-{abs(weights[2][0]):g}")
        names = ("X", "h0", "c0", "kernel", "recurrent_kernel", "bias")
        before = snapshot(X, h0, c0, *weights)
        out = _pair(step, call(step, lstm_forward_with_cache, X, h0, c0, *weights), ("H", "h_last", "c_last", "cache"))
        _unchanged(step, dict(zip(names, before)), dict(zip(names, (X, h0, c0, *weights))))
        H_ref, h_ref, c_ref = ref.lstm_states(X, h0, c0, *weights)
        hint = "lstm_forward_with_cache computes what lstm_forward computes, and keeps a cache"
        expect_close(step, f"H from lstm_forward_with_cache ({where})", out[0], H_ref, **F64, hint=hint)
        expect_close(step, f"h_last from lstm_forward_with_cache ({where})", out[1], h_ref, **F64, hint=hint)
        expect_close(step, f"c_last from lstm_forward_with_cache ({where})", out[2], c_ref, **F64, hint=hint)
        cache, dH = out[3], w["dH"]
        kept, upstream = _tree_copy(cache), np.array(dH, copy=True)
        grads = _pair(step, call(step, lstm_backward, dH, cache), SEQUENCE_GRADS)
        expect_unchanged(step, "dH", upstream, dH)
        _expect_cache_unchanged(step, kept, cache)
        _expect_bias_summed(step, grads[5], units)
        _expect_repeatable(step, grads, call(step, lstm_backward, dH, cache), SEQUENCE_GRADS, "lstm_backward")
        numeric = ref.lstm_numeric_gradients(dH, X, h0, c0, *weights)
        mistakes = lambda dH=dH, X=X, h0=h0, c0=c0, weights=weights: \
            ref.lstm_backward_mistakes(dH, X, h0, c0, *weights)  # noqa: E731
        for name, got in zip(SEQUENCE_GRADS, grads):
            if name == "dX":
                _expect_time_major_hint(step, "dX", got, Shapes(batch, T, X.shape[2], X.shape[2]))
            worst = max(worst, expect_gradient(step, f"{name} ({where})", got, numeric[name],
                                               diagnoses=lambda name=name, mistakes=mistakes: mistakes()[name]))
            count += 1
    passed(step, count, f"(largest relative error against numeric gradients {worst:.1e}; needs < {REL_TOL:g})")
