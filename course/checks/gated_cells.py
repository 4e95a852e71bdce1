"""Visible self-checks for unit 03_gated_cells (LSTM and GRU by hand).

Each ``check_<step>(fn, cases=None)`` runs the student's function on fixed
cases and compares it with Keras' own ``LSTM`` and ``GRU`` layers given the
same weights (course.checks.keras_gated), with a numeric derivative, or with
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

from . import caller_for, expect_close, expect_equal, expect_shape, expect_unchanged, fail, passed
from . import keras_gated as ref

UNIT = "03_gated_cells"
# Every answer is called under its step's rule (course/rules.py): what it may be built from.
call = caller_for(UNIT)


@dataclass(frozen=True)
class Shapes:
    batch: int
    time: int
    input_dim: int
    units: int
    seed: int = 0
    scale: float = 0.5


# Non-square on purpose, and one case of batch 1 and a single time step.
VISIBLE = (Shapes(3, 6, 4, 5, seed=1), Shapes(1, 1, 3, 2, seed=2), Shapes(2, 4, 2, 3, seed=3, scale=1.0))
F32 = dict(rtol=1e-5, atol=1e-5)   # the float32 requirement: equal to Keras' float32 layer to 1e-5


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


def _blocks(array, order, k):
    """Reorder the k gate blocks along the last axis: block j of the result is block order[j]."""
    parts = np.split(np.asarray(array, np.float64), k, axis=-1)
    return np.concatenate([parts[j] for j in order], axis=-1)


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


# --- what a mistaken LSTM computes ---------------------------------------------

def _lstm_parts(x, h, kernel, recurrent_kernel, bias):
    pre = np.asarray(x, np.float64) @ kernel + np.asarray(h, np.float64) @ recurrent_kernel + bias
    u = pre.shape[-1] // 4
    gate = lambda k: pre[..., k * u:(k + 1) * u]  # noqa: E731
    return _sig(gate(0)), _sig(gate(1)), np.tanh(gate(2)), _sig(gate(3))


def _lstm_mistakes(x, h, c, kernel, recurrent_kernel, bias):
    """{mistake: (h_t, c_t) that mistake gives}, from Keras where a mistake is a change of weights."""
    def keras(**change):
        w = dict(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h=h, c=c)
        options = {k: change.pop(k) for k in ("activation", "recurrent_activation") if k in change}
        w.update(change)
        return ref.lstm_step(x, w["h"], w["c"], w["kernel"], w["recurrent_kernel"], w["bias"], **options)

    def order(*perm):
        return keras(kernel=_blocks(kernel, perm, 4), recurrent_kernel=_blocks(recurrent_kernel, perm, 4),
                     bias=_blocks(bias, perm, 4))

    u = np.shape(recurrent_kernel)[0]
    no_f_bias = np.array(bias, np.float64)
    no_f_bias[u:2 * u] = 0.0
    i, f, g, o = _lstm_parts(x, h, kernel, recurrent_kernel, bias)
    c_ok = f * c + i * g
    return {
        "the gates in the order i, f, o, c (the last two blocks swapped)": order(0, 1, 3, 2),
        "the gates in the order i, c, f, o (the old TensorFlow 1 order)": order(0, 2, 1, 3),
        "the gates in the order f, i, c, o (forget first, as some texts list them)": order(1, 0, 2, 3),
        "sigmoid and tanh swapped (gates through tanh, candidate through sigmoid)":
            keras(activation="sigmoid", recurrent_activation="tanh"),
        "a forget gate without its bias": keras(bias=no_f_bias),
        "no bias at all": keras(bias=np.zeros_like(no_f_bias)),
        "h_prev left out of the gates": keras(h=np.zeros_like(h)),
        "c_prev left out (c_t = i * candidate)": keras(c=np.zeros_like(c)),
        "c_t without the input gate (f * c_prev + candidate)": (o * np.tanh(f * c + g), f * c + g),
        "h_t = o * c_t (no tanh on the new cell state)": (o * c_ok, c_ok),
        "h_t from the old cell state (o * tanh(c_prev))": (o * np.tanh(c), c_ok),
    }


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
        mistakes = lambda: _lstm_mistakes(*args.values())  # noqa: E731
        expect_shape(step, f"h_t ({where})", h_t, h_ref.shape)
        expect_close(step, f"h_t ({where})", h_t, h_ref, diagnoses=lambda: {
            "c_t returned first: return (h_t, c_t), in that order": c_ref,
            **{k: v[0] for k, v in mistakes().items()}})
        expect_close(step, f"c_t ({where})", c_t, c_ref, diagnoses=lambda: {
            "h_t returned second: return (h_t, c_t), in that order": h_ref,
            **{k: v[1] for k, v in mistakes().items()}})
        # float32 inputs against Keras' float32 layer
        out32 = _pair(step, call(step, lstm_step, *_f32(*args.values())), ("h_t", "c_t"))
        h32, c32 = ref.lstm_step(*args.values(), dtype="float32")
        expect_close(step, f"h_t from float32 inputs ({where})", out32[0], h32, **F32)
        expect_close(step, f"c_t from float32 inputs ({where})", out32[1], c32, **F32)
        count += 2
    passed(step, count, "(equal to keras.layers.LSTM on the same weights, in float64 and float32)")


# --- lstm_forward ----------------------------------------------------------------

def _loop(step_fn, X, states, carry):
    """Run step_fn over time; carry[k] False feeds the initial state k at every step."""
    current, outs = list(states), []
    for x_t in np.moveaxis(X, 1, 0):   # time-major view: one (batch, input_dim) slice per step
        new = step_fn(x_t, *[cur if keep else first for cur, first, keep in zip(current, states, carry)])
        new = new if isinstance(new, tuple) else (new,)
        current = list(new)
        outs.append(new)
    return outs


def _lstm_numpy_step(x, h, c, kernel, recurrent_kernel, bias):
    i, f, g, o = _lstm_parts(x, h, kernel, recurrent_kernel, bias)
    new_c = f * c + i * g
    return o * np.tanh(new_c), new_c


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
        weights = (w["kernel"], w["recurrent_kernel"], w["bias"])

        def wrong(carry):
            outs = _loop(lambda x, h, c: _lstm_numpy_step(x, h, c, *weights), w["X"], (w["h0"], w["c0"]), carry)
            return np.stack([o[0] for o in outs], axis=1), np.stack([o[1] for o in outs], axis=1)

        where = f"batch={s.batch}, T={s.time}, units={s.units}"
        _expect_time_major_hint(step, "H", H, s)
        expect_shape(step, f"H, all hidden states ({where})", H, H_ref.shape)
        expect_close(step, f"H ({where})", H, H_ref, diagnoses=lambda: {
            "h0 and c0 fed to every step (the states are not carried)": wrong((False, False))[0],
            "c0 fed to every step (the cell state is not carried)": wrong((True, False))[0],
            "h0 fed to every step (the hidden state is not carried)": wrong((False, True))[0],
            "the cell states c_t stored instead of the hidden states h_t": wrong((True, True))[1],
            "h0 stored first (H one step behind)": np.concatenate([w["h0"][:, None], H_ref[:, :-1]], axis=1),
            "h and c swapped when carried to the next step": np.stack([o[0] for o in _loop(
                lambda x, h, c: _lstm_numpy_step(x, h, c, *weights)[::-1], w["X"], (w["h0"], w["c0"]),
                (True, True))], axis=1)})
        last = {"the first state instead of the last": H_ref[:, 0], "the last cell state c_T": c_ref}
        if s.time > 1:
            last["the second-to-last state (one step short)"] = H_ref[:, -2]
        expect_close(step, "h_last", h_last, h_ref, diagnoses=lambda: last)
        expect_close(step, "c_last", c_last, c_ref, diagnoses=lambda: {
            "the last hidden state h_T": h_ref, "c0 returned (the cell state is not carried)": w["c0"],
            "the cell state after the first step": wrong((True, True))[1][:, 0]})
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

        def mistakes():
            x, h, c, K, U, b = args.values()
            i, f, g, o = _lstm_parts(x, h, K, U, b)
            u = s.units
            no_bias = np.array(b, np.float64)
            no_bias[u:2 * u] = 0.0
            c_t = f * c + i * g
            return {"the input gate i_t (block 0); f is block 1": i,
                    "the output gate o_t (block 3); f is block 1": o,
                    "the candidate tanh(z_c) (block 2); f is block 1": g,
                    "f_t without its bias": _lstm_parts(x, h, K, U, no_bias)[1],
                    "f_t * c_prev (that is a term of c_t, not its derivative)": f * c,
                    "1 - f_t": 1 - f,
                    "ones: the highway is scaled by f_t, it is not an identity": np.ones_like(f),
                    "o_t * (1 - tanh(c_t)^2) * f_t, which is dh_t/dc_{t-1}": o * (1 - np.tanh(c_t) ** 2) * f}

        where = f"batch={s.batch}, units={s.units}"
        expect_shape(step, f"dc_t/dc_(t-1) ({where})", got, numeric.shape)
        expect_close(step, f"dc_t/dc_(t-1) ({where}) against a numeric derivative of Keras' LSTM",
               got, numeric, diagnoses=mistakes, rtol=1e-5, atol=1e-7)
        count += 1
    passed(step, count, "(equal to central differences of keras.layers.LSTM's c_t with h_(t-1) held fixed)")


# --- GRU ---------------------------------------------------------------------------

def _gru_parts(x, h, kernel, recurrent_kernel, bias):
    bias = np.asarray(bias, np.float64)
    xs = np.split(np.asarray(x, np.float64) @ kernel + bias[0], 3, axis=-1)
    hs = np.split(np.asarray(h, np.float64) @ recurrent_kernel + bias[1], 3, axis=-1)
    return xs, hs


def _gru_mistakes(x, h, kernel, recurrent_kernel, bias):
    """{mistake: h_t that mistake gives}, from Keras where a mistake is a change of weights or options."""
    def keras(**change):
        w = dict(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, h=h)
        options = {k: change.pop(k) for k in ("activation", "recurrent_activation", "reset_after") if k in change}
        w.update(change)
        return ref.gru_step(x, w["h"], w["kernel"], w["recurrent_kernel"], w["bias"], **options)

    bias = np.asarray(bias, np.float64)
    (xz, xr, xh), (hz, hr, hh) = _gru_parts(x, h, kernel, recurrent_kernel, bias)
    z, r = _sig(xz + hz), _sig(xr + hr)
    candidate = np.tanh(xh + r * hh)
    u = np.shape(recurrent_kernel)[0]
    outside = np.tanh(xh + r * (hh - bias[1, 2 * u:]) + bias[1, 2 * u:])
    return {
        "z and r swapped (the gate order r, z, h, as PyTorch stores its GRU weights)":
            keras(kernel=_blocks(kernel, (1, 0, 2), 3), recurrent_kernel=_blocks(recurrent_kernel, (1, 0, 2), 3),
                  bias=_blocks(bias, (1, 0, 2), 3)),
        "the reset gate applied before the matrix product, (r * h_prev) @ U_h (Keras' reset_after=False)":
            keras(reset_after=False, bias=bias[0] + bias[1]),
        "z and 1 - z swapped: h_t = (1 - z) * h_prev + z * candidate": (1 - z) * h + z * candidate,
        "the recurrent bias row bias[1] ignored": keras(bias=np.stack([bias[0], 0 * bias[1]])),
        "the input bias row bias[0] ignored": keras(bias=np.stack([0 * bias[0], bias[1]])),
        "bias[0] used for both parts": keras(bias=np.stack([bias[0], bias[0]])),
        "the two bias rows swapped": keras(bias=bias[::-1]),
        "the recurrent bias of the candidate added outside the reset gate": z * h + (1 - z) * outside,
        "sigmoid and tanh swapped": keras(activation="sigmoid", recurrent_activation="tanh"),
        "h_prev left out of the gates": keras(h=np.zeros_like(h)),
        "the candidate returned (no mixing with h_prev by z)": candidate,
    }


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
        expect_close(step, f"h_t ({where})", got, want, diagnoses=lambda: _gru_mistakes(*args.values()))
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

        def stale():  # every step from h0: one Keras call on the steps as separate length-1 sequences
            b, T, d = w["X"].shape
            flat = ref.gru_step(w["X"].reshape(b * T, d), np.repeat(w["h0"], T, axis=0),
                                w["kernel"], w["recurrent_kernel"], w["bias"])
            return flat.reshape(b, T, -1)

        where = f"batch={s.batch}, T={s.time}, units={s.units}"
        _expect_time_major_hint(step, "H", H, s)
        expect_shape(step, f"H, all hidden states ({where})", H, H_ref.shape)
        expect_close(step, f"H ({where})", H, H_ref, diagnoses=lambda: {
            "h0 fed to every step (the state is not carried)": stale(),
            "h0 stored first (H one step behind)": np.concatenate([w["h0"][:, None], H_ref[:, :-1]], axis=1)})
        last = {"the first state instead of the last": H_ref[:, 0]}
        if s.time > 1:
            last["the second-to-last state (one step short)"] = H_ref[:, -2]
        expect_close(step, "h_last", h_last, h_ref, diagnoses=lambda: last)
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
    if got != want:
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
