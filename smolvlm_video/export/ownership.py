"""What an export owns in its folder: the paths it wrote, listed in a manifest, and nothing else.

An export may go into a folder that holds other things: a project with its own `README.md` and `data/videos/`.
So it replaces only paths it wrote before, listed in `.smolvlm-export.json` (or, in a folder exported before
manifests existed, recognised once by the card's line "Made with smolvlm-video" and the tables' layout).
Where a path it would write exists and is not its own, the export is refused before any work, naming the
path (`PathInTheWayError`); `force` replaces those paths, and only those.

After an export, the previous one's paths that this one did not write again (another format's tables,
its card) are removed, cut clips that no row uses any more are removed unless kept, and staging folders
that killed exports left behind are removed when the next export starts.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError

MANIFEST = ".smolvlm-export.json"
CARD_LINE = "Made with smolvlm-video"  # in every card an export wrote
STAGING_PREFIX = ".export-"  # then the writing process's id
CUTS_FOLDER = "cuts"  # where cut clips live, kept between exports
# What `hf upload` of an export folder must leave out: the manifest, staging folders, partial cuts.
NOT_PUBLISHED = (MANIFEST, f"{STAGING_PREFIX}*", "*.part")


class PathInTheWayError(OutputError):
    """A path an export would write exists and was not written by an export."""

    code = "in_the_way"


@dataclass(frozen=True)
class Manifest:
    """An export's format and the paths it wrote, relative to its folder (files, or folders it made whole)."""

    format: str
    paths: tuple[str, ...]

    def write(self, folder: Path) -> None:
        """Write the manifest into `folder`, in one rename."""
        temporary = folder / f"{MANIFEST}.{os.getpid()}.tmp"
        temporary.write_text(
            json.dumps({"format": self.format, "paths": sorted(self.paths)}, indent=1) + "\n"
        )
        os.replace(temporary, folder / MANIFEST)


def previous_export(folder: Path) -> Manifest | None:
    """The export already in `folder`: its manifest, or one recognised from an export that had none."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            value = json.loads(manifest.read_text(encoding="utf-8"))
            return Manifest(str(value["format"]), tuple(str(path) for path in value["paths"]))
        except (ValueError, KeyError, TypeError) as error:
            raise OutputError(f"{manifest} is damaged ({error}); delete it, or export elsewhere.") from error
    return _recognised(folder)


def _recognised(folder: Path) -> Manifest | None:
    """An export made before manifests existed, by its layout: its card and tables, its shards, its files."""
    cuts = (CUTS_FOLDER,) if (folder / CUTS_FOLDER).is_dir() else ()
    card = folder / "README.md"
    if card.is_file() and CARD_LINE in card.read_text(encoding="utf-8", errors="replace"):
        tables = tuple(f"data/{name}" for name in ("windows", "clips") if (folder / "data" / name).is_dir())
        if tables:
            return Manifest("hf", ("README.md", *tables, *cuts))
    shards = (
        sorted(p for p in (folder / "data").glob("train-*-of-*.tar")) if (folder / "data").is_dir() else []
    )
    if shards:
        return Manifest("webdataset", (*(f"data/{p.name}" for p in shards), *cuts))
    if (folder / "clips.parquet").is_file() and (folder / "windows.parquet").is_file():
        return Manifest("parquet", ("clips.parquet", "windows.parquet", *cuts))
    return None


def claim(folder: Path, paths: Iterable[str], force: bool) -> Manifest | None:
    """Check, before any work, that every path an export will write is free or its own; the previous export.

    Raises PathInTheWayError naming the first path that is neither, unless `force`.
    """
    previous = previous_export(folder) if folder.is_dir() else None
    owned = set(previous.paths) if previous else set()
    for path in paths:
        target = folder / path
        if (target.exists() or target.is_symlink()) and path not in owned and not force:
            raise PathInTheWayError(
                f"{target} is in the way: an export did not write it, and an export replaces only what it "
                f"wrote (listed in {MANIFEST}). Export into a folder of its own, such as "
                f"{folder / 'dataset'}, or pass --force to replace {path} (and nothing else)."
            )
    return previous


def remove_dead_staging(folder: Path) -> list[Path]:
    """Remove the staging folders of exports whose process is gone (killed mid-export); the ones removed."""
    removed = []
    for staging in folder.glob(f"{STAGING_PREFIX}*") if folder.is_dir() else []:
        pid = staging.name.removeprefix(STAGING_PREFIX)
        if staging.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process lives: what an export killed mid-way left (staging, part files) is removed if not.

    Where there is no cheap way to ask (not POSIX: `os.kill(pid, 0)` would signal it), every process lives.
    """
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def remove_paths(folder: Path, paths: Iterable[str]) -> None:
    """Remove paths an earlier export wrote (files, or folders it made whole)."""
    for path in paths:
        target = folder / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def remove_stale_cuts(folder: Path, used: set[str]) -> int:
    """Remove the clip files under cuts/ that no row of the export uses (`used`: their paths from
    `folder`); how many were removed. Partial files of cuts under way are left to their cutting."""
    cuts, removed = folder / CUTS_FOLDER, 0
    for path in sorted(cuts.rglob("*.mp4")) if cuts.is_dir() else []:
        if path.relative_to(folder).as_posix() not in used:
            path.unlink()
            removed += 1
    for directory in (
        sorted((p for p in cuts.rglob("*") if p.is_dir()), reverse=True) if cuts.is_dir() else []
    ):
        if not any(directory.iterdir()):
            directory.rmdir()
    return removed
