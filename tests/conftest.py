import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# nbgrader calls `alembic` and Jupyter kernels through PATH: use this interpreter's.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_addoption(parser):
    parser.addoption(
        "--solution-only", action="store_true", dest="solution_only",
        help="tests/test_pipeline.py grades only the answered exercise of each unit, with no feedback: the "
             "Colab-pins pass (`make colab-check`), where only the Keras and TensorFlow versions differ, "
             "so the blank's zero and the feedback pages, checked on the newest packages, need no second run")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


# The heaviest xdist scopes first. `make test` runs `--dist loadscope --no-loadscope-reorder`: a
# module, or a test class, is one unit of work, and each worker takes the next unit in this order
# when it runs low. Started last, the corpus grading alone would keep one worker busy for minutes
# after the other has run out of work. The order follows `--durations` (`make test` prints the
# slowest tests), heaviest first; scopes not listed keep their collection order, after these.
HEAVY_FIRST = [
    "tests/test_colab_session.py",                                      # ~200 s: every unit on the Colab stand-in
    "tests/test_sandbox.py",                                            # ~300 s, two kernels at a time
    "tests/test_classroom.py",                                          # ~280 s
    "tests/test_judge.py::TestJudge_06_char_shakespeare",                # every mutant, kernel and judge
    "tests/test_judge.py::TestJudge_04_keras_recurrent_layers",
    "tests/test_pipeline.py::TestUnit_04_keras_recurrent_layers",       # ~110 s each unit: nbgrader end to end
    "tests/test_pipeline.py::TestUnit_05_seq2seq_attention",
    "tests/test_pipeline.py::TestUnit_07_rnn_vs_transformer",
    "tests/test_pipeline.py::TestUnit_06_char_shakespeare",
    "tests/test_pipeline.py::TestUnit_03_gated_cells",
    "tests/test_pipeline.py::TestUnit_01_rnn_by_hand",
    "tests/test_pipeline.py::TestUnit_02_bptt_and_gradients",
    "tests/test_pipeline.py",                                           # generating every unit's exercise: ~40 s
    "tests/test_feedback.py",
    "tests/test_exchange.py",
    "tests/test_judge.py::TestJudge_03_gated_cells",
    "tests/test_judge.py::TestJudge_07_rnn_vs_transformer",
    "tests/test_judge.py::TestJudge_05_seq2seq_attention",
    "tests/test_judge.py::TestJudge_01_rnn_by_hand",
    "tests/test_judge.py::TestJudge_02_bptt_and_gradients",
    "tests/test_benchmark.py",
]


def _scope(item) -> str:
    parts = item.nodeid.split("::")
    return "::".join(parts[:2]) if len(parts) > 2 else parts[0]


def pytest_collection_modifyitems(config, items):
    rank = {scope: i for i, scope in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(_scope(item), len(HEAVY_FIRST)))   # stable: the rest keep their order
