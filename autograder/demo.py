"""The main job, end to end: grade a small sample class with the real nbgrader.

Two sample students submit unit 01: one hands in the instructor's solution,
one hands in the exercise untouched. The demo runs nbgrader's own commands
(generate_assignment, autograde, generate_feedback, export) in a separate
course folder, so a real gradebook is never touched, and prints the grades.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from course import syllabus

from . import ROOT, pipeline

SAMPLES = {"sample_solution": "solutions", "sample_blank": "exercises"}


def grade_sample_class(course_root: Path, unit_id: str = "01_rnn_by_hand") -> dict:
    """Generate, submit the samples, autograde, give feedback, export; return grades and timings."""
    course_root = Path(course_root)
    unit = syllabus.load().unit(unit_id)
    timings = {}
    start = time.perf_counter()
    pipeline.generate_into(course_root, [unit.id])
    timings["generate_assignment"] = time.perf_counter() - start
    for student, folder in SAMPLES.items():
        source = (ROOT / folder if folder == "solutions" else course_root / folder) / unit.id / unit.filename
        pipeline.submit(course_root, student, unit.id, source)
    start = time.perf_counter()
    pipeline.autograde(course_root, unit.id)
    timings["autograde (2 submissions)"] = time.perf_counter() - start
    start = time.perf_counter()
    pipeline.feedback(course_root, unit.id)
    timings["generate_feedback"] = time.perf_counter() - start
    rows = pipeline.export(course_root, course_root / "grades.csv")
    grades = {r["student_id"]: (float(r["raw_score"]), float(r["max_score"]))
              for r in rows if r["assignment"] == unit.id}
    return {"grades": grades, "timings": timings, "csv": course_root / "grades.csv",
            "feedback": course_root / "feedback"}


def main(course_root: Path | None = None) -> int:
    course_root = Path(course_root or ROOT / ".demo")
    shutil.rmtree(course_root, ignore_errors=True)
    course_root.mkdir(parents=True)
    print(f"Grading a sample class in {course_root} (your own gradebook is not touched)\n")
    result = grade_sample_class(course_root)
    print("\nGrades (from nbgrader export):")
    for student, (score, max_score) in result["grades"].items():
        print(f"  {student:<18} {score:5g} / {max_score:g}")
    print("\nTimings:")
    for step, seconds in result["timings"].items():
        print(f"  {step:<28} {seconds:6.1f} s")
    print(f"\nGrades CSV: {result['csv']}\nFeedback:   {result['feedback']}/<student>/<unit>/*.html")
    expected = {"sample_solution": "full marks", "sample_blank": "zero"}
    ok = (result["grades"]["sample_solution"][0] == result["grades"]["sample_solution"][1]
          and result["grades"]["sample_blank"][0] == 0)
    print("\n" + ("OK: the solution earns full marks and the blank exercise zero." if ok
                  else f"UNEXPECTED: expected {expected}"))
    return 0 if ok else 1
