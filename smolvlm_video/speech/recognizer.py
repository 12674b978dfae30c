"""Whisper through transformers: voiced spans to timed text, a batch of spans per generate call."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ModelLoadError
from .audio import SAMPLE_RATE
from .gate import VoicedSpan
from .options import SpeechOptions
from .transcript import Segment

logger = logging.getLogger(__name__)

# Spans per generate call, by device type: a GPU runs a batch at the cost of one; on the CPU a batch costs
# its sum and holds each span's attention at once (benchmarks/speech.py: 8 spans of whisper-small's shape
# peaked at 1.51x the run without speech).
SPAN_BATCH = {"cpu": 1, "mps": 4, "cuda": 8}
MAX_NEW_TOKENS = 200  # Whisper's 30 s window holds about this many tokens of speech
MARKUP = re.compile(r"<\|[^|>]*\|>")  # a special token's text, never part of what was said


@dataclass
class SpeechModel:
    """A Whisper checkpoint loaded once, with the options it answers to; `calls` counts recognitions."""

    model: Any
    processor: Any
    model_id: str
    device: torch.device
    dtype: torch.dtype
    options: SpeechOptions
    calls: int = 0  # generate calls so far

    def recognize(self, spans: Iterable[VoicedSpan]) -> tuple[list[Segment], str | None]:
        """The segments said in `spans` (times from the gate and, within a span, from Whisper's
        timestamps), and the language most of them were in (the one asked, or detected). The spans are
        taken SPAN_BATCH (for the device) at a time as they come, so only a batch's audio is held."""
        size = SPAN_BATCH.get(self.device.type, SPAN_BATCH["cpu"])
        segments: list[Segment] = []
        languages: Counter[str] = Counter()
        batch: list[VoicedSpan] = []
        for span in spans:
            batch.append(span)
            if len(batch) == size:
                found, spoken = self._batch(batch)
                segments, batch = segments + found, []
                languages.update(spoken)
        if batch:
            found, spoken = self._batch(batch)
            segments += found
            languages.update(spoken)
        language = languages.most_common(1)[0][0] if languages else self.options.language
        return segments, language

    def _batch(self, spans: Sequence[VoicedSpan]) -> tuple[list[Segment], list[str]]:
        features = self.processor.feature_extractor(
            [span.samples for span in spans], sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features.to(self.device, self.dtype)
        with torch.inference_mode():
            languages = (
                [self.options.language] * len(spans) if self.options.language else self._detect(features)
            )
            ids = self.model.generate(
                features,
                language=languages,
                task=self.options.task,
                return_timestamps=True,
                max_new_tokens=MAX_NEW_TOKENS,
            )
        self.calls += 1
        segments = []
        for span, row in zip(spans, ids, strict=True):
            decoded = self.processor.tokenizer.decode(
                row.tolist(), output_offsets=True, skip_special_tokens=True
            )
            segments += _timed(span, decoded.get("offsets") or [], decoded["text"])
        return segments, languages

    def _detect(self, features: torch.Tensor) -> list[str]:
        tokens = self.processor.tokenizer.convert_ids_to_tokens(self.model.detect_language(features).tolist())
        return [token.strip("<|>") for token in tokens]


def _timed(span: VoicedSpan, offsets: list[dict[str, Any]], text: str) -> list[Segment]:
    """A span's segments: Whisper's timestamps kept inside the span, or the span itself where it gave none."""
    length = span.end - span.start
    pieces = [(o["timestamp"][0], o["timestamp"][1], o["text"]) for o in offsets] or [(0.0, length, text)]
    segments = []
    for start, end, said in pieces:
        said = MARKUP.sub("", said).strip()
        if not said:
            continue
        start = min(max(0.0, start or 0.0), length)
        end = min(max(start, end if end is not None else length), length)
        segments.append(Segment(round(span.start + start, 3), round(span.start + end, 3), said))
    return segments


def load_speech_model(options: SpeechOptions, device: torch.device, dtype: torch.dtype) -> SpeechModel:
    """The Whisper checkpoint the options name (auto: for the device), on `device` in `dtype`."""
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    model_id = options.model_id(device.type)
    try:
        processor = AutoProcessor.from_pretrained(model_id)
        model = AutoModelForSpeechSeq2Seq.from_pretrained(model_id, dtype=dtype).to(device).eval()
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"Could not load the speech model {model_id!r}: {error}. Pass --speech-model a Whisper "
            "checkpoint on the Hub or in a local folder."
        ) from error
    return SpeechModel(model, processor, model_id, device, dtype, options)
