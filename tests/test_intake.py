"""Intake: submissions as they really arrive are matched to a student and a unit, or listed with a reason."""
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from autograder import intake
from course import syllabus

UNIT1 = syllabus.load().unit("01_rnn_by_hand")
UNIT3 = syllabus.load().unit("03_gated_cells")
EXCHANGE_TS = "{} 15:30:10.123456 UTC"


def release(root: Path, unit=UNIT1, colab: bool = False) -> bytes:
    nb = json.loads((root / "exercises" / unit.id / unit.filename).read_text(encoding="utf-8"))
    if colab:
        nb["metadata"].update(colab={"provenance": []}, accelerator="GPU")
    return json.dumps(nb).encode()


def put(base: Path, rel: str, data: bytes = b"") -> Path:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] = {}) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def test_nbgrader_layouts_and_exchange(root, tmp_path):
    nb = release(root)
    folder = tmp_path / "in"
    put(folder, "submitted/alice/01_rnn_by_hand/rnn_by_hand.ipynb", nb)
    put(folder, "submitted/alice/01_rnn_by_hand/timestamp.txt", b"2024-01-30 10:00:00.000000 UTC")
    old = put(folder, f"inbound/bob+01_rnn_by_hand+{EXCHANGE_TS.format('2024-01-30')}+AbCdEf/rnn_by_hand.ipynb", nb)
    new = put(folder, f"inbound/bob+01_rnn_by_hand+{EXCHANGE_TS.format('2024-02-01')}+XyZ123/rnn_by_hand.ipynb", nb)
    put(folder, f"inbound/bob+01_rnn_by_hand+{EXCHANGE_TS.format('2024-02-01')}+XyZ123/timestamp.txt", b"x")
    put(folder, "submitted/gina/01_rnn_by_hand/rnn_by_hand.ipynb", b"")   # empty: still gina's attempt

    result = intake.scan([folder], tmp_path / "staging")

    got = [(s.student_id, s.unit_id, s.origin, s.path) for s in result.submissions]
    assert got == [
        ("alice", UNIT1.id, "nbgrader-submitted", folder / "submitted/alice/01_rnn_by_hand/rnn_by_hand.ipynb"),
        ("bob", UNIT1.id, "nbgrader-exchange", new),
        ("gina", UNIT1.id, "nbgrader-submitted", folder / "submitted/gina/01_rnn_by_hand/rnn_by_hand.ipynb"),
    ]
    assert [(r.path, r.reason) for r in result.rejected] == [(str(old), f"superseded by {new}")]


def test_one_exchange_submission_folder_given_alone(root, tmp_path):
    folder = tmp_path / f"bob+{UNIT1.id}+{EXCHANGE_TS.format('2024-01-30')}"
    put(folder, "rnn_by_hand.ipynb", release(root))
    result = intake.scan([folder], tmp_path / "staging")
    assert [(s.student_id, s.unit_id, s.origin) for s in result.submissions] == [("bob", UNIT1.id, "nbgrader-exchange")]


def test_lms_downloads(root, tmp_path):
    nb = release(root)
    folder = tmp_path / "lms"
    put(folder, "doejohn_LATE_1234_5678_rnn_by_hand-1.ipynb", nb)                          # Canvas
    put(folder, "Carol King_555_assignsubmission_file_/Copy of rnn_by_hand.ipynb", nb)     # Moodle
    put(folder, "HW 1_dave_attempt_2024-01-01-10-00-00_rnn_by_hand.ipynb", nb)              # Blackboard
    put(folder, "HW 1_dave_attempt_2024-01-02-09-00-00_rnn_by_hand.ipynb", nb)
    put(folder, "HW 1_dave_attempt_2024-01-02-09-00-00.txt", b"receipt")

    result = intake.scan([folder], tmp_path / "staging")

    assert [(s.student_id, s.unit_id, s.origin, s.original_name) for s in result.submissions] == [
        ("1234", UNIT1.id, "lms", "doejohn_LATE_1234_5678_rnn_by_hand-1.ipynb"),
        ("555", UNIT1.id, "lms", "Copy of rnn_by_hand.ipynb"),
        ("dave", UNIT1.id, "lms", "HW 1_dave_attempt_2024-01-02-09-00-00_rnn_by_hand.ipynb"),
    ]
    newer = folder / "HW 1_dave_attempt_2024-01-02-09-00-00_rnn_by_hand.ipynb"
    assert {r.path: r.reason for r in result.rejected} == {
        str(folder / "HW 1_dave_attempt_2024-01-01-10-00-00_rnn_by_hand.ipynb"): f"superseded by {newer}",
        str(folder / "HW 1_dave_attempt_2024-01-02-09-00-00.txt"): "not a notebook (.txt)",
    }


def test_colab_downloads_per_student_folders_and_content(root, tmp_path):
    folder = tmp_path / "class"
    put(folder, "erin/rnn_by_hand (1).ipynb", release(root, colab=True))
    put(folder, "frank/homework.ipynb", release(root, colab=True))            # unit from the content
    put(folder, "kim/Copy of Copy of rnn_by_hand.ipynb", release(root, UNIT3))  # name says 01, content 03
    put(folder, "Copy of rnn_by_hand.ipynb", release(root, colab=True))       # nobody's
    put(folder, "henry/notes.ipynb", b"{not json")
    put(folder, "ivan/report.pdf", b"%PDF-1.4")
    put(folder, "ivan/gated_cells.ipynb", release(root, UNIT3))
    put(folder, "__MACOSX/erin/._rnn_by_hand (1).ipynb", b"\0")
    put(folder, "erin/.DS_Store", b"\0")
    put(folder, "erin/.ipynb_checkpoints/rnn_by_hand-checkpoint.ipynb", release(root))

    result = intake.scan([folder], tmp_path / "staging", unit_ids=[UNIT1.id])

    assert [(s.student_id, s.unit_id, s.origin) for s in result.submissions] == [
        ("erin", UNIT1.id, "colab"), ("frank", UNIT1.id, "colab"), ("kim", UNIT1.id, "colab")]
    assert {r.path: r.reason for r in result.rejected} == {
        str(folder / "Copy of rnn_by_hand.ipynb"): "no student id in the path or name",
        str(folder / "henry/notes.ipynb"):
            "no unit in the path or name, and the content is not a readable notebook",
        str(folder / "ivan/report.pdf"): "not a notebook (.pdf)",
        str(folder / "ivan/gated_cells.ipynb"):
            f"unit {UNIT3.id} is not one of the units being graded ({UNIT1.id})",
    }


def test_zips_in_a_folder_read_as_folders(root, tmp_path):
    nb = release(root)
    folder = tmp_path / "downloads"
    folder.mkdir()
    make_zip(folder / "jdoe.zip", {"rnn_by_hand.ipynb": nb})
    make_zip(folder / "class.zip", {"class/kim/Copy of rnn_by_hand.ipynb": nb, "class/lee/rnn_by_hand.ipynb": nb})
    result = intake.scan([folder], tmp_path / "staging")
    assert [(s.student_id, s.origin) for s in result.submissions] == [
        ("jdoe", "zip:jdoe.zip"), ("kim", "colab"), ("lee", "zip:class.zip")]
    assert result.rejected == []


def test_roster_resolves_ids_in_names(root, tmp_path):
    nb = release(root)
    folder = tmp_path / "flat"
    for name in ("JDoe_rnn_by_hand.ipynb", "rnn_by_hand_asmith.ipynb", "zed_rnn_by_hand.ipynb",
                 "jdoe_asmith.ipynb", "doejohn_99_1_rnn_by_hand.ipynb", "smith_77_1_rnn_by_hand.ipynb"):
        put(folder, name, nb)

    result = intake.scan([folder], tmp_path / "staging", roster=["jdoe", "asmith ", "doejohn"])

    assert [(s.student_id, s.original_name) for s in result.submissions] == [
        ("asmith", "rnn_by_hand_asmith.ipynb"),
        ("doejohn", "doejohn_99_1_rnn_by_hand.ipynb"),   # Canvas: the login name is on the roster
        ("jdoe", "JDoe_rnn_by_hand.ipynb")]
    assert {Path(r.path).name: r.reason for r in result.rejected} == {
        "zed_rnn_by_hand.ipynb": "no student id in the path or name",
        "jdoe_asmith.ipynb": "ambiguous student id in the name: asmith, jdoe are all on the roster",
        "smith_77_1_rnn_by_hand.ipynb": "student id 77 is not on the roster",
    }


def test_without_roster_an_id_in_a_name_is_not_guessed(root, tmp_path):
    path = put(tmp_path, "jdoe_rnn_by_hand.ipynb", release(root))
    result = intake.scan([path], tmp_path / "staging")
    assert result.submissions == []
    assert [r.reason for r in result.rejected] == [
        "no student id in the path or name (jdoe_rnn_by_hand.ipynb would need a roster to tell which part is the id)"]


def test_zips_nested_unwrapped_and_unsafe_members(root, tmp_path):
    nb = release(root)
    inner = make_zip(tmp_path / "inner.zip", {"rnn_by_hand.ipynb": nb})
    deepest = make_zip(tmp_path / "deepest.zip", {"rnn_by_hand.ipynb": nb})
    middle = make_zip(tmp_path / "middle.zip", {"x.zip": deepest.read_bytes()})
    archive = make_zip(tmp_path / "class.zip", {
        "class/kim/rnn_by_hand.ipynb": nb,                          # one top folder: unwrapped
        "class/doejohn_1234_5678_submission.zip": inner.read_bytes(),  # Canvas per-student zip
        "class/lee/deep.zip": middle.read_bytes(),                     # zip in a zip in a zip
        "class/../../evil.ipynb": nb,
        "/etc/abs.ipynb": nb,
        "class/__MACOSX/._kim": b"\0",
    }, symlinks={"class/kim/link.ipynb": "/etc/passwd"})
    staging = tmp_path / "staging"

    result = intake.scan([archive], staging)

    assert [(s.student_id, s.origin, s.original_name) for s in result.submissions] == [
        ("1234", "lms", "rnn_by_hand.ipynb"), ("kim", "zip:class.zip", "rnn_by_hand.ipynb")]
    for s in result.submissions:
        assert s.path.is_relative_to(staging) and s.path.read_bytes() == nb
    assert {r.path: r.reason for r in result.rejected} == {
        "class.zip!/class/../../evil.ipynb": "a path leaving the zip's folder (..): not extracted",
        "class.zip!//etc/abs.ipynb": "an absolute path inside the zip: not extracted",
        "class.zip!/class/kim/link.ipynb": "a symbolic link inside the zip: not extracted",
        "class.zip!/class/lee/deep.zip!/x.zip": "a zip nested more than 1 level deep: not extracted",
    }
    assert not (tmp_path / "evil.ipynb").exists() and not any(p.is_symlink() for p in staging.rglob("*"))


def test_zip_bomb_is_rejected_whole(root, tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "MAX_ARCHIVE_BYTES", 1_000_000)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alice/rnn_by_hand.ipynb", release(root))
        zf.writestr("alice/big.ipynb", b"0" * 5_000_000)
    assert bomb.stat().st_size < 100_000
    result = intake.scan([bomb], tmp_path / "staging")
    assert result.submissions == []
    assert [(r.path, r.reason) for r in result.rejected] == [
        ("bomb.zip", "zip expands past 1000000 bytes (a zip bomb?): not extracted")]
    assert not list((tmp_path / "staging").rglob("*.ipynb"))


def test_oversized_member_is_rejected_alone(root, tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "MAX_MEMBER_BYTES", 2**20)
    archive = make_zip(tmp_path / "class.zip", {"alice/rnn_by_hand.ipynb": release(root),
                                                 "bob/rnn_by_hand.ipynb": b" " * (2 * 2**20)})
    result = intake.scan([archive], tmp_path / "staging")
    assert [s.student_id for s in result.submissions] == ["alice"]
    assert [(r.path, r.reason) for r in result.rejected] == [
        ("class.zip!/bob/rnn_by_hand.ipynb", "larger than 1 MiB once extracted: not extracted")]


def test_every_file_accounted_for_once_and_deterministic(root, tmp_path):
    nb = release(root)
    folder = tmp_path / "mixed"
    names = ["a/rnn_by_hand.ipynb", "a/Copy of rnn_by_hand.ipynb", "b/x.py", "c/gated_cells.ipynb",
             "d/empty.ipynb", "e/01_rnn_by_hand/anything.ipynb"]
    for name in names:
        put(folder, name, b"" if "empty" in name else nb)
    os.utime(folder / "a/Copy of rnn_by_hand.ipynb", (1e9, 1e9))   # older than a/rnn_by_hand.ipynb
    missing = tmp_path / "nowhere"

    first = intake.scan([folder, missing], tmp_path / "s1")
    second = intake.scan([folder, missing], tmp_path / "s2")

    assert first == second
    seen = [str(s.path) for s in first.submissions] + [r.path for r in first.rejected]
    assert sorted(seen) == sorted([str(folder / n) for n in names] + [str(missing)])
    assert {r.path: r.reason for r in first.rejected}[str(folder / "a/Copy of rnn_by_hand.ipynb")] == \
        f"superseded by {folder / 'a/rnn_by_hand.ipynb'}"
    assert {r.path: r.reason for r in first.rejected}[str(missing)] == "does not exist"
    assert [(s.student_id, s.unit_id) for s in first.submissions] == [
        ("a", UNIT1.id), ("c", UNIT3.id), ("e", UNIT1.id)]


@pytest.mark.parametrize("raw, safe", [("  Jo Doe ", "Jo_Doe"), ("a+b", "a_b"), ("é:x", "__x")])
def test_student_ids_are_filesystem_safe(root, tmp_path, raw, safe):
    put(tmp_path / "in", f"{raw}+{UNIT1.id}+{EXCHANGE_TS.format('2024-01-01')}/rnn_by_hand.ipynb", release(root))
    result = intake.scan([tmp_path / "in"], tmp_path / "staging")
    assert [s.student_id for s in result.submissions] == [safe]
