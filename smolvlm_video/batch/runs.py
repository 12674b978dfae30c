"""A captioning run: the clips under some paths, captioned into a JSONL file that a rerun resumes.

    >>> from smolvlm_video.batch.captioning import CaptionJob
    >>> from smolvlm_video.options import ModelOptions
    >>> from smolvlm_video.batch.runs import CaptionRun, Captioning
    >>> run = CaptionRun(("clips/",), "captions.jsonl", CaptionJob(model=ModelOptions("256M")))
    >>> for record in Captioning(run):  # each record is in the file before it is yielded
    ...     print(record.path, record.status)

Run it again and it resumes: clips with an ok record (and, unless errors are retried, an error
record) are skipped. `shard=Shard(i, n)` takes machine i of n's share, split by a hash of each
clip's absolute path, so machines need no coordination. `engine="ray"` spreads the same job over
a Ray cluster and writes the same records. `plan_run` says what a run would do without doing it.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import OptionsError, OutputError
from .captioning import CaptionJob
from .clips import find_clips
from .engines import ENGINES, engine_options
from .records import CaptionRecord, path_digest, safe_clip_id
from .sinks import SINKS
from .subtitles import SUBTITLE_SOURCES, SubtitleSource

if TYPE_CHECKING:
    from ..model.loading import LoadedModel

URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")  # s3://, gs://, https://: not a local path

SubtitleKind = Literal["srt", "vtt"]


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: this machine's share of the clips, 0 <= index < count."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise OptionsError(f"shard {self.index}/{self.count}: I must be between 0 and N-1.", "shard")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """A shard from "I/N", e.g. "0/4"."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise OptionsError(f"{text!r} is not of the form I/N, e.g. 0/4.", "shard") from None
        return cls(index, count)

    def holds(self, path: str) -> bool:
        """Whether a clip is in this shard, by a hash of its absolute path (the same on every machine)."""
        return int.from_bytes(path_digest(path)[:8], "big") % self.count == self.index


@dataclass(frozen=True)
class CaptionRun:
    """What to caption, into which file, and how a rerun resumes."""

    inputs: tuple[str, ...]  # files and folders; with from_list, text files listing one path a line
    output: Path  # the JSONL file; records are appended
    job: CaptionJob = field(default_factory=CaptionJob)
    recursive: bool = True  # search folders recursively
    patterns: tuple[str, ...] = ()  # only files matching these globs ("*.mp4"); default: video extensions
    from_list: bool = False
    shard: Shard | None = None
    overwrite: bool = False  # start the output afresh instead of resuming
    retry_errors: bool = True  # on a rerun, try the clips that have an error record again
    subtitles: SubtitleKind | None = None  # also a subtitle file per clip beside the output
    subtitles_from: SubtitleSource = "captions"  # its cues: captions, speech (the job's), or both
    engine: str = "local"  # a name in engines.ENGINES: local or ray
    sink: str = "jsonl"  # a name in sinks.SINKS: the output's format
    engine_options: Any = None  # the engine's own `Options` (e.g. RayOptions); None: its defaults

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(os.fspath(item) for item in self.inputs))
        object.__setattr__(self, "output", Path(self.output))
        if not self.inputs:
            raise OptionsError("inputs must name at least one file or folder.", "inputs")
        for item in self.inputs:
            refuse_uri(item)
        if self.subtitles not in (None, "srt", "vtt"):
            raise OptionsError(f"subtitles must be srt, vtt or None, got {self.subtitles!r}.", "subtitles")
        if self.subtitles_from not in SUBTITLE_SOURCES:
            sources = ", ".join(SUBTITLE_SOURCES)
            raise OptionsError(f"subtitles_from must be one of {sources}.", "subtitles_from")
        if self.subtitles_from != "captions" and not self.job.speech.on:
            raise OptionsError(
                f"subtitles from {self.subtitles_from} need the speech: turn --speech on.", "subtitles_from"
            )
        if self.engine_options is None:
            object.__setattr__(self, "engine_options", engine_options(self.engine))
        elif not isinstance(self.engine_options, ENGINES[self.engine].Options):
            raise OptionsError(
                f"engine_options must be the {self.engine} engine's "
                f"{ENGINES[self.engine].Options.__name__}, got {type(self.engine_options).__name__}.",
                "engine_options",
            )
        if self.sink not in SINKS:
            raise OptionsError(f"sink must be one of {', '.join(SINKS)}, got {self.sink!r}.", "sink")


@dataclass(frozen=True)
class RunPlan:
    """The clips a run found (in its shard) and those it still has to caption."""

    clips: tuple[str, ...]
    todo: tuple[str, ...]

    @property
    def skipped(self) -> int:
        """Clips already done in the output."""
        return len(self.clips) - len(self.todo)


def plan_run(run: CaptionRun) -> RunPlan:
    """Find the clips and what is left to do, writing nothing.

    Raises OutputError if the output cannot be written, OptionsError if a list of clips cannot be read.
    """
    check_output(run.output)
    clips = [path for path in find_clips(_inputs(run), run.recursive, run.patterns) if _in_shard(run, path)]
    done = set() if run.overwrite else SINKS[run.sink].done_ids(run.output, run.retry_errors)
    todo = [path for path in clips if safe_clip_id(path) not in done] if done else clips
    return RunPlan(tuple(clips), tuple(todo))


def check_output(output: Path) -> None:
    """Fail before any work if the records file cannot be appended to; leaves no new file behind."""
    if not output.parent.is_dir():
        raise OutputError(f"The output folder {output.parent} does not exist; create it first.")
    existed = output.exists()
    try:
        with open(output, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise OutputError(f"Cannot write to {output}: {error.strerror or error}.") from error
    if not existed:
        output.unlink()


@dataclass
class RunStats:
    """How a run is going: counts so far, and its pace since the model was ready."""

    total: int  # clips to caption in this run
    skipped: int  # clips already done in the output
    batch_size: int  # the batch size in use: the job's, or less after running out of memory
    done: int = 0  # records written so far
    failed: Counter[str] = field(default_factory=Counter)  # error type -> clips
    seconds: float = 0.0  # since the model was ready

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def captioned(self) -> int:
        return self.done - self.failures

    @property
    def clips_per_minute(self) -> float:
        return 60 * self.done / max(self.seconds, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {
            "captioned": self.captioned,
            "skipped": self.skipped,
            "failed": dict(self.failed),
            "seconds": round(self.seconds, 3),
            "clips_per_minute": round(self.clips_per_minute, 2),
            "batch_size": self.batch_size,
        }


class Captioning:
    """A run in progress: iterate it for the records, each one in the output file before it is yielded.

    The local engine loads the job's model when iteration starts, unless a loaded `model` is given.
    """

    def __init__(
        self, run: CaptionRun, plan: RunPlan | None = None, model: LoadedModel | None = None
    ) -> None:
        self.run = run
        self.plan = plan if plan is not None else plan_run(run)
        self.stats = RunStats(len(self.plan.todo), self.plan.skipped, run.job.batch_size)
        self._model = model
        self._ready_at = time.monotonic()

    def __iter__(self) -> Iterator[CaptionRecord]:
        run = self.run
        if not self.plan.todo:
            return
        if run.overwrite:
            run.output.unlink(missing_ok=True)
        engine = ENGINES[run.engine](run.engine_options, self._model)
        records = engine.records(run.job, list(self.plan.todo), self._ready, self._lower_batch_size)
        with SINKS[run.sink](run.output) as sink:
            for record in records:
                sink.write(record)
                if run.subtitles and record.status == "ok":
                    from .subtitles import write_subtitles

                    write_subtitles(record, run.output.parent, run.subtitles, run.subtitles_from)
                self._count(record)
                yield record

    def _count(self, record: CaptionRecord) -> None:
        stats = self.stats
        stats.done += 1
        if record.error:
            stats.failed[record.error["type"]] += 1
        stats.seconds = time.monotonic() - self._ready_at

    def _ready(self) -> None:
        """The engine is ready (its model loaded): the run's pace is measured from here."""
        self._ready_at = time.monotonic()

    def _lower_batch_size(self, size: int) -> None:
        self.stats.batch_size = min(self.stats.batch_size, size)


def _inputs(run: CaptionRun) -> list[str]:
    if not run.from_list:
        return list(run.inputs)
    paths = []
    for name in run.inputs:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise OptionsError(f"{name}: cannot read this list of clips ({error}).", "inputs") from error
        paths += [line.strip() for line in text.splitlines() if line.strip()]
    for path in paths:
        refuse_uri(path)
    return paths


def refuse_uri(item: str) -> None:
    """Raise OptionsError for a URI: the decoders read local files (or mounted buckets) only."""
    if URI.match(item):
        raise OptionsError(
            f"{item}: URIs are not read directly. Mount the bucket (s3fs, gcsfuse, a shared "
            "filesystem) at the same path on every machine, or copy the clips to a local folder.",
            "inputs",
        )


def _in_shard(run: CaptionRun, path: str) -> bool:
    return run.shard is None or run.shard.holds(path)
