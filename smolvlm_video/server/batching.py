"""Requests answered together: a bounded queue, and one model thread that answers them in batches.

The model thread takes the first request waiting, gathers those that arrive within `gather_seconds` (up to
`max_batch`; it waits only while other requests are still reading their media), splits them by generation
settings (one `generate` call needs one set), and answers each group in one call
(`model.generate.answer_streamed`), every row streaming its own text to its request. A streamed request and
a whole one share a batch: the whole one just waits for its row's end.

A request takes its place in the queue (`arriving`) before its media are read, so a full queue refuses it
(`QueueFull`, a 429 for the client) before any work. A request whose client has gone is cancelled: its row
stops at the next token, and a batch whose rows have all gone stops. A batch that fails is retried one
request at a time, so only a request that fails on its own fails. A request's `admitted` future resolves once
its batch's prompts fit and generation has begun: a streaming response waits for it before it answers 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from ..model.generate import Answer, answer_streamed
from ..model.loading import LoadedModel
from ..model.prompts import Chat
from ..options import GenerationOptions
from .options import DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE

logger = logging.getLogger(__name__)

GATHER_SECONDS = 0.05  # how long the first request of a batch waits for others being read to join it
POLL_SECONDS = 0.005


class QueueFull(Exception):
    """The queue holds `max_queue` requests already."""


@dataclass
class Job:
    """One request on its way through the model: its chat, and where its text and answer go."""

    chat: Chat
    options: GenerationOptions
    stop: tuple[str, ...] = ()  # strings that end the answer (left out of it)
    seed: int | None = None  # seeds sampling; a seeded request is answered in a generate call of its own
    on_piece: Callable[[str], None] = lambda piece: None  # each piece of the answer, on the model thread
    cancelled: threading.Event = field(default_factory=threading.Event)
    admitted: Future[None] = field(default_factory=Future)  # its prompt fits, and generation has begun
    answer: Future[Answer] = field(default_factory=Future)
    pieces: asyncio.Queue[str | None] | None = None  # a streamed request's pieces, on its event loop

    def group(self) -> str:
        """Requests of one group can share a generate call: the same settings, and no seed."""
        return repr((self.options.to_dict(), self.stop, self.seed, id(self) if self.seed is not None else 0))


@dataclass
class Metrics:
    """What /metrics reports, counted as the server goes."""

    requests: Counter[int] = field(default_factory=Counter)  # HTTP status -> requests
    batches: Counter[int] = field(default_factory=Counter)  # batch size -> generate calls
    tokens: int = 0  # tokens generated
    decode_seconds: float = 0.0  # reading media
    generate_seconds: float = 0.0  # in the model
    queue_length: Callable[[], int] = lambda: 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def text(self) -> str:
        """The counters in Prometheus' text format."""
        with self.lock:
            lines = ["# TYPE smolvlm_requests_total counter"]
            lines += [f'smolvlm_requests_total{{status="{s}"}} {n}' for s, n in sorted(self.requests.items())]
            lines += ["# TYPE smolvlm_batches_total counter"]
            lines += [f'smolvlm_batches_total{{size="{s}"}} {n}' for s, n in sorted(self.batches.items())]
            lines += [
                "# TYPE smolvlm_queue_length gauge",
                f"smolvlm_queue_length {self.queue_length()}",
                "# TYPE smolvlm_generated_tokens_total counter",
                f"smolvlm_generated_tokens_total {self.tokens}",
                "# TYPE smolvlm_decode_seconds_total counter",
                f"smolvlm_decode_seconds_total {self.decode_seconds:.3f}",
                "# TYPE smolvlm_generate_seconds_total counter",
                f"smolvlm_generate_seconds_total {self.generate_seconds:.3f}",
            ]
        return "\n".join(lines) + "\n"


class Batcher:
    """The queue and the model thread. `submit` a Job; its `answer` future resolves when it is answered."""

    def __init__(
        self,
        model: LoadedModel,
        metrics: Metrics,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.model, self.metrics = model, metrics
        self.max_batch, self.gather_seconds = max_batch, gather_seconds
        self.jobs: queue.Queue[Job | None] = queue.Queue()  # bounded in `arriving`, with those still reading
        self.max_queue = max_queue
        metrics.queue_length = self.jobs.qsize
        self._arriving = 0  # requests whose media are being read: a batch waits for them (GATHER_SECONDS)
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="smolvlm-model", daemon=True)
        self.thread.start()

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Around reading a request's media and submitting it: its place in the queue is taken first, among
        the requests waiting and those still reading theirs (QueueFull where there is none, before any
        work), and a batch being gathered waits for it."""
        with self._lock:
            if self._arriving + self.jobs.qsize() >= self.max_queue:
                raise QueueFull
            self._arriving += 1
        try:
            yield
        finally:
            with self._lock:
                self._arriving -= 1

    def submit(self, job: Job) -> None:
        """Queue a job, in the place `arriving` took for it."""
        self.jobs.put_nowait(job)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()

    def _run(self) -> None:
        while (first := self.jobs.get()) is not None:
            batch, deadline = [first], time.monotonic() + self.gather_seconds
            while len(batch) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                if self.jobs.empty() and not self._arriving:
                    break  # nobody else is coming: a lone request does not wait
                try:
                    job = self.jobs.get(timeout=min(left, POLL_SECONDS))
                except queue.Empty:
                    continue
                if job is None:
                    self.jobs.put(None)  # close after this batch
                    break
                batch.append(job)
            groups: dict[str, list[Job]] = defaultdict(list)
            for job in batch:
                groups[job.group()].append(job)
            for group in groups.values():
                self._answer(group)

    def _answer(self, jobs: list[Job]) -> None:
        live = [job for job in jobs if not job.cancelled.is_set()]
        for job in jobs:
            if job.cancelled.is_set():
                job.answer.cancel()
        if not live:
            return
        started = time.perf_counter()
        if live[0].seed is not None:
            torch.manual_seed(live[0].seed)  # a group of its own (`Job.group`): the seed is the request's
        try:
            answers = answer_streamed(
                self.model,
                [job.chat for job in live],
                live[0].options,
                on_piece=lambda row, piece: live[row].on_piece(piece),
                cancelled=lambda row: live[row].cancelled.is_set(),
                stop=live[0].stop,
                on_start=lambda: _admit(live),
            )
        except Exception as error:
            if len(live) > 1:  # narrow it down: only a request that fails on its own fails
                logger.warning(
                    "A batch of %d requests failed (%s); answering them one at a time.", len(live), error
                )
                for job in live:
                    self._answer([job])
                return
            live[0].answer.set_exception(error)
            return
        with self.metrics.lock:
            self.metrics.batches[len(live)] += 1
            self.metrics.tokens += sum(answer.completion_tokens for answer in answers)
            self.metrics.generate_seconds += time.perf_counter() - started
        for job, answer in zip(live, answers, strict=True):
            job.answer.set_result(answer)


def _admit(jobs: list[Job]) -> None:
    for job in jobs:
        if not job.admitted.done():
            job.admitted.set_result(None)
