"""JSON answers: a JSON schema the answer must follow, stated in the prompt and enforced while generating.

`JsonSchema` is checked once, when it is made: valid JSON, small enough to compile cheaply (see
MAX_SCHEMA_CHARS), a valid JSON schema (jsonschema's metaschema check), and one the grammar library can
turn into a grammar. Generation is then
constrained token by token (`smolvlm_video.model.grammar`), so an answer that ends is valid JSON by
construction; the only way to miss is to run out of `max_new_tokens`, which `parse_answer` reports as
a `TruncatedError`.

    >>> schema = JsonSchema.from_file("scene.schema.json")
    >>> prompt = schema.prompt("Describe the scene.")
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OptionsError, TruncatedError

SEPARATORS = (",", ":")  # the only whitespace-free separators the grammar allows: no free whitespace

# What a schema may cost to compile, checked before anything else. A grammar grows with the square of an
# object's optional properties (any subset may come, in order): 800 cost 140 MB and 0.5 s to compile with a
# 400-token vocabulary, 12,000 more than 24 GB. And the text bounds the rest: 20,000 enum values (0.4 MB)
# cost 3 s and 111 MB, so this allows about 11,000 (a label set of 5,000 is 114,000 characters).
MAX_SCHEMA_CHARS = 256_000  # characters of compact JSON
MAX_OPTIONAL_PROPERTIES = 128  # optional properties of one object (measured: 100 cost 4 MB, 0.03 s)
PROMPT_SUFFIX = "\nAnswer with one JSON object, and nothing else, that follows this JSON schema: {schema}"


@dataclass(frozen=True)
class JsonSchema:
    """A JSON schema, as compact JSON text, and where it came from (a file, or "the schema")."""

    text: str
    source: str = "the schema"

    def __post_init__(self) -> None:
        value = _parse(self.text, self.source)
        object.__setattr__(self, "text", json.dumps(value, separators=SEPARATORS, ensure_ascii=False))
        _check_size(self.text, value, self.source)
        _check(value, self.source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> JsonSchema:
        """The schema in a JSON file; an OptionsError that names the file if it cannot be used."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise OptionsError(
                f"{os.fspath(path)}: cannot read the JSON schema ({error}).", "json_schema"
            ) from error
        return cls(text, os.fspath(path))

    @classmethod
    def from_value(cls, value: Any, source: str = "the schema") -> JsonSchema:
        """A schema given as a parsed JSON object."""
        return cls(json.dumps(value), source)

    @property
    def value(self) -> dict[str, Any]:
        return json.loads(self.text)

    def prompt(self, question: str) -> str:
        """The question with the schema stated after it, so the model knows what it must write."""
        return question + PROMPT_SUFFIX.format(schema=self.text)

    def to_dict(self) -> dict[str, Any]:
        return self.value


@dataclass(frozen=True)
class Question:
    """A question and the JSON schema its answer follows (None: free text); the two travel together."""

    text: str
    schema: JsonSchema | None = None

    def prompt(self) -> str:
        """The text the model is sent: the question, and the schema stated after it if there is one."""
        return self.schema.prompt(self.text) if self.schema else self.text


def _parse(text: str, source: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise OptionsError(f"{source} is not valid JSON: {error}", "json_schema") from error
    if not isinstance(value, dict):
        raise OptionsError(
            f"{source} must hold a JSON schema object, not {type(value).__name__}.", "json_schema"
        )
    return value


def _check_size(text: str, value: dict[str, Any], source: str) -> None:
    """Raise OptionsError where a schema is too large to compile cheaply (see MAX_SCHEMA_CHARS)."""
    if len(text) > MAX_SCHEMA_CHARS:
        raise OptionsError(
            f"{source} is {len(text):,} characters of JSON; at most {MAX_SCHEMA_CHARS:,} are taken.",
            "json_schema",
        )
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            properties, required = item.get("properties"), item.get("required")
            if isinstance(properties, dict):
                listed = (
                    [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
                )
                optional = set(properties) - set(listed)
                if len(optional) > MAX_OPTIONAL_PROPERTIES:
                    raise OptionsError(
                        f"{source} has an object with {len(optional)} optional properties; at most "
                        f'{MAX_OPTIONAL_PROPERTIES} can be compiled. List more of them under "required".',
                        "json_schema",
                    )
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check(value: dict[str, Any], source: str) -> None:
    """Raise OptionsError unless the metaschema accepts it and a grammar can be made of it."""
    import jsonschema
    import xgrammar

    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as error:
        raise OptionsError(f"{source} is not a valid JSON schema: {error.message}", "json_schema") from error
    try:
        xgrammar.Grammar.from_json_schema(json.dumps(value), any_whitespace=False, separators=SEPARATORS)
    except Exception as error:  # xgrammar raises RuntimeError or its own types for what it cannot express
        raise OptionsError(f"{source} cannot be turned into a grammar: {error}", "json_schema") from error


def check_generation(min_new_tokens: int) -> None:
    """Raise OptionsError where generation options cannot go with a schema."""
    if min_new_tokens:
        raise OptionsError(
            "min_new_tokens cannot be used with a JSON schema: an answer ends where its JSON closes.",
            "min_new_tokens",
        )


def parse_answer(text: str, schema: JsonSchema | None, max_new_tokens: int) -> Any:
    """A finished answer as a record holds it: its text stripped, or with a schema the JSON value it holds.

    Raises TruncatedError where the JSON was cut off (by max_new_tokens) before it closed.
    """
    if schema is None:
        return text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise TruncatedError(
            f"The answer was cut off after max_new_tokens ({max_new_tokens}) tokens, before its JSON closed; "
            "raise --max-new-tokens."
        ) from error
