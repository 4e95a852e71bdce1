"""Grade ONE submission safely: the real `nbgrader autograde`, fenced in.

The class runner (:mod:`autograder.classroom`) builds a template course once
(:func:`prepare_template`) and calls :func:`grade_one` for every submission,
from worker processes. Each submission is graded in its own scratch copy of
the template, with its own SQLite gradebook, so workers never share a
database and a bad submission can only spoil its own folder.

Before nbgrader runs, the notebook is read and validated (INVALID_NOTEBOOK),
checked to belong to the unit (WRONG_UNIT), repaired (every graded or locked
cell of the release exactly once, in release order; see :func:`repair`) and
scanned for code that changes the checking (:mod:`autograder.tamper`).
nbgrader then runs it in the grading kernel of :mod:`autograder.kernel`
(memory limit, output limit, runtime integrity check, a journal of cells),
with nbgrader's per-cell timeout, and the whole run is killed (nbgrader and
kernel) at the notebook time limit.

Every outcome but GRADED scores 0 and says why, naming the cell. A cell
that runs out of time is a TIMEOUT for the whole notebook: its step and
every later one that needs it would be graded on a half-run kernel, and an
instructor can regrade with a longer limit. ``sys.exit()`` is not special:
IPython turns it into an error in its cell and grading goes on.
"""
from __future__ import annotations

import ast
import atexit
import copy
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbgrader.api import Gradebook
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_locked, is_solution

from course import syllabus

from . import ROOT, cgroups, pipeline, tamper
from .mutate import test_cells_by_step
from .records import (GRADED, GRADER_ERROR, INVALID_NOTEBOOK, KERNEL_DIED, MEMORY_LIMIT, NEEDS_MANUAL_GRADING,
                      TAMPERING, TIMEOUT, WRONG_UNIT, Outcome, StepResult, Submission, automatic_max,
                      is_written, written_answers)

KERNEL_NAME = "autograder-sandbox"
MEMORY_ERRORS = ("MemoryError", "ResourceExhaustedError")
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*")


@dataclass(frozen=True)
class Limits:
    """Per-submission limits. A unit's fast budget grades in 10-15 s on two CPU cores."""
    cell_seconds: int = 60          # nbgrader's Execute.timeout for each cell
    notebook_seconds: int = 300     # the whole `nbgrader autograde` run, kernel start included
    memory_mb: int = 4096           # the grading kernel's address space (TensorFlow and Keras map ~1.9 GB)
    output_chars: int = 100_000     # what one cell may print; the rest is dropped in the kernel
    isolation: str = "auto"         # "auto": bubblewrap when it works here; "require": error without; "off"
    processes: int = 512            # the kernel's tasks (processes and threads) at once, where a pids cgroup can be made
    # Units whose kernels are forked by a kernel server (autograder/zygote.py); None: every unit. A server pays
    # off when a worker grades several submissions of a unit: grade-class names the units where it does.
    server_units: tuple | None = None


class Rejection(Exception):
    """The submission cannot be graded: a status and the reason, in words."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Repaired:
    nb: nbformat.NotebookNode
    notes: list[str] = field(default_factory=list)
    student_cells: list[tuple[str, str]] = field(default_factory=list)   # (name, source) to scan


# --- the template ---------------------------------------------------------------------------------

def sqlite_url(course_root: Path) -> str:
    return f"sqlite:///{Path(course_root).resolve() / 'gradebook.db'}"


def prepare_template(unit_ids, work: Path) -> Path:
    """A scratch nbgrader course folder with the generated release and a gradebook that knows the
    units (nbgrader generate_assignment run once), and each unit's staged packages (what its grading
    kernel may import, see :func:`stage_packages`). Workers copy the course part of it.

    The source notebooks are removed once generated: `nbgrader autograde` needs only the gradebook
    (cells, checksums, the hidden tests' calls) and the submitted notebook, so no scratch course
    holds a solution."""
    template = Path(work) / "template"
    remove_tree(template)
    template.mkdir(parents=True)
    for unit in pipeline.ready_units(list(unit_ids)):
        shutil.copytree(ROOT / "solutions" / unit.id, template / "solutions" / unit.id,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        _generate_assignment(unit.id, template)
        stage_packages(unit, packages_of(template, unit.id))
    shutil.rmtree(template / "solutions")
    return template


def _generate_assignment(unit_id: str, template: Path) -> None:
    """`nbgrader generate_assignment UNIT` in the template, forked from the nbgrader fork server where there
    is one (nbgrader imported once for every unit, not once per unit), else the CLI."""
    # db_url given explicitly: an instructor's config pointing at PostgreSQL must not be used here.
    args = ["generate_assignment", unit_id, "--force", f"--CourseDirectory.db_url={sqlite_url(template)}"]
    server = nbgrader_forkserver()
    if server is None:
        pipeline.nbgrader(*args, root=template, echo=False)
        return
    bindir = str(Path(sys.executable).parent)   # nbgrader runs `alembic` from PATH
    env = dict(os.environ, PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]))
    log = template.parent / f"generate-{unit_id}.log"
    code = _run_forked(server, ["nbgrader", *args, f"--CourseDirectory.root={template.resolve()}"], env, log, 600)
    text = log.read_text(errors="replace") if log.is_file() else ""
    log.unlink(missing_ok=True)
    if code != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({code}):\n{text}")


def template_key(unit_ids) -> str:
    """sha256 of what a template is made from: the units' sources, the course and autograder packages and the
    datasets' code (staged for the kernel), nbgrader's and Python's versions."""
    import nbgrader

    digest = hashlib.sha256(f"{sys.version}\0nbgrader {nbgrader.__version__}\0".encode())
    folders = [ROOT / "solutions" / u for u in sorted(unit_ids)] + [ROOT / "course", ROOT / "autograder", ROOT / "datasets"]
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cached_template(unit_ids, cache: Path) -> Path:
    """:func:`prepare_template` once per content (:func:`template_key`): a later run of the same units and
    checkout takes it from `cache`, where only the newest template is kept. Made in a folder of its own and
    renamed into place when complete, so a stopped run leaves no half template behind to be used."""
    import tempfile

    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    key = template_key(unit_ids)
    target = cache / key
    if not (target / "template").is_dir():
        partial = Path(tempfile.mkdtemp(prefix=".preparing-", dir=cache))
        try:
            prepare_template(unit_ids, partial)
            partial.rename(target)
        except OSError:
            if not (target / "template").is_dir():
                raise
        finally:
            remove_tree(partial)
    for old in cache.iterdir():
        if old.name != key and not old.name.startswith(".preparing-"):
            remove_tree(old)
    return target / "template"


def remove_tree(folder: Path) -> None:
    """Remove a folder that holds read-only parts (staged packages, what a kernel left)."""
    if not Path(folder).exists():
        return
    for path in [Path(folder), *Path(folder).rglob("*")]:   # staged packages are read-only
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o700)
    shutil.rmtree(folder, ignore_errors=True)


def packages_of(template: Path, unit_id: str) -> Path:
    return Path(template) / "packages" / unit_id


def copy_course(template: Path, scratch: Path) -> None:
    """The template's course part (gradebook and release) into a submission's scratch folder."""
    scratch.mkdir(parents=True)
    for entry in Path(template).iterdir():
        if entry.name == "packages":
            continue
        if entry.is_dir():
            shutil.copytree(entry, scratch / entry.name)
        else:
            shutil.copy2(entry, scratch / entry.name)


# --- isolation: bubblewrap around the grading kernel -----------------------------------------------

PACKAGES_IN_BOX = "/grading/packages"     # the staged course package and hidden module, read-only
WORK_IN_BOX = "/grading/work"             # the submission's own scratch folder: cwd, HOME, writable
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
                "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/fonts", "/etc/mime.types", "/etc/ssl")
# What the kernel's environment keeps from the grader's (everything else, credentials included, is cleared).
KEPT_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS",
            "OMP_NUM_THREADS", "COURSE_BUDGET", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES", "TF_DETERMINISTIC_OPS",
            "XLA_FLAGS")
# ... and every setting of the numeric libraries: the kernel must compute what the judge computes, bit for bit
# (a record's inputs are compared by their bytes). OPENBLAS_CORETYPE, for one, picks OpenBLAS' kernels: a
# kernel that lost it multiplied with other code than the judge's, and every check whose inputs come from a
# matrix product or a QR failed as "the record's inputs differ".
KEPT_ENV_PREFIXES = ("OPENBLAS_", "GOTO", "MKL_", "OMP_", "KMP_", "NPY_", "TF_NUM_", "ONEDNN_", "DNNL_")


class IsolationUnavailable(RuntimeError):
    """bubblewrap is required (Limits.isolation == "require") but cannot sandbox here."""


@functools.cache
def isolation_problem() -> str | None:
    """None when bubblewrap can build the grading sandbox on this machine, else why not (one line)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return ("bubblewrap (bwrap) is not installed: grading kernels run without isolation "
                "(apt-get install bubblewrap)")
    try:
        probe = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", *_system_binds(), "--proc", "/proc",
                                "--dev", "/dev", "--tmpfs", "/tmp", "true"],
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        return f"bubblewrap cannot run here ({err}): grading kernels run without isolation"
    if probe.returncode != 0:
        first = (probe.stderr.strip().splitlines() or ["no message"])[0][:200]
        return f"bubblewrap cannot build a sandbox here ({first}): grading kernels run without isolation"
    return None


def use_isolation(limits: Limits) -> bool:
    """Whether to sandbox the kernel; raises IsolationUnavailable when it is required and impossible."""
    if limits.isolation == "off":
        return False
    problem = isolation_problem()
    if problem and limits.isolation == "require":
        raise IsolationUnavailable(problem.split(":")[0] + " and isolation is required (--require-isolation)")
    return problem is None


def _system_binds() -> list[str]:
    args = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in SYSTEM_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def _python_dirs() -> list[str]:
    """The Python environment's folders (a venv and the interpreter it was made from), outermost only."""
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    dirs |= {os.path.abspath(p) for p in (sys.prefix, sys.exec_prefix)}   # a venv reached through a link
    dirs.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    outer = sorted(d for d in dirs if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in dirs))
    return [d for d in outer if not any(d == s or d.startswith(s + "/") for s in SYSTEM_DIRS)]


def _data_dirs() -> list[str]:
    """Folders where course.datasets finds verified files (bound read-only; the kernel's cache is its own)."""
    from course.datasets import files

    found = [files.cache_root(), *files.local_dirs()]
    found += [Path(d) for d in os.environ.get("COURSE_DATA_DIRS", "").split(os.pathsep) if d]
    found.append(ROOT.parent / "shared" / "datasets")
    return sorted({str(Path(d).expanduser().resolve()) for d in found if Path(d).expanduser().is_dir()})


def _autograder_imports(path: Path, package: str) -> set[str]:
    """Modules of the autograder package that the file at `path` (module `package`.x) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "autograder"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "autograder":
                names.add(module)
                names |= {f"{module}.{a.name}" for a in node.names}
    return names


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def stage_packages(unit, dest: Path) -> Path:
    """What the grading kernel may import, copied out of the checkout: the course package (with
    course.datasets), the kernel module, the unit's hidden module and the autograder modules it
    imports (its package's __init__, private helpers hidden/_*.py, autograder/reference/), nothing else.
    Solutions, mutants, other units' hidden tests and the rest of the grader stay out."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "course", dest / "course", ignore=skip)
    if (ROOT / "datasets").is_dir() and not (dest / "course" / "datasets").exists():
        shutil.copytree(ROOT / "datasets", dest / "course" / "datasets", ignore=skip)
    wanted = ["autograder", "autograder.kernel", "autograder.zygote", "autograder.hidden",
              f"autograder.hidden.{unit.notebook}"]
    wanted += [f"autograder.hidden.{p.stem}" for p in (ROOT / "autograder" / "hidden").glob("_*.py")
               if p.name != "__init__.py"]
    if (ROOT / "autograder" / "reference").is_dir():
        shutil.copytree(ROOT / "autograder" / "reference", dest / "autograder" / "reference", ignore=skip)
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        source = _module_file(name)
        if source is None:
            continue      # `from autograder.x import name` where name is not a module
        target = dest / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        package = name if source.name == "__init__.py" else name.rpartition(".")[0]
        parts = name.split(".")
        wanted += [".".join(parts[:i]) for i in range(1, len(parts))]   # every enclosing package
        wanted += sorted(_autograder_imports(source, package if source.name != "__init__.py" else name))
    for folder in (dest / "autograder").rglob("*"):
        if folder.is_dir() and not (folder / "__init__.py").exists():
            (folder / "__init__.py").write_text("")
    # Compiled once here: the kernel may not write bytecode (PYTHONDONTWRITEBYTECODE, a read-only folder), and
    # compiling the course's modules again in every kernel cost about 0.1 s of each submission.
    import compileall

    compileall.compile_dir(str(dest), quiet=2, workers=1)
    _read_only(dest)
    return dest


def _read_only(tree: Path) -> None:
    for path in [tree, *Path(tree).rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)


def bwrap_argv(box: Path, packages: Path, kernel_io: Path) -> list[str]:
    """bubblewrap's command line around the kernel: only its own folder writable, the Python
    environment, staged packages and data read-only, private /tmp, no network, its own PID
    namespace and /proc, a cleared environment, killed with its parent."""
    args = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--clearenv",
            *_system_binds(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for folder in _python_dirs():
        args += ["--ro-bind", folder, folder]
    data = _data_dirs()
    for i, folder in enumerate(data):
        args += ["--ro-bind", folder, f"/grading/data/{i}"]
    args += ["--ro-bind", str(packages), PACKAGES_IN_BOX, "--bind", str(box), WORK_IN_BOX,
             "--bind", str(kernel_io), str(kernel_io), "--chdir", WORK_IN_BOX]
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV or k.startswith(KEPT_ENV_PREFIXES)}
    env.update(HOME=WORK_IN_BOX, PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
               PYTHONPATH=PACKAGES_IN_BOX, PYTHONDONTWRITEBYTECODE="1", MPLCONFIGDIR=f"{WORK_IN_BOX}/.matplotlib",
               COURSE_DATA_HOME=f"{WORK_IN_BOX}/.data",
               COURSE_DATA_DIRS=os.pathsep.join(f"/grading/data/{i}" for i in range(len(data))),
               NBGRADER_EXECUTION="autograde", MALLOC_ARENA_MAX="2", TMPDIR="/tmp")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return args + ["--"]


# --- reading and checking the file ------------------------------------------------------------------

def load_notebook(path: Path) -> nbformat.NotebookNode:
    """The submission as an nbformat 4 notebook, or a Rejection saying what the file is instead."""
    data = Path(path).read_bytes()
    if not data.strip():
        raise Rejection(INVALID_NOTEBOOK, f"the file is empty ({len(data)} bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejection(INVALID_NOTEBOOK, "the file is not text (not UTF-8): it is not a notebook") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise Rejection(INVALID_NOTEBOOK,
                        f"the file is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises several kinds for JSON that is not a notebook
        first = str(getattr(err, "message", err)).strip().splitlines()[0][:200]
        raise Rejection(INVALID_NOTEBOOK, f"the file is JSON but not a Jupyter notebook ({first})") from None
    return nb


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def graded_ids(nb) -> set[str]:
    """grade_ids of the cells that carry points or answers (not merely locked ones such as `setup`)."""
    return {_grade_id(c) for c in nb.cells if _grade_id(c) and (is_grade(c) or is_solution(c))}


def release_of(unit, template: Path) -> nbformat.NotebookNode:
    for folder in (template / "exercises", ROOT / "exercises"):
        path = folder / unit.id / unit.filename
        if path.is_file():
            return nbformat.read(path, as_version=4)
    raise FileNotFoundError(f"no release of {unit.id} in {template}/exercises or exercises/")


def check_unit(nb, unit, template: Path) -> None:
    """WRONG_UNIT unless the notebook's graded cells are mostly this unit's."""
    found = graded_ids(nb)
    own = found & graded_ids(release_of(unit, template))
    for other in syllabus.load().ready_units:
        if other.id == unit.id:
            continue
        theirs = found & graded_ids(release_of(other, template))
        if len(theirs) > len(own):
            raise Rejection(WRONG_UNIT, f"this is a notebook of unit {other.id} ({len(theirs)} of its graded "
                                        f"cells, {len(own)} of {unit.id}'s)")
    if not own:
        seen = ", ".join(sorted(found)[:5]) or "no nbgrader cells at all"
        raise Rejection(WRONG_UNIT, f"none of the graded cells of {unit.id} is in this notebook ({seen})")


# --- notebooks without nbgrader metadata --------------------------------------------------------------

DEFINITION = re.compile(r"^(?:async\s+)?(?:def\s+([A-Za-z_]\w*)\s*\(|class\s+([A-Za-z_]\w*)\b)", re.M)


def _defined(source: str) -> set[str]:
    return {a or b for a, b in DEFINITION.findall(source or "")}


def reattach(nb, release) -> tuple[nbformat.NotebookNode, str]:
    """A notebook whose nbgrader metadata an editor stripped, matched back to the release: test and
    locked cells by their source, verbatim; answer cells by the function or class they define
    (``def name(`` / ``class Name``; the last cell that defines it). Raises a NEEDS_MANUAL_GRADING
    Rejection, with the reason, when the cells cannot be matched."""
    nb = copy.deepcopy(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    by_source: dict[str, list] = {}
    for cell in code:
        by_source.setdefault(cell.source.strip(), []).append(cell)
    used, tests, answers, missing = set(), 0, 0, []
    for rc in release.cells:
        gid = _grade_id(rc)
        if not gid or rc.cell_type != "code":
            continue
        if is_solution(rc):
            names = _defined(rc.source)
            found = [c for c in code if id(c) not in used and names and names <= _defined(c.source)]
            if found:
                cell = found[-1]
                answers += 1
            else:
                missing.append(gid)
                continue
        else:
            found = [c for c in by_source.get(rc.source.strip(), []) if id(c) not in used]
            if not found:
                missing.append(gid)
                continue
            cell = found[0]
            tests += 1 if is_grade(rc) else 0
        used.add(id(cell))
        cell.metadata["nbgrader"] = copy.deepcopy(rc.metadata["nbgrader"])
    _reattach_written(nb, release, used)
    release_tests = sum(1 for c in release.cells if _grade_id(c) and is_grade(c) and not is_solution(c))
    release_answers = sum(1 for c in release.cells if _grade_id(c) and is_solution(c) and c.cell_type == "code")
    if answers == 0 or tests * 2 < release_tests:
        raise Rejection(NEEDS_MANUAL_GRADING,
                        f"the notebook has no nbgrader metadata and its cells do not match the release "
                        f"({tests} of {release_tests} test cells found verbatim, {answers} of {release_answers} "
                        f"answers found by name): grade it by hand")
    note = (f"the notebook had no nbgrader metadata: cells matched to the release ({tests} of {release_tests} "
            f"test cells verbatim, {answers} of {release_answers} answers by name)")
    return nb, note


def _reattach_written(nb, release, used: set) -> None:
    """Written answers (markdown answer cells) of a notebook without metadata: the markdown cell right
    after the release's question, found verbatim, is the answer."""
    for i, rc in enumerate(release.cells):
        if not (is_written(rc) and i > 0):
            continue
        question = release.cells[i - 1].source.strip()
        for j, cell in enumerate(nb.cells[:-1]):
            answer = nb.cells[j + 1]
            if cell.source.strip() == question and answer.cell_type == "markdown" and id(answer) not in used:
                used.add(id(answer))
                answer.metadata["nbgrader"] = copy.deepcopy(rc.metadata["nbgrader"])
                break


# --- repair -----------------------------------------------------------------------------------------

def _kind(cell) -> str:
    if is_solution(cell):
        return "solution cell"
    return "test cell" if is_grade(cell) else "locked cell"


def _plain(cell):
    """A student's cell that nbgrader must not take for a graded one."""
    cell = copy.deepcopy(cell)
    cell.metadata.pop("nbgrader", None)
    return cell


def repair(nb, release) -> Repaired:
    """Every graded/locked cell of the release exactly once, with its release source, in release order.

    The student's answers (solution cells, matched by grade_id) are kept; so is
    every cell the student added, right after the release cell it followed. A
    missing solution cell comes back blank, as released (0 points for that
    step; the others are still graded). Locked cells get the release's source
    here, and nbgrader's OverwriteCells then puts the hidden tests back from
    the gradebook, as it does for every submission.
    """
    keys = [c for c in release.cells if _grade_id(c)]
    by_id = {_grade_id(c): c for c in keys}
    notes = []
    seen: dict[str, list[int]] = {}
    for i, cell in enumerate(nb.cells):
        if _grade_id(cell) in by_id:
            seen.setdefault(_grade_id(cell), []).append(i)
    chosen = {}
    for gid, places in seen.items():
        release_cell = by_id[gid]
        if is_solution(release_cell):
            chosen[places[-1]] = gid   # the last definition is the one Python keeps, and nbgrader grades
            if len(places) > 1:
                notes.append(f"solution cell {gid} appears {len(places)} times: the last copy is graded, "
                             f"the others are kept as ordinary cells")
        else:
            chosen[places[0]] = gid
            if len(places) > 1:
                notes.append(f"{_kind(release_cell)} {gid} appears {len(places)} times: duplicates removed")
    dropped = {i for gid, places in seen.items() if not is_solution(by_id[gid]) for i in places[1:]}

    head, after = [], {}
    current = head
    for i, cell in enumerate(nb.cells):
        if i in chosen:
            current = after.setdefault(chosen[i], [])
        elif i not in dropped:
            current.append(_plain(cell) if cell.get("metadata", {}).get("nbgrader") else cell)

    order = [chosen[i] for i in sorted(chosen)]
    expected = [g for g in (_grade_id(c) for c in keys) if g in seen]
    if order != expected:
        moved = [g for g, e in zip(order, expected) if g != e]
        notes.append(f"graded cells were out of order ({', '.join(moved[:4])}): put back in the release's order")

    cells, student_cells = list(head), []
    student = {gid: nb.cells[i] for i, gid in chosen.items()}
    for release_cell in keys:
        gid = _grade_id(release_cell)
        cell = copy.deepcopy(release_cell)
        if gid not in student:
            what = "put back blank (0 points for this step)" if is_solution(release_cell) else "put back"
            notes.append(f"{_kind(release_cell)} {gid} was missing: {what}")
        elif is_solution(release_cell):
            cell.source = student[gid].get("source", "")
            student_cells.append((gid, cell.source))
        elif student[gid].get("source", "") != release_cell.source:
            notes.append(f"{_kind(release_cell)} {gid} was edited: restored")
        cells.append(cell)
        cells += after.get(gid, [])
    fixed = copy.deepcopy(release)
    fixed.cells = cells
    _unique_ids(fixed)
    for i, cell in enumerate(fixed.cells):
        if cell.cell_type == "code" and not _grade_id(cell) and cell not in release.cells:
            student_cells.append((cell_name(cell, i), cell.source))
    return Repaired(fixed, notes, student_cells)


def _unique_ids(nb) -> None:
    """nbformat 4.5 wants a unique id per cell; student copies may repeat the release's, Colab's have none."""
    used = set()
    for cell in nb.cells:
        if not cell.get("id") or cell.id in used:
            cell.id = nbformat.v4.new_code_cell().id
        used.add(cell.id)


def cell_name(cell, index: int) -> str:
    """How a cell is named in reasons: its grade_id, or its position and first line."""
    gid = _grade_id(cell)
    if gid:
        return gid
    first = next((line.strip() for line in cell.get("source", "").splitlines() if line.strip()), "")
    return f"#{index + 1} ({first[:40]!r})" if first else f"#{index + 1}"


# --- running nbgrader -------------------------------------------------------------------------------

def scratch_for(sub: Submission, work: Path) -> Path:
    digest = hashlib.sha1(str(Path(sub.path).resolve()).encode()).hexdigest()[:8]
    return Path(work) / f"{sub.unit_id}--{sub.student_id}--{digest}"


def box_of(scratch: Path) -> Path:
    """The one folder the isolated kernel can write (its cwd and HOME); the judge's records land here."""
    return Path(scratch) / "box"


def record_env() -> str | None:
    """The judge's environment variable, when autograder.judge is there to read the records."""
    try:
        from . import judge
    except ImportError:
        return None
    return getattr(judge, "RECORD_ENV", None)


def kernel_io_folder() -> Path:
    """A new folder for the kernel's connection file and Unix sockets. Its path is short on purpose:
    a Unix socket's path may not pass 107 bytes, and scratch folders can be deep."""
    import tempfile

    base = "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="gk-", dir=base))


MEMO_TABLE = ".reference-memo"    # in the box: the judge's sealed reference results for the kernel
MEMO_ENV = "AUTOGRADER_KERNEL_MEMO"   # "0": every kernel computes every reference itself


def write_memo_table(path: Path, hidden_module: str) -> bool:
    """The reference results this process's judge computed for a unit's hidden tests (`hidden_module`),
    sealed (autograder/memo.py), at `path` for the kernel; False when there are none (no judge here yet,
    or a unit it has not judged)."""
    table = getattr(sys.modules.get("autograder.memo"), "MEMO", None)   # None until the judge is imported here
    if table is None or os.environ.get(MEMO_ENV, "1") == "0":
        return False
    return table.write_table(path, hidden_module) > 0


def write_kernelspec(scratch: Path, unit, limits: Limits, packages: Path | None = None,
                     kernel_io: Path | None = None, pids=None, server: "KernelServer | None" = None,
                     server_name: str = "") -> Path:
    """The grading kernel as a kernelspec in the scratch course's own JUPYTER_PATH; with `packages`
    (the unit's staged packages), the kernel runs inside bubblewrap (:func:`bwrap_argv`); with `server`,
    it is forked by that kernel server for its box `server_name` (:class:`KernelServer`)."""
    box = box_of(scratch)
    (box / "records").mkdir(parents=True, exist_ok=True)
    journal = box / ".journal.jsonl"
    inside = Path(WORK_IN_BOX) if packages is not None else box
    watch = [m for m in (f"course.checks.{unit.notebook}", f"autograder.hidden.{unit.notebook}")
             if importlib.util.find_spec(m) is not None]
    argv = [sys.executable, "-m", "autograder.kernel", "--memory-mb", str(limits.memory_mb),
            "--output-chars", str(limits.output_chars), "--journal", str(inside / ".journal.jsonl")]
    for module in watch:
        argv += ["--watch", module]
    if packages is not None:
        argv.append("--isolated")
    if write_memo_table(box / MEMO_TABLE, f"autograder.hidden.{unit.notebook}"):
        argv += ["--memo", str(inside / MEMO_TABLE)]
    env = {"MALLOC_ARENA_MAX": "2"}   # glibc's per-thread arenas would reserve address space
    if record_env():
        env[record_env()] = str(inside / "records")
    if server is not None:     # forked by the unit's kernel server (autograder/zygote.py), in namespaces of its own
        procs = str(pids.path / "cgroup.procs") if pids is not None else "-"
        argv = [sys.executable, "-I", "-S", str(ROOT / "autograder" / "zygote.py"), "connect", str(server.socket),
                procs, server_name, *[a for item in env.items() for a in item], "--", *argv[3:]]
    elif packages is not None:
        kernel_io = kernel_io or kernel_io_folder()
        wrap = bwrap_argv(box, packages, kernel_io)   # ends with "--"
        argv = wrap[:-1] + [a for key, value in env.items() for a in ("--setenv", key, value)] + ["--"] + argv
        # bubblewrap itself starts with an empty environment: the sandbox's PID 1 is bubblewrap, and its
        # /proc/1/environ would otherwise show the grader's environment to the kernel.
        argv = [shutil.which("env") or "/usr/bin/env", "-i"] + argv
    if pids is not None:   # the kernel and all it starts in a pids cgroup of its own (autograder/cgroups.py)
        argv = pids.wrap(argv)
    spec = {"argv": argv + ["-f", "{connection_file}"], "display_name": "Python 3 (grading sandbox)",
            "language": "python", "env": env}
    if packages is not None:
        # A cell past its time limit is interrupted by a message the kernel turns into SIGINT itself:
        # SIGINT sent from outside to the process group would end bubblewrap, and the kernel with it.
        spec["interrupt_mode"] = "message"
    folder = scratch / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    return journal


SERVER_ENV = "AUTOGRADER_KERNEL_SERVER"    # "0": every kernel starts in a bubblewrap sandbox of its own
SERVER_START_SECONDS = 300


class KernelServer:
    """A unit's kernel server (autograder/zygote.py): in this worker's bubblewrap sandbox for the unit's
    staged packages, it has imported numpy, TensorFlow, Keras, matplotlib and ipykernel once, and forks
    each submission's kernel into namespaces of its own. Its spool (/tmp/gz-*) holds the socket and,
    for the time of one kernel, that kernel's box and connection folder."""

    def __init__(self, packages: Path):
        import tempfile

        self.packages = Path(packages)
        remove_stale_spools()
        self.spool = Path(tempfile.mkdtemp(prefix=f"gz-{os.getpid()}-", dir="/tmp"))
        self.socket = self.spool / "server.sock"
        self.log = Path(str(self.spool) + ".log")
        self.count = 0
        home = self.spool / "home"
        home.mkdir()
        # --as-pid-1: the server is PID 1 of the sandbox (no bubblewrap init, whose /proc/1/root would show a
        # kernel the server's mounts): not dumpable, and deaf, inside its PID namespace, to SIGKILL and SIGSTOP.
        wrap = bwrap_argv(home, self.packages, self.spool)
        argv = [shutil.which("env") or "/usr/bin/env", "-i", wrap[0], "--as-pid-1", *wrap[1:],
                sys.executable, "-m", "autograder.zygote", "serve", str(self.socket)]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                            start_new_session=True, preexec_fn=die_with_parent)
        self.problem: str | None = None
        self._ready: bool | None = None
        self._lock = threading.Lock()
        self._ready_lock = threading.Lock()

    def ready(self, seconds: float = SERVER_START_SECONDS) -> bool:
        """Whether the server is up (waits for its first line once); False with `problem` set if not."""
        with self._ready_lock:
            return self._wait_ready(seconds)

    def _wait_ready(self, seconds: float) -> bool:
        if self._ready is None:
            import select

            line = b""
            if select.select([self.process.stdout], [], [], seconds)[0]:
                line = self.process.stdout.readline()
            self._ready = line.strip() == b"ready"
            if not self._ready:
                said = line.decode(errors="replace").strip() or _last_line(self.log.read_text(errors="replace"))
                self.problem = f"the kernel server did not start ({said or 'no message'})"
                self.close()
        return bool(self._ready) and self.process.poll() is None

    def acquire(self) -> bool:
        """Take the server for one kernel (False while another thread's kernel has it: a server forks one
        kernel at a time, so that no kernel shares its PID namespace with another). The server, stopped or
        not, is sent SIGCONT: a kernel that stopped it cannot stall the next one."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            os.killpg(self.process.pid, signal.SIGCONT)
        except (ProcessLookupError, PermissionError):
            pass
        return True

    def release(self) -> None:
        self._lock.release()

    def new_box(self) -> tuple[str, Path, Path]:
        """A fresh name in the spool, with its (empty) box and connection folder."""
        self.count += 1
        name = f"k{self.count}"
        for folder in ("box", "io"):
            (self.spool / name / folder).mkdir(parents=True)
        return name, self.spool / name / "box", self.spool / name / "io"

    def close(self) -> None:
        if self.process.poll() is None:
            _kill_group(self.process.pid)
            self.process.wait()
        remove_tree(self.spool)
        self.log.unlink(missing_ok=True)


_servers: dict[str, KernelServer] = {}
_server_problems: list[str] = []
_servers_lock = threading.Lock()
MAX_SERVERS = 2     # per worker: a server holds TensorFlow (0.6 GB resident, 0.23 GB of it its own); the oldest goes


def remove_stale_spools(tmp: Path = Path("/tmp")) -> list[str]:
    """Remove the spools (and logs) of kernel servers whose worker is gone (killed: no exit handler ran)."""
    removed = []
    for path in tmp.glob("gz-*-*"):
        try:
            owner = int(path.name.split("-")[1].split(".")[0])
            os.kill(owner, 0)
            continue
        except (ValueError, IndexError):
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue           # another user's worker, alive
        if path.is_dir():
            remove_tree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.name)
    return removed


def kernel_server(packages: Path) -> KernelServer | None:
    """This process's kernel server for a unit's staged packages (started on first use, started again if
    it died); None where there is none: turned off, /tmp not usable, or it could not start here (once)."""
    if os.environ.get(SERVER_ENV, "1") == "0" or _server_problems or not os.access("/tmp", os.W_OK):
        return None
    with _servers_lock:    # the threads of one worker (a Dask worker's, the tests') share its servers
        return _kernel_server(str(Path(packages).resolve()), packages)


def _kernel_server(key: str, packages: Path) -> KernelServer | None:
    if _server_problems:
        return None
    server = _servers.pop(key, None)
    if server is not None:
        _servers[key] = server       # the most recently used last
    if server is not None and not server.ready():
        _servers.pop(key).close()
        server = None
    if server is None:
        idle = [k for k, s in _servers.items() if not s._lock.locked()]
        for old in idle[: max(0, len(_servers) - MAX_SERVERS + 1)]:
            _servers.pop(old).close()
        server = _servers[key] = KernelServer(packages)
        if not server.ready():
            _server_problems.append(server.problem or "the kernel server did not start")
            print(f"grade-class: {_server_problems[0]}: each kernel starts in a bubblewrap sandbox of its own",
                  file=sys.stderr, flush=True)
            del _servers[key]
            return None
    return server


def close_kernel_servers() -> None:
    for server in list(_servers.values()):
        server.close()
    _servers.clear()


atexit.register(close_kernel_servers)
# A pool's worker process ends with os._exit, after multiprocessing's finalizers and without atexit handlers.
__import__("multiprocessing.util").util.Finalize(None, close_kernel_servers, exitpriority=10)


class IpcKernelManager(AsyncKernelManager):
    """The kernel's sockets as Unix sockets in the runtime folder: an isolated kernel has no network."""

    def __init__(self, *args, **kwargs):
        import uuid

        from jupyter_core.paths import jupyter_runtime_dir

        # Absolute paths in the runtime folder (JUPYTER_RUNTIME_DIR), which the sandbox binds at the same path.
        base = os.path.join(jupyter_runtime_dir(), f"k{uuid.uuid4().hex[:8]}")
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("connection_file", base + ".json")
        kwargs.setdefault("ip", base + "-ipc")
        super().__init__(*args, **kwargs)


class IsolatedExecute(Execute):
    """nbgrader's Execute preprocessor, talking to the kernel over Unix sockets."""

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = IpcKernelManager
        super().__init__(*args, **kwargs)


IPC_CONFIG = """\
# Written by autograder.sandbox: the grading kernel runs in bubblewrap without network.
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute
from autograder.sandbox import IsolatedExecute
c.Autograde.autograde_preprocessors = [IsolatedExecute if p is Execute else p
                                       for p in Autograde.class_traits()["autograde_preprocessors"].make_dynamic_default()]
"""


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the process (thread) that started it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _nbgrader_preexec() -> None:
    die_with_parent()


def run_nbgrader(scratch: Path, unit_id: str, student: str, limits: Limits,
                 isolated: bool = False, kernel_io: Path | None = None) -> tuple[int | None, str]:
    """`nbgrader autograde UNIT --student ID`; (return code or None if killed for time, its log).

    nbgrader runs in its own session and dies with the worker that started it; an isolated kernel
    talks to it over Unix sockets in `kernel_io` (it has no network)."""
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ,
               PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]),
               JUPYTER_PATH=os.pathsep.join([str(scratch / "jupyter"), os.environ.get("JUPYTER_PATH", "")]),
               JUPYTER_RUNTIME_DIR=str(kernel_io or scratch / "kernel-io"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [str(Path(bindir) / "nbgrader"), "autograde", unit_id, "--student", student, "--force",
           f"--CourseDirectory.root={scratch}", f"--CourseDirectory.db_url={sqlite_url(scratch)}",
           f"--Execute.timeout={limits.cell_seconds}", f"--Execute.kernel_name={KERNEL_NAME}"]
    if isolated:
        config = scratch / "jupyter-config"
        config.mkdir(exist_ok=True)
        (config / "nbgrader_config.py").write_text(IPC_CONFIG)
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(config), os.environ.get("JUPYTER_CONFIG_PATH", "")])
    log = scratch / "nbgrader.log"
    server = nbgrader_forkserver()
    if server is not None:
        code = _run_forked(server, cmd, env, log, limits.notebook_seconds)
    else:
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_nbgrader_preexec)
            try:
                code = proc.wait(timeout=limits.notebook_seconds)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                code = None
    return code, log.read_text(errors="replace")


# nbgrader's own start (importing nbgrader, nbconvert, SQLAlchemy, traitlets...) costs seconds, the same for
# every submission. A process that grades many submissions imports it once, in a fork server, and each
# `nbgrader autograde` is a fresh fork of it: the same command line, run by the same code as the CLI, in a
# new process with its own session, environment, working folder and log, killed with its group for time.
NBGRADER_PRELOAD = ["nbgrader.apps.nbgraderapp", "nbgrader.converters.autograde", "nbgrader.preprocessors",
                    "nbclient", "jupyter_client.manager", "autograder.sandbox"]
FORK_ENV = "AUTOGRADER_NBGRADER_FORK"   # "0": start the nbgrader CLI for every submission instead


@functools.cache
def nbgrader_forkserver():
    """The multiprocessing context of this process's nbgrader fork server, or None where there is none
    (no fork server on this platform, a daemonic process that may not start children, or turned off)."""
    import multiprocessing

    if os.environ.get(FORK_ENV, "1") == "0" or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    if multiprocessing.current_process().daemon:
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(NBGRADER_PRELOAD)
    return context


def start_nbgrader_forkserver() -> None:
    """Start the fork server now (it imports nbgrader), rather than with the first nbgrader run."""
    server = nbgrader_forkserver()
    if server is not None:
        proc = server.Process(target=_nothing, daemon=False)
        proc.start()
        proc.join()


def _nothing() -> None:
    pass


def _run_forked(context, cmd: list[str], env: dict, log: Path, seconds: float) -> int | None:
    """`cmd` (nbgrader's command line) in a fork of the fork server; its exit code, None when killed for time."""
    proc = context.Process(target=_nbgrader_in_fork, args=(cmd[1:], env, str(log)), daemon=False)
    proc.start()
    proc.join(timeout=seconds)
    if proc.is_alive():
        _kill_group(proc.pid)
        proc.join()
        return None
    return proc.exitcode


def _drop_server_pipes() -> None:
    """Close, in a fork, the write ends that multiprocessing hands it of the fork server's and the resource
    tracker's 'alive' pipes: those keep the server running while any fork lives, and the fork dies only with
    the server, so a worker killed mid-submission would leave both behind. Closed, the server ends with the
    worker (the pipe's last writer) and the fork, nbgrader, with the server."""
    from multiprocessing import forkserver, resource_tracker

    for holder, attr in ((forkserver._forkserver, "_forkserver_alive_fd"), (resource_tracker._resource_tracker, "_fd")):
        fd = getattr(holder, attr, None)
        if isinstance(fd, int):
            try:
                os.close(fd)
            except OSError:
                pass
            setattr(holder, attr, None)


def _nbgrader_in_fork(argv: list[str], env: dict, log: str) -> None:
    """What `nbgrader ARGV` does, run in a fork of the fork server (nbgrader already imported)."""
    os.setsid()            # its own session: the time limit kills nbgrader and what it started, together
    _drop_server_pipes()
    die_with_parent()      # and it dies with the fork server, which dies with the worker
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(ROOT)
    for entry in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    code = 0
    try:
        from nbgrader.apps.nbgraderapp import main

        sys.argv = ["nbgrader", *argv]
        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 (as the CLI would: the traceback in the log, a failing exit code)
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def processes_of(scratch: Path) -> list[int]:
    """Host pids whose command line names this scratch folder (nbgrader, bubblewrap, a kernel)."""
    needle = str(Path(scratch).resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_leftovers(scratch: Path, events: list[dict]) -> None:
    """Nothing of a submission outlives its grading: bubblewrap's PID namespace takes every process the
    kernel started with it; an unisolated kernel is killed with its session."""
    for pid in processes_of(scratch):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    kill_kernels(events)


def kill_kernels(events: list[dict]) -> None:
    """An unisolated kernel runs in its own session: kill it (and what it started) if it outlived nbgrader."""
    for event in events:
        if event.get("event") == "kernel" and not event.get("isolated"):
            try:
                cmdline = Path(f"/proc/{event['pid']}/cmdline").read_bytes()
            except OSError:
                continue
            if b"autograder.kernel" in cmdline:
                _kill_group(event["pid"])


def drop_links(folder: Path) -> None:
    """Remove every symbolic link and special file under `folder`: what the kernel left in its
    writable folder is read by the grader only as plain files inside it (a link could point at
    anything on the grader's side)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            info = path.lstat()
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                path.unlink()


def read_journal(path: Path) -> list[dict]:
    if not path.is_file() or path.is_symlink():
        return []
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass   # a line cut short by a killed kernel
    return events


def running_cell(events: list[dict]) -> str | None:
    """Source of the cell that started and never ended (the one running when the kernel stopped)."""
    running = None
    for event in events:
        if event.get("event") == "start":
            running = event["source"]
        elif event.get("event") == "end":
            running = None
    return running


def name_source(source: str | None, nb) -> str:
    """The name of the notebook cell that ran ``source`` (locked cells ran with hidden tests added)."""
    if source is None:
        return "no cell (between cells)"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() and (
                cell.source == source or (_grade_id(cell) and source.startswith(cell.source.rstrip()))):
            return cell_name(cell, i)
    first = next((line for line in source.splitlines() if line.strip()), "")
    return f"({first[:40]!r})"


# --- reading the results ----------------------------------------------------------------------------

def _errors(cell) -> list[tuple[str, str]]:
    return [(out.get("ename", ""), (out.get("evalue", "") or "").strip())
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def _first_error(cell) -> tuple[str, str] | None:
    errors = _errors(cell)
    return errors[0] if errors else None


def _message(error: tuple[str, str] | None) -> str:
    if error is None:
        return ""
    ename, evalue = error
    first = evalue.splitlines()[0] if evalue else ""
    return first if ename == "CheckFailed" else f"{ename}: {first}".rstrip(": ")


def cell_scores(scratch: Path, unit, student: str) -> dict[str, tuple[float, float]]:
    """nbgrader's own (auto_score, max_score) per grade cell, from the scratch gradebook."""
    with Gradebook(sqlite_url(scratch)) as gb:
        nb = gb.find_submission_notebook(unit.notebook, unit.id, student)
        return {g.name: (float(g.auto_score or 0), float(g.max_score)) for g in nb.grades}


def auto_scores(sub: Submission, outcome: Outcome, work: Path) -> dict[str, float]:
    """What to copy into the real gradebook per grade cell (test cell grade_id -> auto_score):
    nbgrader's own scores from the scratch gradebook when GRADED, 0 for every cell otherwise."""
    unit = syllabus.load().unit(sub.unit_id)
    scratch = scratch_for(sub, Path(work))
    zero = {_grade_id(c): 0.0 for c in release_of(unit, scratch).cells if is_grade(c) and not is_written(c)}
    if outcome.status != GRADED:
        return zero   # written answers are not test cells: a person grades them
    return {**zero, **{gid: score for gid, (score, _) in cell_scores(scratch, unit, sub.student_id).items()
                       if gid in zero}}


def steps_of(graded, release, scores: dict[str, tuple[float, float]],
             messages: dict[str, str] | None = None) -> list[StepResult]:
    """One StepResult per graded step, with each test cell's score (what the gradebook gets).
    `messages` (test cell grade_id -> why it lost points) come from the judge when there is one."""
    from nbgrader.utils import compute_checksum

    errors = {_grade_id(c): _first_error(c) for c in graded.cells if _grade_id(c)} if graded else {}
    answers = {_grade_id(c): c for c in graded.cells if _grade_id(c) and is_solution(c)} if graded else {}
    steps = []
    for step, tests in test_cells_by_step(release).items():
        ids = [_grade_id(c) for c in tests]
        cells = {g: float(scores.get(g, (0.0, 0.0))[0]) for g in ids}
        points = sum(cells.values())
        max_points = sum(float(c.metadata.nbgrader.get("points", 0)) for c in tests)
        message = "" if points >= max_points else next(
            (m for g in ids for m in [(messages or {}).get(g) or (_message(errors[g]) if errors.get(g) else "")]
             if m), "no points")
        answer = answers.get(step)
        untouched = answer is not None and answer.metadata.nbgrader.get("checksum") == compute_checksum(answer)
        steps.append(StepResult(step, points, max_points, message, cells, untouched))
    return steps


NO_RECORD = "not graded: no record"


def judge_scores(unit, release, box: Path, kernel_scores: dict[str, tuple[float, float]], submitted=None
                 ) -> tuple[dict[str, tuple[float, float]], dict[str, str]] | None:
    """Test cell scores from autograder.judge when it is there: it reads the plain records the kernel
    wrote into box/records, in this process (which never runs student code), after the sandbox is gone.
    A verdict without a score (a step the judge leaves to the kernel) keeps nbgrader's. None without
    a judge."""
    _warmed(unit)
    try:
        from . import judge
    except ImportError:
        return None
    answers = judge.answer_sources(submitted) if submitted is not None else None
    with _judge_lock:   # the judge replays checks in this process: one submission's at a time
        verdicts = judge.judge_notebook(unit.id, release, Path(box) / "records", answers)
    scores = dict(kernel_scores)
    messages = {}
    for gid, verdict in verdicts.items():
        if verdict.score is None:
            continue
        scores[gid] = (float(verdict.score), float(verdict.max_score))
        # A test cell that stopped before its hidden test (a visible check failed, "not implemented yet")
        # leaves no record: the judge scores 0, and the cell's own error, which says what is wrong, is the
        # message. A cell with no record that the kernel passed gets the judge's word.
        kernel_lost = gid in kernel_scores and kernel_scores[gid][0] < kernel_scores[gid][1]
        if verdict.message and not (verdict.message.startswith(NO_RECORD) and kernel_lost):
            messages[gid] = verdict.message
    return scores, messages


_judge_lock = threading.Lock()
_warming: dict = {}
_warming_lock = threading.Lock()


def warm_judge(unit) -> None:
    """Import the judge and the unit's hidden tests in a thread while nbgrader runs (this process only
    waits for it then): the first submission of each unit a process grades no longer waits for them.
    One thread per unit and process; :func:`judge_scores` waits for it, so no two threads import them
    at once."""
    import threading

    def load():
        try:
            from . import judge

            judge.hidden_calls(unit.id)
            importlib.import_module(f"autograder.hidden.{unit.notebook}")
        except Exception:  # noqa: BLE001 (judge_scores imports them again and reports what fails)
            pass

    with _warming_lock:
        if unit.id not in _warming:
            _warming[unit.id] = threading.Thread(target=load, name=f"warm-judge-{unit.id}", daemon=True)
            _warming[unit.id].start()


def _warmed(unit) -> None:
    with _warming_lock:
        thread = _warming.get(unit.id)
    if thread is not None:
        thread.join()


def problem_in_outputs(graded, limits: Limits) -> tuple[str, str] | None:
    """(status, reason) for a cell that timed out or ran out of memory, as the graded notebook shows.

    A timed-out cell shows the KeyboardInterrupt of nbgrader's interrupt first, then CellTimeoutError.
    """
    for i, cell in enumerate(graded.cells if graded else []):
        for error in _errors(cell):
            if error[0] == "CellTimeoutError":
                return TIMEOUT, (f"cell {cell_name(cell, i)} ran past the time limit of "
                                 f"{limits.cell_seconds} s per cell")
            if error[0] in MEMORY_ERRORS or "bad_alloc" in error[1] or (
                    error[0] == "OSError" and "Cannot allocate memory" in error[1]):   # mmap past the limit
                return MEMORY_LIMIT, (f"cell {cell_name(cell, i)} went over the memory limit of "
                                      f"{limits.memory_mb} MB ({_message(error)[:150]})")
    return None


def _last_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip() and not line.startswith("[")]
    return lines[-1][:300] if lines else "(no output)"


def classify(code, log, events, graded, repaired, findings, limits) -> tuple[str, str]:
    """The status and reason, most serious first."""
    tampered = [e for e in events if e.get("event") == "tamper"]
    if findings:
        return TAMPERING, "code that changes the checking: " + "; ".join(str(f) for f in findings[:3])
    if tampered:
        what = "; ".join(f"{e['what']} (by cell {name_source(e['source'], repaired.nb)})" for e in tampered[:3])
        return TAMPERING, f"the checking code was changed while grading: {what}"
    if code is None:
        running = running_cell(events)
        where = (f"cell {name_source(running, repaired.nb)} was running" if running is not None
                 else "between two cells")
        return TIMEOUT, f"the notebook ran past its time limit of {limits.notebook_seconds} s ({where})"
    if code != 0 and ("DeadKernelError" in log or "Kernel died" in log):
        return KERNEL_DIED, (f"the grading kernel died while running cell "
                             f"{name_source(running_cell(events), repaired.nb)} (os._exit, a crash or a signal)")
    problem = problem_in_outputs(graded, limits)
    if problem:
        return problem
    if code != 0 or graded is None:
        return GRADER_ERROR, f"nbgrader autograde failed ({code}): {_last_line(log)}"
    return GRADED, ""


# --- the one public entry point ---------------------------------------------------------------------

def grade_one(sub: Submission, template: Path, work: Path, limits: Limits = Limits(),
              timings: dict | None = None) -> Outcome:
    """Grade one submission in its own scratch copy of the template (own gradebook), with the real
    `nbgrader autograde UNIT --student ID` as a subprocess. Never raises for anything the submission
    does: every failure becomes an Outcome with a status from autograder.records and a clear reason.
    `timings`, when given, gets the seconds each phase took (see :class:`Phases`)."""
    start = time.perf_counter()
    try:
        outcome = _grade(sub, Path(template), Path(work), limits, Phases(timings))
    except Rejection as rejected:
        outcome = _outcome(sub, rejected.status, 0.0, _max_score(sub, Path(template)), reason=rejected.reason)
    except Exception as err:  # our own bug: the batch goes on, the instructor regrades after a fix
        last = traceback.format_exception_only(type(err), err)[-1].strip()
        outcome = _outcome(sub, GRADER_ERROR, 0.0, _max_score(sub, Path(template)),
                           reason=f"the grader itself failed: {last}")
    outcome.seconds = time.perf_counter() - start
    return outcome


def _outcome(sub: Submission, status: str, score: float, max_score: float, **kw) -> Outcome:
    return Outcome(sub.student_id, sub.unit_id, status, score, max_score, original_name=sub.original_name, **kw)


def _max_score(sub: Submission, template: Path) -> float:
    try:
        unit = syllabus.load().unit(sub.unit_id)
        return automatic_max(release_of(unit, template))   # written answers are graded by a person
    except Exception:
        return 0.0


class Phases:
    """Where one submission's grading time goes, phase by phase (for ``make bench``). The nbgrader run
    is split by the grading kernel's journal: until the kernel started (nbgrader's start, bubblewrap,
    the kernel's Python), until its first cell (ipykernel's start), the cells (the notebook's imports of
    Keras and TensorFlow included), and after the last cell (nbgrader writing its results)."""

    def __init__(self, timings: dict | None):
        self.timings = timings
        self.last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now

    def split_nbgrader(self, started: float, ended: float, events: list[dict]) -> None:
        """Replace the whole nbgrader run (wall clock `started` to `ended`) by its parts."""
        if self.timings is None:
            return
        kernel = next((e["t"] for e in events if e.get("event") == "kernel" and "t" in e), None)
        starts = [e["t"] for e in events if e.get("event") == "start" and "t" in e]
        ends = [e["t"] for e in events if e.get("event") == "end" and "t" in e]
        if kernel is None or not starts or not ends or not started <= kernel <= starts[0] <= ends[-1] <= ended:
            return   # the kernel never started, or the clocks disagree: the run stays one phase
        total = self.timings.pop("nbgrader autograde", 0.0)
        parts = {"nbgrader start, sandbox, kernel process": kernel - started,
                 "kernel start (ipykernel)": starts[0] - kernel,
                 "notebook cells": ends[-1] - starts[0],
                 "nbgrader after the last cell": ended - ends[-1]}
        scale = total / max(ended - started, 1e-9)   # wall-clock parts, in the monotonic clock's total
        for name, seconds in parts.items():
            self.timings[name] = self.timings.get(name, 0.0) + seconds * scale


def _grade(sub: Submission, template: Path, work: Path, limits: Limits, phases: Phases | None = None) -> Outcome:
    phases = phases or Phases(None)
    unit = syllabus.load().unit(sub.unit_id)
    if not SAFE_ID.fullmatch(sub.student_id):
        raise Rejection(GRADER_ERROR, f"student id {sub.student_id!r} cannot name a folder for nbgrader")
    release = release_of(unit, template)
    max_score = _max_score(sub, template)
    nb = load_notebook(sub.path)
    stripped_note = None
    if not any(c.get("metadata", {}).get("nbgrader") for c in nb.cells):
        nb, stripped_note = reattach(nb, release)
    check_unit(nb, unit, template)
    repaired = repair(nb, release)
    if stripped_note:
        repaired.notes.insert(0, stripped_note)
    context = [c.source for c in release.cells if c.cell_type == "code" and is_locked(c)]
    findings = tamper.scan(repaired.student_cells, context)
    phases.mark("read, check and repair the notebook")

    warm_judge(unit)
    isolated = use_isolation(limits)
    scratch = scratch_for(sub, work)
    shutil.rmtree(scratch, ignore_errors=True)
    copy_course(template, scratch)
    wanted = isolated and (limits.server_units is None or unit.id in limits.server_units)
    server = kernel_server(packages_of(template, unit.id)) if wanted else None
    if server is not None and not server.acquire():
        server = None        # another thread's kernel has it: this one starts in a bubblewrap of its own
    if server is not None:   # the box lives in the server's spool while the kernel runs (moved back after)
        server_name, spool_box, kernel_io = server.new_box()
        box_of(scratch).symlink_to(spool_box)
    else:
        server_name, spool_box, kernel_io = "", None, kernel_io_folder()
    pids = cgroups.PidsLimit.create(limits.processes)
    try:
        journal = write_kernelspec(scratch, unit, limits, packages_of(template, unit.id) if isolated else None,
                                   kernel_io, pids, server, server_name)
        dest = scratch / "submitted" / sub.student_id / unit.id
        dest.mkdir(parents=True)
        nbformat.write(repaired.nb, dest / unit.filename)
        phases.mark("scratch course")
        started = time.time()
        code, log = run_nbgrader(scratch, unit.id, sub.student_id, limits, isolated=isolated, kernel_io=kernel_io)
        ended = time.time()
        phases.mark("nbgrader autograde")
        events = read_journal(journal)
        kill_leftovers(scratch, events)
    finally:
        if pids is not None:
            refused = pids.refused()
            pids.close()
        shutil.rmtree(kernel_io, ignore_errors=True)
        if spool_box is not None:
            server.release()
            box_of(scratch).unlink()
            shutil.move(str(spool_box), str(box_of(scratch)))
            remove_tree(spool_box.parent)
    drop_links(box_of(scratch))
    events = read_journal(journal)
    phases.split_nbgrader(started, ended, events)
    graded_path = scratch / "autograded" / sub.student_id / unit.id / unit.filename
    graded = nbformat.read(graded_path, as_version=4) if code == 0 and graded_path.is_file() else None
    scores = cell_scores(scratch, unit, sub.student_id) if graded is not None else {}
    status, reason = classify(code, log, events, graded, repaired, findings, limits)
    if pids is not None and refused:
        repaired.notes.append(f"the kernel reached its limit of {limits.processes} processes and threads at once: "
                              f"{refused} more were refused")
    phases.mark("read back nbgrader's results")
    messages = {}
    if graded is not None and status == GRADED:
        judged = judge_scores(unit, release, box_of(scratch), scores, repaired.nb)
        if judged is not None:
            scores, messages = judged
    phases.mark("judge")
    steps = steps_of(graded, release, scores, messages)
    if status != GRADED:
        steps = [StepResult(s.step, 0.0, s.max_points, s.message, {g: 0.0 for g in s.cells}, s.untouched)
                 for s in steps]
    score = sum(s.points for s in steps)
    return _outcome(sub, status, score, max_score, reason=reason, steps=steps, notes=repaired.notes,
                    autograded=graded_path if graded is not None else None,
                    written=written_answers(repaired.nb, release))
