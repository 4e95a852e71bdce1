"""Find a dataset file, verify it, and keep a verified copy in a local cache.

Order: the cache, then local copies (every folder in $COURSE_DATA_DIRS, then
<checkout>/../shared/datasets when running from a repository checkout), then a
download. Every copy is checked against the registry's sha256 while it is read,
and only a verified file is ever placed in the cache or returned.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

from .registry import Entry, get_entry

CHUNK = 1 << 20
TIMEOUT_S = 30
_PROGRESS_AFTER_S = 0.5  # only long downloads get a progress line


class ChecksumError(ValueError):
    """A copy of a dataset file whose bytes differ from the registry's sha256."""

    def __init__(self, message, *, path, expected, actual, size, expected_size):
        super().__init__(message)
        self.path, self.expected, self.actual = str(path), expected, actual
        self.size, self.expected_size = size, expected_size


class DatasetUnavailableError(OSError):
    """No copy of a dataset could be found anywhere, and the download failed."""


def _checkout_root() -> Path | None:
    """The repository checkout this package runs from, or None (installed wheel)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def cache_root(cache_dir=None) -> Path:
    """Where verified copies are kept: cache_dir, $COURSE_DATA_HOME or ~/.cache/rnn-course."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("COURSE_DATA_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnn-course"


def local_dirs() -> list[Path]:
    """Folders that may hold <name>/<filename> copies, in the order they are tried."""
    dirs = [Path(d).expanduser() for d in os.environ.get("COURSE_DATA_DIRS", "").split(os.pathsep) if d]
    root = _checkout_root()
    if root is not None:
        dirs.append(root.parent / "shared" / "datasets")
    return dirs


def _mismatch(entry: Entry, path, actual: str, size: int) -> ChecksumError:
    return ChecksumError(
        f"{path} is not a good copy of dataset {entry.name!r}: expected sha256 {entry.sha256} "
        f"({entry.size} bytes), found sha256 {actual} ({size} bytes). The file is incomplete or "
        f"corrupted: delete it and run course.datasets.fetch({entry.name!r}) again to re-download "
        f"it (or replace it with a good copy of {entry.url}).",
        path=path, expected=entry.sha256, actual=actual, size=size, expected_size=entry.size,
    )


def sha256_of(path) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _verify(entry: Entry, path: Path) -> None:
    actual, size = sha256_of(path)
    if actual != entry.sha256:
        raise _mismatch(entry, path, actual, size)


class _Progress:
    """A single, throttled progress line on stdout; silent for quick transfers."""

    def __init__(self, entry: Entry, total: int | None, enabled: bool):
        self.entry, self.total, self.enabled = entry, total or entry.size, enabled
        self.start = self.last = time.monotonic()
        self.shown, self.done = False, -1

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and (now - self.start < _PROGRESS_AFTER_S or now - self.last < 0.25)):
            return
        if final and not self.shown:
            return  # a quick transfer: stay silent
        if final and done == self.done:
            print(file=sys.stdout, flush=True)  # the line already says 100%: just end it
            return
        self.last, self.shown, self.done = now, True, done
        pct = f"{100 * done / self.total:3.0f}% " if self.total else ""
        line = f"\rDownloading {self.entry.name}: {pct}({done / 1e6:.1f} / {self.total / 1e6:.1f} MB)"
        print(line, end="\n" if final else "", file=sys.stdout, flush=True)


def _copy_verified(entry: Entry, reader, dest: Path, source, progress: _Progress | None = None) -> None:
    """Stream `reader` into a temporary file beside `dest`, hashing as it goes;
    rename it onto `dest` only if the sha256 matches (atomic: no half-written cache)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
                if progress:
                    progress.update(size)
        if progress:
            progress.update(size, final=True)
        if digest.hexdigest() != entry.sha256:
            raise _mismatch(entry, source, digest.hexdigest(), size)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fetch_entry(entry: Entry, *, cache_dir=None, progress: bool = True) -> Path:
    """fetch() for an explicit registry entry (tests pass their own entry and URL)."""
    dest = cache_root(cache_dir) / entry.name / entry.filename
    tried: list[str] = []
    mismatches: list[ChecksumError] = []

    def failed(where, why: str) -> None:
        tried.append(f"  - {where}: {why}")

    # (a) the cache
    if dest.is_file():
        try:
            _verify(entry, dest)
            return dest
        except ChecksumError as err:
            mismatches.append(err)
            failed(f"cache {dest}", f"checksum mismatch (sha256 {err.actual}, {err.size} bytes)")
    else:
        failed(f"cache {dest}", "missing")

    # (b) local copies
    for folder in local_dirs():
        path = folder / entry.name / entry.filename
        if not path.is_file():
            failed(path, "missing")
            continue
        try:
            with open(path, "rb") as f:
                _copy_verified(entry, f, dest, path)
        except ChecksumError as err:
            mismatches.append(err)
            failed(path, f"checksum mismatch (sha256 {err.actual}, {err.size} bytes)")
            continue
        except OSError as err:
            failed(path, f"could not read or copy: {err}")
            continue
        if mismatches:
            warnings.warn(f"skipped corrupt copies of {entry.name!r}; using {path}:\n" + "\n".join(tried))
        return dest

    # (c) download
    try:
        with urllib.request.urlopen(entry.url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            bar = _Progress(entry, int(length) if length else None, progress)
            _copy_verified(entry, response, dest, entry.url, bar)
    except ChecksumError as err:
        mismatches.append(err)
        failed(entry.url, f"downloaded file has a checksum mismatch (sha256 {err.actual}, {err.size} bytes)")
    except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts are OSErrors
        failed(entry.url, f"network error: {err}")
    else:
        if mismatches:
            warnings.warn(f"skipped corrupt copies of {entry.name!r}; downloaded {entry.url}:\n" + "\n".join(tried))
        return dest

    places = "\n".join(tried)
    if mismatches:
        first = mismatches[0]
        raise ChecksumError(
            f"no good copy of dataset {entry.name!r} was found.\n{first}\nPlaces tried:\n{places}",
            path=first.path, expected=first.expected, actual=first.actual,
            size=first.size, expected_size=first.expected_size,
        )
    raise DatasetUnavailableError(
        f"dataset {entry.name!r} ({entry.filename}, sha256 {entry.sha256}) could not be found or "
        f"downloaded. Places tried:\n{places}\nConnect to the internet, or put a copy at "
        f"<folder>/{entry.name}/{entry.filename} and list <folder> in $COURSE_DATA_DIRS."
    )


def fetch(name: str, *, cache_dir=None, progress: bool = True) -> Path:
    """Path to a verified local copy of dataset `name` (see the module docstring
    for the search order). Raises KeyError for an unknown name, ChecksumError if
    the only copies found are corrupt, DatasetUnavailableError if none is found."""
    return _fetch_entry(get_entry(name), cache_dir=cache_dir, progress=progress)
