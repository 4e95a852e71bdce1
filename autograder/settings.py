"""nbgrader configuration for this repository, applied by ../nbgrader_config.py.

The source of truth is solutions/, the release (what students open) is
exercises/. Working folders (submitted/, autograded/, feedback/) and the
gradebook (gradebook.db, nbgrader's SQLite by default) stay out of git.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Seconds one cell may run at grading time. The fast budget keeps a whole unit
# near a minute on two CPU cores; the margin covers a slow machine.
CELL_TIMEOUT = 300


def prepare_environment(root: Path) -> None:
    """Make `autograder` and `course` importable here and in grading kernels."""
    root = str(root)
    if root not in sys.path:
        sys.path.insert(0, root)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
    # TensorFlow reads this at import; grading kernels inherit it (stderr costs points).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def apply(c) -> None:
    from nbgrader.converters import GenerateAssignment

    from autograder.release import StudentHeader
    from course import syllabus

    c.CourseDirectory.course_id = syllabus.load().id
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "exercises"
    defaults = GenerateAssignment.class_traits()["preprocessors"].make_dynamic_default()
    c.GenerateAssignment.preprocessors = [*defaults, StudentHeader]
    c.Execute.timeout = CELL_TIMEOUT
