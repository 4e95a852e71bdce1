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


# ---------------------------------------------------------------- make bench (grade-class): what it prints

def _grading_figures():
    tasks = [{"read, check and repair the notebook": 0.1, "nbgrader start, sandbox, kernel process": 1.0,
              "notebook cells": 6.0, "judge": judge, "worker": 8.0} for judge in (2.0, 0.5)]
    phases = {"intake and journal": 1.0, "template (nbgrader generate_assignment, staged packages)": 6.0,
              "feedback page and journal, each outcome": 0.4, "grading, first to last outcome": 16.0,
              "gradebook rows": 0.2}
    run = {"seconds": 24.0, "workers": 2, "engine": "a Dask LocalCluster", "phases": phases, "tasks": tasks,
           "totals": {"a": 13.0, "b": 0.0}, "agree": True, "statuses": {"a": "graded", "b": "graded"}}
    return {"unit": "01_rnn_by_hand", "students": 4, "workers": 2, "cpus": 2, "serial_s": 40.0,
            "serial": {"a": 13.0, "b": 0.0}, "runs": {"local": run}, "agree": True,
            "isolation": "every kernel in bubblewrap", "nbgrader_fork": True, "scratch": "/tmp/x"}


def test_grade_class_bench_projects_2100_notebooks_from_its_measured_phases():
    from autograder import bench

    figures = _grading_figures()
    p = bench.projection(figures, "local")
    assert p["core_s"] == pytest.approx(16.0 * 2 / 4)     # grading phase x workers / notebooks
    assert p["per_outcome"] == pytest.approx(0.1) and p["per_row"] == pytest.approx(0.05)
    units = p["units"]
    assert p["seconds"][16] == pytest.approx(2100 * 8.0 / 16 + units * 6.0 + 2100 * 0.05)
    # on 64 cores the grading (2100 x 8 / 64 = 262 s) still takes longer than the one writer (210 s)
    assert p["seconds"][64] == pytest.approx(2100 * 8.0 / 64 + units * 6.0 + 2100 * 0.05)
    text = bench.report(figures)
    assert "speed-up against serial nbgrader: 1.67x on 2 cores" in text
    assert "throughput per core: 0.83x plain nbgrader's" in text
    assert "scores agree" in text and "notebook cells" in text and "judge" in text
    assert re.search(r"^\s+16 cores: +[\d.]+ min", text, re.M) and re.search(r"^\s+64 cores: +[\d.]+ min", text, re.M)
    assert "assumptions: 8.0 core-seconds per notebook" in text


def test_grade_class_bench_says_when_the_one_writer_is_the_limit():
    from autograder import bench

    figures = _grading_figures()
    figures["runs"]["local"]["phases"]["feedback page and journal, each outcome"] = 0.8   # 0.2 s per outcome
    p = bench.projection(figures, "local")
    assert p["writer_bound"] == {16: False, 64: True}
    assert p["seconds"][64] == pytest.approx(2100 * 0.2 + p["units"] * 6.0 + 2100 * 0.05)
    assert "the one writer is the limit here" in bench.report(figures)


def _sized_figures(serial_s=80.0, seconds=40.0):
    figures = _grading_figures()
    figures.update(students=8, serial_s=serial_s)
    run = figures["runs"]["local"]
    run["seconds"] = seconds
    run["tasks"] = [{"worker": 20.0, "nth": 1}, {"worker": 20.0, "nth": 1}] + [{"worker": 5.0, "nth": 2}] * 6
    return figures


def test_grade_class_bench_gives_throughput_per_core_by_class_size_from_fixed_and_steady_costs():
    from autograder import bench

    sized = bench.by_class_size(_sized_figures(), "local", sizes=(8, 300))
    # steady 5 s a submission on a worker; fixed = 40 - 8 / 2 x 5 = 20 s; serial 10 s a submission
    assert sized["steady"] == pytest.approx(5.0) and sized["fixed"] == pytest.approx(20.0)
    assert sized["per_core"][8] == pytest.approx(10 * 8 / (2 * 40))
    assert sized["per_core"][300] == pytest.approx(10 * 300 / (2 * (20 + 150 * 5)))
    text = bench.report(_sized_figures())
    assert "by class size" in text and "20.0 s fixed + 5.0 s per submission per worker" in text
    assert "8: 1.00x" in text
    p = bench.projection(_sized_figures(), "local")
    sixteen = (p["units"] * 20.0 + 2100 * 5.0 / 16 + 2100 * p["per_row"]) / 60   # fixed once a unit, steady a notebook
    assert f"fixed 20.0 s once, whatever the cores; each further notebook 5.0 core-seconds): 16 cores {sixteen:.1f} min" in text
    assert bench.by_class_size(_grading_figures(), "local") is None   # no worker graded a second one


def test_grade_class_bench_summarises_its_rounds_with_medians():
    from autograder import bench

    rounds = [_sized_figures(80.0, 40.0), _sized_figures(90.0, 40.0), _sized_figures(60.0, 40.0)]
    text = bench.summary(rounds)
    assert "over 3 rounds (8 submissions each; serial nbgrader 80.0 s, 90.0 s, 60.0 s)" in text
    assert "speed-up 2.00x, 2.25x, 1.50x (median 2.00x)" in text
    assert "throughput per core 1.00x, 1.12x, 0.75x (median 1.00x)" in text
    assert re.search(r"a class of +300: .*\(median [\d.]+x\)", text)
    assert "scores agree in every round" in text
    rounds[1]["agree"] = False
    assert "DISAGREE" in bench.summary(rounds)
