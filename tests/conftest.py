import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# nbgrader calls `alembic` and Jupyter kernels through PATH: use this interpreter's.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`-n 2 --dist loadgroup`, as `make test` runs it), keep each
    module's tests together, split by unit: a module-scoped fixture (one graded class,
    one mutant run) is then built once, by one worker, and units spread over workers."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        unit = next((v for v in params.values() if isinstance(v, str) and v[:2].isdigit() and "_" in v),
                    None)
        unit = unit or next((getattr(v, "id", None) for v in params.values() if hasattr(v, "notebook")), None)
        item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}:{unit or ''}"))
