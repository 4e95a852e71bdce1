"""What grading a real class passes around: submissions found, outcomes, statuses.

The intake (:mod:`autograder.intake`) turns folders and zips into
:class:`Submission` records and lists what it could not match as
:class:`Rejected`; the sandbox (:mod:`autograder.sandbox`) grades one
submission and returns an :class:`Outcome`; the class runner
(:mod:`autograder.classroom`) grades many in parallel, writes one gradebook,
the CSV export and the feedback.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

# Every submission ends with exactly one of these statuses. Only GRADED carries
# a score the student earned by their answers; every other status scores 0 and
# says why in Outcome.reason.
GRADED = "graded"                    # ran to the end; score from nbgrader's own grading
TIMEOUT = "timeout"                  # the notebook ran past its time limit (a cell, or the whole notebook)
KERNEL_DIED = "kernel-died"          # sys.exit/os._exit/crash killed the grading kernel
MEMORY_LIMIT = "memory-limit"        # the grading kernel went over its memory limit
INVALID_NOTEBOOK = "invalid-notebook"  # empty file, invalid JSON, not a notebook
WRONG_UNIT = "wrong-unit"            # a notebook of another unit (or of no unit of this course)
TAMPERING = "tampering"              # code that changes the checking (patched numpy/course checks/...)
GRADER_ERROR = "grader-error"        # our fault: the grader itself failed; regrade after a fix
NEEDS_MANUAL_GRADING = "needs-manual-grading"  # a notebook the grader cannot match to the release cell by cell
# Not a status: a GRADED notebook whose written answers (nbgrader's manually graded answer cells) await
# a person. Its score is the automatic one; the written points are reported beside it (Outcome.written).
WRITTEN_PENDING = "needs manual grading"

STATUSES = (GRADED, TIMEOUT, KERNEL_DIED, MEMORY_LIMIT, INVALID_NOTEBOOK, WRONG_UNIT, TAMPERING, GRADER_ERROR,
            NEEDS_MANUAL_GRADING)


@dataclass(frozen=True)
class Submission:
    student_id: str
    unit_id: str
    path: Path            # the notebook file to grade (extracted from a zip into a staging folder if need be)
    origin: str           # "nbgrader-submitted", "nbgrader-exchange", "lms", "colab", "folder", "zip:<name>"
    original_name: str    # the name it arrived under, for messages ("Copy of rnn_by_hand.ipynb")


@dataclass(frozen=True)
class Rejected:
    path: str             # where it was found (inside a zip: "class.zip!/folder/file.ipynb")
    reason: str           # why it could not be matched to a student and a unit, in words


@dataclass
class Intake:
    submissions: list[Submission] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


@dataclass
class StepResult:
    step: str             # the graded function (the solution cell's grade_id)
    points: float
    max_points: float
    message: str = ""     # first line of the failure (a CheckFailed message), "" when full marks
    cells: dict[str, float] = field(default_factory=dict)   # test cell grade_id -> auto score (the gradebook's)
    untouched: bool = False   # the answer cell is as released (nbgrader's "No response.")


@dataclass
class WrittenAnswer:
    """One manually graded answer cell (a written answer): nbgrader never scores it, a person does."""
    question: str         # the answer cell's grade_id ("written_<topic>")
    max_points: float
    answered: bool        # False: as released, which nbgrader scores 0 ("No response.") with nothing to grade


@dataclass
class Outcome:
    student_id: str
    unit_id: str
    status: str                               # one of STATUSES
    score: float                              # 0 unless status == GRADED
    max_score: float
    reason: str = ""                          # why, for every status but GRADED (and notes for GRADED)
    steps: list[StepResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # repairs made ("test cell test_rnn_step was edited: restored")
    autograded: Path | None = None            # the graded notebook (outputs included), for feedback
    seconds: float = 0.0
    original_name: str = ""
    written: list[WrittenAnswer] = field(default_factory=list)   # the unit's written answers, in notebook order

    @property
    def written_max(self) -> float:
        """Points of the written answers, which ``max_score`` (the automatic maximum) leaves out."""
        return sum(w.max_points for w in self.written)

    @property
    def pending(self) -> list[WrittenAnswer]:
        """Written answers that await a person: answered, in a notebook that was graded."""
        return [w for w in self.written if w.answered] if self.status == GRADED else []

    @property
    def pending_points(self) -> float:
        return sum(w.max_points for w in self.pending)

    def manual_grading(self) -> str:
        """In words: what a person still has to grade ("" when nothing)."""
        pending = self.pending
        if not pending:
            return ""
        points = self.pending_points
        return (f"{WRITTEN_PENDING}: {len(pending)} written answer{'s' if len(pending) > 1 else ''} "
                f"({_num(points)} point{'' if points == 1 else 's'}: {', '.join(w.question for w in pending)})")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["autograded"] = str(self.autograded) if self.autograded else ""
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Outcome":
        """The inverse of as_dict (a record read back from the class runner's journal)."""
        d = dict(d)
        d["steps"] = [StepResult(**s) for s in d.get("steps", [])]
        d["written"] = [WrittenAnswer(**w) for w in d.get("written", [])]
        d["autograded"] = Path(d["autograded"]) if d.get("autograded") else None
        return cls(**d)

    def cell_scores(self) -> dict[str, float]:
        """Every test cell's auto score, as the gradebook gets it (0 for all unless GRADED)."""
        return {gid: (score if self.status == GRADED else 0.0) for s in self.steps for gid, score in s.cells.items()}


def is_written(cell) -> bool:
    """A manually graded answer cell: an answer (solution) cell that also carries points."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution") and meta.get("grade"))


def automatic_max(release) -> float:
    """The points the checks give: every graded cell of the release but the written answers."""
    return sum(float(c.metadata.nbgrader.get("points", 0)) for c in release.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("grade") and not is_written(c))


def written_answers(nb, release) -> list[WrittenAnswer]:
    """The release's written answers, each marked answered when ``nb`` holds it changed (nbgrader's
    checksum of the released cell differs). A cell missing from ``nb`` counts as not answered."""
    from nbgrader.utils import compute_checksum

    cells = {}
    for cell in (nb.cells if nb is not None else []):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            cells[gid] = cell     # the last copy, as nbgrader keeps it
    out = []
    for rc in release.cells:
        if not is_written(rc):
            continue
        gid = rc.metadata.nbgrader["grade_id"]
        cell = cells.get(gid)
        answered = cell is not None and compute_checksum(_as_released(cell, rc)) != rc.metadata.nbgrader.get(
            "checksum", compute_checksum(rc))
        out.append(WrittenAnswer(gid, float(rc.metadata.nbgrader.get("points", 0)), answered))
    return out


def _as_released(cell, release_cell):
    """The release's cell with the student's text in it, as grading puts it back (the checksum covers
    the text, the cell type and nbgrader's flags, grade_id and points)."""
    import copy

    released = copy.deepcopy(release_cell)
    released.source = cell.get("source", "")
    return released


def _num(x) -> str:
    return f"{float(x):g}"
