"""Instructor-only grading code for the RNN course (never installed for students).

Used from a checkout of the repository: ``python -m autograder --help``.
nbgrader_config.py at the repository root wires it into nbgrader's own CLI.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
