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

Only :mod:`autograder.judge` turns this on (:func:`install`) for its own
process. The grading kernel of ``grade-class`` gets what the judge of its
worker has computed so far for the same unit, as a sealed table
(:meth:`Memo.write_table`, read by ``python -m autograder.kernel --memo FILE``):

* the judge's process never runs a student's code, so every result in the table
  was computed by the genuine references; a kernel only reads it;
* each result is sealed under the call's own key (the function, its arguments,
  the random states and the settings): XOR with a SHAKE-256 stream of it, and a
  keyed BLAKE2b tag that refuses changed bytes. It is filed under another hash
  of that key. A kernel can open an
  entry only by making the very call that produced it, with the same
  arguments: it learns nothing it could not compute with the references it
  already has, and nothing of another student's answers that the judge passed
  to a reference;
* the kernel stores nothing itself, and answers every call the table does not
  hold by calling the reference, so a table can only save time: a bad or
  missing one changes nothing but the time. The judge checks every record
  against its own references as before.

Plain ``nbgrader autograde`` computes every reference itself.
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import hashlib
import importlib
import os
import pickle
import pkgutil
import random
import struct
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from .hidden._record import feed_plain

MAX_BYTES = 512 * 1024 * 1024      # everything remembered, per process
MAX_ENTRY_BYTES = 32 * 1024 * 1024  # one result
MAX_DEPTH = 20
MAX_TABLE_BYTES = 64 * 1024 * 1024  # one sealed table handed to a kernel
TABLE_MAGIC = b"autograder-memo-table/1\n"

# What the calls made now are for (a unit's hidden module, set by the judge): a table for a kernel holds what
# was asked for the same unit.
_context: contextvars.ContextVar[str | None] = contextvars.ContextVar("memo_context", default=None)


@contextlib.contextmanager
def context(name: str):
    """Calls made inside are filed under `name` (a unit's hidden module): :meth:`Memo.write_table` picks by it."""
    token = _context.set(name)
    try:
        yield
    finally:
        _context.reset(token)


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


def _index(key: bytes) -> bytes:
    """Where a call's result is filed in a sealed table."""
    return hashlib.blake2b(key, digest_size=20, person=b"memo-index").digest()


def _xor(data: bytes, key: bytes) -> bytes:
    stream = hashlib.shake_256(b"memo-seal\0" + key).digest(len(data))
    return (np.frombuffer(data, np.uint8) ^ np.frombuffer(stream, np.uint8)).tobytes()


def _tag(plain: bytes, key: bytes) -> bytes:
    return hashlib.blake2b(plain, key=key, digest_size=16, person=b"memo-tag").digest()


def seal(plain: bytes, key: bytes) -> bytes:
    """`plain` sealed with a call's key: XOR with SHAKE-256 of the key, then a keyed BLAKE2b tag."""
    return _xor(plain, key) + _tag(plain, key)


def unseal(sealed: bytes, key: bytes) -> bytes | None:
    """What :func:`seal` sealed with `key`; None for another key or changed bytes."""
    if len(sealed) < 16:
        return None
    plain = _xor(sealed[:-16], key)
    return plain if _tag(plain, key) == sealed[-16:] else None


class Memo:
    """Remembered results of plain calls, least recently used first out. Thread-safe.

    `store=False` (the grading kernel): remember nothing; answer only from a sealed table
    (:meth:`read_table`), and make every other call."""

    def __init__(self, max_bytes: int = MAX_BYTES, store: bool = True):
        self.max_bytes = max_bytes
        self.store = store
        self.entries: OrderedDict[bytes, tuple[Any, Any, int]] = OrderedDict()
        self.contexts: dict[bytes, set[str]] = {}       # key: the contexts it was asked in
        self.sealed: dict[bytes, bytes] = {}            # key: its sealed result, made once for tables
        self.table: dict[bytes, bytes] = {}             # index: sealed result (read from a table)
        self.bytes = 0
        self.hits = self.misses = self.bypassed = self.table_hits = 0
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
                self._file(key)
                result, after, _ = entry
                _set_random_states(after)
                return copy.deepcopy(result)
            sealed = self.table.get(_index(key)) if self.table else None
        if sealed is not None:
            opened = self._open(sealed, key)
            if opened is not None:
                self.table_hits += 1
                result, after = opened
                _set_random_states(after)
                return result
        result = fn(*args, **kwargs)
        self.misses += 1
        if not self.store:
            return result
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
            self._file(key)
            self.bytes += size
            while self.bytes > self.max_bytes and self.entries:
                dropped_key, (_, _, dropped) = self.entries.popitem(last=False)
                self.contexts.pop(dropped_key, None)
                self.sealed.pop(dropped_key, None)
                self.bytes -= dropped
        return result

    def _file(self, key: bytes) -> None:
        name = _context.get()
        if name is not None:
            self.contexts.setdefault(key, set()).add(name)

    # --- sealed tables: from the judge's process to a grading kernel -----------------------------------

    def write_table(self, path, context: str, max_bytes: int = MAX_TABLE_BYTES) -> int:
        """Write the results asked for under `context`, most recently used first, sealed (see the module's
        docstring), to `path`; how many. Nothing is written when there are none."""
        with self.lock:
            keys = [k for k in reversed(self.entries) if context in self.contexts.get(k, ())]
            chunks, total = [], 0
            for key in keys:
                sealed = self.sealed.get(key)
                if sealed is None:
                    result, after, _ = self.entries[key]
                    sealed = self.sealed[key] = seal(pickle.dumps((result, after), protocol=5), key)
                if total + len(sealed) + 28 > max_bytes:
                    continue
                chunks.append(_index(key) + struct.pack("<Q", len(sealed)) + sealed)
                total += len(sealed) + 28
        if not chunks:
            return 0
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            f.write(TABLE_MAGIC)
            f.writelines(chunks)
        os.replace(tmp, path)
        return len(chunks)

    def read_table(self, path, max_bytes: int = MAX_TABLE_BYTES) -> int:
        """Take a sealed table's entries (a missing, oversized or malformed table gives none); how many."""
        try:
            if os.path.getsize(path) > max_bytes + len(TABLE_MAGIC):
                return 0
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return 0
        if not data.startswith(TABLE_MAGIC):
            return 0
        table, at = {}, len(TABLE_MAGIC)
        while at + 28 <= len(data):
            index, (size,) = data[at:at + 20], struct.unpack("<Q", data[at + 20:at + 28])
            if at + 28 + size > len(data):
                return 0
            table[index] = data[at + 28:at + 28 + size]
            at += 28 + size
        if at != len(data):
            return 0
        with self.lock:
            self.table.update(table)
        return len(table)

    def _open(self, sealed: bytes, key: bytes):
        """(result, random states after the call) from a sealed entry, or None if it does not open."""
        plain = unseal(sealed, key)
        if plain is None:
            return None
        try:
            result, after = pickle.loads(plain)
            _digest(result)                                   # plain data, or nothing
            _states_digest(after)
            return result, after
        except Exception:  # noqa: BLE001 - not what the judge wrote: make the call instead
            return None

    def stats(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "bypassed": self.bypassed, "entries": len(self.entries),
                "bytes": self.bytes, "impure": sorted(self.impure), "table": len(self.table),
                "table_hits": self.table_hits}


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
