"""benchmarks/charlm.py: the GPU benchmark runs end to end (--smoke, on CPU) and
prints what it promises; its small pure helpers do what they say.

The smoke run checks that the script works, not its figures: tiny models for
two seconds mean nothing. Real figures come from running it (benchmarks/README.md).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = ROOT / "benchmarks" / "charlm.py"


@pytest.fixture(scope="module")
def charlm():
    spec = importlib.util.spec_from_file_location("charlm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports no Keras: only the standard library at module level
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "figures.json"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json", str(out)],
        capture_output=True, text=True, env=env, cwd=out.parent, timeout=300,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout, json.loads(out.read_text())


def test_smoke_names_device_backend_and_recipes(smoke):
    text, figures = smoke
    assert re.search(r"^backend: tensorflow \(tensorflow [\d.]+\), keras 3\.[\d.]+", text, re.M), text[:2000]
    assert re.search(r"^device: .+ \(cpu, 1 device\(s\)\)", text, re.M), text[:2000]
    for name in ("course", "tutorial"):
        assert re.search(rf"^recipe {name}: \{{'cell': '(lstm|gru)'", text, re.M)
    assert figures["device"]["backend"] == "tensorflow"
    assert figures["device"]["platform"] == "cpu"
    assert figures["data"]["vocabulary"] == 65


def test_smoke_prints_training_table_for_both_recipes(smoke):
    text, figures = smoke
    assert "chars/s" in text and "val loss" in text and "best val" in text
    for name in ("course", "tutorial"):
        # recipe, params, steps, chars seen, epochs, train s, compile s, chars/s, val loss, best val, at
        row = re.search(rf"^{name}\s+[\d,]+\s+\d+\s+[\d,]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d,]+)\s+([\d.]+)\s+[\d.]+",
                        text, re.M)
        assert row, f"no training row for {name}:\n{text}"
        r = figures["train"][name]
        assert r["steps"] >= 2 and r["chars_seen"] == r["steps"] * 16 * 32
        assert r["chars_per_second"] > 0 and r["train_seconds"] >= 2.0
        # two seconds of a tiny model: somewhere below a uniform guess, finite
        assert math.isfinite(r["final_val_loss"]) and r["final_val_loss"] < math.log(65) + 0.1
        assert r["best_val_loss"] <= r["final_val_loss"]
        assert r["history"], "no validation pass recorded"


def test_smoke_prints_generation_table(smoke):
    text, figures = smoke
    assert "Generation" in text and "tokens/s" in text
    labels = list(figures["generation"])
    assert [l.split(" (")[0] for l in labels[:2]] == ["rnn course", "rnn tutorial"]
    assert labels[2].endswith("no cache") and labels[3].endswith("kv cache")
    for label in labels:
        assert re.search(rf"^{re.escape(label)}\s+[\d,]+\s+[\d.]+$", text, re.M), f"no row for {label}:\n{text}"
        assert figures["generation"][label]["24"]["tokens_per_second"] > 0


def test_smoke_generators_agree_with_full_passes(smoke):
    _, figures = smoke
    checks = figures["checks"]
    assert checks["rnn_course_step_vs_sequence"] < 1e-4
    assert checks["rnn_tutorial_step_vs_sequence"] < 1e-4
    assert checks["transformer_cache_vs_full"] < 1e-4
    assert checks["transformer_cache_same_tokens"] is True


def test_buckets_cover_every_position_with_a_big_enough_window(charlm):
    assert charlm.buckets(1024, 64) == [(0, 64, 64), (64, 128, 128), (128, 256, 256), (256, 512, 512),
                                        (512, 1024, 1024)]
    assert charlm.buckets(100, 64) == [(0, 64, 64), (64, 100, 128)]
    assert charlm.buckets(5, 8) == [(0, 5, 8)]
    for length in (1, 7, 64, 65, 300):
        plan = charlm.buckets(length, 8)
        positions = [i for first, stop, _ in plan for i in range(first, stop)]
        assert positions == list(range(length))
        assert all(stop <= window for _, stop, window in plan)  # position i reads slots 0..i < window


def test_training_windows_are_shifted_by_one(charlm):
    ids = np.arange(1000, dtype="int32")
    x, y = charlm.Windows(ids, seq_len=10, seed=0).sample(50)
    assert x.shape == y.shape == (50, 10)
    np.testing.assert_array_equal(y, x + 1)
    assert x.min() >= 0 and y.max() <= 999


def test_validation_windows_cover_the_split_or_a_spread_sample(charlm):
    ids = np.arange(1001, dtype="int32")
    x, y = charlm.validation_windows(ids, 100, None)
    assert x.shape == (10, 100)
    np.testing.assert_array_equal(x.ravel(), np.arange(1000))
    np.testing.assert_array_equal(y, x + 1)
    x, _ = charlm.validation_windows(ids, 100, 300)
    assert x.shape == (3, 100) and x[0, 0] == 0 and x[-1, 0] == 900


def test_encode_maps_characters_to_their_rank_in_the_alphabet(charlm):
    np.testing.assert_array_equal(charlm.encode("b\na b", "\n ab"), [3, 0, 2, 1, 3])


def test_arguments(charlm):
    args = charlm.parse_args(["--smoke"])
    assert args.recipes == ["course", "tutorial"] and args.seconds == 2.0 and args.gen_lengths == [24]
    args = charlm.parse_args(["--recipes", "tutorial", "--gen-lengths", "none", "--seconds", "60"])
    assert args.recipes == ["tutorial"] and args.gen_lengths == [] and args.eval_every == 5.0
    assert charlm.parse_args([]).gen_lengths == [128, 256, 512, 1024]
    with pytest.raises(SystemExit):
        charlm.parse_args(["--recipes", "course,nanogpt"])


def test_missing_data_gives_a_clear_error(charlm, monkeypatch, tmp_path):
    import course.datasets as datasets

    def unavailable(**kwargs):
        raise datasets.DatasetUnavailableError("dataset 'tinyshakespeare' could not be found")

    monkeypatch.setattr(datasets, "tiny_shakespeare_text", unavailable)
    monkeypatch.setenv("COURSE_DATA_DIRS", "")  # load_text may extend it: restored afterwards
    with pytest.raises(SystemExit, match="--data"):
        charlm.load_text(None)
    with pytest.raises(SystemExit, match="no such file"):
        charlm.load_text(tmp_path / "missing.txt")
    other = tmp_path / "input.txt"
    other.write_text("not shakespeare")
    text, source = charlm.load_text(other)
    assert text == "not shakespeare" and "NOT the registry's" in source
