"""An export's WebDataset shards: a sample per window, its row as `.json`, its caption as `.txt`, and its
clip file as `.mp4` where it was cut, with `features.json` beside them declaring every field's type.

`datasets` reads a WebDataset by guessing the types from the first samples of the first shard, and refuses
shards whose samples have different members. So every shard holds samples of one kind: windows with a clip
file, and, in shards of their own (`...-uncut-...`), windows whose cut failed. And the types are declared:
`load_dataset("webdataset", data_files=..., features=Features.from_dict(json.load(features.json)))` types a
field that is null in the first samples as the ones that fill it later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from .features import features_dict
from .tables import sample_json
from .writers import TarShards

FEATURES_FILE = "features.json"


class Samples:
    """The windows as WebDataset samples, in shards of `shard_bytes` under `folder`, typed by `schema`
    (`tables.sample_schema`)."""

    def __init__(self, folder: Path, prefix: str, shard_bytes: int, schema: pa.Schema) -> None:
        self.schema = schema
        self.cut = "mp4" in schema.names  # the windows were cut into clip files
        self.with_clip = TarShards(folder, prefix, shard_bytes)
        self.without_clip = TarShards(folder, f"{prefix}-uncut", shard_bytes)  # opens a shard only if used

    def add(self, window: dict[str, Any], record: dict[str, Any], folder: Path) -> None:
        """One window of `record`; its clip file (`cut_path`) is read from `folder`."""
        key = f"{window['clip_id']}_{window['window_index']:04d}"
        members: dict[str, bytes | Path] = {
            "json": sample_json(window, record, self.schema).encode(),
            "txt": (window.get("caption") or "").encode(),
        }
        if self.cut and window.get("cut_path"):
            members["mp4"] = folder / window["cut_path"]
        shards = self.without_clip if self.cut and "mp4" not in members else self.with_clip
        shards.add(key, members)

    def close(self) -> list[Path]:
        return self.with_clip.close() + self.without_clip.close()

    def write_features(self, path: Path) -> None:
        """The samples' `datasets.Features`, as `Features.to_dict()` writes them, to `path`."""
        path.write_text(json.dumps(features_dict(self.schema), indent=1) + "\n", encoding="utf-8")
