"""How speech is transcribed and used: `SpeechOptions`, checked once, shared by every front end."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import OptionsError

SpeechMode = Literal["off", "record", "prompt"]
SpeechTask = Literal["transcribe", "translate"]
SPEECH_MODES: tuple[str, ...] = ("off", "record", "prompt")
SPEECH_TASKS: tuple[str, ...] = ("transcribe", "translate")

# `--speech-model auto`, by device type: Whisper small where it runs on the CPU, large-v3-turbo on a GPU.
AUTO_SPEECH_MODELS = {"cpu": "openai/whisper-small", "mps": "openai/whisper-small",
                      "cuda": "openai/whisper-large-v3-turbo"}  # fmt: skip

# How `--speech prompt` gives the model a window's transcript: user text before the question.
SPEECH_PROMPT = 'What is said in this part: "{speech}"\n\n{question}'


@dataclass(frozen=True)
class SpeechOptions:
    """Whether each clip's speech is transcribed (`mode`), with which Whisper checkpoint, and how.

    - mode: "off"; "record", the transcript goes into the record; "prompt", also before each question;
    - speech_model: a Whisper checkpoint's Hub id or folder, or "auto" (`AUTO_SPEECH_MODELS` for the device);
    - language: the spoken language's code ("en"), or None to detect it;
    - task: "transcribe" in the spoken language, or "translate" into English.
    """

    mode: SpeechMode = "off"
    speech_model: str = "auto"
    language: str | None = None
    task: SpeechTask = "transcribe"

    def __post_init__(self) -> None:
        if self.mode not in SPEECH_MODES:
            raise OptionsError(f"speech must be one of {', '.join(SPEECH_MODES)}; got {self.mode!r}.", "mode")
        if self.task not in SPEECH_TASKS:
            raise OptionsError(
                f"speech task must be one of {', '.join(SPEECH_TASKS)}; got {self.task!r}.", "task"
            )
        if not isinstance(self.speech_model, str) or not self.speech_model.strip():
            raise OptionsError("speech model must name a Whisper checkpoint, or be auto.", "speech_model")
        if self.language is not None and not (self.language.isalpha() and 2 <= len(self.language) <= 3):
            raise OptionsError(
                f"speech language must be a language code such as en or haw; got {self.language!r}.",
                "language",
            )

    @property
    def on(self) -> bool:
        return self.mode != "off"

    def model_id(self, device_type: str) -> str:
        """The checkpoint: the one asked, or auto's for the device type."""
        if self.speech_model != "auto":
            return self.speech_model
        return AUTO_SPEECH_MODELS.get(device_type, AUTO_SPEECH_MODELS["cpu"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
