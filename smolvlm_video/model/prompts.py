"""SmolVLM2's prompt, written out by hand exactly as the checkpoints' processor writes it.

A `Chat` is a sequence of `Message`s, whose content mixes text, PIL images and sampled videos, and the
JSON schema its answer follows, if any. The chat
template is the checkpoints' own ("<|im_start|>User: ...<end_of_utterance>\\nAssistant:"), and each
medium becomes the text the model was trained on:

- a video: "You are provided the following series of {N in words} frames from a {H:MM:SS} [H:MM:SS]
  video.\\n", then per frame "\\nFrame from MM:SS:" and the frame's image tokens, then "\\n\\n";
- an image: its tiles' tokens (<row_i_col_j> + image tokens) and a global image, or the global image
  alone when it is not split.

Writing it here rather than in the processor lets a caller change the marker strings
(`PromptStrings`), state each video's real frame count in a batch, and mix images and videos in one
chat. The test suite checks that the token ids equal the processor's for the same frames and text.

A prompt is rendered as `Segment`s: the template's own text (role names, separators,
<end_of_utterance>, the media's markers and image tokens) and the text a person wrote (questions,
system prompts, a schema stated after a question, assistant turns given by a client). `tokens`
turns the first kind's special-token strings into special tokens and never the second's, so
"<image>" typed in a question is text, as any other word is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from PIL.Image import Image

from .schemas import JsonSchema, Question

if TYPE_CHECKING:
    from ..video.media import Media

# The strings of transformers' models/smolvlm/processing_smolvlm.py, which the checkpoints were trained with.
VIDEO_INTRO = (
    "You are provided the following series of {frame_count} frames from a {video_duration} [H:MM:SS] video.\n"
)
FRAME_TIMESTAMP = "\nFrame from {timestamp}:"
MEDIA_OUTRO = "\n\n"

CHAT_START = "<|im_start|>"
END_OF_UTTERANCE = "<end_of_utterance>"
GENERATION_PROMPT = "Assistant:"

FAKE_IMAGE_TOKEN = "<fake_token_around_image>"
IMAGE_TOKEN = "<image>"
GLOBAL_IMAGE_TOKEN = "<global-img>"

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class PromptStrings:
    """The marker strings around media. Override one to experiment; the defaults are the trained ones."""

    video_intro: str = VIDEO_INTRO  # formatted with frame_count (in words) and video_duration (H:MM:SS)
    frame_timestamp: str = FRAME_TIMESTAMP  # formatted with timestamp (MM:SS), before each frame
    media_outro: str = MEDIA_OUTRO  # after the last frame


TRAINED_STRINGS = PromptStrings()


@dataclass(frozen=True)
class Message:
    """One turn of a chat: a role and its parts (text, PIL images, sampled videos) in order."""

    role: Role
    content: tuple[str | Media, ...]

    @classmethod
    def user(cls, *parts: str | Media) -> Message:
        return cls("user", tuple(parts))

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls("assistant", (text,))

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", (text,))

    def media(self) -> list[Media]:
        """The images and videos of this message, in order."""
        return [part for part in self.content if not isinstance(part, str)]


@dataclass(frozen=True)
class Chat(Sequence[Message]):
    """The messages of one conversation, and the JSON schema its next answer follows (None: free text).

    A chat is the sequence of its messages: wherever messages are taken, a chat can go.
    """

    messages: tuple[Message, ...]
    schema: JsonSchema | None = None

    def __getitem__(self, index):  # type: ignore[no-untyped-def]  # Sequence's int and slice overloads
        return self.messages[index]

    def __len__(self) -> int:
        return len(self.messages)

    @classmethod
    def of(cls, chat: Chat | Sequence[Message]) -> Chat:
        """`chat` itself, or a free-text chat of these messages."""
        return chat if isinstance(chat, Chat) else cls(tuple(chat))


def chat(question: str | Question, *media: Media, system: str | None = None) -> Chat:
    """A one-question chat: an optional system message, then the media followed by the question.

    A `Question` with a schema is sent with the schema stated after it, and the chat's answer follows it.
    """
    question = question if isinstance(question, Question) else Question(question)
    messages = (Message.system(system),) if system else ()
    return asking((*messages, Message.user(*media, question.text)), question.schema)


def asking(messages: Sequence[Message], schema: JsonSchema | None = None) -> Chat:
    """A chat of `messages` whose answer follows `schema` (None: free text), stated after the last text.

    The schema goes after the last message's closing text, as `Question.prompt` writes it (after an empty
    text where the message ends with a medium): what `chat` sends, and what the server and the demo send
    for a chat of many turns.
    """
    if schema is None or not messages:
        return Chat(tuple(messages), schema)
    *earlier, last = messages
    *parts, text = last.content if last.content and isinstance(last.content[-1], str) else (*last.content, "")
    return Chat((*earlier, Message(last.role, (*parts, Question(text, schema).prompt()))), schema)


def clock(seconds: float) -> str:
    """MM:SS as the frame markers write it (minutes go past 59 rather than into hours)."""
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


@dataclass(frozen=True)
class Segment:
    """A piece of a prompt's text: the template's (`user` False) or what a person wrote (`user` True).

    Special-token strings in the template's text are special tokens; in a person's text they are text.
    """

    text: str
    user: bool = False


def chat_segments(
    messages: Sequence[Message], media_text: Iterable[str] = (), add_generation_prompt: bool = True
) -> list[Segment]:
    """The chat's prompt in segments, each medium replaced by the next of `media_text` (in chat order).

    Every text part of a message is the user's text, whatever its role: a system prompt or an assistant
    turn given by a client is no more the template's than a question is.
    """
    media: Iterator[str] = iter(media_text)
    segments = [Segment(CHAT_START)]
    for message in messages:
        # The template's own rule: "Role:" before an image, "Role: " before text or a video.
        separator = ":" if message.content and isinstance(message.content[0], Image) else ": "
        segments.append(Segment(message.role.capitalize() + separator))
        segments += [
            Segment(part, user=True) if isinstance(part, str) else Segment(next(media))
            for part in message.content
        ]
        segments.append(Segment(END_OF_UTTERANCE + "\n"))
    if add_generation_prompt:
        segments.append(Segment(GENERATION_PROMPT))
    return segments


def render_chat(
    messages: Sequence[Message], media_text: Iterable[str] = (), add_generation_prompt: bool = True
) -> str:
    """The chat as one string, each medium replaced by the next of `media_text` (in chat order)."""
    return "".join(segment.text for segment in chat_segments(messages, media_text, add_generation_prompt))
