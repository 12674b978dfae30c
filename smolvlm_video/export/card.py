"""The dataset card (README.md) of an `hf` export: the configs `datasets.load_dataset` reads, with every
column's type declared (`dataset_info.features`), and what a
reader of the dataset needs to know: how it was made (models, prompts and their schemas, sampling),
how many clips, windows and errors it holds, which answer columns are JSON text and why, and how to push it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import DatasetCardData

from ..version import __version__
from .answers import Column
from .features import features_yaml
from .ownership import NOT_PUBLISHED
from .reading import Counts, Survey
from .tables import clips_columns, window_schema

if TYPE_CHECKING:
    from .options import ExportOptions
    from .report import ExportReport

TABLES = ("windows", "clips")  # the configs, the first the default


def write_card(
    path: Path,
    found: Survey,
    answers: Column,
    options: ExportOptions,
    report: ExportReport,
    files: dict[str, list[str]],
) -> None:
    """The card at `path`; `files`: each table's Parquet files, relative to the folder."""
    configs = [
        {
            "config_name": name,
            "data_files": [{"split": "train", "path": files[name]}],
            "default": name == "windows",
        }
        for name in TABLES
    ]
    schemas = {
        "windows": window_schema(answers, options.cut is not None),
        "clips": clips_columns(options.keep_abs_paths),
    }
    data = DatasetCardData(
        configs=configs,
        dataset_info=[{"config_name": name, "features": features_yaml(schemas[name])} for name in TABLES],
        tags=["video", "captions", "smolvlm-video"],
        license=options.license,
        task_categories=["video-text-to-text"],
        size_categories=[size_category(report.counts.windows)],
    )
    counts = report.counts
    parts = [f"---\n{data.to_yaml()}\n---", _summary(counts), _how_made(found, counts), _columns(answers)]
    if options.cut is not None:
        parts.append(_cuts(options, report))
    parts.append(_use(options.name or f"<user>/{report.folder.resolve().name}", report.folder.name))
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def _summary(found: Counts) -> str:
    errors = ", ".join(f"{kind}: {n}" for kind, n in found.errors.most_common()) or "none"
    return (
        f"# {found.ok} videos captioned in {found.windows} windows\n\n"
        f"Made with smolvlm-video {__version__} from {found.records} caption records.\n\n"
        "| config | rows | one row per |\n|---|---|---|\n"
        f"| `windows` | {found.windows} | window of a captioned video: its span, caption and answers |\n"
        f"| `clips` | {found.records} | record: every video, the {found.records - found.ok} that failed too "
        f"(errors: {errors}) |"
    )


def _how_made(found: Survey, counts: Counts) -> str:
    models = ", ".join(f"`{model}` ({n} records)" for model, n in counts.models.most_common())
    lines = ["## How it was made", "", f"Models: {models}.", "", "Prompts:", ""]
    for name, schemas in found.schemas.items():
        texts = " / ".join(f'"{text}"' for text in sorted(found.texts.get(name, ())))
        lines.append(f"- `{name}`: {texts or '(text not recorded)'}")
        lines += [f"  - schema: `{schema}`" for schema in sorted(s for s in schemas if s is not None)]
    lines += ["", "Sampling (the frames each window was shown):", ""]
    for sampling, n in counts.samplings.most_common():
        lines.append(f"- {n} records: `{json.dumps(json.loads(sampling), separators=(', ', ': '))}`")
    return "\n".join(lines)


def _columns(answers: Column) -> str:
    lines = [
        "## Answers",
        "",
        "`answers` in `windows` holds one column per prompt: text for a prompt without a schema, and a typed "
        "value for one with a schema (an object a struct, an enum a string, an array a list).",
    ]
    if answers.as_text:
        lines += ["", "These are stored as JSON text, since their schema does not give them one type:", ""]
        lines += [f"- `answers.{path}`: {why}" for path, why in answers.as_text]
    lines += [
        "",
        "In `clips`, `answers` (each prompt's answer over the whole video) and `generation_extra` are "
        "JSON text.",
    ]
    return "\n".join(lines)


def _cuts(options: ExportOptions, report: ExportReport) -> str:
    cut = options.cut
    assert cut is not None
    failed = ", ".join(f"{kind}: {n}" for kind, n in report.cuts.items() if kind not in ("cut", "reused"))
    how = (
        f"re-encoded exactly from the window's first frame with {cut.codec} at CRF {cut.crf}"
        if cut.mode == "exact"
        else "copied as they are from the keyframe at or before the window's start"
    )
    return (
        "## Clip files\n\n"
        f"Each window is cut into its own MP4 under `cuts/<clip id>/`, {how}"
        f"{f', longest side {cut.side} px' if cut.side else ''}, with its audio where the source has one. "
        "`cut_path` in `windows` is its path from this folder; where a window has none, `cut_error_type` and "
        "`cut_error_message` say why"
        f"{f' ({failed})' if failed else ''}."
    )


def size_category(rows: int) -> str:
    """The Hub's size category for a dataset of `rows` rows ("n<1K", "1K<n<10K", ...)."""
    bounds = [(10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
              (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B")]  # fmt: skip
    return next((name for bound, name in bounds if rows < bound), "1B<n<10B")


def _use(repo: str, folder: str) -> str:
    excludes = " ".join(f'--exclude "{pattern}"' for pattern in NOT_PUBLISHED)
    return (
        "## Use\n\n"
        "```python\nfrom datasets import load_dataset\n\n"
        f'windows = load_dataset("{repo}", "windows", split="train")\n'
        f'clips = load_dataset("{repo}", "clips", split="train")\n```\n\n'
        f"Push it to the Hub, the clip files included and the export's own bookkeeping left out, with "
        f"`hf upload {repo} {folder} --repo-type dataset {excludes}`."
    )
