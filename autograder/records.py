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

    def as_dict(self) -> dict:
        d = asdict(self)
        d["autograded"] = str(self.autograded) if self.autograded else ""
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Outcome":
        """The inverse of as_dict (a record read back from the class runner's journal)."""
        d = dict(d)
        d["steps"] = [StepResult(**s) for s in d.get("steps", [])]
        d["autograded"] = Path(d["autograded"]) if d.get("autograded") else None
        return cls(**d)

    def cell_scores(self) -> dict[str, float]:
        """Every test cell's auto score, as the gradebook gets it (0 for all unless GRADED)."""
        return {gid: (score if self.status == GRADED else 0.0) for s in self.steps for gid, score in s.cells.items()}
