"""The voice gate: which spans of the audio hold a voice, found by energy before any recognition.

Whisper writes text over silence, so only voiced spans go to it, and silence gives no segments at all.
The audio is cut into 30 ms frames; a frame is voiced when its level is `MARGIN_DB` above the chunk's
noise floor (its quietest tenth of frames, taken as at most `NOISE_CEILING_DB`, so a chunk that is all
speech still has a floor below it) and above `FLOOR_DB`. Voiced frames closer than `GAP_SECONDS`
join one span; spans shorter than `MIN_SECONDS` are dropped; each is widened by `PAD_SECONDS` each side
and cut at `MAX_SECONDS`, the most Whisper hears at once. The gate keeps only the open span's audio.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from .audio import SAMPLE_RATE, AudioChunk

FRAME = 480  # 30 ms at 16 kHz
FLOOR_DB = -45.0  # below this a frame is silence, whatever the floor (dB below full scale)
MARGIN_DB = 12.0
NOISE_CEILING_DB = -35.0
GAP_SECONDS = 0.4
MIN_SECONDS = 0.2
PAD_SECONDS = 0.15
MAX_SECONDS = 30.0


VoicedSpan = AudioChunk  # audio with a voice in it: `samples` from `start` seconds


def voiced_frames(samples: np.ndarray) -> np.ndarray:
    """Whether each whole 30 ms frame of `samples` is voiced."""
    count = len(samples) // FRAME
    if count == 0:
        return np.zeros(0, dtype=bool)
    frames = samples[: count * FRAME].reshape(count, FRAME).astype(np.float64)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    floor = min(float(np.percentile(level, 10)), NOISE_CEILING_DB)
    return (level > FLOOR_DB) & (level > floor + MARGIN_DB)


def voiced_spans(chunks: Iterable[AudioChunk]) -> Iterator[VoicedSpan]:
    """The voiced spans of a stream of chunks, in order, each as soon as it ends."""
    audio = np.zeros(0, dtype=np.float32)  # the samples from `origin` on, kept while a span may need them
    origin = 0.0
    span: list[float] | None = None  # [start, last voiced end] of the open span
    for chunk in chunks:
        if not len(audio):
            origin = chunk.start
        audio = np.concatenate([audio, chunk.samples])
        flags = voiced_frames(chunk.samples)
        for index in np.flatnonzero(flags):
            at = chunk.start + index * FRAME / SAMPLE_RATE
            if span is not None and at - span[1] > GAP_SECONDS:
                yield from _closed(span, audio, origin)
                span = None
            if span is None:
                span = [at, at]
            span[1] = at + FRAME / SAMPLE_RATE
            if span[1] - span[0] >= MAX_SECONDS - 2 * PAD_SECONDS:
                yield from _closed(span, audio, origin)
                span = None
        keep_from = (span[0] if span else chunk.end) - PAD_SECONDS - 0.5
        if keep_from > origin:  # let go of audio no span can reach
            cut = round((keep_from - origin) * SAMPLE_RATE)
            audio, origin = audio[cut:], origin + cut / SAMPLE_RATE
    if span is not None:
        yield from _closed(span, audio, origin)


def _closed(span: list[float], audio: np.ndarray, origin: float) -> Iterator[VoicedSpan]:
    start, end = span
    if end - start < MIN_SECONDS:
        return
    start, end = max(origin, start - PAD_SECONDS), end + PAD_SECONDS
    first = round((start - origin) * SAMPLE_RATE)
    samples = audio[first : round((end - origin) * SAMPLE_RATE)]
    if len(samples):
        yield VoicedSpan(origin + first / SAMPLE_RATE, samples)
