"""Instructor and maintainer commands: python -m autograder COMMAND.

  generate [UNIT ...] [--check]  regenerate exercises/ from solutions/ (or check they are in step)
  mutants [UNIT ...]             feed every mutant through the graded cells; fail if one survives
  demo                           grade a sample class with the real nbgrader and print the grades
  times [UNIT ...]               run each solution notebook under the fast budget and print its time
"""
from __future__ import annotations

import argparse
import sys

from . import pipeline


def _generate(args) -> int:
    problems = pipeline.generate(args.units or None, check=args.check)
    if args.check:
        if problems:
            print("exercises/ is out of step with solutions/; run `python -m autograder generate`:")
            print("\n".join("  " + p for p in problems))
            return 1
        print("exercises/ is in step with solutions/")
    return 0


MIN_MUTANTS_PER_STEP = 3


def _mutants(args) -> int:
    from . import mutate

    failed = False
    for unit in pipeline.ready_units(args.units or None):
        report = mutate.run(unit.id)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("generate", help="regenerate exercises/ from solutions/")
    p.add_argument("units", nargs="*", help="unit ids (default: every ready unit)")
    p.add_argument("--check", action="store_true", help="only check that exercises/ is in step")
    p.set_defaults(run=_generate)
    p = sub.add_parser("mutants", help="prove every graded step rejects plausible wrong answers")
    p.add_argument("units", nargs="*")
    p.set_defaults(run=_mutants)
    p = sub.add_parser("demo", help="grade a sample class with the real nbgrader")
    p.add_argument("--root", default=None, help="course folder to work in (default: .demo/)")
    p.set_defaults(run=_demo)
    p = sub.add_parser("times", help="fast-budget run time of each solution notebook")
    p.add_argument("units", nargs="*")
    p.set_defaults(run=_times)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
