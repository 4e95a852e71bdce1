"""How fast is grade_class against plain `nbgrader autograde` on the same class, and where does its time go?

Builds N submissions of one unit (the solution, a partly right notebook and
the blank exercise in turn) in a scratch course, grades them once with serial
`nbgrader autograde UNIT` (the real CLI, one process, one kernel after the
other) and then with :func:`autograder.classroom.grade_class` on each engine
asked for (a Dask LocalCluster; the local process pool, which `--cluster local` uses), and
prints:

* each wall-clock time, the speed-up against serial nbgrader, and whether every
  gradebook holds the same totals;
* throughput per core against plain nbgrader;
* where a submission's time goes (the phases of :class:`autograder.sandbox.Phases`,
  measured on the Dask workers, and the class runner's own phases);
* the projected time for 2,100 notebooks on 16 and on 64 cores, with its
  assumptions.

It prints figures; it asserts nothing. Timings on a machine shared with other
work are noisy: run it on a quiet one.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from course import syllabus

from . import ROOT, classroom, pipeline, sandbox
from .mutate import fill_in_answers, solution_sources, test_cells_by_step

UNIT_ID = "01_rnn_by_hand"
KINDS = ("solution", "partly", "blank")
ENGINES = ("dask-local", "pool")
PROJECTED_NOTEBOOKS = 2100          # 300 students, 7 units
PROJECTED_CORES = (16, 64)


def build_class(course_root: Path, students: int, unit_id: str = UNIT_ID) -> Path:
    """Generate the unit in `course_root` and put `students` notebooks in its submitted/ folder."""
    unit = syllabus.load().unit(unit_id)
    pipeline.generate_into(course_root, [unit.id])
    solution = nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)
    answers, steps = solution_sources(solution), list(test_cells_by_step(solution))
    for i in range(students):
        kind = KINDS[i % len(KINDS)]
        nb = nbformat.read(course_root / "exercises" / unit.id / unit.filename, as_version=4)
        if kind != "blank":
            fill_in_answers(nb, answers, skip=tuple(steps[len(steps) // 2:]) if kind == "partly" else ())
        dest = course_root / "submitted" / f"student_{i + 1:03d}_{kind}" / unit.id / unit.filename
        dest.parent.mkdir(parents=True)
        nbformat.write(nb, dest)
    return course_root / "submitted"


def build_student(course_root: Path, unit_ids=None, student: str = "student_all_units") -> Path:
    """One student's answered notebook of every ready unit (the solutions' answers in the exercises)."""
    units = pipeline.ready_units(unit_ids)
    pipeline.generate_into(course_root, [u.id for u in units])
    for unit in units:
        solution = nbformat.read(ROOT / "solutions" / unit.id / unit.filename, as_version=4)
        nb = nbformat.read(course_root / "exercises" / unit.id / unit.filename, as_version=4)
        fill_in_answers(nb, solution_sources(solution))
        dest = course_root / "submitted" / student / unit.id / unit.filename
        dest.parent.mkdir(parents=True)
        nbformat.write(nb, dest)
    return course_root / "submitted"


def run_student(workers: int | None = None, root: Path | None = None, engine: str = "pool") -> dict:
    """grade_class on one student's notebook of every unit (the target: at most 3 minutes on 2 cores)."""
    workers = workers or os.cpu_count() or 1
    scratch = Path(root) if root else Path(tempfile.mkdtemp(prefix="bench-student-"))
    shutil.rmtree(scratch, ignore_errors=True)
    submitted = build_student(scratch / "source")
    report = classroom.grade_class([submitted], scratch / "graded", workers=workers, cluster=engine, progress=False)
    return {"seconds": report.seconds, "workers": report.workers, "engine": report.engine, "phases": report.phases,
            "units": {o.unit_id: (o.status, o.score, o.max_score) for o in report.outcomes},
            "reasons": {o.unit_id: o.reason for o in report.outcomes if o.reason},
            "full_marks": all(o.status == "graded" and o.score == o.max_score for o in report.outcomes)}


def report_student(figures: dict) -> str:
    lines = [f"one student's {len(figures['units'])} units (the solutions' answers) with grade_class on "
             f"{figures['engine']}, {figures['workers']} workers: {figures['seconds']:.1f} s "
             f"({figures['seconds'] / 60:.2f} min), "
             f"{'full marks on every unit' if figures['full_marks'] else 'NOT full marks: ' + str(figures['units'])}"]
    for name, seconds in figures["phases"].items():
        lines.append(f"    {name:<58} {seconds:7.2f} s")
    return "\n".join(lines)


def totals(db_url: str, unit_id: str = UNIT_ID) -> dict[str, float]:
    """Each student's total for the unit, read back through nbgrader's Gradebook."""
    with Gradebook(db_url, syllabus.load().id) as gb:
        return {s.student.id: float(s.score) for s in gb.assignment_submissions(unit_id)}


def run(students: int = 6, workers: int | None = None, root: Path | None = None, unit_id: str = UNIT_ID,
        engines=ENGINES) -> dict:
    """Time serial nbgrader and grade_class on each engine on the same submissions; return the figures."""
    cpus = os.cpu_count() or 1
    workers = workers or cpus
    scratch = Path(root) if root else Path(tempfile.mkdtemp(prefix="bench-"))
    shutil.rmtree(scratch, ignore_errors=True)
    serial_root = scratch / "nbgrader"
    submitted = build_class(serial_root, students, unit_id)

    start = time.perf_counter()
    pipeline.autograde(serial_root, unit_id)
    serial = time.perf_counter() - start
    theirs = totals(f"sqlite:///{serial_root / 'gradebook.db'}", unit_id)

    # nbgrader's fork server (which makes each engine's template) started before the first engine: else that one
    # pays for starting it and the next one does not
    sandbox.start_nbgrader_forkserver()
    runs = {}
    for engine in engines:
        report = classroom.grade_class([submitted], scratch / f"grade_class_{engine}", unit_ids=[unit_id],
                                       workers=workers, cluster=engine, progress=False)
        ours = totals(report.db_url, unit_id)
        runs[engine] = {"seconds": report.seconds, "workers": report.workers, "engine": report.engine,
                        "phases": report.phases, "tasks": report.task_timings, "totals": ours,
                        "agree": ours == theirs, "statuses": {o.student_id: o.status for o in report.outcomes}}
    return {"unit": unit_id, "students": students, "workers": workers, "cpus": cpus, "serial_s": serial,
            "serial": theirs, "runs": runs, "agree": all(r["agree"] for r in runs.values()),
            "isolation": sandbox.isolation_problem() or (
                "every kernel in bubblewrap, forked from a kernel server per worker and unit"
                if os.environ.get(sandbox.SERVER_ENV, "1") != "0" else "every kernel in a bubblewrap of its own"),
            "nbgrader_fork": sandbox.nbgrader_forkserver() is not None, "scratch": scratch}


def summary(rounds: list[dict]) -> str:
    """Each engine's speed-up and throughput per core in every round, and their medians: one run on a noisy
    machine says little, and the rounds alternate serial nbgrader and the engines, so that a slow spell
    of the machine falls on both."""
    import statistics

    cores = min(rounds[0]["workers"], rounds[0]["cpus"])
    lines = [f"over {len(rounds)} rounds ({rounds[0]['students']} submissions each; serial nbgrader "
             + ", ".join(f"{r['serial_s']:.1f} s" for r in rounds) + "):"]
    for engine in rounds[0]["runs"]:
        speedups = [r["serial_s"] / r["runs"][engine]["seconds"] for r in rounds]
        lines.append(f"  {rounds[0]['runs'][engine]['engine']}: "
                     + ", ".join(f"{r['runs'][engine]['seconds']:.1f} s" for r in rounds)
                     + f"; speed-up {', '.join(f'{x:.2f}x' for x in speedups)} (median "
                     f"{statistics.median(speedups):.2f}x); throughput per core "
                     f"{', '.join(f'{x / cores:.2f}x' for x in speedups)} (median "
                     f"{statistics.median(speedups) / cores:.2f}x)")
        sized = [by_class_size(r, engine) for r in rounds]
        if all(sized):
            for size in sized[0]["per_core"]:
                values = [z["per_core"][size] for z in sized]
                lines.append(f"    a class of {size:>3}: {', '.join(f'{x:.2f}x' for x in values)} per core "
                             f"(median {statistics.median(values):.2f}x)")
    lines.append(f"  scores {'agree in every round' if all(r['agree'] for r in rounds) else 'DISAGREE in a round'}")
    return "\n".join(lines)


def projection(figures: dict, engine: str, notebooks: int = PROJECTED_NOTEBOOKS, cores=PROJECTED_CORES) -> dict:
    """Projected wall time for `notebooks` on each core count, from one engine's run.

    Per notebook, a worker spends (grading phase x workers / n) core-seconds (measured here, one worker
    per core); the class runner's own work per outcome (feedback page, journal) and per gradebook row runs
    in one process, beside the grading; the template is made once per unit."""
    run_ = figures["runs"][engine]
    n = figures["students"]
    phases = run_["phases"]
    core_s = phases.get("grading, first to last outcome", run_["seconds"]) * run_["workers"] / n
    per_outcome = phases.get("feedback page and journal, each outcome", 0.0) / n
    per_row = phases.get("gradebook rows", 0.0) / n
    template = phases.get("template (nbgrader generate_assignment, staged packages)", 0.0)
    units = len(syllabus.load().ready_units)
    result = {}
    for c in cores:
        grading = max(notebooks * core_s / c, notebooks * per_outcome)   # the one writer may become the limit
        result[c] = grading + units * template + notebooks * per_row
    return {"core_s": core_s, "per_outcome": per_outcome, "per_row": per_row, "template": template,
            "units": units, "seconds": result, "writer_bound": {c: notebooks * per_outcome > notebooks * core_s / c
                                                                 for c in cores}}


def _breakdown(tasks: list[dict]) -> list[str]:
    if not tasks:
        return []
    names = [k for k in tasks[0] if k not in ("worker", "nth")]
    for t in tasks[1:]:
        names += [k for k in t if k not in names and k not in ("worker", "nth")]
    total = sum(t.get("worker", 0.0) for t in tasks) / len(tasks)
    lines = [f"  where a submission's time goes on a worker (mean of {len(tasks)}; {total:.1f} s each):"]
    for name in names:
        mean = sum(t.get(name, 0.0) for t in tasks) / len(tasks)
        lines.append(f"    {name:<44} {mean:6.2f} s  {100 * mean / max(total, 1e-9):4.0f}%")
    firsts = [t.get("judge", 0.0) for t in tasks]
    if len(firsts) > 1:
        lines.append(f"    (judge: {max(firsts):.2f} s at most, {min(firsts):.2f} s at least: a worker imports the "
                     f"hidden tests once, while its first nbgrader runs)")
    return lines


def steady_state(tasks: list[dict]) -> float | None:
    """Mean seconds of a submission on a worker past its first one (which imports the judge and grades
    without the judge's table of reference results): what each further submission of a large class costs
    a core. None when no worker graded more than one."""
    later = [t["worker"] for t in tasks if t.get("nth", 0) > 1]
    return sum(later) / len(later) if later else None


CLASS_SIZES = (8, 12, 50, 300)


def by_class_size(figures: dict, engine: str, sizes=CLASS_SIZES) -> dict | None:
    """Throughput per core against plain nbgrader for classes of other sizes, from one engine's run.

    A run's wall time is a fixed part (workers' start and warm-up, the template, each worker's first
    submission of the unit: its kernel server and the judge's first references, the tail) and a part that
    grows with the class: each further submission costs a worker the steady-state seconds measured past
    its first one. So wall(N) = fixed + N / workers x steady, with fixed = wall(n) - n / workers x steady
    for the n graded here, and serial nbgrader taken as its measured seconds per submission (its own start
    included). None when no worker graded more than one submission."""
    run_ = figures["runs"][engine]
    steady = steady_state(run_["tasks"])
    if steady is None:
        return None
    n, workers = figures["students"], run_["workers"]
    cores = min(workers, figures["cpus"])
    serial_each = figures["serial_s"] / n
    fixed = max(run_["seconds"] - n / workers * steady, 0.0)
    return {"fixed": fixed, "steady": steady, "serial_each": serial_each,
            "per_core": {size: serial_each * size / (cores * (fixed + size / workers * steady)) for size in sizes}}


def report(figures: dict) -> str:
    n, unit = figures["students"], figures["unit"]
    cores_used = min(figures["workers"], figures["cpus"])
    lines = [
        f"{n} {unit} submissions ({', '.join(KINDS)} in turn) on a machine with {figures['cpus']} CPUs "
        f"({figures['isolation']}; nbgrader {'forked from a preloaded server' if figures['nbgrader_fork'] else 'started as a new process'} per submission)",
        f"  serial `nbgrader autograde {unit}`: {figures['serial_s']:7.1f} s   "
        f"({figures['serial_s'] / n:.1f} s per submission)",
    ]
    for engine, r in figures["runs"].items():
        speedup = figures["serial_s"] / r["seconds"]
        lines += [
            f"  grade_class on {r['engine']}, {r['workers']} workers: {r['seconds']:7.1f} s   "
            f"({r['seconds'] / n:.1f} s per submission; intake, template, sandbox, judge, gradebook, feedback and "
            f"CSV included)",
            f"    speed-up against serial nbgrader: {speedup:.2f}x on {cores_used} cores; throughput per core: "
            f"{speedup / cores_used:.2f}x plain nbgrader's (serial nbgrader counted as one core)",
            f"    scores {'agree: the same ' + str(n) + ' totals' if r['agree'] else 'DISAGREE'}",
        ]
        if not r["agree"]:
            for student in sorted(set(figures["serial"]) | set(r["totals"])):
                lines.append(f"      {student}: {figures['serial'].get(student)} / {r['totals'].get(student)} "
                             f"({r['statuses'].get(student, 'not graded')})")
        lines.append("    the class runner's own phases (one process, the only writer):")
        for name, seconds in r["phases"].items():
            lines.append(f"      {name:<58} {seconds:7.2f} s")
        lines += ["  " + line for line in _breakdown(r["tasks"])]
        steady = steady_state(r["tasks"])
        if steady is not None:
            per_sub = figures["serial_s"] / n
            lines.append(f"    past each worker's first submission: {steady:.1f} s per submission on a worker, "
                         f"{per_sub / steady:.2f}x plain nbgrader's throughput per core ({per_sub:.1f} s per "
                         f"submission, serial): what each further submission of a large class costs")
            sizes = by_class_size(figures, engine)
            lines.append("    throughput per core against plain nbgrader by class size (submissions of the unit), "
                         f"from this run: {sizes['fixed']:.1f} s fixed + {sizes['steady']:.1f} s per submission "
                         f"per worker: " + ", ".join(f"{size}: {x:.2f}x" for size, x in sizes["per_core"].items()))
    engine = next((e for e in ("dask-local", *figures["runs"]) if e in figures["runs"]), None)
    if engine is not None:
        p = projection(figures, engine)
        lines.append(f"  projected, {PROJECTED_NOTEBOOKS} notebooks like these on {figures['runs'][engine]['engine']} "
                     f"grown to more cores:")
        for c, seconds in p["seconds"].items():
            lines.append(f"    {c:>3} cores: {seconds / 60:6.1f} min" +
                         ("  (the one writer is the limit here)" if p["writer_bound"][c] else ""))
        sized = by_class_size(figures, engine)
        if sized is not None:
            each = {c: (p["units"] * sized["fixed"] + PROJECTED_NOTEBOOKS * sized["steady"] / c
                        + PROJECTED_NOTEBOOKS * p["per_row"]) / 60 for c in PROJECTED_CORES}
            lines.append("    from this run's fixed and steady costs instead (each unit pays the run's fixed "
                         f"{sized['fixed']:.1f} s once, whatever the cores; each further notebook "
                         f"{sized['steady']:.1f} core-seconds): "
                         + ", ".join(f"{c} cores {m:.1f} min" for c, m in each.items()))
        lines.append(f"    assumptions: {p['core_s']:.1f} core-seconds per notebook (the grading phase measured here x "
                     f"workers / submissions; one worker per core, speed-up linear in cores); the class runner's "
                     f"{p['per_outcome']:.2f} s per outcome runs beside the grading and {p['per_row']:.3f} s per "
                     f"gradebook row after it; a template of {p['template']:.1f} s for each of {p['units']} units; "
                     f"every notebook as long as this unit's (`make times` gives each unit's own)")
    lines.append(f"  scratch course folders: {figures['scratch']}")
    return "\n".join(lines)
