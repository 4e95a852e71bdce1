"""A quiet, reproducible notebook environment.

nbgrader gives zero points to any test cell that writes to stderr, and
TensorFlow writes start-up chatter there (some of it from C++ before its
logging is configured, which no environment variable silences). So the course
sets TensorFlow's log level before the first import and imports it with the
process's stderr file descriptor pointed at /dev/null for that one moment.
"""
from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings

# Must be set before TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Warnings that Keras and TensorFlow emit for correct code (deprecations in
# their own internals, input_shape hints); students' own warnings still show.
_NOISY_MODULES = r"(keras|tensorflow|tf_keras|jax|absl|google\.protobuf)(\.|$)"


def silence_library_warnings() -> None:
    warnings.filterwarnings("ignore", module=_NOISY_MODULES)


@contextlib.contextmanager
def stderr_to_devnull():
    """Point file descriptor 2 at /dev/null (C++ logs bypass sys.stderr)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no real fd 2 (some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Import TensorFlow without its start-up messages on stderr."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    silence_library_warnings()
    with stderr_to_devnull():
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
    return tf


def import_keras():
    """Import Keras (and its backend) quietly; returns the keras module."""
    silence_library_warnings()
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import_tensorflow()
    with stderr_to_devnull():
        import keras
    return keras


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (if imported) Keras for a reproducible run."""
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)


def epoch_lines(label: str = ""):
    """A Keras callback that prints one line per epoch (epoch, loss and metrics, seconds).

    For training cells that run several models: each epoch shows that the cell
    is working, without a progress bar per model.
    """
    import time

    keras = import_keras()

    class EpochLines(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs = self.params.get("epochs")

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            values = ", ".join(f"{name} {float(value):.4g}" for name, value in (logs or {}).items())
            print(f"{label + ': ' if label else ''}epoch {epoch + 1}/{self.epochs}  {values}  "
                  f"({time.perf_counter() - self.started:.1f} s)", flush=True)

    return EpochLines()
