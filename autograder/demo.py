"""The main job, end to end: grade a small sample class with the real nbgrader.

Two sample students submit every ready unit: one hands in the exercise with
every step answered (the source notebook's answers typed into the student's
notebook, as a student would), one hands in the exercise untouched. The demo runs nbgrader's own commands
(generate_assignment, autograde, generate_feedback, export) in a separate
course folder, so a real gradebook is never touched, and prints the grades.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from course import syllabus

from . import ROOT, pipeline

SAMPLES = {"sample_solution": "exercise with the solution's answers", "sample_blank": "exercise untouched"}


def answered_exercise(course_root: Path, unit_id: str, dest: Path) -> Path:
    """The released notebook with the source notebook's answer in every solution cell."""
    import nbformat

    from .mutate import fill_in_answers, solution_sources

    unit = syllabus.load().unit(unit_id)
    nb = nbformat.read(course_root / "exercises" / unit.id / unit.filename, as_version=4)
    fill_in_answers(nb, solution_sources(nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def grade_sample_class(course_root: Path, unit_id: str = "01_rnn_by_hand", solution_only: bool = False) -> dict:
    """Generate, submit the samples, autograde, give feedback, export; return grades and timings.

    ``solution_only``: submit only the answered exercise and write no feedback (the second,
    Colab-pins pass of the tests: whether the blank earns zero and how feedback is written do
    not depend on the Keras and TensorFlow versions, which are all that pass changes).
    """
    course_root = Path(course_root)
    unit = syllabus.load().unit(unit_id)
    timings = {}
    start = time.perf_counter()
    pipeline.generate_into(course_root, [unit.id])
    timings["generate_assignment"] = time.perf_counter() - start
    answered = answered_exercise(course_root, unit.id, course_root / ".answered" / unit.id / unit.filename)
    pipeline.submit(course_root, "sample_solution", unit.id, answered)
    if not solution_only:
        pipeline.submit(course_root, "sample_blank", unit.id, course_root / "exercises" / unit.id / unit.filename)
    start = time.perf_counter()
    pipeline.autograde(course_root, unit.id)
    timings["autograde (1 submission)" if solution_only else "autograde (2 submissions)"] = time.perf_counter() - start
    if not solution_only:
        start = time.perf_counter()
        pipeline.feedback(course_root, unit.id)
        timings["generate_feedback"] = time.perf_counter() - start
    rows = pipeline.export(course_root, course_root / "grades.csv")
    written = pipeline.written_grades(course_root, unit.id)
    # nbgrader's max_score counts the written answers too; until a person grades them they add nothing
    # to raw_score, so the automatic points are compared with the automatic maximum
    grades = {r["student_id"]: (float(r["raw_score"]), float(r["max_score"]) - written[r["student_id"]]["max"])
              for r in rows if r["assignment"] == unit.id}
    return {"grades": grades, "written": written, "timings": timings, "csv": course_root / "grades.csv",
            "feedback": course_root / "feedback"}


def main(course_root: Path | None = None) -> int:
    course_root = Path(course_root or ROOT / ".demo")
    shutil.rmtree(course_root, ignore_errors=True)
    course_root.mkdir(parents=True)
    print(f"Grading a sample class in {course_root} (your own gradebook is not touched)\n")
    ok = True
    rows = []
    for unit in pipeline.ready_units():
        result = grade_sample_class(course_root, unit.id)
        solution, blank = result["grades"]["sample_solution"], result["grades"]["sample_blank"]
        written = result["written"]
        pending = len(written["sample_solution"]["pending"])
        # the solution's written answers wait for a person; the blank's, left as released, score 0
        unit_ok = (solution[0] == solution[1] and blank[0] == 0 and not written["sample_blank"]["pending"]
                   and pending == len(written["sample_solution"]["points"]))
        ok &= unit_ok
        rows.append((unit.id, solution, blank, written["sample_solution"]["max"], pending,
                     result["timings"]["autograde (2 submissions)"], unit_ok))
    print("\nGrades (from nbgrader export and its gradebook), and the time nbgrader autograde took for both.")
    print("Automatic points; the written answers are graded by a person (formgrader), and those of the")
    print("solution wait for one (needs_manual_grade in the gradebook); the blank's, left empty, score 0.")
    print(f"  {'unit':<28} {'sample_solution':>16} {'written (solution)':>24} {'sample_blank':>13} {'autograde':>10}")
    for unit_id, solution, blank, written_max, pending, seconds, unit_ok in rows:
        waiting = f"{written_max:g} pts, {pending} to grade" if written_max else "none"
        print(f"  {unit_id:<28} {solution[0]:>9g} / {solution[1]:<4g} {waiting:>24} {blank[0]:>6g} / {blank[1]:<4g} "
              f"{seconds:8.1f} s{'' if unit_ok else '   UNEXPECTED'}")
    print(f"\nGrades CSV: {course_root / 'grades.csv'}\nFeedback:   {course_root / 'feedback'}/<student>/<unit>/*.html")
    print("\n" + ("OK: every solution earns full automatic marks with its written answers awaiting manual "
                  "grading, and every blank exercise zero." if ok
                  else "UNEXPECTED: a solution lost points, a blank exercise earned some, or written answers "
                       "were not left to a person (see above)."))
    return 0 if ok else 1
