"""From caption records to a training set: tables, a Hugging Face dataset folder, WebDataset shards, and
each window cut into a clip file of its own. Needs PyArrow: pip install 'smolvlm-video[export]'.

- `reading`: the JSONL, line by line, and one pass that learns the tables' types (`survey`).
- `answers`: each prompt's answers as a typed column, from its JSON schema.
- `tables`: the `clips` and `windows` tables: their columns, and each record's rows.
- `cutting`: windows cut from their source, exact to the frame (re-encoded) or by copying packets.
- `writers`: Parquet in row groups, tar shards, and the staging that replaces an export whole.
- `card`: the dataset card of a Hugging Face dataset folder.
- `exporting`: `export()`, all of it together.

    from smolvlm_video.export import CutOptions, ExportOptions, export
    report = export("captions.jsonl", "dataset", ExportOptions(format="hf", cut=CutOptions()))
"""

from __future__ import annotations

import importlib
from typing import Any

# Served lazily, so that the command line can read `options` without loading PyArrow.
_LAZY = {
    "export": "exporting",
    "ExportReport": "report",
    "ExportOptions": "options",
    "CutOptions": "options",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
