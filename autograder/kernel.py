"""The grading kernel: ipykernel with a memory limit, an output limit and a journal.

The sandbox (:mod:`autograder.sandbox`) writes a kernelspec whose argv is

    python -m autograder.kernel --memory-mb N --output-chars M --journal FILE
           --watch course.checks.rnn_by_hand ... -f {connection_file}

and points nbgrader's Execute preprocessor at it. Before ipykernel starts this
module:

* limits the kernel's address space (RLIMIT_AS, and RLIMIT_DATA alike): every
  mapping counts, ``mmap`` of anonymous memory included, so large allocations
  fail with MemoryError. TensorFlow and Keras map about 1.9 GB at import (VmSize
  with a layer built; ``MALLOC_ARENA_MAX`` keeps glibc's per-thread arenas from
  reserving more), which the default limit of 4096 MB leaves room for;
* exits when its parent (nbgrader) is gone, so a killed grader leaves no kernel;
* puts ``sys.stdout``, ``sys.stderr`` and ``sys.stdin`` back after a cell that
  replaced them (``sys.stdout = None`` would otherwise stall the kernel), and
  journals it;
* takes references to the genuine checking code (numpy, the course's checks,
  the hidden graders, builtins) so that after every cell it can tell whether
  student code replaced one of them, put the genuine one back and say so.

While cells run it caps what a cell may print (a flood of output would
otherwise travel to nbgrader and sit in memory before LimitOutput trims it)
and journals every cell's start and end, so a kernel that dies, or a notebook
that is killed for time, can be traced to the cell that was running.
"""
from __future__ import annotations

import argparse
import builtins
import importlib
import json
import os
import resource
import sys
import threading
import time
import types

TRUNCATED = "\n... output truncated by the grader after {limit:,} characters ...\n"


def limit_memory(megabytes: int) -> None:
    """Cap the address space: every allocation past it (numpy, ``mmap``, thread stacks) fails with
    MemoryError in the cell. TensorFlow and Keras map about 1.9 GB once imported (VmSize), so the
    limit must leave room for them; the data segment gets the same cap."""
    limit = megabytes * 1024 * 1024
    for kind in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
        resource.setrlimit(kind, (limit, limit))


def exit_with_parent(poll_seconds: float = 0.5) -> None:
    """Exit as soon as the process that started us is gone (nbgrader killed for time)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class Journal:
    """JSON lines in a file outside the notebook: which cell ran, what was tampered with."""

    def __init__(self, path: str):
        self._file = open(path, "a", encoding="utf-8", buffering=1)

    def write(self, **record) -> None:
        record.setdefault("t", time.time())   # when: the grader's breakdown of a submission's time
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def _fingerprint(obj):
    """What must not change about a checking function: the object, its code, its defaults."""
    return (obj, getattr(obj, "__code__", None), getattr(obj, "__defaults__", None),
            dict(getattr(obj, "__kwdefaults__", None) or {}))


class Integrity:
    """References to the genuine checking code, compared after every cell."""

    WATCHED_PREFIXES = ("numpy", "course", "autograder")
    # IPython and ipykernel swap these builtins in and out around every cell themselves.
    SWAPPED_BY_IPYTHON = {"input", "exit", "quit", "help", "display", "get_ipython", "copyright", "credits",
                          "license", "breakpoint"}

    def __init__(self, modules: list[str]):
        for name in modules:
            importlib.import_module(name)
        self.modules = {name: mod for name, mod in sys.modules.items()
                        if isinstance(mod, types.ModuleType) and self._watched(name)}
        self.modules["builtins"] = builtins
        self.reference = {(name, attr): _fingerprint(value)
                          for name, mod in self.modules.items()
                          for attr, value in vars(mod).items() if self._guarded(name, attr, value)}

    @classmethod
    def _watched(cls, name: str) -> bool:
        top = name.split(".")[0]
        if top not in cls.WATCHED_PREFIXES:
            return False
        if top == "numpy":  # numpy's own namespace and its testing helpers, not every private module
            return name in ("numpy", "numpy.testing", "numpy.linalg")
        return True

    @classmethod
    def _guarded(cls, module: str, attr: str, value) -> bool:
        if module == "builtins" and attr in cls.SWAPPED_BY_IPYTHON:
            return False
        return not attr.startswith("__") and callable(value)

    def violations(self) -> list[str]:
        """What differs from the reference, each put back as it was."""
        found = []
        for name, mod in self.modules.items():
            if sys.modules.get(name, mod) is not mod:
                found.append(f"sys.modules[{name!r}] was replaced")
                sys.modules[name] = mod
        for (name, attr), (obj, code, defaults, kwdefaults) in self.reference.items():
            mod = self.modules[name]
            current = vars(mod).get(attr, None)
            if current is not obj:
                found.append(f"{name}.{attr} was {'deleted' if current is None else 'replaced'}")
                setattr(mod, attr, obj)
            elif _fingerprint(obj)[1:] != (code, defaults, kwdefaults):
                found.append(f"the code or defaults of {name}.{attr} were changed")
                if code is not None:
                    obj.__code__ = code
                obj.__defaults__ = defaults
                if kwdefaults:
                    obj.__kwdefaults__ = dict(kwdefaults)
        return found


def limit_stream(stream, limit: int, budget: dict) -> None:
    """Make ``stream.write`` drop what is past the cell's budget of characters."""
    write = stream.write

    def limited(text):
        left = budget["left"]
        if left <= 0:
            return len(text)
        if len(text) > left:
            write(text[:left] + TRUNCATED.format(limit=limit))
        else:
            write(text)
        budget["left"] = left - len(text)
        return len(text)

    stream.write = limited


def limit_results(displayhook, limit: int) -> None:
    """Cap the text of a cell's result (a huge string as the last expression)."""
    compute = displayhook.compute_format_data

    def limited(result):
        format_dict, md_dict = compute(result)
        for key, value in list(format_dict.items()):
            if isinstance(value, str) and len(value) > limit:
                format_dict[key] = value[:limit] + TRUNCATED.format(limit=limit)
        return format_dict, md_dict

    displayhook.compute_format_data = limited


def install_hooks(shell, journal: Journal, integrity: Integrity, output_chars: int) -> None:
    budget = {"left": output_chars}

    def before(info):
        budget["left"] = output_chars
        journal.write(event="start", source=info.raw_cell)

    streams = {"stdout": sys.stdout, "stderr": sys.stderr, "stdin": sys.stdin}

    def after(result):
        for name, stream in streams.items():
            if getattr(sys, name) is not stream:
                journal.write(event="stream", source=result.info.raw_cell, what=f"sys.{name} was replaced")
                setattr(sys, name, stream)
        for what in integrity.violations():
            journal.write(event="tamper", source=result.info.raw_cell, what=what)
        journal.write(event="end", source=result.info.raw_cell)

    for stream in (sys.stdout, sys.stderr):
        limit_stream(stream, output_chars, budget)
    limit_results(shell.displayhook, output_chars)
    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)


def use_memo_table(path: str, journal: Journal) -> None:
    """Answer the references' calls that the judge has already made from its sealed table (before the
    hidden tests are imported); every other call is made as usual, and nothing is stored here."""
    try:
        from autograder import memo
    except ImportError:
        return
    memo.MEMO.store = False
    entries = memo.MEMO.read_table(path)
    if entries:
        memo.install()
    journal.write(event="memo", entries=entries)


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m autograder.kernel")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--output-chars", type=int, required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--isolated", action="store_true", help="running inside the bubblewrap sandbox")
    parser.add_argument("--watch", action="append", default=[], help="module whose functions must stay genuine")
    parser.add_argument("--memo", help="a sealed table of reference results from the judge (autograder/memo.py)")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> None:
    args, kernel_args = parse(sys.argv[1:] if argv is None else argv)
    limit_memory(args.memory_mb)
    exit_with_parent()
    journal = Journal(args.journal)
    journal.write(event="kernel", pid=os.getpid(), isolated=args.isolated)
    if args.memo:
        use_memo_table(args.memo, journal)
    integrity = Integrity(args.watch)

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(kernel_args)
    install_hooks(app.shell, journal, integrity, args.output_chars)
    app.start()
    # The kernel was told to shut down and has replied. Python's own exit would now run every module's
    # teardown (TensorFlow's takes seconds, for each submission, while nbgrader waits): skip it.
    journal.write(event="exit")
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 (a stream the student replaced or closed)
            pass
    os._exit(0)


if __name__ == "__main__":
    main()
