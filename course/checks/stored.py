"""Expected values stored with the release, for the visible checks.

The visible checks compare an answer with values computed once, by the
instructor's reference implementations (Keras' own layers, ops and losses run
on the same weights), on the checks' own visible inputs, and stored in
``course/checks/expected/<notebook>.npz``. ``python -m autograder generate``
writes those files by running the solution notebook's answers through the
visible checks while every reference call is recorded; nothing here can
compute an answer, only look one up.

A check asks ``ref.<name>(*args, **options)`` as it would ask the reference
module; the arguments are reduced to a key (names, shapes, dtypes and the
values rounded to one part in 2**20 of the largest, so that a last-bit
difference of another BLAS does not change the key) and the stored value for
that key is returned. A question that was never recorded is a maintainer's
error: the message says to regenerate.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent / "expected"
_QUANTUM = 2.0 ** 20


def _feed(h, value: Any) -> None:
    if value is None or isinstance(value, (bool, str)):
        h.update(repr(value).encode())
    elif isinstance(value, (int, np.integer)):
        h.update(f"i{int(value)}".encode())
    elif isinstance(value, dict):
        h.update(b"{")
        for k in sorted(value):
            h.update(repr(k).encode())
            _feed(h, value[k])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"(" if isinstance(value, tuple) else b"[")
        for v in value:
            _feed(h, v)
        h.update(b")")
    else:
        a = np.asarray(value)
        h.update(f"a{a.shape}{a.dtype.kind}".encode())
        if a.dtype.kind in "iub":
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        elif a.dtype.kind in "fc":
            a = np.asarray(a, np.float64)
            scale = float(np.max(np.abs(a), initial=0.0))
            if scale > 0 and np.isfinite(scale):
                mantissa, exponent = np.frexp(scale)
                h.update(f"s{int(exponent)}:{int(round(mantissa * _QUANTUM))}".encode())
                q = np.round(np.where(np.isfinite(a), a, 0.0) / scale * _QUANTUM)
                h.update(np.ascontiguousarray(q, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(~np.isfinite(a)).tobytes())
        else:
            h.update(repr(a.tolist()).encode())


def key(name: str, args: tuple, kwargs: dict) -> str:
    """The key of one question to the reference: its name and its arguments, rounded."""
    h = hashlib.sha256(name.encode())
    _feed(h, tuple(args))
    _feed(h, dict(kwargs))
    return f"{name}:{h.hexdigest()[:24]}"


# --- nested values <-> arrays (no pickle in a data file) ---------------------------------------------

def encode(value: Any, arrays: list) -> Any:
    """A JSON-able description of ``value``; its arrays appended to ``arrays``."""
    if value is None:
        return {"t": "none"}
    if isinstance(value, (bool, np.bool_)):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"t": "int", "v": int(value)}
    if isinstance(value, str):
        return {"t": "str", "v": value}
    if isinstance(value, dict):
        return {"t": "dict", "k": list(value), "v": [encode(v, arrays) for v in value.values()]}
    if isinstance(value, (list, tuple)):
        return {"t": type(value).__name__, "v": [encode(v, arrays) for v in value]}
    if isinstance(value, float):
        return {"t": "float", "v": repr(value)}
    arrays.append(np.asarray(value))
    return {"t": "array", "i": len(arrays) - 1}


def decode(tree: Any, arrays) -> Any:
    t = tree["t"]
    if t == "none":
        return None
    if t in ("bool", "int", "str"):
        return tree["v"]
    if t == "float":
        return float(tree["v"])
    if t == "dict":
        return {k: decode(v, arrays) for k, v in zip(tree["k"], tree["v"])}
    if t in ("list", "tuple"):
        items = [decode(v, arrays) for v in tree["v"]]
        return tuple(items) if t == "tuple" else items
    return np.array(arrays[f"a{tree['i']}"])


class MissingExpected(LookupError):
    """The checks asked for a value that the release does not store."""


class _Stored:
    """The stored answers to one notebook's reference questions (see the module's docstring)."""

    def __init__(self, notebook: str):
        self.notebook = notebook
        self._data = None

    def _load(self):
        if self._data is None:
            path = HERE / f"{self.notebook}.npz"
            if not path.exists():
                raise MissingExpected(f"{path.name} is missing from course/checks/expected/: "
                                      f"run `python -m autograder generate`")
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            self._data = (json.loads(str(arrays.pop("__index__"))), arrays)
        return self._data

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def lookup(*args, **kwargs):
            index, arrays = self._load()
            k = key(name, args, kwargs)
            if k not in index:
                raise MissingExpected(
                    f"no expected value stored for {name}(...) in {self.notebook}.npz: the checks changed "
                    f"since it was generated; run `python -m autograder generate`")
            return decode(index[k], arrays)

        lookup.__name__ = name
        return lookup


def stored(notebook: str) -> _Stored:
    """The reference questions of ``notebook``'s visible checks, answered from the stored file."""
    return _Stored(notebook)


class using:
    """``with using(check_module, reference):`` the module's checks ask ``reference`` instead of the
    stored values (the grader's hidden tests, on inputs that no file stores)."""

    def __init__(self, check_module, reference):
        self.module, self.reference = check_module, reference

    def __enter__(self):
        self.saved = self.module.ref
        self.module.ref = self.reference
        return self.reference

    def __exit__(self, *exc):
        self.module.ref = self.saved
        return False


def save(path: Path, records: dict[str, Any], about: str) -> None:
    """Write recorded ``{key: value}`` to ``path`` (an .npz), with ``about`` saying how it was made."""
    arrays: list = []
    index = {k: encode(v, arrays) for k, v in sorted(records.items())}
    payload = {f"a{i}": a for i, a in enumerate(arrays)}
    payload["__index__"] = np.array(json.dumps(index, sort_keys=True))
    payload["__about__"] = np.array(about)
    path.parent.mkdir(parents=True, exist_ok=True)
    # An .npz written entry by entry with a fixed date: the same values give the same bytes.
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, array in payload.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buffer.getvalue())
