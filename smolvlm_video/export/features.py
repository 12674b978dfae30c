"""The export's types as `datasets` declares them (its `Features`), so that every reader types every column
from the declaration instead of guessing from the first rows, where a null carries no type.

Written in three places: the card's `dataset_info.features` (`load_dataset(FOLDER, "windows")`), the
Parquet files' own `huggingface` metadata (`load_dataset("parquet", ...)`), and `features.json` beside
WebDataset shards (`load_dataset("webdataset", ..., features=Features.from_dict(...))`). Made from the
PyArrow schema here, in `datasets`' own two notations, without importing it: `datasets` is the reader's.

A clip file is a `Video` feature: a column of type `VIDEO`, stored as `{bytes, path}` with `bytes` null and
`path` relative to the export's folder, so the Hub's viewer plays it.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

VIDEO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # a `datasets.Video`, as stored
VALUES = {
    pa.string(): "string",
    pa.int64(): "int64",
    pa.float64(): "float64",
    pa.bool_(): "bool",
    pa.binary(): "binary",
}


def _dtype(type_: pa.DataType) -> str:
    try:
        return VALUES[type_]
    except KeyError:
        raise ValueError(f"no datasets type for the column type {type_}") from None


def feature(type_: pa.DataType) -> dict[str, Any]:
    """One column's feature as `Features.to_dict()` writes it."""
    if type_ == VIDEO:
        return {"_type": "Video"}
    if pa.types.is_list(type_):
        return {"feature": feature(type_.value_type), "_type": "List"}
    if pa.types.is_struct(type_):
        return {field.name: feature(field.type) for field in type_}
    return {"dtype": _dtype(type_), "_type": "Value"}


def features_dict(schema: pa.Schema) -> dict[str, Any]:
    """The schema as `Features.to_dict()` writes it: what `Features.from_dict` reads back."""
    return {f.name: feature(f.type) for f in schema}


def _yaml_entry(name: str | None, type_: pa.DataType) -> dict[str, Any]:
    entry: dict[str, Any] = {} if name is None else {"name": name}
    if type_ == VIDEO:
        return entry | {"dtype": "video"}
    if pa.types.is_list(type_):
        item = _yaml_entry(None, type_.value_type)  # a dtype or a struct's fields stand alone; a list nests
        return entry | {"list": item.get("dtype") or item.get("struct") or item}
    if pa.types.is_struct(type_):
        return entry | {"struct": [_yaml_entry(field.name, field.type) for field in type_]}
    return entry | {"dtype": _dtype(type_)}


def features_yaml(schema: pa.Schema) -> list[dict[str, Any]]:
    """The schema as a dataset card's `dataset_info.features` lists it."""
    return [_yaml_entry(f.name, f.type) for f in schema]


def parquet_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """The Parquet schema metadata through which `datasets` reads a file's features, as it writes them."""
    return {b"huggingface": json.dumps({"info": {"features": features_dict(schema)}}).encode()}
