"""Course datasets: fetch verified copies of the files the notebooks use.

    from course.datasets import tiny_shakespeare_text, tiny_shakespeare_split
    train, valid = tiny_shakespeare_split(tiny_shakespeare_text())

Standard library and numpy only; relative imports only (on Colab the top-level
name `datasets` belongs to HuggingFace). The fetching code lives in files.py,
not fetch.py, so that `course.datasets.fetch` is unambiguously the function.
"""
from __future__ import annotations

from .files import ChecksumError, DatasetUnavailableError, cache_root, fetch
from .registry import Entry, get_entry, load_registry
from .shakespeare import tiny_shakespeare_split, tiny_shakespeare_text

__all__ = [
    "ChecksumError",
    "DatasetUnavailableError",
    "Entry",
    "cache_root",
    "fetch",
    "get_entry",
    "load_registry",
    "tiny_shakespeare_split",
    "tiny_shakespeare_text",
]
