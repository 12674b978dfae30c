"""What an export wrote: the report `export` returns, read by the dataset card and the command's summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .reading import Counts, Survey


@dataclass
class ExportReport:
    """What an export wrote."""

    folder: Path
    survey: Survey
    counts: Counts = field(default_factory=Counts)  # the records written: one per clip id
    files: list[Path] = field(default_factory=list)  # the tables or shards, in the folder
    cuts: Counter[str] = field(default_factory=Counter)  # "cut", "reused", and each error type -> windows
    stale_cuts: int = 0  # clip files no row uses any more, removed (or kept, with keep_stale_cuts)
    removed: list[str] = field(default_factory=list)  # the previous export's paths this one did not write
    used_cuts: set[str] = field(default_factory=set)  # the clip files the rows name, from the folder

    @property
    def cut_failures(self) -> int:
        return sum(n for kind, n in self.cuts.items() if kind not in ("cut", "reused"))
