"""Caption on Ray: the local engine's own steps, spread over a cluster with Ray Data.

The clip list becomes a `ray.data` Dataset in blocks of many clips. Decoding runs as CPU tasks that
plan each clip and stream its windows out one at a time (`clip_windows`, the local engine's decoder),
so a task holds one window's frames, not a whole video's. Generation runs in an actor pool: each
actor loads the model once (from the job's `ModelOptions`) and answers batches of windows with the
local engine's `Answerer` (out-of-memory back-off, failures narrowed to their chats). The caller
gathers each clip's windows, which may come from different actors, and makes its record when the
last one is in: the local engine's schema and resume, and a bad clip is an error record, never a
failed job.

With `summarize`, clips of several windows get their whole-video caption in a second, text-only
pass once every window is answered; those records are written at the end of the run.

Requires the extra: pip install 'smolvlm-video[ray]'.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..checks import check_number
from ..errors import SmolVLMVideoError
from .captioning import CaptionJob, ClipCaptions, answer_windows, summarize_records
from .prefetch import clip_windows, plan_clip, usable_cores
from .records import CaptionRecord

if TYPE_CHECKING:
    from ..model.loading import LoadedModel

MAX_GPUS_PER_WORKER = 64  # more than any one node has
DECODE_CPUS = 0.5  # logical CPUs a decoding task asks Ray for
CLIPS_PER_BLOCK = 256  # at most, in a block of the clip list; fewer where the cluster has CPUs to fill


class RayUnavailableError(SmolVLMVideoError):
    """Ray is not installed, or the cluster cannot be reached."""

    code = "ray"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the job runs."""

    address: str | None = (
        None  # a cluster to join ("ray://host:10001", "auto"); None: $RAY_ADDRESS or a local Ray
    )
    concurrency: int = 1  # generation actors (model copies)
    num_gpus_per_worker: float | None = None  # None: 1 where the cluster has GPUs, else 0 (CPU actors)

    def __post_init__(self) -> None:
        check_number("concurrency", self.concurrency, least=1, whole=True)
        if self.num_gpus_per_worker is not None:
            check_number("num_gpus_per_worker", self.num_gpus_per_worker, least=0, most=MAX_GPUS_PER_WORKER)


def decode_rows(row: dict[str, Any], job: CaptionJob) -> Iterator[dict[str, bytes]]:
    """A Ray task's work on one clip: plan it, then its windows one by one (one decoder thread each).
    Its transcript, where speech is on, was made by a `ClipTranscriber` and rides on the planned clip."""
    clip = replace(plan_clip(row["abs_path"], job.sampling), path=row["path"])  # the path as given
    if row.get("transcript") is not None:
        clip = replace(clip, transcript=pickle.loads(row["transcript"]))
    for window in clip_windows(clip, job.sampling, threads=1):
        yield {"window": pickle.dumps(window)}


class _Actor:
    """Loads the job's model once per actor: compiled, under `auto`, where its share of the run's
    `planned_tokens` pays the compile back on its device (`compiling.for_caption`)."""

    def __init__(self, job: CaptionJob, torch_threads: int = 0, planned_tokens: int = 0) -> None:
        from ..model.compiling import for_caption
        from ..model.loading import load
        from .answering import Answerer

        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        self.job = job
        model = load(for_caption(job.model, planned_tokens))
        self.answerer = Answerer(model, job.generation, job.batch_size)


class WindowCaptioner(_Actor):
    """An actor: answers batches of decoded windows; what it found on each goes back as a ClipCaptions."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        found = []  # per window: what it adds to its clip's captions
        for blob in batch["window"]:
            window = pickle.loads(blob)
            captions = ClipCaptions(window.clip)
            if window.error is not None:
                captions.fail(window.error)
            found.append((captions, window))
        answer_windows(self.answerer, self.job, found)
        return {
            "captions": [pickle.dumps(captions) for captions, _ in found],
            "batch_size": [self.answerer.batch_size] * len(found),
        }


class ClipTranscriber:
    """An actor: transcribes each clip of a batch once (`job.speech`), on the device and in the dtype the
    job's model takes, before the clip's windows are decoded."""

    def __init__(self, job: CaptionJob, torch_threads: int = 0, planned_tokens: int = 0) -> None:
        import torch

        from ..model.devices import pick_device, pick_dtype
        from ..speech import Transcribing
        from ..speech.recognizer import load_speech_model

        if torch_threads:
            torch.set_num_threads(torch_threads)
        device, _ = pick_device(job.model.device)
        dtype, _ = pick_dtype(job.model.dtype, device)
        self.job = job
        self.transcribing = Transcribing(load_speech_model(job.speech, device, dtype))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        start, end = self.job.sampling.start, self.job.sampling.end
        transcripts = [self.transcribing.transcribe(str(path), start, end) for path in batch["abs_path"]]
        return {**batch, "transcript": [pickle.dumps(transcript) for transcript in transcripts]}


class Summarizer(_Actor):
    """An actor: writes the whole-video captions of finished records (text only)."""

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        records = [CaptionRecord.from_json(text) for text in batch["record"]]
        summarize_records(self.answerer, self.job, records)
        return {"record": [record.to_json() for record in records]}


class RayEngine:
    """The local engine's steps on a Ray cluster: decoding tasks, and actors that each load the model."""

    Options: ClassVar[type] = RayOptions

    def __init__(self, options: RayOptions, model: LoadedModel | None = None) -> None:
        self.options = options  # a model loaded here is not used: each actor loads its own

    def records(
        self,
        job: CaptionJob,
        paths: Sequence[str],
        ready: Callable[[], None],
        batch_size: Callable[[int], None],
    ) -> Iterator[CaptionRecord]:
        from ..model.loading import load_frame_side

        with ThreadPoolExecutor(1) as pool:  # the processor loads while Ray starts (both take seconds)
            side = pool.submit(load_frame_side, job.model.name, job.model.revision)
            connect(self.options)
            job = replace(job, sampling=job.sampling.for_frame_side(side.result()))
        ready()
        yield from caption_clips_ray(job, paths, self.options, on_batch_size=batch_size)


def caption_clips_ray(
    job: CaptionJob,
    paths: Sequence[str],
    options: RayOptions | None = None,
    on_batch_size: Callable[[int], None] | None = None,
) -> Iterator[CaptionRecord]:
    """One record per path, as the cluster finishes them (not in input order).

    `job.sampling` should carry the model's frame side. `on_batch_size` hears each actor's batch size,
    which drops below the job's after running out of memory.
    """
    options = options or RayOptions()
    ray = connect(options)
    rows = [{"path": path, "abs_path": os.path.abspath(path)} for path in paths]
    cpus = int(ray.cluster_resources().get("CPU", 1))
    blocks = min(len(rows), max(2 * cpus, math.ceil(len(rows) / CLIPS_PER_BLOCK)))
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, blocks))
    if job.speech.on:  # each clip transcribed once, by actors that hold the speech model
        dataset = _on_actors(ray, dataset, ClipTranscriber, job, options, 1)
    # Half a logical CPU a task: two single-threaded decoders share a core well, and the different
    # request keeps Ray from fusing the decoding into the actors.
    dataset = dataset.flat_map(
        decode_rows, fn_kwargs={"job": job}, num_cpus=DECODE_CPUS, concurrency=job.workers
    )
    windows_per_call = max(1, job.batch_size // len(job.questions))
    planned = job.planned_tokens(len(paths)) // options.concurrency  # each actor's share
    answered = _on_actors(ray, dataset, WindowCaptioner, job, options, windows_per_call, planned)
    finished: set[str] = set()
    open_clips: dict[str, ClipCaptions] = {}
    to_summarize: list[CaptionRecord] = []
    for row in answered.iter_rows():
        if on_batch_size:
            on_batch_size(int(row["batch_size"]))
        found: ClipCaptions = pickle.loads(row["captions"])
        key = found.clip.path
        if key in finished:
            continue  # a window answered after its clip had already failed
        clip = open_clips.setdefault(key, ClipCaptions(found.clip))
        clip.merge(found)
        if not clip.done:
            continue
        finished.add(key)
        record = open_clips.pop(key).record(job)
        if job.summarize and record.status == "ok" and len(record.windows) > 1:
            to_summarize.append(record)
        else:
            yield record
    if to_summarize:
        yield from _summarized(ray, job, options, to_summarize)


def _summarized(
    ray: Any, job: CaptionJob, options: RayOptions, records: list[CaptionRecord]
) -> Iterator[CaptionRecord]:
    dataset = ray.data.from_items([{"record": record.to_json()} for record in records])
    summarized = _on_actors(ray, dataset, Summarizer, job, options, job.batch_size)
    for row in summarized.iter_rows():
        yield CaptionRecord.from_json(row["record"])


def _on_actors(
    ray: Any,
    dataset: Any,
    actor: type,
    job: CaptionJob,
    options: RayOptions,
    batch_size: int,
    planned_tokens: int = 0,
) -> Any:
    gpus = options.num_gpus_per_worker
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return dataset.map_batches(
        actor,
        fn_constructor_kwargs={
            "job": job,
            "torch_threads": 0 if gpus else max(1, usable_cores() // options.concurrency),
            "planned_tokens": planned_tokens,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=options.concurrency),
        num_gpus=gpus,
        num_cpus=0 if gpus else 1,
    )


def connect(options: RayOptions) -> Any:
    """Ray, started here or joined where options (or $RAY_ADDRESS) say; RayUnavailableError if not."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError(
            "The Ray engine needs Ray: pip install 'smolvlm-video[ray]' (or 'ray[data]')."
        ) from error
    if ray.is_initialized():
        return ray
    address = options.address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if not address:  # a local Ray: room for the actors and at least one decoding task beside them
        kwargs.update(num_cpus=max(usable_cores(), options.concurrency + 1), include_dashboard=False)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayUnavailableError(
            f"Cannot start or join Ray at {address or 'a local cluster'}: {error}"
        ) from error
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller shows progress, one tick per record
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray
