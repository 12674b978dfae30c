"""The models the app serves (loaded on first use, or all at start-up on ZeroGPU), and what Listen heard."""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from smolvlm_video.model.generate import warm_up
from smolvlm_video.model.loading import LoadedModel, load
from smolvlm_video.options import ModelOptions
from smolvlm_video.speech import SpeechOptions, Transcribing, Transcript

Span = tuple[str, float, float]  # a video file, and the seconds from and to which it is heard
TRANSCRIPTS_KEPT = 64  # spans' transcripts kept for the follow-up turns of chats


class ModelCache:
    """Loads models when first asked for and keeps the last `keep`, so switching never holds more.

    With `keep=1` (the default) a switch drops the model held before loading the next, so memory
    never doubles. `preload` loads models now, as ZeroGPU requires: placed at start-up, not per request.
    """

    def __init__(self, keep: int = 1) -> None:
        self.keep = max(1, keep)
        self._lock = threading.Lock()
        self._models: OrderedDict[ModelOptions, LoadedModel] = OrderedDict()
        self._speech: tuple[tuple[str, str, str], Transcribing] | None = None  # one speech model, held

    def get(self, options: ModelOptions) -> LoadedModel:
        """The model `options` load, loading it (and dropping the least recently used) if it is not held."""
        with self._lock:
            if options not in self._models:
                while len(self._models) >= self.keep:
                    self._drop(next(iter(self._models)))
                self._models[options] = model = load(options)
                warm_up(model)  # where the decoding step is compiled: at load, not at the first request
            self._models.move_to_end(options)
            return self._models[options]

    def speech(self, options: SpeechOptions, model: LoadedModel) -> Transcribing:
        """The speech model `options` name, on `model`'s device and in its dtype, loaded on first use and
        kept (one at a time)."""
        from smolvlm_video.speech import load_speech_model

        key = (options.model_id(model.device.type), str(model.device), str(model.dtype))
        with self._lock:
            if self._speech is None or self._speech[0] != key:
                self._speech = None
                self._speech = key, Transcribing(load_speech_model(options, model.device, model.dtype))
            return self._speech[1]

    def preload(self, choices: Iterable[ModelOptions]) -> None:
        """Load these models now, keeping all of them."""
        choices = list(dict.fromkeys(choices))
        self.keep = max(self.keep, len(choices))
        for options in choices:
            self.get(options)

    @property
    def held(self) -> tuple[str, ...]:
        """The names of every model held now, least recently used first."""
        return tuple(options.name for options in self._models)

    def _drop(self, options: ModelOptions) -> None:
        del self._models[options]
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class TranscriptCache:
    """What each video span was heard to say, by the speech options that heard it, so that a follow-up turn
    hears its chat's earlier videos without transcribing them again. The last `keep` spans are kept, least
    recently used out first; a file changed since (its size or modification time) is heard again."""

    def __init__(self, keep: int = TRANSCRIPTS_KEPT) -> None:
        self.keep = max(1, keep)
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple, Transcript] = OrderedDict()

    def heard(
        self,
        options: SpeechOptions,
        spans: list[Span],
        transcribe: Callable[[list[Span]], list[Transcript]],
    ) -> list[Transcript]:
        """Each span's transcript: the one kept, or one made by a single `transcribe` call for the spans
        not kept (none where every span is)."""
        keys = {span: _span_key(options, span) for span in spans}
        with self._lock:
            found = {span: self._kept[key] for span, key in keys.items() if key in self._kept}
            for span in found:
                self._kept.move_to_end(keys[span])
        if missing := [span for span in keys if span not in found]:
            found |= dict(zip(missing, transcribe(missing), strict=True))
            with self._lock:
                for span in missing:
                    if keys[span] is not None:
                        self._kept[keys[span]] = found[span]
                while len(self._kept) > self.keep:
                    self._kept.popitem(last=False)
        return [found[span] for span in spans]

    def __len__(self) -> int:
        return len(self._kept)


def _span_key(options: SpeechOptions, span: Span) -> tuple | None:
    """What a span's transcript depends on; None for a file gone since it was read (heard, and its error
    told, as any span not kept)."""
    path, start, end = span
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return options, path, stat.st_size, stat.st_mtime_ns, start, end
