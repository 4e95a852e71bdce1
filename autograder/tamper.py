"""A static scan of student code for attempts to change how answers are checked.

The first of two defences (the second is the grading kernel's runtime check,
:mod:`autograder.kernel`): before a notebook is graded, every cell the
student could write is parsed and searched for code that rebinds, deletes or
patches something the checks rely on:

* assignments, augmented assignments and ``del`` whose target lies inside
  numpy, the course's package (``course``, its checks), ``autograder``,
  ``keras``, ``tensorflow``, ``nbgrader``, ``builtins`` or ``sys.modules``,
  however it is reached (an alias from ``import ... as``, ``vars(np)[...]``,
  ``importlib.import_module("numpy")``, ``__import__``);
* ``setattr``/``delattr``/``__setattr__`` on those, mutating calls on
  ``sys.modules`` or a module's ``__dict__``, ``unittest.mock.patch`` of them;
* running code from a string: ``exec``, ``eval``, ``compile``,
  ``get_ipython().run_cell``.

Calling library functions is never flagged: ``np.random.seed(0)``,
``np.set_printoptions(...)`` and ``plt.rcParams["figure.dpi"] = 120``
(matplotlib is not watched) are ordinary student code.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

WATCHED = ("numpy", "course", "autograder", "keras", "tensorflow", "nbgrader", "builtins", "sys.modules")
STRING_EXECUTORS = {"exec", "eval", "compile"}
IPYTHON_EXECUTORS = {"run_cell", "run_cell_async", "run_code", "ex", "ev"}
MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}
SETTERS = {"setattr", "delattr", "builtins.setattr", "builtins.delattr"}
IMPORTERS = {"__import__", "importlib.import_module", "builtins.__import__"}


@dataclass(frozen=True)
class Finding:
    cell: str      # how the cell is named in messages: its grade_id, or "cell <id>"
    line: int      # 1-based line within the cell
    what: str      # what the code does, in words

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: {self.what}"


def is_watched(name: str | None) -> bool:
    return bool(name) and any(name == w or name.startswith(w + ".") or name.startswith(w + "[")
                              for w in WATCHED)


def parse(source: str) -> ast.Module | None:
    """The cell as Python (IPython magics turned into calls), or None if it does not parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None   # nbgrader will show the SyntaxError in the cell; nothing can run from it


def import_aliases(trees) -> dict[str, str]:
    """Every name an import binds, mapped to the dotted name it stands for."""
    aliases = {"builtins": "builtins", "__builtins__": "builtins"}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


class _Scanner(ast.NodeVisitor):
    def __init__(self, cell: str, aliases: dict[str, str]):
        self.cell, self.aliases, self.findings = cell, aliases, []

    def flag(self, node: ast.AST, what: str) -> None:
        self.findings.append(Finding(self.cell, getattr(node, "lineno", 0), what))

    def resolve(self, node: ast.AST) -> str | None:
        """The dotted name an expression refers to, as far as it can be told statically."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id if node.id == "sys" else None)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Subscript):
            base = self.resolve(node.value)
            key = node.slice.value if isinstance(node.slice, ast.Constant) else "..."
            return f"{base}[{key!r}]" if base else None
        if isinstance(node, ast.Call):
            return self._resolve_call(node)
        return None

    def _resolve_call(self, node: ast.Call) -> str | None:
        func, args = self.resolve(node.func) or _plain_name(node.func), node.args
        first = args[0] if args else None
        if func in IMPORTERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
        if func in ("vars", "builtins.vars") and first is not None:
            base = self.resolve(first)
            return f"{base}.__dict__" if base else None
        if func in ("getattr", "builtins.getattr") and len(args) >= 2:
            base = self.resolve(first)
            attr = args[1].value if isinstance(args[1], ast.Constant) else "..."
            return f"{base}.{attr}" if base else None
        if func == "sys.modules.get" and isinstance(first, ast.Constant):
            return str(first.value)
        return None

    def _targets(self, targets, verb: str) -> None:
        for target in targets:
            if isinstance(target, (ast.Tuple, ast.List)):
                self._targets(target.elts, verb)
            elif isinstance(target, (ast.Attribute, ast.Subscript)):
                name = self.resolve(target)
                if is_watched(name):
                    self.flag(target, f"{verb} {name}")

    def visit_Assign(self, node):
        self._targets(node.targets, "assigns to")
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._targets([node.target], "assigns to")
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._targets([node.target], "assigns to")
        self.generic_visit(node)

    def visit_Delete(self, node):
        self._targets(node.targets, "deletes")
        self.generic_visit(node)

    def visit_Call(self, node):
        func = self.resolve(node.func) or _plain_name(node.func)
        attr = node.func.attr if isinstance(node.func, ast.Attribute) else None
        first = self.resolve(node.args[0]) if node.args else None
        if func in SETTERS and is_watched(first):
            self.flag(node, f"calls {func.split('.')[-1]} on {first}")
        elif attr in ("__setattr__", "__delattr__") and any(is_watched(self.resolve(a)) for a in node.args):
            self.flag(node, f"calls {attr} on {next(self.resolve(a) for a in node.args if is_watched(self.resolve(a)))}")
        elif attr in MUTATORS and _is_namespace(self.resolve(node.func.value)):
            self.flag(node, f"calls {attr} on {self.resolve(node.func.value)}")
        elif func in STRING_EXECUTORS or (func or "").removeprefix("builtins.") in STRING_EXECUTORS:
            self.flag(node, f"runs code from a string with {func.split('.')[-1]}(...)")
        elif attr in IPYTHON_EXECUTORS and _plain_name(node.func.value) == "get_ipython()":
            self.flag(node, f"runs code from a string with get_ipython().{attr}(...)")
        elif func and func.startswith("unittest.mock.patch") and self._patches_watched(node):
            self.flag(node, f"patches {self._patch_target(node)} with {func.removeprefix('unittest.mock.')}")
        self.generic_visit(node)

    def _patch_target(self, node: ast.Call) -> str:
        first = node.args[0]
        return first.value if isinstance(first, ast.Constant) else self.resolve(first) or "?"

    def _patches_watched(self, node: ast.Call) -> bool:
        return bool(node.args) and is_watched(str(self._patch_target(node)))


def _plain_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"{node.func.id}()"
    return None


def _is_namespace(name: str | None) -> bool:
    """sys.modules itself, or the __dict__ of a watched module."""
    return bool(name) and (name == "sys.modules" or (name.endswith(".__dict__") and is_watched(name)))


def scan(cells: list[tuple[str, str]], context: list[str] = ()) -> list[Finding]:
    """Findings in the student's cells ``(name, source)``.

    ``context`` is the source of the notebook's other code cells (the locked
    setup cell): the imports there give the aliases (``np``, ``checks``) the
    student's cells use.
    """
    trees = [(name, parse(source)) for name, source in cells]
    aliases = import_aliases([t for t in (parse(s) for s in context) if t] + [t for _, t in trees if t])
    findings = []
    for name, tree in trees:
        if tree is not None:
            scanner = _Scanner(name, aliases)
            scanner.visit(tree)
            findings += scanner.findings
    return findings
