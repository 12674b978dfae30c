"""`smolvlm-video ask MEDIA "question"`: one answer about a video or an image, streamed as it is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from smolvlm_video.options import GenerationOptions, ModelOptions, SamplingOptions
from smolvlm_video.speech import SpeechOptions, Transcript

if TYPE_CHECKING:
    pass

from .options import (
    core_errors,
    generation_options,
    json_schema_option,
    model_options,
    sampling_options,
    speech_options,
)


@click.command("ask")
@core_errors
@click.argument("media", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("question")
@click.option("--system", default=None, help="A system message before the question.")
@json_schema_option
@sampling_options
@model_options
@generation_options
@speech_options
def ask_command(
    media: Path,
    question: str,
    system: str | None,
    json_schema: Path | None,
    sampling: SamplingOptions,
    model: ModelOptions,
    generation: GenerationOptions,
    speech: SpeechOptions,
) -> None:
    """Ask QUESTION about MEDIA (a video, or an image) and stream the answer to the terminal.

    With --json-schema the answer is JSON that follows the schema; exit status 1 if max new tokens cut it off.
    With --speech, what is said in the video is printed first (on stderr); with --speech prompt, the model
    also gets it before the question.
    """
    from smolvlm_video.model.generate import stream
    from smolvlm_video.model.loading import load_fitted
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.model.schemas import JsonSchema, Question, check_generation, parse_answer
    from smolvlm_video.speech import speech_question
    from smolvlm_video.video import SampledVideo
    from smolvlm_video.video.media import load_media

    if model.compile == "auto":  # one answer does not pay back a compile
        model = replace(model, compile="off")
    schema = JsonSchema.from_file(json_schema) if json_schema else None
    if schema:
        check_generation(generation.min_new_tokens)
    loaded, sampling = load_fitted(model, sampling)
    medium = load_media(media, sampling)
    if speech.on:
        if not isinstance(medium, SampledVideo):
            raise click.UsageError("--speech needs a video: an image has nothing to hear.")
        transcript = _heard(loaded, speech, media, medium)
        if speech.mode == "prompt":
            question = speech_question(
                question, transcript.text_between(medium.window.start, medium.window.end)
            )
    asked = chat(Question(question, schema), medium, system=system)
    answer = ""
    for piece in stream(loaded, asked, generation):
        click.echo(piece if answer else piece.lstrip(), nl=False)
        answer += piece
    click.echo()
    parse_answer(answer, asked.schema, generation.max_new_tokens)  # a TruncatedError says what to raise


def _heard(loaded, speech: SpeechOptions, path: Path, video) -> Transcript:
    """The video's transcript over its sampled window, each segment printed on stderr as it is timed."""
    from smolvlm_video.model.prompts import clock
    from smolvlm_video.speech import Transcribing, load_speech_model

    transcribing = Transcribing(load_speech_model(speech, loaded.device, loaded.dtype))
    transcript = transcribing.transcribe(path, video.window.start, video.window.end)
    if transcript.error:
        click.echo(f"No transcript: {transcript.error['message']}", err=True)
    for segment in transcript.segments:
        click.echo(f"[{clock(segment.start)}-{clock(segment.end)}] {segment.text}", err=True)
    return transcript
