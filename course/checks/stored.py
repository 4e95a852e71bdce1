"""Expected values stored with the release, for the visible checks.

The visible checks compare an answer with values computed once, by the
instructor's reference implementations (Keras' own layers, ops and losses run
on the same weights), on the checks' own visible inputs, and stored in
``course/checks/expected/<notebook>.npz``. ``python -m autograder generate``
writes those files by running the solution notebook's answers through the
visible checks while every reference call is recorded; nothing here can
compute an answer, only look one up.

A check asks ``ref.<name>(*args, **options)`` as it would ask the reference
module. The exact part of the arguments (names, shapes, integers) selects the
recorded questions; among them the one with the same float bytes, or else the
one whose float arrays agree to one part in 1e11 (a last-bit difference of
another BLAS is far smaller, the checks' own nudges far larger), gives the
stored value. A question that was never recorded is a maintainer's
error: the message says to regenerate.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent / "expected"
# Two inputs are the same question when every float array agrees to this fraction of its size (sum of
# absolute values): far above a last-bit difference of another BLAS, far below the checks' own nudges
# (1e-5 on one entry, for a numeric derivative).
_SAME = 1e-11


def _walk(value: Any, floats: list) -> str:
    """The exact part of the arguments as text (structure, shapes, integers, strings); float arrays
    go to ``floats`` and only their shapes into the text."""
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, (int, np.integer)):
        return f"i{int(value)}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_walk(value[k], floats)}" for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple)):
        inner = ",".join(_walk(v, floats) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    a = np.asarray(value)
    if a.dtype.kind in "iub":
        return f"a{a.shape}{a.dtype.kind}{np.ascontiguousarray(a, dtype=np.int64).tobytes().hex()}"
    if a.dtype.kind in "fc":
        floats.append(np.asarray(a, np.float64))
        return f"f{a.shape}"
    return repr(a.tolist())


def _fingerprint(floats: list) -> list[list[float]]:
    """Per float array: three weighted sums and the sum of absolute values (what matching compares)."""
    out = []
    for a in floats:
        flat = np.where(np.isfinite(a), a, 0.0).ravel()
        n = np.arange(flat.size, dtype=np.float64)
        weights = np.stack([np.ones_like(n), np.sin(0.7 * n + 0.3), np.cos(1.3 * n + 0.1)])
        out.append([*(float(v) for v in weights @ flat), float(np.abs(flat).sum()),
                    float((~np.isfinite(a)).sum())])
    return out


def question(name: str, args: tuple, kwargs: dict) -> tuple[str, str, list]:
    """One question to the reference: (the key of its exact part, the digest of its exact float bytes,
    the fingerprint of its float arrays)."""
    floats: list = []
    text = name + _walk(tuple(args), floats) + _walk(dict(kwargs), floats)
    exact = hashlib.sha256(text.encode())
    for a in floats:
        exact.update(np.ascontiguousarray(a).tobytes())
    return (f"{name}:{hashlib.sha256(text.encode()).hexdigest()[:24]}", exact.hexdigest()[:24],
            _fingerprint(floats))


def _close(fp: list, other: list) -> bool:
    for mine, theirs in zip(fp, other):
        *sums, l1, bad = mine
        if bad != theirs[4] or abs(l1 - theirs[3]) > _SAME * (l1 + 1e-300):
            return False
        if any(abs(x - y) > _SAME * (l1 + 1e-300) for x, y in zip(sums, theirs[:3])):
            return False
    return len(fp) == len(other)


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
            k, exact, fp = question(name, args, kwargs)
            candidates = index.get(k, [])
            found = next((c for c in candidates if c["exact"] == exact), None) or \
                next((c for c in candidates if _close(fp, c["fp"])), None)
            if found is None:
                raise MissingExpected(
                    f"no expected value stored for {name}(...) in {self.notebook}.npz: the checks changed "
                    f"since it was generated; run `python -m autograder generate`")
            return decode(found["value"], arrays)

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


def save(path: Path, records: dict[str, list[dict]], about: str) -> None:
    """Write recorded questions (``{key: [{"exact", "fp", "value"}, ...]}``) to ``path`` (an .npz), with
    ``about`` saying how it was made."""
    arrays: list = []
    index = {k: [dict(exact=c["exact"], fp=c["fp"], value=encode(c["value"], arrays))
                 for c in sorted(cands, key=lambda c: c["exact"])]
             for k, cands in sorted(records.items())}
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
