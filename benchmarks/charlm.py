#!/usr/bin/env python
"""Character-level language models on Tiny Shakespeare: the course's recipe
against the TensorFlow tutorial's, for the same training time, plus generation
speed of a stateful RNN and of a small causal Transformer with and without a
key/value cache.

    python benchmarks/charlm.py                      # both recipes, 180 s each
    KERAS_BACKEND=jax python benchmarks/charlm.py --seconds 180 --json out.json
    python benchmarks/charlm.py --smoke              # tiny models, seconds: the test

Prints the device and backend, each recipe, a training table (steps,
characters seen, characters per second, validation loss at the end and the best
one with the time it was reached) and a generation table (tokens per second).
See benchmarks/README.md for what is measured and how.

Model code uses keras, keras.ops and numpy only, so the script runs on
TensorFlow, on JAX without TensorFlow installed, and on CPU or GPU.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: `course` and its datasets come from here
    sys.path.insert(0, str(ROOT))

GOAL = 1.45           # validation loss to reach within 3 minutes on one H100
GOAL_SECONDS = 180
UNIT06 = (1.50, 300)  # the course's unit 06 full budget: <= 1.50 within 5 minutes

# The small causal Transformer of the generation benchmark: about the size of the
# course's 2 x 512 LSTM (3.4 M parameters). Only its speed is measured: it is not trained.
TRANSFORMER = dict(d_model=256, heads=4, layers=4, hidden=1024)
SMOKE_TRANSFORMER = dict(d_model=32, heads=2, layers=2, hidden=64)


# --------------------------------------------------------------------------- setup

def choose_backend() -> None:
    """Keras' own default is TensorFlow. Where it is missing and JAX is there (the GPU
    machine), use JAX rather than fail at `import keras`. An explicit KERAS_BACKEND wins."""
    if os.environ.get("KERAS_BACKEND"):
        return
    if importlib.util.find_spec("tensorflow") is None and importlib.util.find_spec("jax") is not None:
        os.environ["KERAS_BACKEND"] = "jax"


def import_keras():
    choose_backend()
    from course import env  # quiet import: no TensorFlow start-up chatter

    return env.import_keras()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=None,
                   help=f"training time per recipe, compile and validation excluded (default {GOAL_SECONDS}; smoke 2)")
    p.add_argument("--recipes", default="course,tutorial",
                   help="comma-separated: course (course.recipes.CHAR_RNN['full']), tutorial (TF_TUTORIAL)")
    p.add_argument("--gen-lengths", default=None,
                   help="generation lengths, comma-separated, or 'none' (default 128,256,512,1024; smoke 24)")
    p.add_argument("--gen-batch", type=int, default=1, help="sequences generated at once (default 1)")
    p.add_argument("--gen-repeats", type=int, default=3, help="timed runs per length; the median is kept")
    p.add_argument("--eval-every", type=float, default=None,
                   help="seconds of training between validation passes (default seconds/12)")
    p.add_argument("--val-window", type=int, default=256,
                   help="validation window length, the same for every recipe (default 256, nanoGPT's block)")
    p.add_argument("--val-chars", type=int, default=None,
                   help="validate on about this many characters (evenly spaced windows) instead of the "
                        "whole validation split: for slow CPUs")
    p.add_argument("--data", type=Path, default=None,
                   help="path to Tiny Shakespeare's input.txt (default: course.datasets finds or downloads it)")
    p.add_argument("--mixed-precision", action="store_true", help="Keras policy mixed_bfloat16 (default float32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    p.add_argument("--smoke", action="store_true",
                   help="tiny models on a slice of the text for a few seconds: checks the script runs")
    args = p.parse_args(argv)

    args.recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = sorted(set(args.recipes) - {"course", "tutorial"})
    if unknown:
        p.error(f"unknown recipe(s) {unknown}: choose from course, tutorial")
    if args.seconds is None:
        args.seconds = 2.0 if args.smoke else float(GOAL_SECONDS)
    if args.eval_every is None:
        args.eval_every = args.seconds / (2 if args.smoke else 12)
    if args.gen_lengths is None:
        args.gen_lengths = "24" if args.smoke else "128,256,512,1024"
    if args.gen_lengths.strip().lower() in ("", "none", "0"):
        args.gen_lengths = []
    else:
        args.gen_lengths = [int(x) for x in args.gen_lengths.split(",") if x.strip()]
        if any(n < 1 for n in args.gen_lengths):
            p.error("--gen-lengths must be positive")
    if args.smoke and args.val_window == 256:
        args.val_window = 32
    return args


# --------------------------------------------------------------------------- data

def load_text(path: Path | None) -> tuple[str, str]:
    """(text, where it came from)."""
    from course.datasets import ChecksumError, DatasetUnavailableError, get_entry, tiny_shakespeare_text
    from course.datasets.files import sha256_of

    entry = get_entry("tinyshakespeare")
    if path is not None:
        if not path.is_file():
            sys.exit(f"--data {path}: no such file")
        digest, _ = sha256_of(path)
        note = "verified" if digest == entry.sha256 else (
            f"NOT the registry's Tiny Shakespeare (sha256 {digest[:12]}...): figures do not compare")
        return path.read_bytes().decode("utf-8"), f"{path} ({note})"
    # The GPU machine gets the working tree only: a shared/ folder inside the checkout
    # travels with it, ../shared beside the checkout does not. Look inside too.
    inside = ROOT / "shared" / "datasets"
    if inside.is_dir():
        dirs = os.environ.get("COURSE_DATA_DIRS", "")
        os.environ["COURSE_DATA_DIRS"] = os.pathsep.join(d for d in (dirs, str(inside)) if d)
    try:
        return tiny_shakespeare_text(), "course.datasets (sha256 verified)"
    except (DatasetUnavailableError, ChecksumError) as err:
        sys.exit(
            f"Tiny Shakespeare could not be found or downloaded:\n{err}\n\n"
            "Pass --data PATH/TO/input.txt, or set COURSE_DATA_DIRS to a folder holding "
            "tinyshakespeare/input.txt. On a machine with no network (the GPU machine), copy the file "
            "into an ignored folder of the checkout, carry that folder and pass --data."
        )


def encode(text: str, alphabet: str):
    import numpy as np

    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.frombuffer(alphabet.encode("utf-32-le"), dtype=np.uint32)  # sorted: searchsorted works
    return np.searchsorted(table, codes).astype("int32")


def validation_windows(ids, window: int, max_chars: int | None):
    """Non-overlapping windows over the validation ids: x = chars, y = the next chars.
    Every window starts from a zero state (or an empty context)."""
    import numpy as np

    window = min(window, len(ids) - 1)
    n = (len(ids) - 1) // window
    x = ids[: n * window].reshape(n, window)
    y = ids[1: n * window + 1].reshape(n, window)
    if max_chars is not None and max_chars < n * window:
        keep = np.unique(np.linspace(0, n - 1, max(1, max_chars // window)).round().astype(int))
        x, y = x[keep], y[keep]
    return x, y


class Windows:
    """Random training windows: x = text[o : o+L], y = text[o+1 : o+L+1]."""

    def __init__(self, ids, seq_len: int, seed: int):
        import numpy as np

        self.ids, self.seq_len = ids, seq_len
        self.rng = np.random.default_rng(seed)
        self.span = np.arange(seq_len + 1)

    def sample(self, count: int):
        starts = self.rng.integers(0, len(self.ids) - self.seq_len, size=count)
        w = self.ids[starts[:, None] + self.span]
        return w[:, :-1], w[:, 1:]


# --------------------------------------------------------------------------- models

def describe(recipe: dict) -> str:
    return (f"{recipe['cell']} {recipe['layers']}x{recipe['units']}, embedding {recipe['embedding']}, "
            f"seq {recipe['seq_len']}, batch {recipe['batch']}")


def build_rnn(keras, recipe: dict, vocab: int, name: str):
    """Embedding -> layers x LSTM or GRU (the recipe's dropout on each one's inputs) -> Dense
    logits: unit 06's model. Input dropout keeps Keras' cuDNN path for the LSTM."""
    layers = keras.layers
    recurrent = {"lstm": layers.LSTM, "gru": layers.GRU}[recipe["cell"]]
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab, recipe["embedding"], name="embedding")(tokens)
    for k in range(recipe["layers"]):
        x = recurrent(recipe["units"], return_sequences=True, dropout=recipe.get("dropout") or 0.0,
                      name=f"{recipe['cell']}_{k}")(x)
    logits = layers.Dense(vocab, name="logits")(x)
    return keras.Model(tokens, logits, name=name)


def rnn_parts(keras, model):
    """(embedding, recurrent layers, dense) of a model made by build_rnn."""
    rnns = [l for l in model.layers if isinstance(l, (keras.layers.LSTM, keras.layers.GRU))]
    return model.get_layer("embedding"), rnns, model.get_layer("logits")


def rnn_step(parts, tokens, states):
    """One character through the stack: tokens (B,) -> logits (B, V), new states."""
    embedding, rnns, head = parts
    x, new_states = embedding(tokens), []
    for layer, state in zip(rnns, states):
        x, state = layer.cell(x, state, training=False)
        new_states.append(list(state))
    return head(x), new_states


def make_transformer_classes(keras):
    ops, layers = keras.ops, keras.layers

    class Block(layers.Layer):
        """Pre-norm Transformer block with causal self-attention, written with keras.ops
        so that one step can read and extend a key/value cache."""

        def __init__(self, d_model, heads, hidden, **kwargs):
            super().__init__(**kwargs)
            self.d_model, self.heads, self.hidden = d_model, heads, hidden
            self.norm1 = layers.LayerNormalization(epsilon=1e-5)
            self.qkv = layers.Dense(3 * d_model)
            self.proj = layers.Dense(d_model)
            self.norm2 = layers.LayerNormalization(epsilon=1e-5)
            self.up = layers.Dense(hidden, activation="gelu")
            self.down = layers.Dense(d_model)

        def build(self, input_shape):
            for layer in (self.norm1, self.qkv, self.proj, self.norm2, self.up):
                layer.build(input_shape)
            self.down.build(tuple(input_shape[:-1]) + (self.hidden,))

        def split_heads(self, x):  # (B, T, d) -> (B, H, T, d/H)
            shape = ops.shape(x)
            x = ops.reshape(x, (shape[0], shape[1], self.heads, self.d_model // self.heads))
            return ops.transpose(x, (0, 2, 1, 3))

        def attend(self, q, k, v, allowed):  # q (B,H,Tq,dh), k v (B,H,Tk,dh), allowed (Tq,Tk)
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.d_model // self.heads)
            scores = ops.where(allowed, scores, -1e9)
            out = ops.matmul(ops.softmax(scores, axis=-1), v)  # (B, H, Tq, dh)
            out = ops.transpose(out, (0, 2, 1, 3))
            shape = ops.shape(out)
            return ops.reshape(out, (shape[0], shape[1], self.d_model))

        def mlp(self, x):
            return x + self.down(self.up(self.norm2(x)))

        def call(self, x):
            q, k, v = ops.split(self.qkv(self.norm1(x)), 3, axis=-1)
            where = ops.arange(ops.shape(x)[1])
            causal = ops.expand_dims(where, 1) >= ops.expand_dims(where, 0)
            x = x + self.proj(self.attend(self.split_heads(q), self.split_heads(k), self.split_heads(v), causal))
            return self.mlp(x)

        def step(self, x, i, cache):
            """x (B, 1, d) at position i; cache = (keys, values), each (B, H, capacity, dh)."""
            q, k, v = ops.split(self.qkv(self.norm1(x)), 3, axis=-1)
            keys = ops.slice_update(cache[0], (0, 0, i, 0), self.split_heads(k))
            values = ops.slice_update(cache[1], (0, 0, i, 0), self.split_heads(v))
            seen = ops.expand_dims(ops.arange(ops.shape(keys)[2]) <= i, 0)  # (1, capacity)
            x = x + self.proj(self.attend(self.split_heads(q), keys, values, seen))
            return self.mlp(x), (keys, values)

    class TinyTransformer(keras.Model):
        """Token + learned position embeddings, pre-norm blocks, final norm, Dense logits."""

        def __init__(self, vocab, d_model, heads, layers, hidden, max_len, **kwargs):
            super().__init__(**kwargs)
            self.d_model, self.heads, self.max_len = d_model, heads, max_len
            self.tok = keras.layers.Embedding(vocab, d_model)
            self.pos = keras.layers.Embedding(max_len, d_model)
            self.blocks = [Block(d_model, heads, hidden, name=f"block_{k}") for k in range(layers)]
            self.norm = keras.layers.LayerNormalization(epsilon=1e-5)
            self.head = keras.layers.Dense(vocab)

        def call(self, tokens):
            x = self.tok(tokens) + ops.expand_dims(self.pos(ops.arange(ops.shape(tokens)[1])), 0)
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))

        def empty_cache(self, batch, capacity):
            shape = (batch, self.heads, capacity, self.d_model // self.heads)
            return [(ops.zeros(shape, self.compute_dtype), ops.zeros(shape, self.compute_dtype))
                    for _ in self.blocks]

        def step(self, tokens, i, caches):
            """tokens (B, 1) at position i -> logits (B, V), updated caches."""
            where = ops.reshape(ops.cast(i, "int32"), (1, 1))
            x = self.tok(tokens) + self.pos(where)
            new = []
            for block, cache in zip(self.blocks, caches):
                x, cache = block.step(x, i, cache)
                new.append(cache)
            return self.head(self.norm(x))[:, 0], new

    return TinyTransformer


def buckets(length: int, smallest: int):
    """[(first, stop, window)]: positions first..stop-1 use a window (or cache) of `window`
    slots, doubling from `smallest`, so work grows with the position while each compiled
    loop keeps fixed shapes."""
    out, first, window = [], 0, smallest
    while first < length:
        stop = min(window, length)
        out.append((first, stop, window))
        first, window = stop, window * 2
    return out


def make_generators(keras):
    """Three greedy generators; each runs its whole loop in one compiled call (predict_on_batch)
    and maps a (B, N) buffer whose column 0 holds the prompt to the buffer with columns
    1..length filled."""
    ops = keras.ops

    def write(buf, i, logits):
        nxt = ops.cast(ops.argmax(logits, axis=-1), buf.dtype)
        return ops.slice_update(buf, (0, i + 1), ops.expand_dims(nxt, 1))

    def read(buf, i):
        return ops.slice(buf, (0, i), (ops.shape(buf)[0], 1))

    class Generator(keras.Model):
        def __init__(self, lm, length, smallest=64, **kwargs):
            super().__init__(**kwargs)
            self.lm, self.length, self.smallest = lm, length, smallest
            self.built = True  # the language model is built already

        def buffer_length(self):
            return max(self.length + 1, buckets(self.length, self.smallest)[-1][2])

    class RNNGenerator(Generator):
        """Stateful: one character in, one out, the states carried: constant work per token."""

        def call(self, buf):
            parts = rnn_parts(keras, self.lm)
            batch = ops.shape(buf)[0]
            states = [list(layer.cell.get_initial_state(batch)) for layer in parts[1]]

            def body(i, carry):
                buf, states = carry
                logits, states = rnn_step(parts, read(buf, i)[:, 0], states)
                return write(buf, i, logits), states

            return ops.fori_loop(0, self.length, body, (buf, states))[0]

    class NoCacheGenerator(Generator):
        """Transformer without a cache: every new token re-runs the model over the prefix
        (padded to the next bucket; the causal mask makes the padding irrelevant)."""

        def call(self, buf):
            vocab = self.lm.head.units
            for first, stop, window in buckets(self.length, self.smallest):
                def body(i, buf, window=window):
                    logits = self.lm(buf[:, :window])  # (B, window, V)
                    row = ops.slice(logits, (0, i, 0), (ops.shape(buf)[0], 1, vocab))[:, 0]
                    return write(buf, i, row)

                buf = ops.fori_loop(first, stop, body, buf)
            return buf

    class CachedGenerator(Generator):
        """Transformer with a key/value cache: one token in, its keys and values appended,
        attention over the cache (grown bucket by bucket)."""

        def call(self, buf):
            batch = ops.shape(buf)[0]
            plan = buckets(self.length, self.smallest)
            caches, size = self.lm.empty_cache(batch, plan[0][2]), plan[0][2]
            for first, stop, window in plan:
                grow = [[0, 0], [0, 0], [0, window - size], [0, 0]]
                caches = [(ops.pad(k, grow), ops.pad(v, grow)) for k, v in caches]
                size = window

                def body(i, carry):
                    buf, caches = carry
                    logits, caches = self.lm.step(read(buf, i), i, caches)
                    return write(buf, i, logits), caches

                buf, caches = ops.fori_loop(first, stop, body, (buf, caches))
            return buf

    return RNNGenerator, NoCacheGenerator, CachedGenerator


# --------------------------------------------------------------------------- checks

def check_rnn_steps(keras, model, vocab, seed):
    """Largest |difference| between the full-sequence logits and the one-step loop's."""
    import numpy as np

    ops = keras.ops
    ids = np.random.default_rng(seed).integers(0, vocab, size=(2, 12)).astype("int32")
    full = ops.convert_to_numpy(model(ids, training=False))
    parts = rnn_parts(keras, model)
    states = [list(layer.cell.get_initial_state(2)) for layer in parts[1]]
    steps = []
    for t in range(ids.shape[1]):
        logits, states = rnn_step(parts, ids[:, t], states)
        steps.append(ops.convert_to_numpy(logits))
    return float(np.max(np.abs(full - np.stack(steps, axis=1))))


def check_cache(keras, lm, vocab, seed):
    """Largest |difference| between the Transformer's full causal pass and its cached steps."""
    import numpy as np

    ops = keras.ops
    ids = np.random.default_rng(seed).integers(0, vocab, size=(2, 12)).astype("int32")
    full = ops.convert_to_numpy(lm(ids))
    caches, steps = lm.empty_cache(2, 16), []
    for t in range(ids.shape[1]):
        logits, caches = lm.step(ids[:, t: t + 1], t, caches)
        steps.append(ops.convert_to_numpy(logits))
    return float(np.max(np.abs(full - np.stack(steps, axis=1))))


# --------------------------------------------------------------------------- training

def train(keras, model, recipe, train_ids, val_x, val_y, args, log):
    """Train for args.seconds of training time; validate every args.eval_every seconds
    and at the end. Returns the figures."""
    rec = dict(recipe)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=rec["learning_rate"],
                                        global_clipnorm=rec.get("global_clipnorm")),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    batch, seq_len = rec["batch"], rec["seq_len"]
    windows = Windows(train_ids, seq_len, args.seed)
    eval_batch = max(1, min(len(val_x), batch))
    chunk_seconds = min(5.0, max(0.25, args.seconds / 20))
    max_steps_in_chunk = max(1, 16_000_000 // (batch * (seq_len + 1)))  # host memory of one chunk

    def fit(steps):
        x, y = windows.sample(steps * batch)
        hist = model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        return hist.history["loss"][-1]

    def validate():
        t0 = time.perf_counter()
        loss = model.evaluate(val_x, val_y, batch_size=eval_batch, verbose=0)
        return float(loss[0] if isinstance(loss, (list, tuple)) else loss), time.perf_counter() - t0

    wall0 = time.perf_counter()
    fit(1)  # traces and compiles the train step (and runs one step): not in the clock
    compile_s = time.perf_counter() - wall0
    steps, clock, eval_s, history = 1, 0.0, 0.0, []
    next_eval, rate, train_loss = args.eval_every, None, float("nan")
    while clock < args.seconds:
        target = min(chunk_seconds, next_eval - clock, args.seconds - clock)
        k = 1 if rate is None else max(1, min(max_steps_in_chunk, int(rate * target)))
        t0 = time.perf_counter()
        train_loss = fit(k)
        dt = time.perf_counter() - t0
        clock, steps, rate = clock + dt, steps + k, k / dt
        if clock >= next_eval or clock >= args.seconds:
            val, spent = validate()
            eval_s += spent
            history.append(dict(seconds=round(clock, 2), steps=steps, train_loss=float(train_loss), val_loss=val))
            log(f"  [{model.name}] {clock:7.1f} s  step {steps:6d}  train loss {train_loss:.4f}  "
                f"val loss {val:.4f}  ({steps * batch * seq_len / 1e6:.1f} M chars)")
            while next_eval <= clock:
                next_eval += args.eval_every
    timed_chars = (steps - 1) * batch * seq_len
    best = min(history, key=lambda h: h["val_loss"])

    def first_at(level):
        hit = next((h for h in history if h["val_loss"] <= level), None)
        return None if hit is None else hit["seconds"]

    return dict(
        params=model.count_params(), steps=steps, chars_seen=steps * batch * seq_len,
        epochs=steps * batch * seq_len / len(train_ids), train_seconds=round(clock, 2),
        compile_seconds=round(compile_s, 2), eval_seconds=round(eval_s, 2),
        wall_seconds=round(time.perf_counter() - wall0, 2),
        chars_per_second=timed_chars / clock if clock > 0 else float("nan"),
        final_train_loss=float(train_loss), final_val_loss=history[-1]["val_loss"],
        best_val_loss=best["val_loss"], best_at_seconds=best["seconds"],
        goal_reached_at=first_at(GOAL), unit06_reached_at=first_at(UNIT06[0]), history=history,
    )


# --------------------------------------------------------------------------- generation

def time_generation(keras, generator, args, prompt: int):
    """(seconds of the first call: compile + run, median seconds of the timed runs, buffer)."""
    import numpy as np

    buf = np.zeros((args.gen_batch, generator.buffer_length()), dtype="int32")
    buf[:, 0] = prompt
    t0 = time.perf_counter()
    out = generator.predict_on_batch(buf)
    first = time.perf_counter() - t0
    runs = []
    for _ in range(max(1, args.gen_repeats)):
        t0 = time.perf_counter()
        out = generator.predict_on_batch(buf)
        runs.append(time.perf_counter() - t0)
    return first, float(np.median(runs)), np.asarray(out)


# --------------------------------------------------------------------------- reporting

def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(keras) -> dict:
    backend = keras.backend.backend()
    info = dict(backend=backend, keras=keras.__version__, python=platform.python_version(),
                cpu=cpu_name(), cpu_count=os.cpu_count(), policy=keras.config.dtype_policy().name)
    if backend == "jax":
        import jax

        first = jax.devices()[0]
        info.update(framework=f"jax {jax.__version__}", platform=first.platform,
                    device=first.device_kind, device_count=len(jax.devices()))
    elif backend == "tensorflow":
        tf = sys.modules["tensorflow"]  # imported by Keras already
        gpus = tf.config.list_physical_devices("GPU")
        name = info["cpu"]
        if gpus:
            name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
        info.update(framework=f"tensorflow {tf.__version__}", platform="gpu" if gpus else "cpu",
                    device=name, device_count=max(1, len(gpus)))
    elif backend == "torch":
        import torch

        gpu = torch.cuda.is_available()
        info.update(framework=f"torch {torch.__version__}", platform="gpu" if gpu else "cpu",
                    device=torch.cuda.get_device_name(0) if gpu else info["cpu"],
                    device_count=torch.cuda.device_count() if gpu else 1)
    else:
        info.update(framework=backend, platform="?", device="?", device_count=0)
    if info["platform"] == "cpu" and hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def fmt_seconds(value) -> str:
    return "not reached" if value is None else f"{value:.0f} s"


def main(argv=None) -> int:
    args = parse_args(argv)
    keras = import_keras()
    import numpy as np

    from course.datasets import tiny_shakespeare_split
    from course.recipes import CHAR_RNN, TF_TUTORIAL

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(args.seed)
    log = lambda *a: print(*a, flush=True)  # noqa: E731

    info = device_info(keras)
    log("Character-level language model benchmark" + (" (SMOKE: tiny models, figures mean nothing)" if args.smoke else ""))
    log(f"backend: {info['backend']} ({info['framework']}), keras {info['keras']}, python {info['python']}, "
        f"policy {info['policy']}")
    log(f"device: {info['device']} ({info['platform']}, {info['device_count']} device(s)); "
        f"cpu: {info['cpu']}, {info['cpu_count']} cores"
        + (f", load average {info['load_average'][0]}" if "load_average" in info else ""))

    text, source = load_text(args.data)
    alphabet = "".join(sorted(set(text)))
    train_text, val_text = tiny_shakespeare_split(text)
    train_ids, val_ids = encode(train_text, alphabet), encode(val_text, alphabet)
    if args.smoke:
        train_ids, val_ids = train_ids[:60_000], val_ids[:6_000]
    val_x, val_y = validation_windows(val_ids, args.val_window, args.val_chars)
    whole = val_x.size >= len(val_ids) - args.val_window
    log(f"data: {source}; {len(text):,} chars, vocabulary {len(alphabet)}; train {len(train_ids):,}, "
        f"validation {len(val_ids):,}")
    log(f"validation: {val_x.shape[0]} windows x {val_x.shape[1]} = {val_x.size:,} predictions "
        f"({'the whole split' if whole else 'evenly spaced windows'}), each window from a zero state")

    recipes = {"course": dict(CHAR_RNN["full"]), "tutorial": dict(TF_TUTORIAL)}
    if args.smoke:
        for r in recipes.values():
            r.update(embedding=16, units=32, layers=min(r["layers"], 2), seq_len=32, batch=16)
    recipes = {name: recipes[name] for name in args.recipes}
    for name, r in recipes.items():
        log(f"recipe {name}: {r}")
    log(f"training: {args.seconds:g} s per recipe (compile and validation excluded), "
        f"validation every {args.eval_every:g} s and at the end\n")

    results = dict(device=info, args={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   data=dict(source=source, chars=len(text), vocabulary=len(alphabet), train=len(train_ids),
                             validation=len(val_ids), val_predictions=int(val_x.size),
                             val_window=int(val_x.shape[1])),
                   recipes=recipes, train={}, generation={}, checks={})
    models = {}
    for name, recipe in recipes.items():
        model = build_rnn(keras, recipe, len(alphabet), name)
        log(f"{name}: {describe(recipe)}, {model.count_params():,} parameters")
        results["train"][name] = train(keras, model, recipe, train_ids, val_x, val_y, args, log)
        models[name] = model

    log("\nTraining (chars/s: target characters of every step but the first, which compiles, per second of "
        "training; validation passes are outside the clock)")
    head = (f"{'recipe':9} {'params':>10} {'steps':>7} {'chars seen':>11} {'epochs':>6} {'train s':>7} "
            f"{'compile s':>9} {'chars/s':>10} {'val loss':>8} {'best val':>8} {'at':>6}")
    log(head)
    log("-" * len(head))
    for name, r in results["train"].items():
        log(f"{name:9} {r['params']:>10,} {r['steps']:>7} {r['chars_seen']:>11,} {r['epochs']:>6.2f} "
            f"{r['train_seconds']:>7.1f} {r['compile_seconds']:>9.1f} {r['chars_per_second']:>10,.0f} "
            f"{r['final_val_loss']:>8.4f} {r['best_val_loss']:>8.4f} {r['best_at_seconds']:>5.0f}s")
    for name, r in results["train"].items():
        log(f"{name}: val loss <= {GOAL} (goal: within {GOAL_SECONDS} s on one H100): {fmt_seconds(r['goal_reached_at'])}; "
            f"<= {UNIT06[0]} (unit 06: within {UNIT06[1]} s): {fmt_seconds(r['unit06_reached_at'])}")

    if models:
        for name, model in models.items():
            diff = check_rnn_steps(keras, model, len(alphabet), args.seed)
            results["checks"][f"rnn_{name}_step_vs_sequence"] = diff
            log(f"check: {name} one-step loop = full sequence, max |logit difference| {diff:.2e}")

    if args.gen_lengths:
        cfg = SMOKE_TRANSFORMER if args.smoke else TRANSFORMER
        smallest = 8 if args.smoke else 64
        max_len = max(buckets(n, smallest)[-1][2] for n in args.gen_lengths)
        TinyTransformer = make_transformer_classes(keras)
        lm = TinyTransformer(len(alphabet), max_len=max_len, name="transformer", **cfg)
        lm(np.zeros((1, 8), dtype="int32"))  # build its weights outside any compiled function
        diff = check_cache(keras, lm, len(alphabet), args.seed)
        results["checks"]["transformer_cache_vs_full"] = diff
        log(f"check: transformer kv-cache steps = full causal pass, max |logit difference| {diff:.2e}")
        RNNGenerator, NoCacheGenerator, CachedGenerator = make_generators(keras)
        contenders = [(f"rnn {name} ({r['cell']} {r['layers']}x{r['units']})", RNNGenerator, models[name])
                      for name, r in recipes.items()]
        tdesc = f"{cfg['layers']}x{cfg['d_model']}, {lm.count_params() / 1e6:.1f}M"
        contenders += [(f"transformer {tdesc}, no cache", NoCacheGenerator, lm),
                       (f"transformer {tdesc}, kv cache", CachedGenerator, lm)]
        prompt = alphabet.index("\n") if "\n" in alphabet else 0
        log(f"\nGeneration (batch {args.gen_batch}, greedy, the whole loop compiled as one call; tokens/s = "
            f"generated tokens / median of {args.gen_repeats} runs, compile excluded; transformer untrained)")
        head = f"{'model':44}" + "".join(f"{n:>10}" for n in args.gen_lengths) + f"{'compile s':>11}"
        log(head)
        log("-" * len(head))
        outputs = {}
        for label, cls, lm_ in contenders:
            row, compiled = {}, 0.0
            for n in args.gen_lengths:
                gen = cls(lm_, n, smallest=smallest, name=f"gen_{len(outputs)}_{n}")
                first, median, out = time_generation(keras, gen, args, prompt)
                compiled += max(0.0, first - median)
                row[n] = dict(tokens_per_second=args.gen_batch * n / median, seconds=median,
                              first_call_seconds=first)
                outputs[(label, n)] = out[:, : n + 1]
            results["generation"][label] = {str(n): v for n, v in row.items()}
            log(f"{label:44}" + "".join(f"{row[n]['tokens_per_second']:>10,.0f}" for n in args.gen_lengths)
                + f"{compiled:>11.1f}")
        same = all(np.array_equal(outputs[(contenders[-2][0], n)], outputs[(contenders[-1][0], n)])
                   for n in args.gen_lengths)
        results["checks"]["transformer_cache_same_tokens"] = bool(same)
        log(f"check: transformer with and without cache generate the same tokens: {'yes' if same else 'NO'}")
        if models:
            first_name = next(iter(models))
            label = contenders[0][0]
            sample = "".join(alphabet[i] for i in outputs[(label, max(args.gen_lengths))][0, 1:301])
            log(f"greedy sample from {first_name}, after a newline: {sample!r}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=float))
        log(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
