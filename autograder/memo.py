"""Reference results remembered across submissions, in the judge's process only.

The hidden checks compare a student's answers with references that no one here
wrote (``autograder/reference/``: Keras' own layers, ops and losses). The inputs
of those references come from fixed seeds, so every submission of a unit asks
the judge for the same reference results; building a Keras layer for each one
again costs most of the judge's time (a unit-01 submission: about 3 of its 4
seconds). A worker grades many submissions one after the other, so the judge
keeps each reference result it computed and answers the same call again from
memory.

A result is remembered only when it cannot make a difference:

* every argument is plain data (numpy arrays and scalars, numbers, strings,
  bytes, None, and lists, tuples and dicts of them), compared by value: the
  key is a hash of their dtypes, shapes and bytes. A call with anything else
  (a Keras layer, a model, a student's stand-in, a function) is always made;
* the result is plain data too, and is handed out as a copy each time, so no
  check can change what the next submission gets;
* the global random states the references may draw from (Python's ``random``,
  numpy's legacy global generator) are part of the key, and a remembered call
  leaves them exactly as the real call did, so that whatever the check draws
  next is the same number as in the kernel, where nothing is remembered;
* a function that changed one of its arguments in place is never remembered.

Only :mod:`autograder.judge` turns this on (:func:`install`); the grading kernel
computes every reference itself, as plain ``nbgrader autograde`` does.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import pkgutil
import random
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from .hidden._record import feed_plain

MAX_BYTES = 512 * 1024 * 1024      # everything remembered, per process
MAX_ENTRY_BYTES = 32 * 1024 * 1024  # one result
MAX_DEPTH = 20


class _NotPlain(Exception):
    pass


def _feed(h, value: Any, depth: int = 0) -> None:
    """Hash plain data by value (the record's own hashing); raise _NotPlain for anything else."""
    if depth > MAX_DEPTH or not feed_plain(h, value, depth, _feed):
        raise _NotPlain


def _digest(value: Any) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    _feed(h, value)
    return h.digest()


def _size(value: Any) -> int:
    if isinstance(value, (np.ndarray, np.generic)):
        return int(np.asarray(value).nbytes) + 100
    if isinstance(value, (list, tuple)):
        return 60 + sum(_size(v) for v in value)
    if isinstance(value, dict):
        return 100 + sum(_size(k) + _size(v) for k, v in value.items())
    if isinstance(value, (str, bytes, bytearray)):
        return 50 + len(value)
    return 32


def _settings() -> tuple:
    """Global settings a reference may read: Keras' float type, epsilon and dtype policy."""
    import sys

    keras = sys.modules.get("keras")
    if keras is None:
        return ()
    try:
        return (keras.config.floatx(), float(keras.config.epsilon()), str(keras.config.dtype_policy().name))
    except Exception:  # noqa: BLE001 - an older Keras: its float type is enough
        return (keras.backend.floatx(),)


def _random_states():
    return random.getstate(), np.random.get_state()


def _set_random_states(states) -> None:
    random.setstate(states[0])
    np.random.set_state(states[1])


def _states_digest(states) -> bytes:
    py, (name, keys, pos, has_gauss, gauss) = states
    return _digest((repr(py), name, keys, int(pos), int(has_gauss), float(gauss)))


class Memo:
    """Remembered results of plain calls, least recently used first out. Thread-safe."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[bytes, tuple[Any, Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.bypassed = 0
        self.impure: set[str] = set()
        self.lock = threading.RLock()

    def call(self, name: str, fn: Callable, args: tuple, kwargs: dict):
        if name in self.impure:
            self.bypassed += 1
            return fn(*args, **kwargs)
        try:
            arguments = _digest((args, kwargs))
        except _NotPlain:
            self.bypassed += 1
            return fn(*args, **kwargs)
        before = _random_states()
        key = hashlib.blake2b(name.encode() + b"\0" + arguments + _states_digest(before) + _digest(_settings()),
                              digest_size=20).digest()
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
                self.hits += 1
                result, after, _ = entry
                _set_random_states(after)
                return copy.deepcopy(result)
        result = fn(*args, **kwargs)
        self.misses += 1
        try:
            changed = _digest((args, kwargs)) != arguments
        except _NotPlain:
            changed = True
        if changed:
            self.impure.add(name)
            return result
        try:
            _digest(result)
        except _NotPlain:
            return result
        size = _size(result)
        if size > MAX_ENTRY_BYTES:
            return result
        with self.lock:
            self.entries[key] = (copy.deepcopy(result), _random_states(), size)
            self.bytes += size
            while self.bytes > self.max_bytes and self.entries:
                _, (_, _, dropped) = self.entries.popitem(last=False)
                self.bytes -= dropped
        return result

    def stats(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "bypassed": self.bypassed, "entries": len(self.entries),
                "bytes": self.bytes, "impure": sorted(self.impure)}


MEMO = Memo()
_installed: set[str] = set()
_install_lock = threading.Lock()


def remembered(fn: Callable, name: str, memo: Memo = MEMO) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return memo.call(name, fn, args, kwargs)

    wrapper.__remembered__ = fn
    return wrapper


def install(package: str = "autograder.reference", memo: Memo = MEMO) -> list[str]:
    """Wrap every public function of every module of ``package`` (once per process); the names wrapped."""
    wrapped = []
    with _install_lock:
        root = importlib.import_module(package)
        names = [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(root.__path__)
                             if not m.name.startswith("_")]
        for module_name in names:
            if module_name in _installed:
                continue
            module = importlib.import_module(module_name)
            for attr, value in list(vars(module).items()):
                if (attr.startswith("_") or not callable(value) or isinstance(value, type)
                        or getattr(value, "__module__", None) != module_name
                        or getattr(value, "__remembered__", None) is not None):
                    continue
                qualified = f"{module_name}.{attr}"
                setattr(module, attr, remembered(value, qualified, memo))
                wrapped.append(qualified)
            _installed.add(module_name)
    return wrapped
