"""Primitives for visible self-checks: comparisons that explain themselves.

Every check raises :class:`CheckFailed` (an AssertionError) with a message
naming the step, the quantity and what is wrong: the shape, where the values
differ, and, when the wrong answer matches a known mistake, which one.
Values are converted to plain float64 numpy arrays before any comparison, so
an object with a creative ``__eq__`` cannot pass for a correct answer.

Every answer is called under its step's rule (course/rules.py: what it may be
built from): :func:`call_step` reads the answer's code (:func:`static_violations`)
and watches the call (:class:`watching`), so that "rnn_step must be written with
numpy; it calls keras.layers.SimpleRNNCell" is what a delegating answer gets,
from the visible check and from the grader alike.
"""
from __future__ import annotations

import inspect
import linecache
import sys
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


class CheckFailed(AssertionError):
    """A self-check found a wrong answer; the message says what is wrong."""

    def _render_traceback_(self) -> list[str]:
        """What Jupyter and Colab show for this error: the message alone.

        IPython calls this instead of formatting a traceback, so a student sees
        what is wrong, not the checks' own frames or the exceptions they caught
        on the way ("During handling of the above exception...").
        """
        lines = str(self).splitlines() or [type(self).__name__]
        return [f"\x1b[0;31m✗ {lines[0]}\x1b[0m", *lines[1:]]


# Set while the expected values are recorded (python -m autograder generate): diagnoses are then
# computed for right answers too, so that the stored file can name a mistake on the student's side.
_EAGER = [False]


def eager_diagnoses() -> bool:
    """Whether every diagnosis is being computed, wrong answer or not (only while recording)."""
    return _EAGER[0]


def fail(step: str, message: str) -> None:
    raise CheckFailed(f"{step}: {message}")


def to_array(step: str, what: str, value: Any, *, dtype=np.float64) -> np.ndarray:
    """``value`` as a plain numpy array, or a failure saying why it is not one."""
    if value is None:
        fail(step, f"{what} is None: did the function forget to `return` it?")
    try:
        if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
            value = value.numpy()  # a backend tensor
        array = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as err:
        fail(step, f"{what} should be a numeric array, got {type(value).__name__} ({err})")
    return array


def expect_shape(step: str, what: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = to_array(step, what, value)
    if array.shape != tuple(shape):
        hint = ""
        if array.shape == tuple(shape)[::-1] and len(shape) > 1:
            hint = " (the axes are reversed: is something transposed?)"
        fail(step, f"{what} has shape {array.shape}, expected {tuple(shape)}{hint}")
    return array


def expect_finite(step: str, what: str, array: np.ndarray, hint: str = "") -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        fail(step, f"{what} contains {int(bad.sum())} non-finite value(s) "
                   f"(first at index {where}: {array[where]}){'; ' + hint if hint else ''}")


def _describe_difference(actual: np.ndarray, expected: np.ndarray) -> str:
    diff = np.abs(actual - expected)
    where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    where_text = f" at index {tuple(int(i) for i in where)}" if diff.ndim else ""
    return (f"largest difference {float(diff[where]):.3g}{where_text} "
            f"(got {float(actual[where]):.6g}, expected {float(expected[where]):.6g})")


def expect_close(
    step: str,
    what: str,
    actual: Any,
    expected: Any,
    *,
    rtol: float = 1e-5,   # loose enough for a correct answer computed in float32
    atol: float = 1e-6,
    diagnoses: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    hint: str = "",
) -> np.ndarray:
    """``actual`` equals ``expected`` to tolerance, or a failure that explains.

    ``diagnoses`` maps a known mistake ("sigmoid instead of tanh") to the value
    that mistake would produce; when the wrong answer matches one, the message
    names it. A callable is called only once the answer is wrong, for
    diagnoses that are costly to compute (each may run a Keras layer).
    """
    if _EAGER[0] and callable(diagnoses):
        diagnoses = diagnoses()
    expected = np.asarray(expected, dtype=np.float64)
    actual = expect_shape(step, what, actual, expected.shape)
    expect_finite(step, what, actual, hint)
    if np.allclose(actual, expected, rtol=rtol, atol=atol):
        return actual
    message = f"{what} is wrong: {_describe_difference(actual, expected)}"
    fail(step, _named_mistake(message, actual, diagnoses, hint,
                              lambda wrong: np.allclose(actual, wrong, rtol=rtol, atol=atol)))


def _named_mistake(message: str, actual: np.ndarray, diagnoses, hint: str, matches: Callable) -> str:
    """`message`, ending with the first known mistake whose value `matches` the answer, else with `hint`.
    `diagnoses` (a mapping, or a function that makes one) is only computed here, for a wrong answer."""
    if callable(diagnoses):
        diagnoses = diagnoses()
    for mistake, wrong in (diagnoses or {}).items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if wrong.shape == actual.shape and matches(wrong):
            return message + f". It matches what you get with {mistake}"
    return message + f". {hint}" if hint else message


def expect_equal(step: str, what: str, actual: Any, expected: Any,
                 diagnoses: Mapping[str, Any] | None = None) -> None:
    """Exact equality of integers or integer arrays."""
    got = to_array(step, what, actual, dtype=np.int64)
    want = np.asarray(expected, dtype=np.int64)
    if got.shape != want.shape:
        fail(step, f"{what} has shape {got.shape}, expected {want.shape}")
    if not np.array_equal(got, want):
        message = f"{what} is {got.tolist() if got.size < 12 else 'wrong'}, expected {want.tolist() if want.size < 12 else 'something else'}"
        for mistake, wrong in (diagnoses or {}).items():
            if np.array_equal(got, np.asarray(wrong, dtype=np.int64)):
                message += f": that is what you get with {mistake}"
                break
        fail(step, message)


def relative_error(a, n, floor: float = float(np.finfo(float).tiny)) -> float:
    """max |a - n| over max(|a| + |n|): one number for how far an answer is from a reference."""
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    scale = float(np.max(np.abs(a) + np.abs(n), initial=0.0))
    return float(np.max(np.abs(a - n), initial=0.0)) / max(scale, floor)


def expect_gradient(step: str, what: str, actual: Any, numeric: Any, *, tol: float, diagnoses=None, hint: str = "",
                    finite_hint: str | None = None, floor: float = float(np.finfo(float).tiny),
                    precision_note: str = "") -> float:
    """``actual`` agrees with a numeric gradient (relative error below ``tol``, float64); returns the error.

    ``diagnoses`` (a dict, or a function that makes one: only called when the answer is wrong) maps a named
    mistake to what it gives; a wrong answer that matches one is told which. ``hint`` ends a wrong answer's
    message otherwise; ``finite_hint`` (default: ``hint``) is what a nan or an inf is told."""
    if callable(diagnoses) and eager_diagnoses():
        diagnoses = diagnoses()
    numeric = np.asarray(numeric, np.float64)
    dtype = getattr(actual, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype != np.float64:
        fail(step, f"{what} has dtype {dtype} for float64 inputs: gradients are checked to {tol:g}, which only "
                   f"float64 reaches; compute in the inputs' precision{precision_note}")
    actual = expect_shape(step, what, actual, numeric.shape)
    expect_finite(step, what, actual, hint if finite_hint is None else finite_hint)
    err = relative_error(actual, numeric, floor)
    if err < tol:
        return err
    diff = np.abs(actual - numeric)
    where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    at = f" at index {tuple(int(i) for i in where)}" if diff.ndim else ""
    message = (f"{what} is wrong: relative error {err:.2g} against the numeric gradient (needs < {tol:g}); "
               f"largest difference{at}: got {float(actual[where]):.6g}, numeric {float(numeric[where]):.6g}")
    fail(step, _named_mistake(message, actual, diagnoses, hint,
                              lambda wrong: relative_error(actual, wrong, floor) < 1e-6))


def snapshot(*arrays) -> list[np.ndarray]:
    """Copies of the inputs, to compare with :func:`expect_unchanged` after the call."""
    return [np.array(a, copy=True) for a in arrays]


def expect_unchanged(step: str, name: str, before: np.ndarray, after: np.ndarray) -> None:
    if not np.array_equal(before, after):
        fail(step, f"the function changed its input `{name}` in place; work on a copy instead")


def call(step: str, fn: Callable, *args, **kwargs):
    """Call the student's function; turn an exception into a failure that names the step."""
    return _invoke(step, fn, args, kwargs)


def _invoke(step: str, fn: Callable, args, kwargs, watch=None):
    if not callable(fn):
        fail(step, f"expected a function, got {type(fn).__name__}")
    held = _results.before_call(step, (fn, getattr(fn, "__self__", None), args, kwargs))
    result = _invoke_unguarded(step, fn, args, kwargs, watch)
    _results.after_call(step, held, result)
    return result


def _invoke_unguarded(step: str, fn: Callable, args, kwargs, watch=None):
    try:
        if watch is None:
            return fn(*args, **kwargs)
        previous = sys.getprofile()
        sys.setprofile(watch.hook(previous))
        try:
            return fn(*args, **kwargs)
        finally:
            sys.setprofile(previous)
    except NotImplementedError:
        fail(step, "not implemented yet: replace `raise NotImplementedError()` with your code")
    except CheckFailed:
        raise
    except Exception as err:  # the student's bug: report it with the step's name
        shapes = ", ".join(
            f"{type(a).__name__}{getattr(a, 'shape', '')}" for a in args
        )
        raise CheckFailed(
            f"{step}: raised {type(err).__name__}: {err}\n    (called with {shapes})"
        ) from err


class _Results:
    """What a step's earlier calls returned, while the caller still holds it: a later call of the same step
    must neither hand back one of those arrays (or layers) again nor change them. An answer that keeps its
    result in a buffer, a cache or an ``lru_cache`` and returns it again passes every check of one call, yet
    whoever keeps two results (a list of batches, the states of two runs) finds the first one overwritten.

    Results are held weakly: one the check has let go of is forgotten. Changes the check makes itself between
    calls are taken in before the next call, and a held result that is an argument of the call (or shares
    memory with one) is not compared, since a step may be asked to update its inputs in place."""

    MAX_HELD = 64   # results remembered per step (the newest)

    def __init__(self):
        self.held: dict[str, list[list]] = {}

    @staticmethod
    def _leaves(value, depth=0):
        if depth > 40:
            return
        if type(value) is np.ndarray and not value.dtype.hasobject:
            yield value
        elif _is_keras_layer(value):
            yield value
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from _Results._leaves(item, depth + 1)
        elif isinstance(value, dict):
            for item in value.values():
                yield from _Results._leaves(item, depth + 1)

    @staticmethod
    def _state(leaf):
        if isinstance(leaf, np.ndarray):
            return np.array(leaf, copy=True)
        return [np.array(w, copy=True) for w in leaf.get_weights()]

    @staticmethod
    def _same(state, leaf) -> bool:
        if isinstance(leaf, np.ndarray):
            return state.shape == leaf.shape and state.dtype == leaf.dtype and np.array_equal(
                state, leaf, equal_nan=state.dtype.kind in "fc")
        weights = leaf.get_weights()
        return len(weights) == len(state) and all(
            a.shape == np.shape(b) and np.array_equal(a, b, equal_nan=True) for a, b in zip(state, weights))

    def _alive(self, step):
        entries = [e for e in self.held.get(step, []) if e[0]() is not None]
        self.held[step] = entries
        return entries

    def before_call(self, step: str, arguments) -> list:
        """The held results of ``step`` that this call must leave alone, each with its state now (not the
        arguments, nor what is called: a layer returned earlier and called now builds its weights)."""
        entries = self._alive(step)
        if not entries:
            return []
        args = list(self._leaves(arguments))
        out = []
        for entry in entries:
            leaf = entry[0]()
            if leaf is None or any(leaf is a or (isinstance(leaf, np.ndarray) and isinstance(a, np.ndarray)
                                                 and np.may_share_memory(leaf, a)) for a in args):
                continue
            if not self._same(entry[1], leaf):   # the caller changed it: its own business
                entry[1] = self._state(leaf)
            out.append(entry)
        return out

    def after_call(self, step: str, held: list, result) -> None:
        leaves = list(self._leaves(result))
        for entry in held:
            leaf = entry[0]()
            if leaf is None:
                continue
            what = "array" if isinstance(leaf, np.ndarray) else "layer"
            if any(leaf is new for new in leaves):
                fail(step, f"it returned the same {what} object as an earlier call, whose result the caller "
                           f"still holds: changing one result changes the other; return a new {what} on "
                           f"every call")
            if not self._same(entry[1], leaf):
                fail(step, f"{'an' if what == 'array' else 'a'} {what} it returned earlier changed when it was "
                           f"called again: it writes into "
                           f"a buffer (or cache) it returned before, so a caller's earlier result is "
                           f"overwritten; return a new {what} on every call")
        if not leaves:
            return
        entries = self._alive(step)
        known = {id(e[0]()) for e in entries}
        for leaf in leaves:
            if id(leaf) not in known:
                try:
                    entries.append([weakref.ref(leaf), self._state(leaf)])
                except TypeError:
                    continue
                known.add(id(leaf))
        del entries[:-self.MAX_HELD]


def _is_keras_layer(value) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.layers.Layer)


_results = _Results()


def passed(step: str, count: int, note: str = "") -> None:
    print(f"✓ {step}: {count} checks passed{' ' + note if note else ''}")


# --- what an answer may be built from -------------------------------------------------------------
#
# course/rules.py declares, for every graded step, the modules its answer may not call and the calls
# it must make. Two looks enforce it: the answer's code (static_violations, pure: nothing of the
# student's runs) and the call itself (watching: every Python function entered and every C function
# called while the answer runs, by the module it belongs to).

# Names a notebook commonly binds to a framework without an import in the answer's own code.
_KNOWN_ALIASES = {"keras": "keras", "tf": "tensorflow", "tensorflow": "tensorflow", "jax": "jax",
                  "jnp": "jax.numpy", "torch": "torch", "course": "course", "autograder": "autograder"}


def _matches(name: str, prefixes) -> str | None:
    for prefix in prefixes:
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


def static_violations(rule, source: str) -> list[str]:
    """What in ``source`` (an answer's code) the rule forbids, one line each: "it uses keras.layers.SimpleRNNCell (line 3)".

    Pure: the code is parsed, never run. It sees imports of forbidden modules (``import``, ``from ... import``,
    ``importlib.import_module("...")``, ``__import__("...")``) and dotted names rooted in a forbidden module
    (``keras.ops.softmax``, ``tf.nn.softmax``, an alias imported in the same code). What it cannot see (a helper
    defined elsewhere, a name bound in another cell) the watch on the call catches.
    """
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return []
    forbid = tuple(rule.forbid)
    aliases = dict(_KNOWN_ALIASES)
    local: set[str] = set()
    found: list[tuple[int, str]] = []

    def note(line: int, name: str, how: str = "uses") -> None:
        if _matches(name, forbid):
            found.append((line, f"it {how} {name} (line {line})"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                note(node.lineno, a.name, "imports")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                aliases[a.asname or a.name] = full
                note(node.lineno, full if _matches(full, forbid) else node.module, "imports")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            local.update(a.arg for a in args.posonlyargs + args.args + args.kwonlyargs)
            local.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if callee in ("import_module", "__import__"):
                note(node.lineno, node.args[0].value, "imports")
    imported = {name for name in aliases if name not in _KNOWN_ALIASES or name in local}
    inner: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Attribute, ast.Name)) or id(node) in inner:
            continue
        parts, cur = [], node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            inner.add(id(cur.value))
            cur = cur.value
        if not isinstance(cur, ast.Name) or cur.id not in aliases or isinstance(cur.ctx, ast.Store):
            continue
        if cur.id in local and cur.id not in imported:
            continue  # a parameter or variable of the answer that happens to share the name
        note(node.lineno, ".".join([aliases[cur.id], *reversed(parts)]))
    seen, out = set(), []
    for _, text in sorted(found):
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _public_names() -> dict[tuple[str, str], str]:
    """(module, qualname) -> the public name Keras exports it under (keras.layers.SimpleRNNCell)."""
    api = sys.modules.get("keras.src.api_export")
    by_object: dict[tuple[str, str], list[str]] = {}
    for name, obj in (getattr(api, "REGISTERED_NAMES_TO_OBJS", None) or {}).items():
        key = (getattr(obj, "__module__", None) or "", getattr(obj, "__qualname__", None) or "")
        if key[0] and key[1] and isinstance(name, str):
            by_object.setdefault(key, []).append(name if name.startswith("keras") else f"keras.{name}")
    registry = {}
    for (module, qualname), names in by_object.items():
        # Among the names of one object, the one of its own family (keras.losses for a loss).
        family = [n for n in names if n.count(".") >= 2 and n.split(".")[1] in module.split(".")]
        registry[(module, qualname)] = min(family or names, key=lambda n: (n.count("."), n))
    return registry


class _Watch:
    """Every function the watched call enters, named by its module; the first forbidden one is kept."""

    def __init__(self, rule):
        self.forbid = tuple(rule.forbid)
        self.require = tuple(rule.require)
        self.violation: str | None = None
        self.required_seen: set[str] = set()
        self._codes: dict = {}
        self._c: dict = {}
        self._public: dict | None = None
        self._codes.update((code, (None, frozenset())) for code in _TRANSPARENT)

    def public(self, module: str, qualname: str) -> list[str]:
        if self._public is None or (not self._public and "keras.src.api_export" in sys.modules):
            self._public = _public_names()
        parts = qualname.split(".")
        names = [f"{module}.{qualname}"]
        for i in range(len(parts), 0, -1):
            found = self._public.get((module, ".".join(parts[:i])))
            if found:
                names.append(".".join([found, *parts[i:]]))
                break
        return names

    def judge(self, names: list[str]) -> tuple[str | None, frozenset]:
        bad = next((n for n in names if _matches(n, self.forbid)), None)
        req = frozenset(r for r in self.require for n in names if n == r or n.startswith(r + "."))
        return bad, req

    def describe(self, frame, names: list[str]) -> str:
        """The public name of what was called: a class for its constructor or __call__."""
        code = frame.f_code
        if code.co_name in ("__new__", "__init__", "__call__", "__init_subclass__") and code.co_varnames:
            first = frame.f_locals.get(code.co_varnames[0])
            cls = first if isinstance(first, type) else type(first)
            named = self.public(cls.__module__, cls.__qualname__)
            if _matches(named[-1], self.forbid) or _matches(named[0], self.forbid):
                return named[-1]
        name = names[-1]
        for tail in (".__init__", ".__call__", ".__new__"):
            name = name[: -len(tail)] if name.endswith(tail) else name
        if "<locals>" in name or ".python." in name:  # a wrapper inside a framework: name the caller's line
            caller = frame.f_back
            line = linecache.getline(caller.f_code.co_filename, caller.f_lineno).strip() if caller else ""
            top = name.split(".")[0]
            return f"{top} (`{line}`)" if line else top
        return name

    def _in_finaliser(self, frame) -> bool:
        """Whether ``frame`` runs inside a forbidden framework's own ``__del__``, which the garbage
        collector may start at any line of the answer: TensorFlow's function objects look up their context
        when they are collected, for example. The finaliser of a class the answer defines is not exempt
        (what it calls counts as the answer's), nor is a ``weakref.finalize`` the answer can call itself."""
        f, depth = frame, 0
        while f is not None and depth < _FINALISER_DEPTH:
            code = f.f_code
            if code.co_name == "__del__":
                module = f.f_globals.get("__name__") or ""
                if self.judge(self.public(module, getattr(code, "co_qualname", code.co_name)))[0]:
                    return True
            f, depth = f.f_back, depth + 1
        return False

    def hook(self, previous=None):
        """The profile function: this watch, then a profiler that was already installed."""
        if previous is None:
            return self

        def both(frame, event, arg):
            self(frame, event, arg)
            previous(frame, event, arg)
        both.watch = self
        return both

    def __call__(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            verdict = self._codes.get(code)
            if verdict is None:
                module = frame.f_globals.get("__name__") or ""
                names = self.public(module, getattr(code, "co_qualname", code.co_name))
                bad, req = self.judge(names)
                if code.co_name == "__del__":  # a finaliser run by the garbage collector, not by the answer
                    bad = None
                verdict = self._codes[code] = (bad and names, req)
            if verdict[0] and self.violation is None and not self._in_finaliser(frame):
                self.violation = self.describe(frame, verdict[0])
            if verdict[1]:
                self.required_seen |= verdict[1]
        elif event == "c_call":
            owner = getattr(arg, "__self__", None)
            if owner is None or isinstance(owner, types.ModuleType):
                key, module = arg, getattr(arg, "__module__", None) or getattr(owner, "__name__", "") or ""
            else:
                key, module = (type(owner), arg.__name__), type(owner).__module__ or ""
            try:
                verdict = self._c.get(key)
            except TypeError:
                verdict, key = None, None
            if verdict is None:
                names = [f"{module}.{getattr(arg, '__qualname__', arg.__name__)}"]
                bad, req = self.judge(names)
                verdict = (bad and names[0], req)
                if key is not None:
                    self._c[key] = verdict
            if verdict[0] and self.violation is None and not self._in_finaliser(frame):
                self.violation = verdict[0]
            if verdict[1]:
                self.required_seen |= verdict[1]


_FINALISER_DEPTH = 64   # frames looked up from a forbidden call for a framework's finaliser

# Code objects that a watch never counts as the answer's: the grader's own stand-ins for a student's
# function (autograder/hidden/_record.py), which pass the call on and write down what came back.
_TRANSPARENT: set = set()


def transparent(*functions) -> None:
    """Register the grader's stand-ins: entering these functions is not a call the answer made."""
    for function in functions:
        _TRANSPARENT.add(getattr(function, "__code__", function))


def active_watch(profile=None) -> "_Watch | None":
    """The watch installed as the profile function (``sys.getprofile()`` by default), or None."""
    profile = sys.getprofile() if profile is None else profile
    if isinstance(profile, _Watch):
        return profile
    return getattr(profile, "watch", None)


class watching:
    """``with watching(rule) as watch:`` watches what runs inside the block (``watch.violation``,
    ``watch.required_seen``).

    The watch sees Python functions entered and C functions called in this thread, by the module they
    belong to; a profiler already installed keeps running. Code of the course called inside the block
    counts as the answer's, so a check calls only the answer there.
    """

    def __init__(self, rule):
        self.watch = _Watch(rule)
        self.watch._codes[type(self).__exit__.__code__] = (None, frozenset())

    def __enter__(self):
        self.previous = sys.getprofile()
        sys.setprofile(self.watch.hook(self.previous))
        return self.watch

    def __exit__(self, *exc):
        sys.setprofile(self.previous)
        return False


def _rule_message(step: str, rule, why: str) -> str:
    return f"{step} must be {rule.text}; {why}"


def expect_allowed_source(step: str, rule, fn) -> None:
    """The rule against the answer's own code (when Python can find it: a notebook cell, a file)."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return
    found = static_violations(rule, source)
    if found:
        raise CheckFailed(_rule_message(step, rule, found[0]))


def watched_call(step: str, rule, fn: Callable, *args, **kwargs):
    """Like :func:`call`, with the rule enforced while the answer runs."""
    watch = _Watch(rule)
    try:
        result = _invoke(step, fn, args, kwargs, watch)
    except CheckFailed:
        if watch.violation is None:
            raise
        result = None
    if watch.violation is not None:
        raise CheckFailed(_rule_message(step, rule, f"it calls {watch.violation}"))
    missing = [name for name in rule.require if name not in watch.required_seen]
    if missing:
        raise CheckFailed(_rule_message(step, rule, f"it never calls {missing[0]}"))
    return result


def call_step(unit_id: str, step: str, fn: Callable, *args, **kwargs):
    """Call the answer to ``step`` of ``unit_id`` under its rule (course/rules.py).

    First a look at the answer's code, then the call, watched: a forbidden module called (even through a
    helper) or a required call missing fails with the rule in the message, e.g.
    "rnn_step must be written with numpy; it calls keras.layers.SimpleRNNCell".
    """
    from ..rules import rule as rule_of

    rule = rule_of(unit_id, step)
    if callable(fn):
        expect_allowed_source(step, rule, fn)
    return watched_call(step, rule, fn, *args, **kwargs)


def caller_for(unit_id: str):
    """``call`` for one unit's check module: ``call(step, fn, *args)`` with that step's rule enforced."""
    def call_in_unit(step: str, fn: Callable, *args, **kwargs):
        return call_step(unit_id, step, fn, *args, **kwargs)
    call_in_unit.__name__ = "call"
    return call_in_unit
