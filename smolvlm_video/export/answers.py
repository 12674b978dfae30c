"""Each prompt's answers as a typed column: the Arrow type that a prompt's JSON schema describes.

An object is a struct of its properties, a string or an enum of strings a string, a boolean a bool, a number
a float, an integer an int, an array a list of its items' type. What a schema leaves open (`oneOf`, `anyOf`,
`$ref`, free `additionalProperties`, an array without `items`, an object without properties) is stored as
JSON text, and `Column.as_text` says where and why, for the dataset card. A prompt without a schema answers
in text: a string. (The grammar that constrained generation forbids properties a schema does not name, so
an object without `additionalProperties` is closed.)

A value that does not fit its column (a records file edited by hand, a prompt whose schema changed between
runs) is found by `Column.fits` before anything is written, and that prompt's column becomes JSON text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..model.schemas import SEPARATORS

OPEN_KEYWORDS = ("oneOf", "anyOf", "allOf", "$ref", "not", "if", "patternProperties", "prefixItems")


def json_text(value: Any) -> str | None:
    """A JSON value as compact text, as the records write it; None stays None."""
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=SEPARATORS)


@dataclass(frozen=True)
class Column:
    """How a JSON value is stored: `kind` names the Arrow type (struct and list nest other Columns)."""

    kind: str  # "string", "bool", "int", "float", "list", "struct", or "json" (JSON text in a string)
    item: Column | None = None  # a list's items
    fields: Mapping[str, Column] = field(default_factory=dict)  # a struct's properties, in order
    as_text: tuple[tuple[str, str], ...] = ()  # (path, why) of each part stored as JSON text

    @property
    def arrow(self) -> pa.DataType:
        if self.kind == "list":
            assert self.item is not None
            return pa.list_(self.item.arrow)
        if self.kind == "struct":
            return pa.struct([pa.field(name, column.arrow) for name, column in self.fields.items()])
        return ARROW[self.kind]

    def fits(self, value: Any) -> bool:
        """Whether `value` can be stored in this column as it is (None always can)."""
        return self._check(value)

    @functools.cached_property
    def _check(self) -> Callable[[Any], bool]:
        """`fits`, made once per column: a survey checks every answer of every window with it."""
        if self.kind == "json":
            return lambda value: True
        if self.kind == "list":
            assert self.item is not None
            item = self.item._check
            return lambda value: value is None or (isinstance(value, list) and all(map(item, value)))
        if self.kind == "struct":
            names, checks = (
                self.fields.keys(),
                [(name, column._check) for name, column in self.fields.items()],
            )
            return lambda value: (
                value is None
                or (
                    isinstance(value, dict)
                    and value.keys() <= names
                    and all(c(value.get(n)) for n, c in checks)
                )
            )
        python = FITS[self.kind]
        if self.kind == "bool":
            return lambda value: value is None or isinstance(value, bool)
        return lambda value: value is None or (isinstance(value, python) and not isinstance(value, bool))

    @functools.cached_property
    def converts(self) -> bool:
        """Whether a value needs `convert` before PyArrow takes it: only where some part is JSON text."""
        if self.kind == "json":
            return True
        return any(c.converts for c in [*self.fields.values(), *([self.item] if self.item else [])])

    def convert(self, value: Any) -> Any:
        """`value` as this column stores it: JSON text where the column is text, else as it is."""
        if value is None:
            return None
        if self.kind == "json":
            return json_text(value)
        if self.kind == "list":
            assert self.item is not None
            return [self.item.convert(v) for v in value]
        if self.kind == "struct":
            return {name: column.convert(value.get(name)) for name, column in self.fields.items()}
        return value


ARROW = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "json": pa.string(),
}
FITS: dict[str, type | tuple[type, ...]] = {"string": str, "bool": bool, "int": int, "float": (int, float)}
TYPES = {"string": "string", "boolean": "bool", "integer": "int", "number": "float"}
TEXT = Column("string")


def as_json(path: str, why: str) -> Column:
    return Column("json", as_text=((path, why),))


def schema_column(schema: Any, path: str) -> Column:
    """The column for answers that follow `schema`; `path` names it in `as_text` (e.g. "caption.tags")."""
    if not isinstance(schema, dict):
        return as_json(path, "the schema is not an object")
    if open_keys := [key for key in OPEN_KEYWORDS if key in schema]:
        return as_json(path, f"the schema uses {', '.join(open_keys)}")
    if "const" in schema or "enum" in schema:
        return _choice_column(schema.get("enum", [schema.get("const")]), path)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind in TYPES:
        return Column(TYPES[kind])
    if kind == "array":
        return _array_column(schema, path)
    if kind == "object":
        return _object_column(schema, path)
    return as_json(path, "the schema names no single type")


def _choice_column(choices: list[Any], path: str) -> Column:
    for kind, python in (("string", str), ("bool", bool), ("int", int), ("float", (int, float))):
        if choices and all(isinstance(c, python) for c in choices) and Column(kind).fits(choices[0]):
            return Column(kind)
    return as_json(path, "its choices are of several types")


def _array_column(schema: dict[str, Any], path: str) -> Column:
    items = schema.get("items")
    if not isinstance(items, dict):
        return as_json(path, "an array without one schema for its items")
    item = schema_column(items, f"{path}[]")
    return Column("list", item=item, as_text=item.as_text)


def _object_column(schema: dict[str, Any], path: str) -> Column:
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        return as_json(path, "an object without properties")
    if schema.get("additionalProperties", False) is not False:
        return as_json(path, "an object with free additionalProperties")
    fields = {name: schema_column(sub, f"{path}.{name}") for name, sub in properties.items()}
    return Column("struct", fields=fields, as_text=tuple(t for f in fields.values() for t in f.as_text))


def answers_column(columns: Mapping[str, Column]) -> Column:
    """The struct of every prompt's answer column, by prompt name (JSON text if there is no prompt at all:
    Parquet has no empty struct)."""
    if not columns:
        return Column("json")
    return Column(
        "struct", fields=dict(columns), as_text=tuple(t for c in columns.values() for t in c.as_text)
    )
