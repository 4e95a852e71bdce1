"""Intake: turn folders and zips of submissions, as they really arrive, into Submissions.

``scan(inputs, staging)`` walks folders, zip files and single files and puts
every file it finds into exactly one of ``Intake.submissions`` (matched to a
student and a unit) or ``Intake.rejected`` (with the reason in words), so an
instructor never loses a student's file without being told. Only obvious junk
is skipped silently: ``__MACOSX/`` and ``.ipynb_checkpoints/`` folders,
``.DS_Store`` files, and the ``timestamp.txt`` nbgrader itself writes next to
a submission (in the exchange and in ``submitted/``; it is read, not graded).

Where the student comes from, first rule that applies:

1. nbgrader's exchange inbound folder ``<student>+<unit>+<timestamp>[+<random>]``
   (nbgrader/exchange/default/submit.py writes it; collect.py reads it back with
   ``rsplit('+', 3)`` and ``parse_utc``; the timestamp format is
   ``Exchange.timestamp_format``, by default ``%Y-%m-%d %H:%M:%S.%f %Z``).
2. nbgrader's course layout ``[submitted/]<student>/<unit>/<notebook>.ipynb``.
3. LMS bulk downloads, on the file name and then on each enclosing folder
   (a per-student zip inside an LMS zip counts as a folder named by its stem):
   Moodle ``<Full Name>_<id>_assignsubmission_file_`` (the id is Moodle's
   participant id), Blackboard ``<Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>``
   (the pattern nbgrader's own zip_collect tests use:
   nbgrader/tests/apps/test_nbgrader_zip_collect.py), Canvas
   ``<name>[_LATE]_<user_id>_<submission_id>_<file>`` (the id is the numeric
   Canvas user id; with a roster, the login-name part also counts).
4. With a roster: ``<student_id>_<anything>.ipynb`` or ``<anything>_<student_id>.ipynb``
   (or just ``<student_id>.ipynb``); the roster tells which part is the id, and
   two roster ids in one name is ambiguous.
5. A per-student folder: the nearest folder holding the file, inside the
   input (not the folder or zip given as input itself, nor a zip's single
   top folder, as "Compress folder" makes). A zip found inside a folder or
   a zip counts as a folder named by its stem (``jdoe.zip`` -> ``jdoe``).

Where the unit comes from: a folder named by a unit id (or the exchange
folder's unit), else the file name (the unit's notebook name once Colab's
"Copy of " and " (1)" and Canvas' "-1" are stripped), else the content (the
grade_ids of its nbgrader cells against each unit's release notebook in
``exercises/<unit>/``). A file whose path names a student and a unit is a
Submission even when its content is empty, invalid or another unit's: the
sandbox grades it and reports INVALID_NOTEBOOK or WRONG_UNIT, so the attempt
shows in the export.

Several files for one student and unit: the newest is kept (the exchange or
Blackboard timestamp, or ``timestamp.txt``, else the file's modification time),
the others are Rejected "superseded by <kept>".
"""
from __future__ import annotations

import json
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath

from nbgrader.utils import parse_utc

from course import syllabus

from . import ROOT
from .records import Intake, Rejected, Submission

JUNK_DIRS = frozenset({"__MACOSX", ".ipynb_checkpoints"})
JUNK_FILES = frozenset({".DS_Store"})
NBGRADER_TIMESTAMP = "timestamp.txt"
LAYOUT_FOLDERS = frozenset({"submitted", "autograded", "feedback", "inbound"})

# Limits against zip bombs: bytes actually written, not the sizes a zip claims.
MAX_ARCHIVE_BYTES = 512 * 2**20
MAX_MEMBER_BYTES = 64 * 2**20
MAX_MEMBERS = 20_000
MAX_ZIP_DEPTH = 2   # a zip, and zips inside it (an LMS zip of per-student zips)

MOODLE = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(?:file|onlinetext)_(?P<file>.*)$")
BLACKBOARD = re.compile(r"^.+_(?P<id>[^_]+)_attempt_(?P<ts>\d{4}(?:-\d{2}){5})(?:_(?P<file>.+))?$")
CANVAS = re.compile(r"^(?P<name>[^_]+)_(?:LATE_)?(?P<id>\d+)_(?P<sub>\d+)_(?P<file>.+)$")
COLAB_COPY = re.compile(r"^(?:copy of )+", re.IGNORECASE)
DUPLICATE_SUFFIX = re.compile(r"(?:\s*\(\d+\)|-\d+)+$")   # Colab/browser " (1)", Canvas "-1"
UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._@-]")


@dataclass
class _Found:
    """One file on disk, with where it came from."""
    real: Path                 # the file to read (extracted into staging if it came from a zip)
    display: str               # where it was found, for messages ("class.zip!/a/b.ipynb")
    parts: tuple[str, ...]     # its path inside the input, a nested zip as a folder named by its stem
    top: int = 0               # parts[:top] never name a student (1: a zip's single top folder)
    zip_name: str | None = None
    mtime: datetime | None = None
    context: str = ""          # the name of the folder given as input (it may be one exchange submission)


@dataclass
class _Candidate:
    submission: Submission
    display: str
    timestamp: datetime | None
    canonical: bool            # named exactly <notebook>.ipynb


@dataclass
class _Who:
    student: str | None = None
    origin: str | None = None
    unit: str | None = None              # a unit id the source names (exchange folder)
    file_part: str | None = None         # what is left of the name once the LMS prefix is gone
    timestamp: datetime | None = None
    problems: list[str] = field(default_factory=list)


def scan(inputs: list[Path], staging: Path, unit_ids: list[str] | None = None,
         roster: list[str] | None = None) -> Intake:
    """Match every file under ``inputs`` to a student and a unit, or say why not."""
    course = syllabus.load()
    graded = [course.unit(u) for u in unit_ids] if unit_ids else list(course.ready_units)
    roster_map = roster_ids(roster) if roster is not None else None
    staging = Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    intake = Intake()
    candidates = []
    for found in _collect([Path(p) for p in inputs], staging, intake.rejected):
        if _is_nbgrader_timestamp(found):
            continue
        result = _identify(found, course, graded, roster_map)
        (candidates if isinstance(result, _Candidate) else intake.rejected).append(result)
    kept, superseded = _keep_newest(candidates)
    intake.submissions = sorted((c.submission for c in kept), key=lambda s: (s.student_id, s.unit_id))
    intake.rejected = sorted(intake.rejected + superseded, key=lambda r: (r.path, r.reason))
    return intake


# -- finding files -----------------------------------------------------------------------------

def _collect(inputs: list[Path], staging: Path, rejected: list[Rejected]) -> list[_Found]:
    found = []
    for index, item in enumerate(inputs):
        if item.is_dir():
            found += _walk_folder(item, staging / f"{index:03d}", rejected)
        elif item.is_file() and zipfile.is_zipfile(item):
            target = staging / f"{index:03d}-{_safe_name(item.stem)}"
            found += _extract(item, target, item.name, (), 1, rejected)
        elif item.is_file():
            found.append(_Found(item, str(item), (item.name,), mtime=_mtime(item)))
        else:
            rejected.append(Rejected(str(item), "does not exist"))
    return found


def _walk_folder(folder: Path, staging: Path, rejected: list[Rejected]) -> list[_Found]:
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if _is_junk(rel) or path.is_dir():
            continue
        if path.is_symlink():
            rejected.append(Rejected(str(path), "a symbolic link: not followed"))
        elif zipfile.is_zipfile(path):
            target = staging / Path(*rel[:-1]) / _safe_name(path.stem)
            found += _extract(path, target, str(path), rel[:-1] + (PurePosixPath(rel[-1]).stem,), 1, rejected)
        else:
            found.append(_Found(path, str(path), rel, mtime=_mtime(path), context=folder.name))
    return found


def _extract(archive: Path, target: Path, display: str, prefix: tuple[str, ...], depth: int,
             rejected: list[Rejected]) -> list[_Found]:
    """Extract a zip safely: no zip slip, no absolute paths, no links, bounded size.

    A member that is unsafe is listed as Rejected and not written; an archive
    that expands past MAX_ARCHIVE_BYTES is rejected whole and nothing of it is
    kept. Zips inside it are extracted too, down to MAX_ZIP_DEPTH.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not _is_junk(PurePosixPath(m.filename).parts)]
            if len(members) > MAX_MEMBERS:
                rejected.append(Rejected(display, f"zip holds {len(members)} files, more than {MAX_MEMBERS}: "
                                                  "not extracted"))
                return []
            found, written = [], 0
            for member in members:
                rel, problem = _member_path(member)
                where = f"{display}!/{member.filename}"
                if problem:
                    rejected.append(Rejected(where, problem))
                    continue
                if member.is_dir():
                    continue
                dest = target.joinpath(*rel)
                try:
                    written += _copy_member(zf, member, dest, MAX_ARCHIVE_BYTES - written)
                except _TooBig as err:
                    dest.unlink(missing_ok=True)
                    if not err.whole_archive:
                        rejected.append(Rejected(where, f"larger than {_size(MAX_MEMBER_BYTES)} once "
                                                        "extracted: not extracted"))
                        continue
                    shutil.rmtree(target, ignore_errors=True)
                    rejected.append(Rejected(display, f"zip expands past {_size(MAX_ARCHIVE_BYTES)} "
                                                      "(a zip bomb?): not extracted"))
                    return []
                mtime = datetime(*member.date_time)
                found.append(_Found(dest, where, prefix + rel, zip_name=archive.name, mtime=mtime))
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as err:
        rejected.append(Rejected(display, f"not a readable zip file ({err})"))
        return []
    return _unwrap(_extract_nested(found, depth, rejected), prefix, members)


def _member_path(member: zipfile.ZipInfo) -> tuple[tuple[str, ...], str]:
    """The member's relative path, or why it must not be written."""
    name = member.filename.replace("\\", "/")
    mode = member.external_attr >> 16
    if stat.S_ISLNK(mode):
        return (), "a symbolic link inside the zip: not extracted"
    if member.flag_bits & 0x1:
        return (), "encrypted inside the zip: not extracted"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return (), "an absolute path inside the zip: not extracted"
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        return (), "a path leaving the zip's folder (..): not extracted"
    return parts, ""


class _TooBig(Exception):
    def __init__(self, whole_archive: bool):
        super().__init__(whole_archive)
        self.whole_archive = whole_archive


def _copy_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, dest: Path, budget: int) -> int:
    """Stream one member to dest, counting real bytes (a zip's stated sizes can lie)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(member) as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > budget:
                raise _TooBig(whole_archive=True)
            if written > MAX_MEMBER_BYTES:
                raise _TooBig(whole_archive=False)
            out.write(chunk)
    return written


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} bytes"


def _extract_nested(found: list[_Found], depth: int, rejected: list[Rejected]) -> list[_Found]:
    """Open zips inside a zip one level deep; a nested zip reads as a folder named by its stem."""
    out = []
    for f in found:
        if not zipfile.is_zipfile(f.real):
            out.append(f)
        elif depth >= MAX_ZIP_DEPTH:
            rejected.append(Rejected(f.display, f"a zip nested more than {MAX_ZIP_DEPTH - 1} level deep: "
                                                "not extracted"))
        else:
            inner = _extract(f.real, f.real.with_name(f.real.name + ".d"), f.display,
                             f.parts[:-1] + (PurePosixPath(f.parts[-1]).stem,), depth + 1, rejected)
            out += [_Found(i.real, i.display, i.parts, f.top, f.zip_name, i.mtime) for i in inner]
            f.real.unlink()
    return out


def _unwrap(found: list[_Found], prefix: tuple[str, ...], members: list[zipfile.ZipInfo]) -> list[_Found]:
    """A zip whose members all sit in one top folder ("Compress folder"): skip that folder for ids."""
    safe = [(m, _member_path(m)[0]) for m in members if not _member_path(m)[1]]
    one_top = len({parts[0] for _, parts in safe if parts}) == 1
    if not prefix and one_top and all(len(parts) > 1 or m.is_dir() for m, parts in safe):
        for f in found:
            f.top = 1
    return found


def _is_junk(parts) -> bool:
    return any(p in JUNK_DIRS for p in parts[:-1]) or (bool(parts) and parts[-1] in JUNK_FILES) \
        or (bool(parts) and parts[-1] in JUNK_DIRS)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime)


def _safe_name(text: str) -> str:
    return UNSAFE_ID_CHARS.sub("_", text).lstrip(".") or "_"


# -- matching a file to a student and a unit ------------------------------------------------------

def _identify(found: _Found, course, graded, roster_map) -> _Candidate | Rejected:
    name = found.parts[-1]
    suffix = PurePosixPath(name).suffix.lower()
    if suffix != ".ipynb":
        return Rejected(found.display, f"not a notebook ({suffix or 'no extension'})")
    who = _who(found, roster_map)
    content = _read_json(found.real)
    unit_id, unit_problem = _unit(found, who, content, course, graded)
    student, student_problem = _student(who, found, roster_map)
    problems = [p for p in (student_problem, unit_problem) if p]
    if problems:
        return Rejected(found.display, "; ".join(problems))
    origin = who.origin or ("colab" if _is_colab(name, content) else
                            f"zip:{found.zip_name}" if found.zip_name else "folder")
    unit = course.unit(unit_id)
    timestamp = who.timestamp or _timestamp_file(found.real.parent)
    return _Candidate(Submission(student, unit_id, found.real, origin, name), found.display,
                      timestamp or found.mtime, name == unit.filename)


def _is_nbgrader_timestamp(found: _Found) -> bool:
    """nbgrader's own timestamp.txt in an exchange or submitted/ folder: read for the date, not graded."""
    if found.parts[-1] != NBGRADER_TIMESTAMP or len(found.parts) < 2:
        return False
    units = {u.id for u in syllabus.load().units}
    return _exchange_folder(found.parts[-2]) is not None or found.parts[-2] in units


def _who(found: _Found, roster_map) -> _Who:
    """The student (and what else the source tells) from the path, first rule that applies."""
    parts = found.parts
    for part in (*reversed(parts[:-1]), found.context):
        exchange = _exchange_folder(part)
        if exchange:
            student, unit, ts = exchange
            return _Who(student, "nbgrader-exchange", unit, timestamp=ts)
    units = {u.id for u in syllabus.load().units}
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] in units and parts[i - 1] not in LAYOUT_FOLDERS and parts[i - 1] not in units:
            return _Who(parts[i - 1], "nbgrader-submitted")
    who = _lms(PurePosixPath(parts[-1]).stem, roster_map)
    if who:
        return who
    for part in reversed(parts[found.top:-1]):
        who = _lms(part, roster_map)
        if who:
            who.file_part = None   # the rest of a folder's name says nothing about the unit
            return who
    if roster_map is not None:
        who = _roster_name(PurePosixPath(parts[-1]).stem, roster_map)
        if who:
            return who
    folder = next((p for p in reversed(parts[found.top:-1]) if p not in units | LAYOUT_FOLDERS), None)
    return _Who(folder, None)


def _exchange_folder(name: str):
    """(student, unit, timestamp) from an exchange inbound folder name, as nbgrader's collect reads it."""
    if "+" not in name:
        return None
    fields = name.rsplit("+", 3)
    if len(fields) == 4 and not _parses_as_time(fields[2]):
        fields = name.rsplit("+", 2)   # no random suffix (Exchange.add_random_string False)
    if len(fields) < 3 or not _parses_as_time(fields[2]):
        return None
    return fields[0], fields[1], parse_utc(fields[2])


def _parses_as_time(text: str) -> bool:
    try:
        parse_utc(text)
    except (ValueError, OverflowError, TypeError):
        return False
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}", text))


def _lms(part: str, roster_map) -> _Who | None:
    m = MOODLE.match(part)
    if m:
        return _Who(m["id"], "lms", file_part=m["file"] or None)
    m = BLACKBOARD.match(part)
    if m:
        ts = datetime.strptime(m["ts"], "%Y-%m-%d-%H-%M-%S")
        return _Who(m["id"], "lms", file_part=m["file"], timestamp=ts)
    m = CANVAS.match(part)
    if m:
        student = m["id"]
        if roster_map is not None and m["id"].lower() not in roster_map and m["name"].lower() in roster_map:
            student = m["name"]
        return _Who(student, "lms", file_part=m["file"])
    return None


def _roster_name(stem: str, roster_map) -> _Who | None:
    """`<id>_<anything>`, `<anything>_<id>` or `<id>`, where the roster says what the id is."""
    low = stem.strip().lower()
    hits = set()
    for key in roster_map:
        if low == key:
            hits.add((key, ""))
        elif low.startswith(key + "_"):
            hits.add((key, stem.strip()[len(key) + 1:]))
        elif low.endswith("_" + key):
            hits.add((key, stem.strip()[:-len(key) - 1]))
    ids = sorted({k for k, _ in hits})
    if len(ids) > 1:
        return _Who(problems=[f"ambiguous student id in the name: {', '.join(ids)} are all on the roster"])
    if not ids:
        return None
    key, rest = min(h for h in hits if h[0] == ids[0])
    return _Who(key, "lms", file_part=rest or None)


def _student(who: _Who, found: _Found, roster_map) -> tuple[str | None, str]:
    if who.problems:
        return None, who.problems[0]
    if not who.student or not who.student.strip():
        stem = PurePosixPath(found.parts[-1]).stem
        hint = (f" ({found.parts[-1]} would need a roster to tell which part is the id)"
                if "_" in stem and roster_map is None and _unit_from_name(stem, syllabus.load()) is None else "")
        return None, "no student id in the path or name" + hint
    raw = who.student.strip()
    if roster_map is not None:
        if raw.lower() not in roster_map:
            return None, f"student id {raw} is not on the roster"
        return roster_map[raw.lower()], ""
    return _safe_name(raw), ""


def roster_ids(roster: list[str]) -> dict[str, str]:
    """Lower-cased id -> the filesystem-safe form nbgrader gets (no '+' or '/'); the export uses it too."""
    return {r.strip().lower(): _safe_name(r.strip()) for r in roster if r and r.strip()}


def _unit(found: _Found, who: _Who, content, course, graded) -> tuple[str | None, str]:
    """The unit, from the folder, else the name, else the content; or why none."""
    graded_ids = [u.id for u in graded]
    named = who.unit or next((p for p in reversed(found.parts[:-1]) if p in {u.id for u in course.units}), None)
    if named is None:
        names = (who.file_part or "", PurePosixPath(found.parts[-1]).stem)
        named = next((u for u in (_unit_from_name(n, course) for n in names if n) if u), None)
    if named is not None:
        if named in graded_ids:
            return named, ""
        known = named in {u.id for u in course.units}
        what = f"unit {named} is not one of the units being graded" if known else f"unknown unit {named}"
        return None, f"{what} ({', '.join(graded_ids)})"
    if content is None:
        return None, "no unit in the path or name, and the content is not a readable notebook"
    matches = _unit_from_content(content, graded)
    if len(matches) == 1:
        return matches[0], ""
    if matches:
        return None, f"no unit in the path or name, and the content fits several units: {', '.join(matches)}"
    return None, "no unit in the path or name, and the content is no notebook of this course"


def _unit_from_name(text: str, course) -> str | None:
    stem = text[:-len(".ipynb")] if text.lower().endswith(".ipynb") else text
    stem = DUPLICATE_SUFFIX.sub("", COLAB_COPY.sub("", stem.strip())).strip().lower()
    for unit in course.units:
        if stem in (unit.notebook.lower(), unit.id.lower()):
            return unit.id
    return None


def _unit_from_content(content, graded) -> list[str]:
    """Units whose release notebook shares the most nbgrader grade_ids with this one."""
    ids = _grade_ids(content)
    if not ids:
        return []
    overlap = {u.id: len(ids & _release_grade_ids(u.id)) for u in graded}
    best = max(overlap.values(), default=0)
    return sorted(u for u, n in overlap.items() if n == best) if best else []


@lru_cache(maxsize=None)
def _release_grade_ids(unit_id: str) -> frozenset[str]:
    unit = syllabus.load().unit(unit_id)
    path = ROOT / "exercises" / unit.id / unit.filename
    return frozenset(_grade_ids(json.loads(path.read_text(encoding="utf-8"))))


def _grade_ids(content) -> set[str]:
    cells = content.get("cells", []) if isinstance(content, dict) else []
    ids = set()
    for cell in cells if isinstance(cells, list) else []:
        meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
        nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
        if isinstance(nbg, dict) and isinstance(nbg.get("grade_id"), str):
            ids.add(nbg["grade_id"])
    return ids


def _read_json(path: Path):
    """The parsed notebook, or None when it is empty, too big, not JSON or not an object."""
    try:
        if path.stat().st_size > MAX_MEMBER_BYTES:
            return None
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_colab(name: str, content) -> bool:
    """Colab's downloads: renamed ("Copy of", " (1)"), or with Colab's own notebook metadata."""
    stem = PurePosixPath(name).stem
    renamed = bool(COLAB_COPY.match(stem)) or bool(re.search(r"\s\(\d+\)$", stem))
    meta = content.get("metadata", {}) if content else {}
    return renamed or (isinstance(meta, dict) and ("colab" in meta or "accelerator" in meta))


def _timestamp_file(folder: Path) -> datetime | None:
    """nbgrader's timestamp.txt beside a collected or exchanged submission, if readable."""
    path = folder / NBGRADER_TIMESTAMP
    try:
        return parse_utc(path.read_text(encoding="utf-8").strip()) if path.is_file() else None
    except (OSError, ValueError, OverflowError):
        return None


def _keep_newest(candidates: list[_Candidate]) -> tuple[list[_Candidate], list[Rejected]]:
    """One submission per student and unit: the newest, then the exact file name, then path order."""
    groups: dict[tuple[str, str], list[_Candidate]] = {}
    for c in candidates:
        groups.setdefault((c.submission.student_id, c.submission.unit_id), []).append(c)
    kept, rejected = [], []
    for group in groups.values():
        group.sort(key=lambda c: c.display)
        group.sort(key=lambda c: (c.timestamp or datetime.min, c.canonical), reverse=True)  # stable: ties by path
        kept.append(group[0])
        rejected += [Rejected(c.display, f"superseded by {group[0].display}") for c in group[1:]]
    return kept, rejected

