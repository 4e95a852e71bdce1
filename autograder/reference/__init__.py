"""Reference implementations of graded steps: instructor-only, never shipped in the student wheel."""
