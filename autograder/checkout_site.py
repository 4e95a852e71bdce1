"""Let kernels started inside this checkout import `autograder` (the hidden tests).

nbgrader puts the checkout on its kernels' path itself (nbgrader_config.py).
A solution notebook run any other way, e.g.

    jupyter nbconvert --to notebook --execute solutions/01_rnn_by_hand/rnn_by_hand.ipynb

starts its kernel in solutions/<unit>/, where `autograder` is not importable
and the first hidden-test cell would fail. ``python -m autograder.checkout_site``
(run by `make install`) writes a start-up hook into the environment's
site-packages: a Python process whose working folder lies inside this checkout
gets the checkout on sys.path; anywhere else (a student's folder, a scratch
grading course) nothing changes, so the student path stays grader-free.
"""
from __future__ import annotations

import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOOK = "rnn_course_checkout"

HOOK_SOURCE = '''\
"""Start-up hook written by `python -m autograder.checkout_site`: see autograder/checkout_site.py."""
import os
import sys

ROOT = {root!r}
try:
    _here = os.path.realpath(os.getcwd())
except OSError:   # the working folder was deleted
    _here = ""
if (_here == ROOT or _here.startswith(ROOT + os.sep)) and ROOT not in sys.path and os.path.isdir(ROOT):
    sys.path.append(ROOT)
'''


def install(site_packages: Path | None = None) -> Path:
    site = Path(site_packages or sysconfig.get_paths()["purelib"])
    (site / f"{HOOK}.py").write_text(HOOK_SOURCE.format(root=str(ROOT)))
    pth = site / f"{HOOK}.pth"
    pth.write_text(f"import {HOOK}\n")
    return pth


if __name__ == "__main__":
    print(f"kernels started inside {ROOT} can import autograder ({install()})")
