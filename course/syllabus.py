"""The course configuration (course/course.toml) as Python objects."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CONFIG_FILE = Path(__file__).with_name("course.toml")


@dataclass(frozen=True)
class Unit:
    id: str
    notebook: str
    title: str
    status: str

    @property
    def filename(self) -> str:
        return f"{self.notebook}.ipynb"

    @property
    def ready(self) -> bool:
        return self.status == "ready"


@dataclass(frozen=True)
class Package:
    """The student package as the Colab setup cell installs it (course.toml's [package])."""
    name: str
    version: str
    git: str
    index_url: str = ""

    @property
    def pinned(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def from_git(self) -> str:
        return f"{self.name} @ {self.git}"


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    repository: str
    branch: str
    units: tuple[Unit, ...]
    package: Package
    placeholder: bool = False

    def unit(self, unit_id: str) -> Unit:
        for unit in self.units:
            if unit.id == unit_id:
                return unit
        known = ", ".join(u.id for u in self.units)
        raise KeyError(f"unknown unit {unit_id!r}; the course has: {known}")

    @property
    def ready_units(self) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if u.ready)

    def colab_url(self, unit: Unit) -> str:
        repo = self.repository.removeprefix("https://github.com/")
        return (
            f"https://colab.research.google.com/github/{repo}/blob/{self.branch}/"
            f"exercises/{unit.id}/{unit.filename}"
        )

    @property
    def pip_specs(self) -> tuple[str, ...]:
        """What the Colab setup cell installs, in order: the pinned version by name, then the git address."""
        return (self.package.pinned, self.package.from_git)


@lru_cache(maxsize=None)
def load(path: Path = CONFIG_FILE) -> Course:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    info = data["course"]
    units = tuple(Unit(**u) for u in data["units"])
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate unit ids in {ids}")
    return Course(
        id=info["id"], title=info["title"], repository=info["repository"],
        branch=info["branch"], units=units, package=Package(**data["package"]),
        placeholder=bool(info.get("placeholder", False)),
    )
