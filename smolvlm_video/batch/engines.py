"""How a run's clips get captioned: here, by one model (`local`), or on a Ray cluster (`ray`).

An engine is a class made with the run (and, for the local engine, a model already loaded, if any).
Its `records` loads what it needs, fits the job to the model's frame side, says when it is ready
(`ready`, which starts the run's clock) and each batch size in use (`batch_size`, lower after running
out of memory), and yields one record per clip. `ENGINES` names them; `CaptionRun.engine` picks one.
A new engine is a module with its class and one line in `ENGINES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..model.loading import LoadedModel
    from .captioning import CaptionJob
    from .records import CaptionRecord
    from .runs import CaptionRun


class Engine(Protocol):
    """What a run asks of an engine."""

    def records(
        self,
        job: CaptionJob,
        paths: Sequence[str],
        ready: Callable[[], None],
        batch_size: Callable[[int], None],
    ) -> Iterator[CaptionRecord]:
        """One record per path: in order (local) or as they finish (Ray)."""


class LocalEngine:
    """One model in this process; decoding threads stay ahead of it (`captioning.caption_clips`)."""

    def __init__(self, run: CaptionRun, model: LoadedModel | None = None) -> None:
        self.model = model

    def records(
        self,
        job: CaptionJob,
        paths: Sequence[str],
        ready: Callable[[], None],
        batch_size: Callable[[int], None],
    ) -> Iterator[CaptionRecord]:
        from ..model.loading import load, load_fitted
        from .answering import Answerer
        from .captioning import caption_clips

        model, sampling = load_fitted(job.model, job.sampling, lambda options: self.model or load(options))
        job = replace(job, sampling=sampling)
        answerer = Answerer(model, job.generation, job.batch_size)
        ready()
        for record in caption_clips(model, job, paths, answerer):
            batch_size(answerer.batch_size)
            yield record


class RayEngine:
    """The same steps on a Ray cluster (`ray_engine`): decoding tasks, and actors that each load the model."""

    def __init__(self, run: CaptionRun, model: LoadedModel | None = None) -> None:
        self.options = run.ray  # a model loaded here is not used: each actor loads its own

    def records(
        self,
        job: CaptionJob,
        paths: Sequence[str],
        ready: Callable[[], None],
        batch_size: Callable[[int], None],
    ) -> Iterator[CaptionRecord]:
        from ..model.loading import load_frame_side
        from .ray_engine import caption_clips_ray, connect

        with ThreadPoolExecutor(1) as pool:  # the processor loads while Ray starts (both take seconds)
            side = pool.submit(load_frame_side, job.model.name, job.model.revision)
            connect(self.options)
            job = replace(job, sampling=job.sampling.for_frame_side(side.result()))
        ready()
        yield from caption_clips_ray(job, paths, self.options, on_batch_size=batch_size)


ENGINES: dict[str, Callable[[CaptionRun, LoadedModel | None], Engine]] = {
    "local": LocalEngine,
    "ray": RayEngine,
}
