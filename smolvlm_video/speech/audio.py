"""A video's audio as 16 kHz mono, read with PyAV in chunks, so memory is a chunk's whatever the length."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from ..errors import AudioError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what Whisper hears
CHUNK_SECONDS = 30.0


@dataclass(frozen=True)
class AudioChunk:
    """`samples` (float32, mono, SAMPLE_RATE) from `start` seconds into the video."""

    start: float
    samples: np.ndarray

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / SAMPLE_RATE


def read_audio(
    path: str | os.PathLike[str],
    start: float | None = None,
    end: float | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
) -> Iterator[AudioChunk]:
    """The first audio stream from `start` to `end` (seconds; None: the file's own ends), resampled to
    16 kHz mono, in chunks of `chunk_seconds` (the last one shorter). Nothing for a file without audio.

    A damaged packet is skipped with a log line, its time left out of the chunks' timeline no more
    than the decoder's own concealment does. A stream of which no packet decodes raises AudioError.
    """
    start = start or 0.0
    size = round(chunk_seconds * SAMPLE_RATE)
    try:
        container = av.open(os.fspath(path))
    except (av.error.FFmpegError, OSError) as error:
        raise AudioError(path, f"cannot be opened to read its audio ({error})") from error
    with container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        if start > 0:
            container.seek(int(start * av.time_base), backward=True)
        buffer: list[np.ndarray] = []
        held, decoded, damaged = 0, 0, 0
        at: float | None = None  # the time of the buffer's first sample
        cursor: float | None = None  # the time of the next sample: the first frame's, then counted
        for samples, time in _decoded(container, stream, resampler, path):
            if samples is None:
                damaged += 1
                continue
            decoded += 1
            cursor = time if cursor is None else cursor
            drop = min(len(samples), max(0, round((start - cursor) * SAMPLE_RATE)))  # before `start`
            cursor += len(samples) / SAMPLE_RATE
            samples = samples[drop:]
            if not len(samples):
                continue
            at = cursor - len(samples) / SAMPLE_RATE if at is None else at
            buffer.append(samples)
            held += len(samples)
            while held >= size:
                joined = np.concatenate(buffer)
                yield AudioChunk(at, _until(joined[:size], at, end))
                at += size / SAMPLE_RATE
                buffer, held = [joined[size:]], len(joined) - size
            if end is not None and at + held / SAMPLE_RATE >= end:
                break
        if damaged and not decoded:
            raise AudioError(path, f"its audio stream could not be decoded ({damaged} damaged packets)")
        if damaged:
            logger.warning("%s: %d damaged audio packets skipped.", path, damaged)
        if held and at is not None:
            joined = _until(np.concatenate(buffer), at, end)
            if len(joined):
                yield AudioChunk(at, joined)


def _until(samples: np.ndarray, at: float, end: float | None) -> np.ndarray:
    """The samples from `at` seconds that come before `end`."""
    return samples if end is None else samples[: max(0, round((end - at) * SAMPLE_RATE))]


def _decoded(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    resampler: av.AudioResampler,
    path: str | os.PathLike[str],
) -> Iterator[tuple[np.ndarray | None, float]]:
    """Each decoded frame's samples, resampled, and its time; (None, 0) for a packet that fails."""
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            yield None, 0.0
            continue
        for frame in frames:
            time = float(frame.time) if frame.time is not None else 0.0
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1), time
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1), 0.0
