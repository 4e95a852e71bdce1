"""grade-class on a Dask cluster: the same sandboxed grading, on as many machines as the cluster has.

The class runner (:mod:`autograder.classroom`) hands its submissions to
:func:`grade_on_dask` instead of its local process pool. Nothing here changes
what a submission's grading is: each task runs :func:`autograder.sandbox.grade_one`
on a worker, with the sandbox and its limits as on one machine. What changes
is how the work travels:

* **Bytes, not paths.** The prepared template (the scratch course with its
  gradebook, the units' releases and each unit's staged packages) is packed
  once into a tar archive and scattered to every worker, and each submission
  travels as its file's bytes. A worker unpacks the template once into its
  own local folder and writes each submission into a scratch folder that it
  removes afterwards. Workers need no shared filesystem; they need the same
  Python environment and checkout as the machine that runs grade-class (the
  grading code, the hidden tests the judge replays, nbgrader, bubblewrap), and
  each task checks that its worker's release checksum is the runner's.
* **Outcomes back, one writer.** A task returns the outcome as a plain record
  and the graded notebook's bytes. Only the process that runs grade-class
  writes the journal, the gradebook, autograded/ and feedback/, as with the
  local pool.
* **A dead worker costs its own submission only.** The scheduler gives the
  task of a worker that died to another worker (``allowed-failures`` times,
  :data:`RETRIES` on a cluster started here). A task that kills every worker
  it runs on becomes a ``grader-error`` outcome that says so, and the rest of
  the class is graded.

``cluster`` is ``"local"`` (a ``distributed.LocalCluster`` of ``workers``
processes on this machine, one thread each), a scheduler's address
(``tcp://scheduler:8786``), or an object with a ``scheduler_address`` (a
``LocalCluster``, a dask-jobqueue or dask-kubernetes cluster made by the
caller).
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from .records import Outcome, Submission

RETRIES = 1   # a task whose worker died is given to another worker once more, then reported
SCHEDULER_CONFIG = {
    # a dead worker's task is tried once more elsewhere, then reported
    "distributed.scheduler.allowed-failures": RETRIES,
    # each worker holds the one submission it grades and no queue of others: a worker that dies takes
    # only its own submission down (a queued one would count that death against itself)
    "distributed.scheduler.worker-saturation": 1.0,
    # workers start nbgrader from a fork server, which a daemonic process may not have
    "distributed.worker.daemon": False,
}


# ---------------------------------------------------------------- what travels

def pack_template(template: Path) -> bytes:
    """The prepared template folder as a tar archive (gzip level 1: fast, and a third of the size)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        tar.add(str(template), arcname="template")
    return buffer.getvalue()


def _bundles_root() -> Path:
    """Where a worker keeps unpacked templates: its own local folder (removed with the worker)."""
    try:
        from distributed import get_worker

        return Path(get_worker().local_directory) / "grade-class"
    except (ImportError, ValueError):
        return Path(tempfile.gettempdir()) / f"grade-class-{os.getuid()}"


_unpack_lock = threading.Lock()


def unpack_template(bundle: bytes, digest: str, root: Path | None = None) -> Path:
    """The template unpacked on this machine, once per archive (its sha256 names the folder)."""
    from .sandbox import _read_only

    root = Path(root) if root else _bundles_root()
    target = root / digest
    with _unpack_lock:
        if (target / "template").is_dir():
            return target / "template"
        partial = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=_mkdir(root)))
        with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
            tar.extractall(partial, filter="data")
        for packages in (partial / "template" / "packages").glob("*"):
            _read_only(packages)   # as prepared: the kernel's staged packages are read-only
        partial.rename(target)
    return target / "template"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _template_bytes(bundle: bytes) -> bytes:
    return bundle


_graded_here = 0   # submissions this worker process has graded (the first pays for its imports)


def grade_bytes(data: bytes, student_id: str, unit_id: str, origin: str, original_name: str,
                bundle: bytes, digest: str, checksum: str, limits) -> dict:
    """What a Dask worker runs for one submission: unpack the template (once), grade the file's bytes
    with :func:`autograder.sandbox.grade_one` in a scratch folder of its own, and return the outcome as a
    plain record with the graded notebook's bytes and the time each phase took."""
    from . import classroom, sandbox

    started = time.perf_counter()
    template = unpack_template(bundle, digest)
    unpacked = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="submission-", dir=_mkdir(template.parent.parent / "work")))
    try:
        sub = Submission(student_id, unit_id, folder / "submitted.ipynb", origin, original_name)
        sub.path.write_bytes(data)
        if classroom.release_checksum(unit_id) != checksum:
            outcome = classroom._failed(sub, "this worker's release or hidden tests differ from the grading "
                                             "machine's: install the same checkout on every worker")
            timings = {}
        else:
            timings = {}
            outcome = sandbox.grade_one(sub, template, folder / "work", limits, timings=timings)
        graded = Path(outcome.autograded).read_bytes() if outcome.autograded else None
        outcome.autograded = None
        timings["unpack template"] = unpacked - started
        global _graded_here
        _graded_here += 1
        return {"outcome": outcome.as_dict(), "autograded": graded, "timings": timings,
                "worker_seconds": time.perf_counter() - started, "nth_on_worker": _graded_here}
    finally:
        sandbox.remove_tree(folder)


# ---------------------------------------------------------------- the cluster

class _Cluster:
    """A client on the cluster `spec` names; a LocalCluster started here is closed with it."""

    def __init__(self, spec, workers: int):
        import dask
        from distributed import Client, LocalCluster

        self.owned = None
        if isinstance(spec, str) and spec == "local":
            with dask.config.set(SCHEDULER_CONFIG):
                # one submission at a time per worker process; the kernel's memory limit is the sandbox's,
                # so the nanny does not watch memory (it would count only the worker, not its kernel)
                self.owned = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                          memory_limit=0, dashboard_address=None)
            address = self.owned.scheduler_address
        elif isinstance(spec, str):
            address = spec
        else:
            address = spec.scheduler_address
        try:
            self.client = Client(address, set_as_default=False)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            if getattr(self, "client", None) is not None:
                self.client.close()
        finally:
            if self.owned is not None:
                self.owned.close()


def describe(spec) -> str:
    if isinstance(spec, str):
        return "a Dask LocalCluster" if spec == "local" else f"the Dask scheduler at {spec}"
    return f"the Dask cluster at {spec.scheduler_address}"


def grade_on_dask(submissions: list[Submission], template: Path, work: Path, limits, cluster="local",
                  workers: int = 2, progress: bool = True, arrived=None, task=grade_bytes,
                  timings: list | None = None) -> list[Outcome]:
    """Grade `submissions` on a Dask cluster; outcomes in the order given, each handed to `arrived`
    (in this process) as it comes back. `timings`, when a list, gets each task's phase times."""
    from distributed import as_completed

    from . import classroom

    bar = classroom._Progress(len(submissions), enabled=progress)
    work = Path(work)
    results: dict[int, Outcome] = {}
    bundle = pack_template(Path(template))
    digest = hashlib.sha256(bundle).hexdigest()
    checksums = {u: classroom.release_checksum(u) for u in {s.unit_id for s in submissions}}
    engine = _Cluster(cluster, workers)
    futures = {}
    try:
        client = engine.client
        # A task that returns the archive, not scattered data: when the workers that hold it die, the
        # scheduler makes it again (scattered data would be lost, and every task waiting for it with it).
        shared = client.submit(_template_bytes, bundle, key=f"grade-class-template-{digest[:16]}", pure=False)
        for index, sub in enumerate(submissions):
            data = Path(sub.path).read_bytes() if Path(sub.path).is_file() else b""
            future = client.submit(task, data, sub.student_id, sub.unit_id, sub.origin, sub.original_name,
                                   shared, digest, checksums[sub.unit_id], limits, pure=False,
                                   key=f"grade-{index:05d}-{sub.student_id}-{sub.unit_id}",
                                   priority=len(submissions) - index)   # in the order given, as the pool does
            futures[future] = index
        for future in as_completed(list(futures), loop=client.loop):
            index = futures.pop(future)
            sub = submissions[index]
            try:
                result = future.result()
                outcome = _received(result, sub, work / f"{index:05d}", timings)
            except Exception as error:  # noqa: BLE001 (a dead worker or a bug costs this submission only)
                outcome = _lost(sub, error)
            future.release()   # its result is here now: a worker that dies later does not owe it again
            outcome = _arrive(arrived, sub, outcome)
            results[index] = outcome
            bar.update(outcome)
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
        engine.close()
        bar.close()
    return [results[i] for i in range(len(submissions))]


def _received(result: dict, sub: Submission, folder: Path, timings: list | None) -> Outcome:
    """A task's record as an Outcome here, its graded notebook written to this machine's scratch folder."""
    from course import syllabus

    outcome = Outcome.from_dict(result["outcome"])
    if result.get("autograded") is not None:
        unit = syllabus.load().unit(sub.unit_id)
        path = folder / unit.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(result["autograded"])
        outcome.autograded = path
    if timings is not None:
        timings.append({**result.get("timings", {}), "worker": result.get("worker_seconds", 0.0),
                        "nth": result.get("nth_on_worker", 0)})
    return outcome


def _lost(sub: Submission, error: BaseException) -> Outcome:
    from distributed.scheduler import KilledWorker

    from . import classroom

    if isinstance(error, KilledWorker):
        return classroom._failed(sub, f"the grading worker died while grading this submission, on each of "
                                      f"{RETRIES + 1} tries (another worker took it over after the first); "
                                      f"regrade it after a fix")
    return classroom._grader_error(sub, error)


def _arrive(arrived, sub: Submission, outcome: Outcome) -> Outcome:
    """Publish one outcome as the local pool does: an error while publishing it costs only this one."""
    from . import classroom

    if arrived is None:
        return outcome
    try:
        return arrived(sub, outcome)
    except Exception as error:  # noqa: BLE001
        failed = classroom._grader_error(sub, error)
        try:
            return arrived(sub, failed)
        except Exception:  # noqa: BLE001
            return failed


__all__ = ["grade_on_dask", "grade_bytes", "pack_template", "unpack_template", "describe"]
