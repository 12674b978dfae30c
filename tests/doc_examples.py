"""The code the README and docs/ show: commands, Python snippets and sample records, by file and line.

`tests/test_docs.py` runs them (and `tests/test_demo.py` the gradio_client snippet, against its app), so
what the documentation shows cannot drift from what the project does.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "CONTRIBUTING.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMAND = re.compile(r"\bsmolvlm-video\s")

# The docs' name for the random-weight checkpoint `python -m smolvlm_video.testing` builds.
TEST_CHECKPOINT = "/tmp/tiny-smolvlm"


@dataclass(frozen=True)
class Block:
    """One fenced code block: its file, the line its fence opens on, its language and its text."""

    path: Path
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(language: str | None = None) -> list[Block]:
    """Every fenced block of the docs, or those of one language."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            block = Block(path, text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2))
            if language is None or block.language == language:
                found.append(block)
    return found


def command_lines(block: Block) -> list[str]:
    """The lines of a shell block that run smolvlm-video, without a prompt's "$ "; `a && b` counts as two."""
    lines = []
    for line in block.text.splitlines():
        line = line.removeprefix("$ ").strip()
        if line.startswith("#") or not COMMAND.search(line):
            continue
        parts = [part.strip() for part in line.split("&&")]
        whole = [part for part in parts if part.startswith("smolvlm-video ")]
        lines += whole if whole and len(whole) == sum(bool(COMMAND.search(p)) for p in parts) else [line]
    return lines


def argv(line: str) -> list[str]:
    """A command line's words, its trailing comment dropped."""
    return shlex.split(line, comments=True)


def record_after(block: Block) -> tuple[str, dict] | None:
    """For a sample record: the command the prose before it says made it (in backquotes), and the record."""
    import json

    if block.language != "json":
        return None
    before = block.path.read_text(encoding="utf-8").splitlines()[max(0, block.line - 6) : block.line - 1]
    made = re.search(r"from `(smolvlm-video caption [^`]+)`", " ".join(before))
    if made is None:
        return None
    return made.group(1), json.loads(block.text)
