"""Speech beside the frames: a clip's audio transcribed once with Whisper, gated by voice activity.

`audio.read_audio` streams 16 kHz mono chunks with PyAV, `gate.voiced_spans` keeps the spans with a
voice, a `recognizer.SpeechModel` (`load_speech_model`) recognizes them in batches, and
`Transcribing.transcribe` gives a clip's `Transcript`, whose `text_between` is a window's share.
Only `recognizer` imports torch. See docs/speech.md.
"""

from typing import Any

from .options import SPEECH_MODES, SPEECH_PROMPT, SpeechOptions
from .transcript import Segment, Transcribing, Transcript, speech_question, with_speech

__all__ = [
    "SPEECH_MODES",
    "SPEECH_PROMPT",
    "Segment",
    "SpeechOptions",
    "Transcribing",
    "Transcript",
    "load_speech_model",
    "speech_question",
    "with_speech",
]


def __getattr__(name: str) -> Any:
    if name == "load_speech_model":  # torch, loaded when a model is
        from .recognizer import load_speech_model

        return load_speech_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
