# nbgrader reads this file when run from the repository root; the settings
# themselves live in autograder/settings.py.
from pathlib import Path

ROOT = Path(__file__).resolve().parent

import sys  # noqa: E402

sys.path.insert(0, str(ROOT))
from autograder import settings  # noqa: E402

settings.prepare_environment(ROOT)
settings.apply(get_config())  # noqa: F821 (nbgrader provides get_config)
