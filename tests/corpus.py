"""A corpus of unit-01 submissions as they really arrive, each with the outcome it must get.

Built from the release (exercises/) and the instructor's answers (solutions/)
the way a student would make them: answers typed into solution cells, cells
added, edited, deleted or moved, a Colab download, and files that are no
notebook at all. Other tests reuse these builders (intake, the class runner).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import ROOT, cgroups, records
from autograder.mutants import for_notebook
from autograder.mutate import fill_in_answers, solution_sources
from course import syllabus

UNIT = syllabus.load().unit("01_rnn_by_hand")
MAX_SCORE = 13.0
POINTS = {"rnn_step": 2, "rnn_forward": 2, "softmax": 2, "next_token_probs": 1, "teacher_forcing_pairs": 1,
          "sequence_cross_entropy": 2, "rnn_lm_param_count": 1, "simple_rnn_from_weights": 2}
# Written answers, graded by a person: not in MAX_SCORE (the automatic points), reported beside it.
WRITTEN = {"written_parameter_sharing": 2}


@dataclass
class Case:
    name: str
    status: str
    score: float
    content: bytes                              # the file as submitted
    notes: list[str] = field(default_factory=list)    # substrings expected among Outcome.notes
    reason: str = ""                            # substring expected in Outcome.reason
    messages: dict[str, str] = field(default_factory=dict)   # step -> substring of its message
    filename: str = UNIT.filename

    def write(self, folder: Path) -> Path:
        path = Path(folder) / self.name / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.content)
        return path


def release() -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "exercises" / UNIT.id / UNIT.filename, as_version=4)


def answers() -> dict[str, str]:
    return solution_sources(nbformat.read(ROOT / "solutions" / UNIT.id / UNIT.filename, as_version=4))


def answered(skip: tuple[str, ...] = (), **replace: str) -> nbformat.NotebookNode:
    """The release with the instructor's answers typed in (but ``skip``), some replaced by ``replace``."""
    nb = release()
    fill_in_answers(nb, {**answers(), **replace}, skip=skip)
    return nb


def dump(nb) -> bytes:
    return nbformat.writes(nb).encode()


def index_of(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def with_cell(nb, after: str, source: str) -> nbformat.NotebookNode:
    """A student's own code cell right after the cell ``after``."""
    nb.cells.insert(index_of(nb, after) + 1, nbformat.v4.new_code_cell(source))
    return nb


def mutant_source(step: str, description_part: str) -> str:
    return next(m.source for m in for_notebook(UNIT.notebook) if m.step == step and description_part in m.description)


def colab_download(nb) -> bytes:
    """What "File > Download .ipynb" gives from Colab: its metadata, its kernelspec, outputs, no cell ids."""
    nb = copy.deepcopy(nb)
    nb.metadata["colab"] = {"provenance": [], "name": "Copy of rnn_by_hand.ipynb", "gpuType": "T4"}
    nb.metadata["accelerator"] = "GPU"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    data = json.loads(nbformat.writes(nb))
    data["nbformat_minor"] = 0
    for i, cell in enumerate(data["cells"]):
        cell.pop("id", None)
        cell["metadata"]["id"] = f"colabcell{i:03d}"
        if cell["cell_type"] == "code":
            cell["metadata"]["colab"] = {"base_uri": "https://localhost:8080/"}
            cell["execution_count"] = i
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["✓ ran on Colab\n"]}]
    return json.dumps(data, indent=2).encode()


# --- the cases -----------------------------------------------------------------------------------

def good_cases() -> list[Case]:
    wrong_softmax = mutant_source("softmax", "no max shift")
    return [
        Case("solution", records.GRADED, MAX_SCORE, dump(answered())),
        Case("blank", records.GRADED, 0.0, dump(release()),
             messages={"rnn_step": "not implemented yet"}),
        Case("partial", records.GRADED, 6.0,
             dump(answered(skip=("next_token_probs", "teacher_forcing_pairs", "sequence_cross_entropy",
                                 "rnn_lm_param_count", "simple_rnn_from_weights")))),
        Case("wrong_softmax", records.GRADED,   # next_token_probs uses the student's softmax on large logits
             MAX_SCORE - POINTS["softmax"] - POINTS["next_token_probs"],
             dump(answered(softmax=wrong_softmax)),
             messages={"softmax": "overflows", "next_token_probs": "use your stable softmax"}),
        Case("colab_copy", records.GRADED, MAX_SCORE, colab_download(answered()),
             filename="Copy of rnn_by_hand.ipynb"),
    ]


def bad_file_cases() -> list[Case]:
    return [
        Case("empty", records.INVALID_NOTEBOOK, 0.0, b"", reason="empty"),
        Case("invalid_json", records.INVALID_NOTEBOOK, 0.0, dump(answered())[:-200], reason="not valid JSON"),
        Case("not_a_notebook", records.INVALID_NOTEBOOK, 0.0, json.dumps({"cells": "none", "name": "x"}).encode(),
             reason="not a Jupyter notebook"),
        Case("wrong_unit", records.WRONG_UNIT, 0.0,
             (ROOT / "exercises" / "02_bptt_and_gradients" / "bptt_and_gradients.ipynb").read_bytes(),
             reason="02_bptt_and_gradients"),
    ]


def repaired_cases() -> list[Case]:
    mangled = answered()
    mangled.cells[index_of(mangled, "test_next_token_probs")].source = "print('✓ next_token_probs: 9 checks passed')"
    test_forward = mangled.cells.pop(index_of(mangled, "test_rnn_forward"))
    mangled.cells.append(test_forward)                                   # moved to the end
    duplicate = copy.deepcopy(mangled.cells[index_of(mangled, "test_rnn_step")])
    duplicate.id = "copy-of-test-rnn-step"                               # Jupyter gives a copy its own id
    mangled.cells.insert(index_of(mangled, "test_rnn_step"), duplicate)
    del mangled.cells[index_of(mangled, "test_softmax")]                 # deleted
    no_solution = answered()
    del no_solution.cells[index_of(no_solution, "teacher_forcing_pairs")]
    return [
        Case("test_cells_mangled", records.GRADED, MAX_SCORE, dump(mangled),
             notes=["test cell test_next_token_probs was edited: restored", "test cell test_softmax was missing: "
                    "put back", "test cell test_rnn_step appears 2 times", "out of order"]),
        Case("solution_cell_deleted", records.GRADED, MAX_SCORE - POINTS["teacher_forcing_pairs"], dump(no_solution),
             notes=["solution cell teacher_forcing_pairs was missing: put back blank"],
             messages={"teacher_forcing_pairs": "not implemented yet"}),
    ]


def runaway_cases() -> list[Case]:
    """Code that does not stop, kills its kernel, eats memory or floods output."""
    return [
        Case("infinite_loop", records.TIMEOUT, 0.0,
             dump(with_cell(answered(), "rnn_lm_param_count", "while True:\n    pass")),
             reason="ran past the time limit"),
        Case("sys_exit", records.GRADED, MAX_SCORE,
             dump(with_cell(answered(), "softmax", "import sys\nsys.exit('bye')"))),
        Case("os_exit", records.KERNEL_DIED, 0.0,
             dump(with_cell(answered(), "rnn_step", "import os\nos._exit(1)")), reason="os._exit"),
        Case("segfault", records.KERNEL_DIED, 0.0,
             dump(with_cell(answered(), "rnn_step", "import ctypes\nctypes.string_at(0)")), reason="ctypes"),
        Case("memory_hog", records.MEMORY_LIMIT, 0.0,
             dump(with_cell(answered(), "rnn_step", "import numpy as np\nx = np.ones((40_000, 40_000))")),
             reason="memory limit"),
        Case("output_flood", records.GRADED, MAX_SCORE,
             dump(with_cell(with_cell(answered(), "rnn_step", "for i in range(10**6):\n    print('x' * 100)"),
                            "softmax", "print('y' * 10**8)\n'z' * 10**7"))),
    ]


def notebook_timeout_case() -> Case:
    """A loop that never lets a cell time out on its own terms: the whole run is killed."""
    return Case("notebook_timeout", records.TIMEOUT, 0.0,
                dump(with_cell(answered(), "rnn_step", "import time\nwhile True:\n    time.sleep(0.1)")),
                reason="notebook ran past its time limit")


def tampering_cases() -> list[Case]:
    always_equal = ("class Anything:\n    def __eq__(self, other):\n        return True\n"
                    "    __hash__ = object.__hash__\n\n"
                    "def rnn_lm_param_count(vocab_size, units, embedding_dim=None):\n    return Anything()\n")
    fake_success = ("def teacher_forcing_pairs(tokens):\n"
                    "    print('✓ teacher_forcing_pairs: 12 checks passed')\n    return tokens, tokens\n"
                    "print('✓ teacher_forcing_pairs: 12 checks passed')\n")
    hidden_patch = ("b = __import__('built' + 'ins')\n"
                    "getattr(b, 'set' + 'attr')(np, 'allclose', lambda *a, **k: True)\n")
    return [
        Case("patch_allclose", records.TAMPERING, 0.0,
             dump(answered(softmax="np.allclose = lambda *a, **k: True\n" + mutant_source("softmax", "no max shift"))),
             reason="cell softmax, line 1: assigns to numpy.allclose"),
        Case("patch_at_runtime", records.TAMPERING, 0.0,
             dump(with_cell(answered(sequence_cross_entropy="def sequence_cross_entropy(logits, targets):\n"
                                                            "    return 0.0\n"),
                            "sequence_cross_entropy", hidden_patch)),
             reason="numpy.allclose was replaced"),
        Case("always_equal_and_fake_success", records.GRADED,
             MAX_SCORE - POINTS["rnn_lm_param_count"] - POINTS["teacher_forcing_pairs"],
             dump(answered(rnn_lm_param_count=always_equal, teacher_forcing_pairs=fake_success)),
             messages={"rnn_lm_param_count": "rnn_lm_param_count", "teacher_forcing_pairs": "teacher_forcing_pairs"}),
    ]




def submission(case: Case, folder: Path, student: str | None = None) -> records.Submission:
    path = case.write(folder)
    return records.Submission(student or case.name, UNIT.id, path, "folder", case.filename)


# --- attacks on the grader itself (the sandbox must hold) -------------------------------------------

REPORT = "ATTACK-REPORT "   # an attack cell prints REPORT + JSON of what it managed; tests read it back

STEAL = r'''
import glob, json, os, socket, sys
report = {"found": [], "net": [], "proc": {}}
# the instructor's solution, from the package's location, the working directory and the usual places
starts = [os.getcwd(), os.path.dirname(sys.modules["autograder"].__file__ if "autograder" in sys.modules
                                        else __import__("autograder").__file__)]
for start in starts:
    here = os.path.abspath(start)
    for _ in range(12):
        report["found"] += glob.glob(os.path.join(here, "solutions", "*", "*.ipynb"))
        here = os.path.dirname(here)
# other students' submissions and scratch courses, by guessing paths
for pattern in ("/tmp/*/submitted/*/*/*.ipynb", "/tmp/*/*/submitted/*/*/*.ipynb", "/tmp/*/*/*/submitted/*/*/*.ipynb",
                "/tmp/**/autograded/**/*.ipynb", "/work/*/solutions/*/*.ipynb", "/root/**/*.ipynb", "/home/*/*/solutions/*/*.ipynb"):
    report["found"] += glob.glob(pattern, recursive=True)
# what the process table tells: the grader's command line and environment
for pid in ("1", str(os.getppid())):
    for what in ("cmdline", "environ"):
        try:
            report["proc"][pid + "/" + what] = open(f"/proc/{pid}/{what}", "rb").read().decode(errors="replace")
        except OSError as err:
            report["proc"][pid + "/" + what] = type(err).__name__
report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
report["env"] = dict(os.environ)
# the network
for address in (("8.8.8.8", 53), ("1.1.1.1", 443), ("127.0.0.1", 5432)):
    try:
        socket.create_connection(address, timeout=2).close()
        report["net"].append(f"{address} open")
    except OSError as err:
        report["net"].append(f"{address} {type(err).__name__}")
# use any solution found
for path in report["found"]:
    cells = json.load(open(path))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"
                     and c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    if "def rnn_step" in code and "NotImplementedError" not in code:
        open("stolen.py", "w").write("import numpy as np\n" + code)
        break
try:
    from stolen import *   # noqa
except Exception as err:
    report["stolen"] = type(err).__name__
print("ATTACK-REPORT " + json.dumps({k: v for k, v in report.items() if k != "env"} | {"env_keys": sorted(report["env"])}))
'''

DAMAGE = r'''
import glob, json, os, sys
import autograder.hidden.rnn_by_hand as hidden_module, course.checks.rnn_by_hand as checks_module
report = {"wrote": [], "denied": [], "deleted": []}
lenient = "def check_rnn_step(fn):\n    pass\n"
targets = [hidden_module.__file__, checks_module.__file__, os.path.join(os.path.dirname(hidden_module.__file__), "_evil.py")]
for path in targets:
    try:
        with open(path, "a") as f:
            f.write("\n# changed by a submission\n")
        report["wrote"].append(path)
    except OSError as err:
        report["denied"].append(f"{path}: {type(err).__name__}")
# gradebooks and graded notebooks wherever they can be found
here, candidates = os.getcwd(), []
while here != "/":
    candidates += glob.glob(os.path.join(here, "gradebook.db")) + glob.glob(os.path.join(here, "*", "gradebook.db"))
    candidates += glob.glob(os.path.join(here, "autograded", "*", "*", "*.ipynb"))
    here = os.path.dirname(here)
for pattern in ("/tmp/*/gradebook.db", "/tmp/*/*/gradebook.db", "/tmp/*/*/*/gradebook.db", "/work/*/gradebook.db"):
    candidates += glob.glob(pattern)
for name in candidates:
    try:
        os.remove(name)
        report["deleted"].append(name)
    except OSError as err:
        report["denied"].append(f"{name}: {type(err).__name__}")
# a symbolic link where the grader reads the kernel's records
os.makedirs("records", exist_ok=True)
for link, target in (("records/evil.json", "/etc/passwd"), (".journal-link", "/etc/hostname")):
    try:
        os.symlink(target, link)
    except OSError:
        pass
print("ATTACK-REPORT " + json.dumps(report))
'''

DAEMON = r'''
import json, os, subprocess, sys, time
# a daemon that outlives the kernel (its own session), and a bounded burst of children
marker = "sandbox-daemon-%d" % os.getpid()
subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(600)", "DAEMON-MARKER-7f3a"],
                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
children = []
for _ in range(40):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.execv("/bin/sleep", ["sleep", "600"])
    children.append(pid)
print("ATTACK-REPORT " + json.dumps({"children": len(children)}))
'''

FORK_BOMB = r'''
import json, os, signal
# as many processes as the kernel is given, and more: each sleeps, and the loop stops at 1000. Then it ends
# them, so that the kernel has threads to spare for the cells after it (a bomb left running starves the kernel
# that started it, and that kernel dies: its own submission's loss, and no other's)
children, refused = [], 0
for _ in range(1000):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused += 1
        continue
    if pid == 0:
        os.execv("/bin/sleep", ["sleep", "600"])
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print("ATTACK-REPORT " + json.dumps({"started": len(children), "refused": refused}))
'''

HIDDEN_PRINT = r'''
def rnn_step(x_t, h_prev, W_x, W_h, b):
    import sys
    for name, module in list(sys.modules.items()):
        if name.startswith("autograder.hidden.") and getattr(module, "__file__", None):
            print(open(module.__file__).read())
    return x_t
'''


DELEGATE_UNWATCHED = r'''
import sys
def rnn_step(x_t, h_prev, W_x, W_h, b):
    sys.setprofile(None)                 # the rule's watch in the kernel, switched off
    import keras
    cell = keras.layers.SimpleRNNCell(W_h.shape[0], dtype="float64")
    cell.build((None, W_x.shape[0]))
    cell.set_weights([W_x, W_h, b])
    return np.asarray(cell(x_t, [h_prev])[0])
'''

# Everything that judges in the kernel made to pass, by names the static scan does not read: the
# kernel's verdict is full marks, the judge's (outside the kernel, from the records) is not.
PATCH_EVERYTHING = r'''
_b = __import__("built" + "ins")
_set = getattr(_b, "set" + "attr")
_mods = getattr(__import__("s" + "ys"), "mod" + "ules")
def _pass(*args, **kwargs):
    return None
for _name, _module in list(_mods.items()):
    if _name.startswith("course.che" + "cks") or _name.startswith("autograder.hid" + "den"):
        for _attr in list(vars(_module)):
            if _attr.startswith(("check_", "grade_", "expect_", "call")):
                try:
                    _set(_module, _attr, _pass)
                except Exception:
                    pass
'''


def stripped(nb) -> nbformat.NotebookNode:
    """As an editor that drops unknown metadata saves it: no nbgrader metadata at all."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    return nb


def attack_cases() -> list[Case]:
    """Each scores 0 (or its own status) and changes nothing outside its own scratch folder."""
    unmatchable = stripped(release())
    for cell in unmatchable.cells:
        cell.source += "\n# reformatted"
    return [
        Case("attack_steal", records.GRADED, 0.0, dump(with_cell(release(), "rnn_step", STEAL))),
        Case("attack_damage", records.GRADED, 0.0, dump(with_cell(release(), "rnn_step", DAMAGE))),
        Case("attack_daemon", records.GRADED, MAX_SCORE, dump(with_cell(answered(), "rnn_step", DAEMON))),
        Case("attack_fork_bomb", records.GRADED, MAX_SCORE, dump(with_cell(answered(), "rnn_step", FORK_BOMB)),
             notes=["reached its limit of"] if cgroups.problem() is None else []),
        Case("attack_mmap", records.MEMORY_LIMIT, 0.0,
             dump(with_cell(answered(), "rnn_step", "import mmap\nblock = mmap.mmap(-1, 5 * 2**30)\nblock[-1] = 1")),
             reason="memory limit"),
        Case("attack_stdout_none", records.GRADED, MAX_SCORE,
             dump(with_cell(answered(), "rnn_step", "import sys\nsys.stdout = None\nsys.stderr = None"))),
        Case("attack_hidden_print", records.GRADED,   # rnn_forward and the Keras step build on rnn_step
             MAX_SCORE - POINTS["rnn_step"] - POINTS["rnn_forward"] - POINTS["simple_rnn_from_weights"],
             dump(answered(rnn_step=HIDDEN_PRINT))),
        Case("attack_delegate_unwatched", records.GRADED, MAX_SCORE - POINTS["rnn_step"],
             dump(answered(rnn_step=DELEGATE_UNWATCHED)),
             messages={"rnn_step": "rnn_step must be written with numpy; it imports keras"}),
        Case("attack_patch_everything", records.TAMPERING, 0.0,   # the judge would give 0 anyway
             dump(with_cell(release(), "rnn_step", PATCH_EVERYTHING)), reason="was replaced"),
        Case("stripped_metadata", records.GRADED, MAX_SCORE, dump(stripped(answered())),
             notes=["no nbgrader metadata: cells matched to the release (8 of 8 test cells"]),
        Case("stripped_unmatchable", records.NEEDS_MANUAL_GRADING, 0.0, dump(unmatchable),
             reason="grade it by hand"),
    ]


def all_cases() -> list[Case]:
    return (good_cases() + bad_file_cases() + repaired_cases() + runaway_cases() + [notebook_timeout_case()]
            + tampering_cases() + attack_cases())
