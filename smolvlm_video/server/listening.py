"""The speech model a request may ask for (`"speech": "prompt"`): loaded on the first such request, shared.

A video's transcript over its sampled span goes before the question as user text (`speech.speech_question`),
as `caption --speech prompt` does. Transcription runs on the request's worker thread, one at a time.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from ..errors import ModelLoadError
from ..speech import SpeechOptions, Transcribing, Transcript
from .protocol import APIError

if TYPE_CHECKING:
    from ..model.loading import LoadedModel


class Listener:
    """Transcribes a request's videos with the operator's speech options, the model loaded on first use."""

    def __init__(self, model: LoadedModel, options: SpeechOptions) -> None:
        self.model, self.options = model, options
        self._transcribing: Transcribing | None = None
        self._lock = threading.Lock()

    def transcribe(self, path: str | os.PathLike[str], start: float, end: float) -> Transcript:
        """The video's transcript from `start` to `end`; APIError 503 if the speech model cannot load."""
        with self._lock:
            if self._transcribing is None:
                from ..speech.recognizer import load_speech_model

                try:
                    loaded = load_speech_model(self.options, self.model.device, self.model.dtype)
                except ModelLoadError as error:
                    raise APIError(503, f"Speech is not available here: {error}", "speech",
                                   "speech_unavailable") from error  # fmt: skip
                self._transcribing = Transcribing(loaded)
        return self._transcribing.transcribe(path, start, end)
