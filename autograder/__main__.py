"""Instructor and maintainer commands: python -m autograder COMMAND.

  generate [UNIT ...] [--check]  regenerate exercises/ from solutions/ (or check they are in step);
                                 --allow-placeholder while course/course.toml's addresses are placeholders
  mutants [UNIT ...]             feed every mutant through the graded cells; fail if one survives
  demo                           grade a sample class with the real nbgrader and print the grades
  times [UNIT ...]               run each solution notebook under the fast budget and print its time
  grade-class INPUT ...          grade a class (folders, zips, files) in parallel into one nbgrader gradebook
  bench [--students N] [--repeat R]  time grade-class against serial `nbgrader autograde` on the same submissions
"""
from __future__ import annotations

import argparse
import sys

from course import syllabus

from . import pipeline


def _generate(args) -> int:
    from . import expected

    course = syllabus.load()
    if course.placeholder and not args.check:
        note = (f"course/course.toml marks its addresses as placeholders (placeholder = true): the badge "
                f"({course.repository}) and the setup cell ({', '.join(course.pip_specs)}) would point "
                f"where nothing is published yet")
        if not args.allow_placeholder:
            print(f"refusing to write exercises/: {note}. Publish the package and the repository, set "
                  f"placeholder = false, and run this again; or pass --allow-placeholder to write them anyway.",
                  file=sys.stderr)
            return 2
        print(f"warning: {note} (--allow-placeholder).", file=sys.stderr)
    problems = pipeline.generate(args.units or None, check=args.check)
    problems += expected.generate(args.units or None, check=args.check)  # the visible checks' stored values
    if args.check:
        if problems:
            print("exercises/ or the checks' expected values are out of step with solutions/; "
                  "run `python -m autograder generate`:")
            print("\n".join("  " + p for p in problems))
            return 1
        print("exercises/ is in step with solutions/")
    return 0


MIN_MUTANTS_PER_STEP = 5


def _mutants(args) -> int:
    from . import mutate

    failed = False
    for unit in pipeline.ready_units(args.units or None):
        report = mutate.run(unit.id, everything=args.all_cells)
        print(f"\n== {unit.id}\n{report.table()}")
        for step, score in report.baseline.items():
            count = sum(r.mutant.step == step for r in report.results)
            if score.points != score.max_points:
                print(f"FAIL: the solution loses points on {step}: {score.errors}")
                failed = True
            if count < MIN_MUTANTS_PER_STEP:
                print(f"FAIL: {step} has {count} mutants; every step needs {MIN_MUTANTS_PER_STEP}")
                failed = True
        failed |= not all(r.caught for r in report.results)
    return 1 if failed else 0


def _demo(args) -> int:
    from . import demo

    return demo.main(args.root)


def _times(args) -> int:
    import time

    import nbformat
    from nbclient import NotebookClient

    from . import ROOT, mutate, settings

    for unit in pipeline.ready_units(args.units or None):
        path = ROOT / "solutions" / unit.id / unit.filename
        nb = nbformat.read(path, as_version=4)
        with mutate.grading_environment():
            start = time.perf_counter()
            NotebookClient(nb, timeout=settings.CELL_TIMEOUT, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            total = time.perf_counter() - start
        print(f"{unit.id}: {total:.1f} s for the whole notebook, fast budget, kernel start included")
    return 0


def _read_roster(path) -> list[str]:
    """Student ids, one a line (blank lines and # comments skipped), or a CSV with a student_id column."""
    import csv

    from pathlib import Path

    lines = [l.strip() for l in Path(path).read_text(encoding="utf-8").splitlines()]
    lines = [l for l in lines if l and not l.startswith("#")]
    if lines and "student_id" in [h.strip() for h in lines[0].split(",")]:
        return [row["student_id"].strip() for row in csv.DictReader(lines) if row["student_id"].strip()]
    return lines


def _grade_class(args) -> int:
    from pathlib import Path

    from . import ROOT, classroom, sandbox

    given = {"cell_seconds": args.cell_timeout, "notebook_seconds": args.notebook_timeout,
             "memory_mb": args.memory_mb, "isolation": "require" if args.require_isolation else None,
             "processes": args.max_processes}
    try:
        report = classroom.grade_class(
            [Path(p) for p in args.inputs], Path(args.course_root or ROOT), unit_ids=args.unit or None,
            roster=_read_roster(args.roster) if args.roster else None, workers=args.workers,
            db_url=args.db_url, limits=sandbox.Limits(**{k: v for k, v in given.items() if v is not None}),
            cluster=args.cluster)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the outcomes so far are in the journal
        print(f"grade-class stopped ({stop or 'interrupted'}): run it again to go on where it stopped",
              file=sys.stderr)
        return 130
    except Exception as error:  # the grader itself could not run (bad database URL, missing unit, ...)
        print(f"grade-class could not run: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    print(report.summary)
    for warning in report.warnings:
        print("warning: " + warning)
    print(f"\nGradebook:  {report.db_url}\nGrades CSV: {report.grades_csv}\n"
          f"Rejected:   {report.rejected_csv} ({len(report.rejected)} files)\n"
          f"Feedback:   {report.feedback_dir}/<student>/<unit>/<notebook>.html\n"
          f"Autograded: {report.course_root / 'autograded'}/<student>/<unit>/")
    return 0


def _bench(args) -> int:
    from pathlib import Path

    from . import bench

    ok = True
    if args.students:
        rounds = []
        for k in range(max(1, args.repeat)):
            root = (Path(args.root) / f"round-{k + 1}" if args.repeat > 1 else args.root) if args.root else None
            figures = bench.run(args.students, args.workers, root, unit_id=args.unit,
                                engines=[e for e in args.engines.split(",") if e])
            if args.repeat > 1:
                print(f"round {k + 1} of {args.repeat}:")
            print(bench.report(figures), flush=True)
            rounds.append(figures)
        if len(rounds) > 1:
            print(bench.summary(rounds), flush=True)
        ok = all(f["agree"] for f in rounds)
    if args.one_student:
        student = bench.run_student(args.workers, Path(args.root) / "one-student" if args.root else None)
        print(bench.report_student(student))
        ok = ok and student["full_marks"]
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("generate", help="regenerate exercises/ from solutions/")
    p.add_argument("units", nargs="*", help="unit ids (default: every ready unit)")
    p.add_argument("--check", action="store_true", help="only check that exercises/ is in step")
    p.add_argument("--allow-placeholder", action="store_true",
                   help="write the exercises even though course/course.toml marks its addresses as placeholders")
    p.set_defaults(run=_generate)
    p = sub.add_parser("mutants", help="prove every graded step rejects plausible wrong answers")
    p.add_argument("units", nargs="*")
    p.add_argument("--all-cells", action="store_true",
                   help="also run the demonstration and training cells (as nbgrader does; slower)")
    p.set_defaults(run=_mutants)
    p = sub.add_parser("demo", help="grade a sample class with the real nbgrader")
    p.add_argument("--root", default=None, help="course folder to work in (default: .demo/)")
    p.set_defaults(run=_demo)
    p = sub.add_parser("times", help="fast-budget run time of each solution notebook")
    p.add_argument("units", nargs="*")
    p.set_defaults(run=_times)
    p = sub.add_parser("grade-class", help="grade a class in parallel into one nbgrader gradebook")
    p.add_argument("inputs", nargs="+", help="folders, zip files or notebooks as the submissions arrived")
    p.add_argument("--unit", action="append", help="grade only this unit (repeatable; default: every unit found)")
    p.add_argument("--roster", help="file of student ids (one a line, or a CSV with a student_id column)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: the CPU count)")
    p.add_argument("--cluster", default="local",
                   help="where to grade: local (this machine, --workers processes, the default: a process pool, "
                        "which measures faster here than a Dask LocalCluster), dask-local (a Dask LocalCluster of "
                        "--workers processes), or a Dask scheduler's address (tcp://scheduler:8786)")
    p.add_argument("--db-url", default=None,
                   help="nbgrader gradebook URL (default: sqlite:///<course-root>/gradebook.db; "
                        "postgresql+psycopg2://user@host/db for several graders)")
    p.add_argument("--course-root", default=None,
                   help="where gradebook.db, autograded/, feedback/ and the CSVs go (default: the repository root)")
    p.add_argument("--cell-timeout", type=int, default=None, help="seconds one cell may run")
    p.add_argument("--notebook-timeout", type=int, default=None, help="seconds one whole notebook may take")
    p.add_argument("--memory-mb", type=int, default=None,
                   help="address-space limit of each grading kernel in MB (default 4096; TensorFlow maps ~1.9 GB)")
    p.add_argument("--require-isolation", action="store_true",
                   help="stop with an error when bubblewrap cannot sandbox the grading kernels here")
    p.add_argument("--max-processes", type=int, default=None,
                   help="processes and threads each grading kernel may have at once (default 512; needs a pids "
                        "cgroup this user can make)")
    p.set_defaults(run=_grade_class)
    p = sub.add_parser("bench", help="time grade-class against serial nbgrader autograde")
    p.add_argument("--students", type=int, default=6, help="submissions to grade (default: 6)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: the CPU count)")
    p.add_argument("--root", default=None, help="scratch folder (default: a new temporary folder)")
    p.add_argument("--unit", default="01_rnn_by_hand", help="the unit to grade (default: 01_rnn_by_hand)")
    p.add_argument("--engines", default="dask-local,pool",
                   help="grade_class engines to time, comma-separated: dask-local (a Dask LocalCluster), pool "
                        "(what --cluster local uses), or a Dask scheduler's address (default: dask-local,pool)")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds of serial nbgrader and the engines, one after the other, each on fresh submissions; "
                        "prints every round and the medians (default: 1)")
    p.add_argument("--one-student", action="store_true",
                   help="also time grade-class on one student's notebook of every unit (on the process pool)")
    p.set_defaults(run=_bench)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
