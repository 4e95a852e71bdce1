"""The dataset registry: which files exist, where they come from, their checksums.

The data itself lives in registry.toml beside this file (shipped as package data),
so adding a dataset means adding one table there, not changing code.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY_FILE = Path(__file__).with_name("registry.toml")

_FIELDS = ("name", "filename", "url", "sha256", "size", "description", "source")


@dataclass(frozen=True)
class Entry:
    """One registered file: enough to find, download and verify it."""

    name: str
    filename: str
    url: str
    sha256: str
    size: int
    description: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False)


def load_registry(path: Path = REGISTRY_FILE) -> dict[str, Entry]:
    """Read registry.toml into {name: Entry}; a malformed table fails loudly."""
    with open(path, "rb") as f:
        tables = tomllib.load(f)
    entries = {}
    for key, table in tables.items():
        missing = [k for k in ("filename", "url", "sha256", "size") if k not in table]
        if missing or table.get("name", key) != key:
            raise ValueError(f"{path}: table [{key}] is malformed (missing {missing} or name != key)")
        known = {k: table[k] for k in _FIELDS if k in table}
        known["name"] = key
        known["sha256"] = known["sha256"].lower()
        extra = {k: v for k, v in table.items() if k not in _FIELDS}
        entries[key] = Entry(**known, extra=extra)
    return entries


def get_entry(name: str) -> Entry:
    """The registry entry for `name`; KeyError listing the known names otherwise."""
    registry = load_registry()
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(registry))}") from None
