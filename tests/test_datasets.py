"""course.datasets: the offline fallback, the cache, checksums and the download path.

No test touches ~/.cache or the internet: COURSE_DATA_HOME and COURSE_DATA_DIRS
point into tmp_path, and downloads go to a local HTTP server on 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from functools import partial
from pathlib import Path

import pytest

from course.datasets import ChecksumError, DatasetUnavailableError, Entry, fetch
from course.datasets import tiny_shakespeare_split, tiny_shakespeare_text
from course.datasets.files import _fetch_entry

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "datasets" / "tinyshakespeare" / "input.txt"
REAL_SHA = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DATA = b"To be, or not to be: that is the question.\n" * 50


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache and local copy folders inside tmp_path; no proxy for 127.0.0.1."""
    monkeypatch.setenv("COURSE_DATA_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DATA_DIRS", str(tmp_path / "local"))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("this test must not download")
    monkeypatch.setattr("urllib.request.urlopen", refuse)


def small_entry(url="http://127.0.0.1:9/small.txt", data=DATA) -> Entry:
    return Entry(name="small-test-set", filename="small.txt", url=url,
                 sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def put_local(tmp_path, data: bytes, entry: Entry) -> Path:
    path = tmp_path / "local" / entry.name / entry.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/small.txt"


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields (folder, base url)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# --- the real file, through the offline fallback -------------------------------------

@pytest.mark.skipif(not REAL.is_file(), reason=f"no shared copy of Tiny Shakespeare at {REAL}")
def test_real_file_from_shared_folder(tmp_path, monkeypatch):
    no_network(monkeypatch)
    path = fetch("tinyshakespeare", progress=False)
    assert path == tmp_path / "cache" / "tinyshakespeare" / "input.txt"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == REAL_SHA

    text = tiny_shakespeare_text()
    assert len(text) == 1_115_394
    assert len(set(text)) == 65
    train, valid = tiny_shakespeare_split(text)
    assert (len(train), len(valid)) == (1_003_854, 111_540)
    assert train + valid == text


def test_split_of_given_text():
    train, valid = tiny_shakespeare_split("abcdefghij" * 10)
    assert (len(train), len(valid)) == (90, 10)


# --- cache -------------------------------------------------------------------------------

def test_second_fetch_uses_cache(tmp_path, monkeypatch):
    entry = small_entry()
    source = put_local(tmp_path, DATA, entry)
    first = _fetch_entry(entry, progress=False)
    assert first == tmp_path / "cache" / entry.name / entry.filename
    assert first.read_bytes() == DATA

    source.unlink()  # only the cache is left
    no_network(monkeypatch)
    assert _fetch_entry(entry, progress=False) == first


def test_explicit_cache_dir(tmp_path):
    entry = small_entry()
    put_local(tmp_path, DATA, entry)
    path = _fetch_entry(entry, cache_dir=tmp_path / "elsewhere", progress=False)
    assert path == tmp_path / "elsewhere" / entry.name / entry.filename


# --- checksums ---------------------------------------------------------------------------

@pytest.mark.parametrize("corrupt", [
    pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
    pytest.param(lambda b: b[:10] + bytes([b[10] ^ 1]) + b[11:], id="one-byte-altered"),
])
def test_corrupt_local_copy_raises(tmp_path, corrupt):
    entry = small_entry(url=closed_port_url())
    bad = corrupt(DATA)
    path = put_local(tmp_path, bad, entry)
    with pytest.raises(ChecksumError) as info:
        _fetch_entry(entry, progress=False)
    message = str(info.value)
    assert entry.sha256 in message
    assert hashlib.sha256(bad).hexdigest() in message
    assert str(path) in message and "network error" in message and "delete" in message
    assert f"({len(bad)} bytes)" in message and f"({len(DATA)} bytes)" in message
    assert not (tmp_path / "cache" / entry.name / entry.filename).exists()
    assert isinstance(info.value, ValueError)


def test_corrupt_cache_is_replaced_by_good_local_copy(tmp_path):
    entry = small_entry()
    put_local(tmp_path, DATA, entry)
    cached = _fetch_entry(entry, progress=False)
    cached.write_bytes(DATA[:-1] + b"?")
    with pytest.warns(UserWarning, match="corrupt"):
        again = _fetch_entry(entry, progress=False)
    assert again == cached and again.read_bytes() == DATA


def test_corrupt_cache_without_good_copy_raises(tmp_path):
    entry = small_entry(url=closed_port_url())
    cached = tmp_path / "cache" / entry.name / entry.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(DATA[:-1])
    with pytest.raises(ChecksumError) as info:
        _fetch_entry(entry, progress=False)
    message = str(info.value)
    assert str(cached) in message and entry.sha256 in message
    assert hashlib.sha256(DATA[:-1]).hexdigest() in message


def test_nothing_anywhere_lists_every_place(tmp_path):
    entry = small_entry(url=closed_port_url())
    with pytest.raises(DatasetUnavailableError) as info:
        _fetch_entry(entry, progress=False)
    message = str(info.value)
    assert "missing" in message and "network error" in message
    assert str(tmp_path / "local" / entry.name / entry.filename) in message


# --- download ----------------------------------------------------------------------------

def test_download_from_local_server(tmp_path, server, capsys):
    root, base = server
    (root / "small.txt").write_bytes(DATA)
    entry = small_entry(url=f"{base}/small.txt")
    path = _fetch_entry(entry, progress=True)
    assert path.read_bytes() == DATA
    assert capsys.readouterr().err == ""
    assert [p.name for p in path.parent.iterdir()] == ["small.txt"]  # no .part left behind


def test_download_of_corrupt_file_raises(tmp_path, server):
    root, base = server
    (root / "small.txt").write_bytes(DATA[:-5])
    entry = small_entry(url=f"{base}/small.txt")
    with pytest.raises(ChecksumError) as info:
        _fetch_entry(entry, progress=False)
    assert entry.sha256 in str(info.value)
    assert hashlib.sha256(DATA[:-5]).hexdigest() in str(info.value)
    folder = tmp_path / "cache" / entry.name
    assert not folder.exists() or list(folder.iterdir()) == []


def test_download_http_error_is_reported(tmp_path, server):
    _, base = server
    entry = small_entry(url=f"{base}/missing.txt")
    with pytest.raises(DatasetUnavailableError, match="404"):
        _fetch_entry(entry, progress=False)


# --- registry ----------------------------------------------------------------------------

def test_unknown_name():
    with pytest.raises(KeyError, match="tinyshakespeare"):
        fetch("no-such-dataset")


def test_registry_entry():
    from course.datasets import get_entry
    entry = get_entry("tinyshakespeare")
    assert entry.sha256 == REAL_SHA and entry.size == 1_115_394 and entry.filename == "input.txt"
    assert entry.extra["characters"] == 1_115_394


# --- unit 06: a bad copy of Tiny Shakespeare itself --------------------------------------------

@pytest.mark.parametrize("corrupt", [
    pytest.param(lambda b: b[: len(b) // 3], id="truncated"),
    pytest.param(lambda b: b.replace(b"ROMEO", b"ROMEA", 1), id="one-letter-altered"),
])
def test_bad_copy_of_tiny_shakespeare_is_refused_naming_both_checksums(tmp_path, monkeypatch, corrupt):
    # What the notebook calls, with the registry's real entry: only a bad local copy is in reach
    # (no shared folder, no network), and the error names the expected and the actual sha256.
    from course.datasets import files

    monkeypatch.setattr(files, "_checkout_root", lambda: None)

    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    good = REAL.read_bytes() if REAL.is_file() else b"ROMEO:\nBut, soft! what light through yonder window breaks?\n" * 99
    bad = corrupt(good)
    path = tmp_path / "local" / "tinyshakespeare" / "input.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes(bad)
    with pytest.raises(ChecksumError) as info:
        tiny_shakespeare_text(progress=False)
    message = str(info.value)
    assert REAL_SHA in message and hashlib.sha256(bad).hexdigest() in message
    assert str(path) in message and f"({len(bad)} bytes)" in message
    assert (info.value.expected, info.value.actual) == (REAL_SHA, hashlib.sha256(bad).hexdigest())
    assert not (tmp_path / "cache" / "tinyshakespeare" / "input.txt").exists()
