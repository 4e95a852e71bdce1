"""Hidden tests as recordings: the kernel evaluates, a separate process judges.

Every hidden ``grade_<step>`` function is wrapped by :func:`judge_all` (one line
at the end of each unit's module). Without the environment variable
``AUTOGRADER_RECORD_DIR`` the wrapper calls the grade function unchanged, so
plain ``nbgrader autograde`` grades as before, inside the kernel.

With ``AUTOGRADER_RECORD_DIR`` set, the wrapper runs the step's visible check
(``visible.check_<step>``, with its default cases) and then the grade function,
with every student object wrapped in a :class:`StudentObject` that forwards to
it and writes down, in call order, what the check asked (an operation and a
fingerprint of its arguments) and what came back, as plain data:

* numpy arrays and numpy scalars as ``.npy`` bytes (``allow_pickle=False``),
  ints, floats, strings, bytes, lists, tuples and dicts of them; backend
  tensors as numpy arrays;
* Keras layers and models made only of Keras' own classes as their serialized
  configuration and weights;
* anything else (an object of a student's class, an iterator, a generator) as
  another :class:`StudentObject`, whose attribute reads, calls, iteration and
  indexing are recorded the same way;
* an exception as its type name and message;
* a symbolic Keras tensor returned for symbolic inputs as the graph between
  them (a Keras model, serialized), which the judge applies to its own inputs;
* after each call, the inputs the student changed in place (arrays, Keras
  weights) and the state of every ``np.random.Generator`` handed over so far;
* the student's own arrays and layers in a result, held weakly: when a later
  operation returns one of them again, or the student's code changes one
  (a buffer, a cache), the record says so and both sides show the check that
  earlier result returned again, or changed, as it would be without a record;
  a read-only result stays read-only; and the check's changes to a result it
  holds are made to the student's object before its code runs again;
* for a step declared with ``handed=`` in :func:`judge_all`, the calls the
  student's function makes on an object of the check's own that it is given
  (a stateful layer), with their arguments, which the judge makes again on its
  own object.

The check in the kernel receives the decoded data, exactly what the judge will
see, so both follow the same path. The record (one JSON file per grade
function) is untrusted: the judge (``autograder.judge``) replays the same
checks in its own process with :class:`StudentObject` stand-ins that answer
from the record, and refuses a record whose operations or argument
fingerprints differ from its own. No verdict of the kernel is written down.
"""
from __future__ import annotations

import base64
import builtins
import contextlib
import functools
import hashlib
import inspect
import io
import json
import os
import struct
import sys
import weakref
from typing import Any, Callable

import numpy as np

RECORD_ENV = "AUTOGRADER_RECORD_DIR"
FORMAT = "autograder-record/1"
MAX_RECORD_BYTES = 64 * 1024 * 1024       # one grade function's record
MAX_DEPTH = 40                            # nesting of lists, tuples, dicts
MAX_MESSAGE = 4000                        # characters kept of an exception's message
SEED = 20_251_202                         # seeds fixed before every recorded or replayed check


class RecordError(BaseException):
    """The record cannot be replayed: missing, malformed, or not what the judge's checks ask.

    A BaseException, so that no check's ``except Exception`` can swallow it.
    """


def record_name(module: str, grade: str) -> str:
    return f"{module.rsplit('.', 1)[-1]}.{grade}.json"


# --- plain data ---------------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise RecordError("malformed record: expected base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeError) as err:
        raise RecordError(f"malformed record: bad base64 ({err})") from None


def _npy(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return _b64(buffer.getvalue())


def _unnpy(text: Any) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(_unb64(text)), allow_pickle=False)
    except RecordError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse failure of untrusted bytes
        raise RecordError(f"malformed record: bad .npy data ({type(err).__name__}: {err})") from None
    if not isinstance(array, np.ndarray) or array.dtype.hasobject:
        raise RecordError("malformed record: .npy data that is not a plain array")
    return array


def _is_tensor(value: Any) -> bool:
    module = type(value).__module__ or ""
    return (module.split(".")[0] in ("tensorflow", "jax", "jaxlib", "torch")
            and hasattr(value, "shape") and hasattr(value, "dtype") and not _is_symbolic(value))


def _is_symbolic(value: Any) -> bool:
    return type(value).__name__ == "KerasTensor"


def _as_numpy(value: Any) -> np.ndarray:
    keras = sys.modules.get("keras")
    if keras is not None:
        return np.asarray(keras.ops.convert_to_numpy(value))
    return np.asarray(value.numpy())


def _keras_layer(value: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.layers.Layer)


# Keras classes that run code or read files when rebuilt: never rebuilt from a record.
UNSAFE_KERAS_CLASSES = frozenset({"Lambda", "TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper",
                                  "__lambda__"})


def _only_keras_classes(config: Any) -> bool:
    """Every class named in a serialized Keras configuration is one of Keras' own, and none runs code."""
    if isinstance(config, dict):
        module = config.get("module")
        if module is None and "module" in config and "class_name" in config:
            return False   # Keras writes the module __main__ (a class defined in the notebook) as None
        if module is not None and not (isinstance(module, str) and (module == "keras" or module.startswith("keras."))):
            return False
        if config.get("class_name") in UNSAFE_KERAS_CLASSES:
            return False
        if config.get("class_name") == "function" and not (   # a function by name: only an activation
                isinstance(module, str) and module.startswith(("keras.activations", "keras.src.activations"))):
            return False
        if "registered_name" in config and isinstance(config.get("registered_name"), str) \
                and ">" in config["registered_name"]:
            return False
        return all(_only_keras_classes(v) for v in config.values())
    if isinstance(config, list):
        return all(_only_keras_classes(v) for v in config)
    return True


def _keras_config(value: Any) -> str | None:
    """The layer's serialized configuration as JSON, or None when it holds classes that are not Keras' own."""
    keras = sys.modules["keras"]
    try:
        config = keras.saving.serialize_keras_object(value)
        text = json.dumps(config, allow_nan=False, sort_keys=True)
    except Exception:  # noqa: BLE001 - not serializable: recorded as an object instead
        return None
    return text if _only_keras_classes(json.loads(text)) else None


# --- fingerprints of the judge's inputs ---------------------------------------------------------------

def fingerprint(value: Any) -> str:
    """A hash of a check's inputs that is the same in the kernel and in the judge for equal inputs."""
    digest = hashlib.sha256()
    _feed(digest, value, 0)
    return digest.hexdigest()


def feed_plain(h, value: Any, depth: int, feed: Callable) -> bool:
    """Hash plain data into ``h`` (numpy arrays and scalars, numbers, strings, bytes, None, and lists, tuples
    and dicts, whose items go to ``feed(h, item, depth + 1)``). False, with nothing hashed, for anything else.
    Shared by the record's fingerprints and the judge's memory of reference results (autograder/memo.py)."""
    if value is None or isinstance(value, bool):
        h.update(b"B" + repr(value).encode() + b";")
    elif isinstance(value, (np.generic, np.ndarray)) and not np.asarray(value).dtype.hasobject:
        array = np.asarray(value)
        h.update(b"A" + array.dtype.str.encode() + repr(array.shape).encode() + b":")
        h.update(array.tobytes(order="C"))
    elif isinstance(value, int):
        h.update(b"I" + str(value).encode() + b";")
    elif isinstance(value, float):
        h.update(b"F" + struct.pack("<d", value))
    elif isinstance(value, complex):
        h.update(b"C" + struct.pack("<dd", value.real, value.imag))
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        h.update(b"S%d:" % len(data) + data)
    elif isinstance(value, (bytes, bytearray)):
        h.update(b"Y%d:" % len(value) + bytes(value))
    elif isinstance(value, (list, tuple)):
        h.update(b"L[" if isinstance(value, list) else b"T[")
        for item in value:
            feed(h, item, depth + 1)
        h.update(b"]")
    elif isinstance(value, dict):
        h.update(b"D{")
        for key, item in value.items():
            feed(h, key, depth + 1)
            feed(h, item, depth + 1)
        h.update(b"}")
    else:
        return False
    return True


def _feed(h, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        h.update(b"<deep>")
        return
    if isinstance(value, StudentObject):
        h.update(b"P%d;" % object.__getattribute__(value, "_pid"))
    elif feed_plain(h, value, depth, _feed):
        pass
    elif isinstance(value, (np.generic, np.ndarray)):     # an array of objects
        h.update(b"O[")
        for item in np.asarray(value).ravel().tolist():
            _feed(h, item, depth + 1)
        h.update(b"]")
    elif isinstance(value, np.random.Generator):
        h.update(b"R" + json.dumps(value.bit_generator.state, sort_keys=True, default=str).encode())
    elif _keras_layer(value):
        h.update(b"K" + type(value).__name__.encode() + b"[")
        for weight in value.get_weights():
            _feed(h, np.asarray(weight), depth + 1)
        h.update(b"]")
    elif _is_tensor(value):
        _feed(h, _as_numpy(value), depth + 1)
    else:  # the check's own helpers (functions, toy models): their kind is what both sides share
        h.update(b"O" + f"{type(value).__module__}.{type(value).__qualname__}".encode() + b";")


# --- the proxy: one class for both sides ---------------------------------------------------------------

class StudentObject:
    """Stands for an object of the student's: in the kernel it forwards and records, in the judge it replays."""

    __slots__ = ("_session", "_pid")

    def __init__(self, session: "_Session", pid: int):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_pid", pid)

    def _op(self, kind: str, name: str | None, args: tuple = (), kwargs: dict | None = None):
        session = object.__getattribute__(self, "_session")
        return session.op(object.__getattribute__(self, "_pid"), kind, name, args, kwargs or {})

    def __call__(self, *args, **kwargs):
        return self._op("call", None, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._op("getattr", name)

    def __setattr__(self, name, value):
        raise AttributeError(f"the grader does not set attributes of a student's object ({name})")

    def __iter__(self):
        return self._op("iter", None)

    def __next__(self):
        return self._op("next", None)

    def __len__(self):
        return self._op("len", None)

    def __bool__(self):
        return self._op("bool", None)

    def __getitem__(self, key):
        return self._op("getitem", None, (key,))

    def __repr__(self):
        return f"<student object #{object.__getattribute__(self, '_pid')}>"


def _path_items(value: Any, path: tuple = (), depth: int = 0):
    """(path, leaf) for every array, Keras layer and Generator inside nested lists, tuples and dicts."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        yield path, value
    elif isinstance(value, np.random.Generator) or _keras_layer(value):
        yield path, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _path_items(item, path + (i,), depth + 1)
    elif isinstance(value, dict):
        for i, item in enumerate(value.values()):
            yield from _path_items(item, path + (i,), depth + 1)


def _output_slots(value: Any, path: tuple = (), depth: int = 0):
    """(path, leaf) for every array and Keras layer of a decoded result, in order."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, np.ndarray) and not value.dtype.hasobject or _keras_layer(value):
        yield path, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _output_slots(item, path + (i,), depth + 1)
    elif isinstance(value, dict):
        for i, item in enumerate(value.values()):
            yield from _output_slots(item, path + (i,), depth + 1)


def _replace_paths(value: Any, replace: dict, path: tuple = ()) -> Any:
    if path in replace:
        return replace[path]
    if isinstance(value, list):
        return [_replace_paths(v, replace, path + (i,)) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_replace_paths(v, replace, path + (i,)) for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _replace_paths(v, replace, path + (i,)) for i, (k, v) in enumerate(value.items())}
    return value


def _at(value: Any, path: tuple) -> Any:
    """What sits at ``path`` (as :func:`_output_slots` numbers it) in the student's own result, or None."""
    for i in path:
        if isinstance(value, (list, tuple)) and i < len(value):
            value = value[i]
        elif isinstance(value, dict) and i < len(value):
            value = list(value.values())[i]
        else:
            return None
    return value


def _track(obj: Any) -> tuple:
    """A weak hold on a student's array or layer. A view is held through the array that owns its memory
    (the student keeps the buffer, not the view it returned) and made again when looked at."""
    if isinstance(obj, np.ndarray) and obj.base is not None:
        root = obj
        while isinstance(root.base, np.ndarray):
            root = root.base
        if root.base is None and root.flags.c_contiguous:
            offset = obj.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            return ("view", weakref.ref(root), obj.dtype, obj.shape, offset, obj.strides)
    return ("ref", weakref.ref(obj))


def _resolve(track: tuple) -> Any:
    obj = track[1]()
    if obj is None or track[0] == "ref":
        return obj
    _, _, dtype, shape, offset, strides = track
    try:
        return np.ndarray(shape, dtype, buffer=obj, offset=offset, strides=strides)
    except (TypeError, ValueError):
        return None


class _Session:
    """What both sides share: proxies numbered in order, and the Generators seen so far."""

    def __init__(self):
        self.events: list[dict] = []
        self.rngs: list[np.random.Generator] = []
        # weak references to the arrays and layers of every result the check got, numbered in order (the
        # same numbers on both sides): a student's object returned again, or changed later, is shown to the
        # check as that earlier result returned again, or changed, as it would be without the record
        self.outputs: list = []

    def _assign(self, target: Any, value: Any, what: str) -> None:
        """Bring one of the check's arrays or layers to the value the student's code left it with."""
        if isinstance(target, np.ndarray) and isinstance(value, np.ndarray):
            if value.shape != target.shape:
                raise RecordError(f"malformed record: {what} changed in place to another shape")
            np.copyto(target, value, casting="unsafe")
        elif _keras_layer(target) and isinstance(value, list):
            try:
                target.set_weights(value)
            except Exception as err:  # noqa: BLE001
                raise RecordError(f"malformed record: weights that do not fit ({err})") from None
        else:
            raise RecordError(f"malformed record: {what} that the judge does not have")

    def _apply_kept(self, entries: Any) -> None:
        """Earlier results that the student's code changed during this operation (a buffer it returned)."""
        if not isinstance(entries, list):
            raise RecordError("malformed record: bad list of changed results")
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                    and not isinstance(entry[0], bool) and 0 <= entry[0] < len(self.outputs)):
                raise RecordError("malformed record: bad changed result")
            value = self.decode(entry[1])
            ref = self.outputs[entry[0]]
            target = ref() if ref is not None else None
            if target is not None:
                self._assign(target, value, "a result")

    def _link_outputs(self, result: Any, same: Any, readonly: Any = ()) -> Any:
        """Number the arrays and layers of a result the check is about to get. Those the record says are the
        student's object of an earlier result again become that earlier result (brought up to date), as the
        check would have had them without the record."""
        slots = list(_output_slots(result))
        if not isinstance(same, list):
            raise RecordError("malformed record: bad list of results returned again")
        replace = {}
        for entry in same:
            if not (isinstance(entry, list) and len(entry) == 2 and all(
                    isinstance(x, int) and not isinstance(x, bool) for x in entry)
                    and 0 <= entry[0] < len(slots) and 0 <= entry[1] < len(self.outputs)):
                raise RecordError("malformed record: bad result returned again")
            ref = self.outputs[entry[1]]
            earlier = ref() if ref is not None else None
            path, leaf = slots[entry[0]]
            if earlier is not None and type(earlier) is type(leaf) and path not in replace:
                self._assign(earlier, leaf.get_weights() if _keras_layer(leaf) else leaf, "a result")
                replace[path] = earlier
        if not isinstance(readonly, (list, tuple)) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(slots) for i in readonly):
            raise RecordError("malformed record: bad list of read-only results")
        for i in readonly:   # as the student's array was: a caller that writes into it fails alike
            path, leaf = slots[i]
            if isinstance(leaf, np.ndarray) and path not in replace:
                leaf.setflags(write=False)
        for path, leaf in slots:
            try:
                self.outputs.append(weakref.ref(replace.get(path, leaf)))
            except TypeError:
                self.outputs.append(None)
        return _replace_paths(result, replace) if replace else result

    def _note_rngs(self, args) -> None:
        for _, leaf in _path_items(args):
            if isinstance(leaf, np.random.Generator) and not any(leaf is r for r in self.rngs):
                self.rngs.append(leaf)

    # decoding (both sides): plain data back into values; Keras objects rebuilt without running any code
    def decode(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise RecordError("malformed record: nested too deeply")
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise RecordError("malformed record: expected a tagged value")
        tag, rest = node[0], node[1:]
        if tag == "n" and not rest:
            return None
        if tag == "b" and len(rest) == 1 and isinstance(rest[0], bool):
            return rest[0]
        if tag == "i" and len(rest) == 1 and isinstance(rest[0], str) and len(rest[0]) < 5000:
            try:
                return int(rest[0])
            except ValueError:
                raise RecordError("malformed record: bad integer") from None
        if tag == "f" and len(rest) == 1 and isinstance(rest[0], str):
            try:
                return float.fromhex(rest[0])
            except ValueError:
                raise RecordError("malformed record: bad float") from None
        if tag == "c" and len(rest) == 2 and all(isinstance(x, str) for x in rest):
            try:
                return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
            except ValueError:
                raise RecordError("malformed record: bad complex") from None
        if tag == "s" and len(rest) == 1 and isinstance(rest[0], str):
            return rest[0]
        if tag == "y" and len(rest) == 1:
            return _unb64(rest[0])
        if tag == "a" and len(rest) == 1:
            return _unnpy(rest[0])
        if tag == "g" and len(rest) == 1:
            array = _unnpy(rest[0])
            if array.shape != ():
                raise RecordError("malformed record: a numpy scalar that is not 0-d")
            return array[()]
        if tag in ("l", "t") and len(rest) == 1 and isinstance(rest[0], list):
            items = [self.decode(item, depth + 1) for item in rest[0]]
            return items if tag == "l" else tuple(items)
        if tag == "d" and len(rest) == 1 and isinstance(rest[0], list):
            out = {}
            for pair in rest[0]:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise RecordError("malformed record: bad dict entry")
                key = self.decode(pair[0], depth + 1)
                try:
                    out[key] = self.decode(pair[1], depth + 1)
                except TypeError:
                    raise RecordError("malformed record: a dict key that cannot be hashed") from None
            return out
        if tag == "k" and len(rest) == 2 and isinstance(rest[0], str) and isinstance(rest[1], list):
            return _rebuild_keras(rest[0], [_unnpy(w) for w in rest[1]])
        if tag == "p" and len(rest) == 1 and isinstance(rest[0], int) and not isinstance(rest[0], bool):
            return self.proxy(rest[0])
        raise RecordError(f"malformed record: unknown value {str(node)[:80]}")

    def proxy(self, pid: int) -> StudentObject:
        raise NotImplementedError

    def op(self, pid, kind, name, args, kwargs):
        raise NotImplementedError


def _symbolic_leaves(args, kwargs):
    """(path, tensor) for every symbolic Keras tensor among a call's arguments (top level and in lists)."""
    found = []
    for key, value in [*enumerate(args), *(("kw:" + k, v) for k, v in kwargs.items())]:
        items = list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)]
        for index, item in items:
            if _is_symbolic(item):
                found.append(([key] if index is None else [key, index], item))
    return found


def _symbolic_graph(args, kwargs, out) -> list | None:
    """A function's symbolic Keras result as data: the graph from its symbolic inputs to it, as a Keras model."""
    outputs = list(out) if isinstance(out, (list, tuple)) else [out]
    if not outputs or not all(_is_symbolic(o) for o in outputs):
        return None
    inputs = _symbolic_leaves(args, kwargs)
    if not inputs:
        return None
    keras = sys.modules["keras"]
    try:
        model = keras.Model([t for _, t in inputs], outputs)
    except Exception:  # noqa: BLE001 - not a graph of these inputs: recorded as an object instead
        return None
    config = _keras_config(model)
    if config is None:
        return None
    shape = "list" if isinstance(out, list) else "tuple" if isinstance(out, tuple) else "one"
    return ["graph", config, [_npy(np.asarray(w)) for w in model.get_weights()], [p for p, _ in inputs], shape]


def _apply_graph(node: list, args, kwargs):
    """The recorded graph, rebuilt in safe mode and applied to this side's own symbolic inputs."""
    if not (len(node) == 5 and isinstance(node[1], str) and isinstance(node[2], list) and isinstance(node[3], list)
            and node[4] in ("list", "tuple", "one")):
        raise RecordError("malformed record: bad symbolic result")
    model = _rebuild_keras(node[1], [_unnpy(w) for w in node[2]])
    leaves = {json.dumps(p): t for p, t in _symbolic_leaves(args, kwargs)}
    try:
        inputs = [leaves[json.dumps(p)] for p in node[3]]
    except (KeyError, TypeError):
        raise RecordError("malformed record: a symbolic result of inputs the judge did not give") from None
    try:
        result = model(inputs)
    except Exception as err:  # noqa: BLE001 - the graph is untrusted input
        raise RecordError(f"the recorded graph does not apply to the judge's inputs ({type(err).__name__})") from None
    result = list(result) if isinstance(result, (list, tuple)) else [result]
    if node[4] == "one":
        if len(result) != 1:
            raise RecordError("malformed record: a symbolic result of the wrong structure")
        return result[0]
    return result if node[4] == "list" else tuple(result)


def _rebuild_keras(config_text: str, weights: list[np.ndarray]):
    """A Keras layer or model from its configuration, in safe mode (no lambdas, only Keras' own classes)."""
    try:
        config = json.loads(config_text)
    except ValueError:
        raise RecordError("malformed record: a Keras configuration that is not JSON") from None
    if not _only_keras_classes(config):
        raise RecordError("malformed record: a Keras configuration naming classes that are not Keras' own")
    import keras

    try:
        with keras.saving.custom_object_scope({}):
            layer = keras.saving.deserialize_keras_object(config, safe_mode=True)
        if weights:
            layer.set_weights(weights)
    except Exception as err:  # noqa: BLE001 - the configuration is untrusted input
        raise RecordError(f"a Keras object in the record could not be rebuilt "
                          f"({type(err).__name__}: {str(err)[:300]})") from None
    if not isinstance(layer, keras.layers.Layer):
        raise RecordError("malformed record: the Keras configuration is not a layer or model")
    return layer


# --- objects the check hands to the student's function ---------------------------------------------------

def _handable(value: Any) -> bool:
    """An object of the check's own (not plain data) that the student's function may call: a layer, a toy model."""
    return callable(value) and not isinstance(value, (type, StudentObject, np.ndarray, np.random.Generator))


class HandedObject:
    """One of the check's objects, as the student's function receives it in the kernel.

    Calls of the object itself and of the methods the step allows (``handed=`` in :func:`judge_all`) are
    forwarded and written down with their arguments (the student's data), so that the judge makes the same
    calls on its own object; other attributes are read through unchanged.
    """

    __slots__ = ("_target", "_log", "_where", "_recorder")

    def __init__(self, target, log, where, recorder):
        for name, value in zip(self.__slots__, (target, log, where, recorder)):
            object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        recorder = object.__getattribute__(self, "_recorder")
        where = object.__getattribute__(self, "_where")
        profile = sys.getprofile()   # written down unwatched: the rule's watch sees the student's code only
        sys.setprofile(None)
        try:
            object.__getattribute__(self, "_log").append(
                [where, [recorder.encode(a) for a in args], [[k, recorder.encode(v)] for k, v in kwargs.items()]])
        finally:
            sys.setprofile(profile)
        return object.__getattribute__(self, "_target")(*args, **kwargs)

    def __getattr__(self, name):
        value = getattr(object.__getattribute__(self, "_target"), name)
        where = object.__getattribute__(self, "_where")
        recorder = object.__getattribute__(self, "_recorder")
        if len(where) == 1 and callable(value) and not isinstance(value, type):
            if name not in recorder.handed:
                raise AttributeError(f"the grader's object lets the function call it and "
                                     f"{', '.join(m for m in recorder.handed if m != '__call__')} only, not .{name}()")
            return HandedObject(value, object.__getattribute__(self, "_log"), where + [name], recorder)
        return value

    def __setattr__(self, name, value):
        raise AttributeError(f"the grader's object cannot be changed ({name})")


# --- the kernel side ----------------------------------------------------------------------------------

class Recorder(_Session):
    def __init__(self, handed: tuple[str, ...] = ()):
        super().__init__()
        self.objects: list[Any] = []
        self.rng_states: list[Any] = []
        self.handed = handed
        self.kept: dict[int, list] = {}   # result number -> [hold on the student's object, its last state]
        self.given: dict[int, Any] = {}   # weak references to the arrays and layers the check passed in
        self._given_alive = 0

    def proxy(self, pid: int) -> StudentObject:
        if not 0 <= pid < len(self.objects):
            raise RecordError(f"no object #{pid}")
        return StudentObject(self, pid)

    def encode(self, value: Any, depth: int = 0) -> list:
        if depth > MAX_DEPTH:
            return self._new_proxy(value)
        if isinstance(value, StudentObject):
            return ["p", object.__getattribute__(value, "_pid")]
        if value is None:
            return ["n"]
        if type(value) is bool:
            return ["b", value]
        if type(value) is int:
            return ["i", str(value)]
        if type(value) is float:
            return ["f", value.hex()]
        if type(value) is complex:
            return ["c", value.real.hex(), value.imag.hex()]
        if type(value) is str:
            return ["s", value]
        if type(value) is bytes:
            return ["y", _b64(value)]
        if type(value) is np.ndarray and not value.dtype.hasobject:
            return ["a", _npy(value)]
        if isinstance(value, np.generic) and not isinstance(value, np.object_) and type(value).__module__ == "numpy":
            return ["g", _npy(np.asarray(value))]
        if type(value) is list:
            return ["l", [self.encode(v, depth + 1) for v in value]]
        if type(value) is tuple:
            return ["t", [self.encode(v, depth + 1) for v in value]]
        if type(value) is dict:
            return ["d", [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]]
        if _is_tensor(value):
            try:
                array = _as_numpy(value)
            except Exception:  # noqa: BLE001
                return self._new_proxy(value)
            if not array.dtype.hasobject:
                return ["a", _npy(array)]
        if _keras_layer(value):
            config = _keras_config(value)
            if config is not None:
                return ["k", config, [_npy(np.asarray(w)) for w in value.get_weights()]]
        return self._new_proxy(value)

    def _new_proxy(self, value: Any) -> list:
        self.objects.append(value)
        return ["p", len(self.objects) - 1]

    def op(self, pid, kind, name, args, kwargs):
        # The rule's watch (course.checks) sees the student's code only: the recording is done unwatched.
        profile = sys.getprofile()
        sys.setprofile(None)
        try:
            return self._record_op(pid, kind, name, args, kwargs, profile)
        finally:
            sys.setprofile(profile)

    def _record_op(self, pid, kind, name, args, kwargs, profile):
        target = self.objects[pid]
        watch = _watch_of(profile)
        seen = (watch.violation, set(watch.required_seen)) if watch is not None else None
        event: dict[str, Any] = {"op": kind, "on": pid, "args": fingerprint((args, kwargs))}
        if name is not None:
            event["name"] = name
        self._note_rngs((args, kwargs))
        leaves = list(_path_items((args, kwargs)))
        before = [np.array(leaf, copy=True) if isinstance(leaf, np.ndarray)
                  else fingerprint(leaf) if _keras_layer(leaf) else None for _, leaf in leaves]
        self._note_given(leaves)
        self._push_check_changes()
        self.events.append(event)
        try:
            if kind == "call":
                if self.handed:
                    args, kwargs = self._hand(event, args, kwargs)
                sys.setprofile(profile)
                try:
                    out = target(*args, **kwargs)
                finally:
                    sys.setprofile(None)
                    _note_watch(event, watch, seen)
            elif kind == "getattr":
                out = getattr(target, name)
            elif kind == "iter":
                out = iter(target)
            elif kind == "next":
                out = next(target)
            elif kind == "len":
                out = len(target)
            elif kind == "bool":
                out = bool(target)
            elif kind == "getitem":
                out = target[args[0]]
            else:
                raise RecordError(f"unknown operation {kind}")
        except Exception as err:
            event["raise"] = [type(err).__name__, str(err)[:MAX_MESSAGE]]
            self._after(event, leaves, before)
            raise
        symbolic = _symbolic_graph(args, kwargs, out) if kind == "call" else None
        event["out"] = symbolic if symbolic is not None else self.encode(out)
        self._after(event, leaves, before)
        if symbolic is not None:
            return _apply_graph(symbolic, args, kwargs)
        # the check goes on with what the judge will see
        return self._take_result(event, out, self.decode(event["out"]))

    def _note_given(self, leaves) -> None:
        for _, leaf in leaves:
            if isinstance(leaf, np.ndarray) or _keras_layer(leaf):
                ref = self.given.get(id(leaf))
                if ref is None or ref() is not leaf:
                    self.given[id(leaf)] = weakref.ref(leaf)
        if len(self.given) > 2 * self._given_alive + 64:
            self.given = {k: ref for k, ref in self.given.items() if ref() is not None}
            self._given_alive = len(self.given)

    def _is_given(self, obj) -> bool:
        """Whether the student's object is (a view of) one of the check's own, which the check holds itself."""
        ref = self.given.get(id(obj))
        if ref is not None and ref() is obj:
            return True
        if not isinstance(obj, np.ndarray):
            return False
        for ref in self.given.values():
            mine = ref()
            if isinstance(mine, np.ndarray) and np.may_share_memory(mine, obj):
                return True
        return False

    def _push_check_changes(self) -> None:
        """The check's changes to a result it holds, made to the student's object too before the student's
        code runs again: without the record they would be one object."""
        for k, entry in self.kept.items():
            ref = self.outputs[k] if k < len(self.outputs) else None
            mine = ref() if ref is not None else None
            student = _resolve(entry[0]) if mine is not None else None
            if student is None or type(student) is not type(mine) and not _keras_layer(student):
                continue
            state = mine if isinstance(mine, np.ndarray) else _state_of(mine)
            if _same_state(entry[1], state) or not _same_structure(entry[1], state):
                continue
            try:
                if isinstance(student, np.ndarray):
                    if student.shape != mine.shape or not student.flags.writeable:
                        continue
                    np.copyto(student, mine, casting="unsafe")
                else:
                    student.set_weights(mine.get_weights())
            except Exception:  # noqa: BLE001 - the student's object would not take it: left as it is
                continue
            entry[1] = _state_of(student)

    def _take_result(self, event, out, result):
        """The decoded result, its arrays and layers numbered; the student's own ones held (weakly) to see
        whether a later operation returns them again or changes them."""
        same, readonly = [], []
        base = len(self.outputs)
        for i, (path, _) in enumerate(_output_slots(result)):
            student = _at(out, path)
            if not ((type(student) is np.ndarray and not student.dtype.hasobject) or _keras_layer(student)):
                continue
            if isinstance(student, np.ndarray) and not student.flags.writeable:
                readonly.append(i)
            earlier = next((k for k, entry in self.kept.items()
                            if entry[0][0] == "ref" and entry[0][1]() is student), None)
            if earlier is not None:
                same.append([i, earlier])
                self.kept[base + i] = self.kept.pop(earlier)
                continue
            if self._is_given(student):
                continue
            if isinstance(student, np.ndarray) and student.nbytes > MAX_KEPT_BYTES // 4:
                continue   # a whole corpus, say: looked at after every operation, it would cost too much
            try:
                hold = _track(student)
            except TypeError:
                continue
            self.kept[base + i] = [hold, _state_of(student)]
        for k in list(self.kept)[:-MAX_KEPT]:
            del self.kept[k]
        total = 0
        for k in reversed(list(self.kept)):   # the newest kept within the byte budget
            state = self.kept[k][1]
            total += state.nbytes if isinstance(state, np.ndarray) else 0
            if total > MAX_KEPT_BYTES:
                del self.kept[k]
        if same:
            event["same"] = same
        if readonly:
            event["readonly"] = readonly
        return self._link_outputs(result, same, readonly)

    def _note_kept(self, event) -> None:
        """The student's earlier results that its code changed since they were last looked at."""
        changed = []
        for k, entry in list(self.kept.items()):
            current = _resolve(entry[0])
            if current is None:
                del self.kept[k]
                continue
            state = current if isinstance(current, np.ndarray) else _state_of(current)
            if _same_state(entry[1], state):
                continue
            state = _state_of(current)
            ref = self.outputs[k] if k < len(self.outputs) else None
            mine = ref() if ref is not None else None
            if not _same_structure(entry[1], state) or mine is None:
                del self.kept[k]   # reshaped or built since (not a buffer overwritten), or no longer the check's
                continue
            if isinstance(current, np.ndarray):
                node = ["a", _npy(current)]
            else:
                node = ["l", [["a", _npy(np.asarray(w))] for w in current.get_weights()]]
            try:
                self._apply_kept([[k, node]])
            except RecordError:    # the check's copy cannot take it: nothing the judge would be told
                del self.kept[k]
                continue
            entry[1] = state
            changed.append([k, node])
        if changed:
            event["kept"] = changed

    def _hand(self, event, args, kwargs):
        """The check's own objects among the arguments, wrapped so that the student's calls on them are recorded."""
        log = event.setdefault("handed", [])

        def hand(value, key):
            return HandedObject(value, log, [key], self) if _handable(value) else value

        return (tuple(hand(a, i) for i, a in enumerate(args)),
                {k: hand(v, "kw:" + k) for k, v in kwargs.items()})

    def _after(self, event, leaves, before) -> None:
        changed = []
        for (path, leaf), old in zip(leaves, before):
            if isinstance(leaf, np.ndarray):
                if not (leaf.shape == old.shape and np.array_equal(leaf, old, equal_nan=True)):
                    changed.append([list(path), ["a", _npy(leaf)]])
            elif _keras_layer(leaf) and fingerprint(leaf) != old:
                changed.append([list(path), ["l", [["a", _npy(np.asarray(w))] for w in leaf.get_weights()]]])
        if changed:
            event["changed"] = changed
        self._note_kept(event)
        states = []
        while len(self.rng_states) < len(self.rngs):
            self.rng_states.append(None)
        for i, rng in enumerate(self.rngs):
            state = rng.bit_generator.state
            if state != self.rng_states[i]:
                self.rng_states[i] = state
                states.append([i, json.dumps(state, sort_keys=True, default=_json_int)])
        if states:
            event["rng"] = states


MAX_KEPT = 256                    # student results held at once to see whether they are returned again or changed
MAX_KEPT_BYTES = 16 * 1024 * 1024  # their copies, in all


def _state_of(obj: Any) -> Any:
    """An array's copy; a layer's weight shapes and a hash of its weights."""
    if isinstance(obj, np.ndarray):
        return np.array(obj, copy=True)
    return (tuple(tuple(np.shape(w)) for w in obj.get_weights()), fingerprint(obj))


def _same_state(a: Any, b: Any) -> bool:
    """Two states, or a state and a live array (compared without a copy)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    return a == b if isinstance(a, tuple) and isinstance(b, tuple) else False


def _same_structure(a: Any, b: Any) -> bool:
    """The same shapes (an array's, or a layer's weights'): a change of values, not a layer built since."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape
    return isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0]


def _json_int(value):
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(f"cannot record {type(value).__name__}")


def record_call(grade: Callable, visible_check: Callable | None, module: str, args: tuple, record_dir: str,
                handed: tuple[str, ...] = ()):
    """Run the visible check and the grade function on recorded stand-ins; write the record, whatever happens."""
    recorder = Recorder(handed)
    document: dict[str, Any] = {"format": FORMAT, "module": module, "grade": grade.__name__}
    try:
        encoded = [recorder.encode(a) for a in args]
        document["args"] = encoded
        stand_ins = [recorder.decode(e) for e in encoded]
        _fix_seeds()
        if visible_check is not None:
            with contextlib.redirect_stdout(io.StringIO()):
                visible_check(*stand_ins)
        _fix_seeds()
        return grade(*stand_ins)
    finally:
        document["events"] = recorder.events
        os.makedirs(record_dir, exist_ok=True)
        path = os.path.join(record_dir, record_name(module, grade.__name__))
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(document, f, allow_nan=False)
        os.replace(path + ".tmp", path)


def _fix_seeds() -> None:
    """Checks that draw randomness without a seed of their own draw the same numbers in kernel and judge."""
    np.random.seed(SEED)
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.utils.set_random_seed(SEED)


# --- the judge side -----------------------------------------------------------------------------------

def _exception_type(name: Any) -> type:
    if not isinstance(name, str) or not name.isidentifier():
        raise RecordError("malformed record: bad exception name")
    found = getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, Exception) and found.__module__ == "builtins":
        return found
    return type(name, (Exception,), {"__module__": "student"})


class Replayer(_Session):
    def __init__(self, document: dict, handed: tuple[str, ...] = ()):
        super().__init__()
        self.handed = handed
        events = document.get("events")
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise RecordError("malformed record: no list of events")
        self.pending = events
        self.cursor = 0
        self.proxies = 0

    def proxy(self, pid: int) -> StudentObject:
        if pid == self.proxies:
            self.proxies += 1
        elif not 0 <= pid < self.proxies:
            raise RecordError(f"malformed record: object #{pid} appears out of order")
        return StudentObject(self, pid)

    def op(self, pid, kind, name, args, kwargs):
        profile = sys.getprofile()
        sys.setprofile(None)
        try:
            return self._replay_op(pid, kind, name, args, kwargs, profile)
        finally:
            sys.setprofile(profile)

    def _replay_op(self, pid, kind, name, args, kwargs, profile):
        where = f"operation {self.cursor + 1} ({kind}{' ' + name if name else ''} on student object #{pid})"
        if self.cursor >= len(self.pending):
            raise RecordError(f"the record ends before {where}: the kernel's run did not reach it")
        event = self.pending[self.cursor]
        self.cursor += 1
        if event.get("op") != kind or event.get("on") != pid or event.get("name") != name:
            raise RecordError(f"the record does not follow the checks at {where}: it holds "
                              f"{event.get('op')!r} {event.get('name') or ''} on #{event.get('on')}")
        self._note_rngs((args, kwargs))
        if event.get("args") != fingerprint((args, kwargs)):
            raise RecordError(f"the record's inputs differ from the judge's at {where}")
        self._replay_handed(event, args, kwargs)
        _apply_watch(event, _watch_of(profile))
        self._apply_changes(event, args, kwargs)
        self._apply_kept(event.get("kept", []))
        self._apply_rngs(event)
        if "raise" in event:
            raised = event["raise"]
            if not (isinstance(raised, list) and len(raised) == 2 and isinstance(raised[1], str)):
                raise RecordError("malformed record: bad exception")
            raise _exception_type(raised[0])(raised[1])
        if "out" not in event:
            raise RecordError(f"malformed record: no result at {where}")
        if isinstance(event["out"], list) and event["out"][:1] == ["graph"]:
            return _apply_graph(event["out"], args, kwargs)
        return self._link_outputs(self.decode(event["out"]), event.get("same", []), event.get("readonly", []))

    def _replay_handed(self, event, args, kwargs) -> None:
        """The student's calls on the check's own objects, made again on the judge's objects, in order."""
        handed = event.get("handed", [])
        if not isinstance(handed, list) or (handed and not self.handed):
            raise RecordError("malformed record: calls on the grader's objects where the step allows none")
        for entry in handed:
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], list)
                    and 1 <= len(entry[0]) <= 2 and isinstance(entry[1], list) and isinstance(entry[2], list)):
                raise RecordError("malformed record: bad call on the grader's object")
            key, *method = entry[0]
            if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(args):
                target = args[key]
            elif isinstance(key, str) and key.startswith("kw:") and key[3:] in kwargs:
                target = kwargs[key[3:]]
            else:
                raise RecordError("malformed record: a call on an object the judge did not hand over")
            if not _handable(target) or (method and method[0] not in self.handed) \
                    or (not method and "__call__" not in self.handed):
                raise RecordError(f"malformed record: a call the step does not allow ({entry[0]})")
            call_args = [self.decode(a) for a in entry[1]]
            call_kwargs = {}
            for pair in entry[2]:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                    raise RecordError("malformed record: bad keyword argument")
                call_kwargs[pair[0]] = self.decode(pair[1])
            function = getattr(target, method[0]) if method else target
            try:
                function(*call_args, **call_kwargs)
            except Exception:  # noqa: BLE001 - it raised in the kernel too, and the student's code saw it
                pass

    def _apply_changes(self, event, args, kwargs) -> None:
        changed = event.get("changed", [])
        if not isinstance(changed, list):
            raise RecordError("malformed record: bad list of changed inputs")
        leaves = {tuple(path): leaf for path, leaf in _path_items((args, kwargs))}
        for entry in changed:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list)):
                raise RecordError("malformed record: bad changed input")
            self._assign(leaves.get(tuple(entry[0])), self.decode(entry[1]), "an input")

    def _apply_rngs(self, event) -> None:
        states = event.get("rng", [])
        if not isinstance(states, list):
            raise RecordError("malformed record: bad generator states")
        for entry in states:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                    and 0 <= entry[0] < len(self.rngs) and isinstance(entry[1], str)):
                raise RecordError("malformed record: bad generator state")
            rng = self.rngs[entry[0]]
            try:
                state = json.loads(entry[1])
                if not isinstance(state, dict) or state.get("bit_generator") != type(rng.bit_generator).__name__:
                    raise ValueError("another bit generator")
                rng.bit_generator.state = state
            except (ValueError, TypeError, KeyError) as err:
                raise RecordError(f"malformed record: a generator state that does not fit ({err})") from None

    def finish(self) -> None:
        if self.cursor != len(self.pending):
            raise RecordError(f"the record holds {len(self.pending) - self.cursor} operation(s) more than the "
                              f"checks ask for")


def load_record(path: str) -> dict:
    """A record file, parsed strictly: size-limited JSON, no NaN, the expected format."""
    try:
        size = os.path.getsize(path)
    except OSError:
        raise RecordError("no record: the test cell did not reach the hidden test") from None
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"the record is too large ({size} bytes)")
    try:
        with open(path, "rb") as f:
            document = json.loads(f.read(MAX_RECORD_BYTES + 1).decode("utf-8"),
                                  parse_constant=_no_constant)
    except (ValueError, UnicodeError) as err:
        raise RecordError(f"malformed record: not JSON ({str(err)[:200]})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise RecordError("malformed record: unknown format")
    if not isinstance(document.get("args"), list):
        raise RecordError("malformed record: no arguments")
    return document


def _no_constant(name):
    raise ValueError(f"{name} is not allowed")


def replay_call(grade: Callable, visible_check: Callable | None, document: dict, handed: tuple[str, ...] = ()):
    """The same checks as :func:`record_call`, answered from the record. Raises what the checks raise."""
    replayer = Replayer(document, handed)
    stand_ins = [replayer.decode(e) for e in document["args"]]
    _fix_seeds()
    if visible_check is not None:
        with contextlib.redirect_stdout(io.StringIO()):
            visible_check(*stand_ins)
    _fix_seeds()
    with contextlib.redirect_stdout(io.StringIO()):
        grade(*stand_ins)
    replayer.finish()


# --- the one line per unit ----------------------------------------------------------------------------

def judge_all(namespace: dict, visible: Any, *, kernel_only: dict[str, str] | None = None,
              handed: dict[str, tuple[str, ...]] | None = None) -> None:
    """Wrap every ``grade_<step>`` of a hidden-test module (call at its end: ``judge_all(globals(), visible)``).

    ``visible`` is the unit's module of visible checks; ``check_<step>`` in it is run before ``grade_<step>``,
    as the test cell does. ``kernel_only`` names the grade functions that are still judged in the kernel only,
    each with the reason. ``handed`` names the grade functions whose checks hand the student's function an
    object of their own (a layer, a toy model) whose calls matter, with what the function may call on it
    (``"__call__"`` for the object itself, and method names); those calls are recorded and made again on the
    judge's object.
    """
    kernel_only = dict(kernel_only or {})
    handed = dict(handed or {})
    module = namespace["__name__"]
    unknown = (set(kernel_only) | set(handed)) - {n for n in namespace if n.startswith("grade_")}
    if unknown:
        raise ValueError(f"kernel_only or handed names grade functions that {module} does not have: {sorted(unknown)}")
    for name, grade in list(namespace.items()):
        if not (name.startswith("grade_") and callable(grade)) or getattr(grade, "__judged__", None) is not None:
            continue
        check = getattr(visible, "check_" + name.removeprefix("grade_"), None)
        namespace[name] = _wrap(grade, check, module, kernel_only.get(name), tuple(handed.get(name, ())))
    namespace["KERNEL_ONLY"] = kernel_only


def _wrap(grade: Callable, check: Callable | None, module: str, kernel_only: str | None, handed: tuple[str, ...]):
    signature = inspect.signature(grade)

    @functools.wraps(grade)
    def wrapper(*args, **kwargs):
        record_dir = os.environ.get(RECORD_ENV)
        if not record_dir or kernel_only:
            return grade(*args, **kwargs)
        return record_call(grade, check, module, signature.bind(*args, **kwargs).args, record_dir, handed)

    wrapper.__judged__ = {"grade": grade, "check": check, "module": module, "kernel_only": kernel_only,
                          "handed": handed}
    return wrapper


# --- the rule's watch (course.checks.watching) across the record ---------------------------------------------
# In the kernel, the watch of the step's rule sees what the student's code called; what it saw during each
# call is written down with the call, and the judge's own watch is told the same, so that a rule broken in
# the kernel fails the step in the judge too. (The judge also reads the answer cell's code itself.)

def _watch_of(profile):
    try:
        from course.checks import active_watch
    except ImportError:
        return None
    return active_watch(profile) if profile is not None else None


def _note_watch(event: dict, watch, seen) -> None:
    if watch is None or seen is None:
        return
    violation = watch.violation if watch.violation != seen[0] else None
    required = sorted(set(watch.required_seen) - seen[1])
    if violation is not None or required:
        event["watch"] = [violation, required]


def _apply_watch(event: dict, watch) -> None:
    noted = event.get("watch")
    if noted is None:
        return
    if not (isinstance(noted, list) and len(noted) == 2 and (noted[0] is None or isinstance(noted[0], str))
            and isinstance(noted[1], list) and all(isinstance(r, str) for r in noted[1])):
        raise RecordError("malformed record: bad rule watch")
    if watch is None:
        return
    if noted[0] is not None and watch.violation is None:
        watch.violation = noted[0][:MAX_MESSAGE]
    watch.required_seen |= {r for r in noted[1] if r in watch.require}


def _register_transparent() -> None:
    try:
        from course.checks import transparent
    except ImportError:
        return
    transparent(*(getattr(cls, name) for cls in (StudentObject, HandedObject)
                  for name in ("__init__", "__call__", "__getattr__", "__iter__", "__next__", "__len__", "__bool__",
                               "__getitem__", "_op") if name in cls.__dict__),
                Recorder.op, Replayer.op)


_register_transparent()
