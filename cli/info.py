"""`smolvlm-video info VIDEO`: what the core sees in a video, and optionally the frames themselves."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from smolvlm_video.model.prompts import clock
from smolvlm_video.model.registry import MODELS
from smolvlm_video.options import SamplingOptions
from smolvlm_video.speech import SpeechOptions
from smolvlm_video.video import SampledVideo, decode_plan, video_shots
from smolvlm_video.video.decode import choose_backend
from smolvlm_video.video.probe import probe
from smolvlm_video.video.sampling import plan

from .options import core_errors, sampling_options


@click.command("info")
@core_errors
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path), required=False)
@sampling_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--decode", "do_decode", is_flag=True, help="Decode the sampled frames and report how it went.")
@click.option(
    "--save-frames",
    type=click.Path(file_okay=False, path_type=Path),
    help="Decode the sampled frames and write them here as JPEG files (implies --decode).",
)
def info_command(
    video: Path | None, sampling: SamplingOptions, as_json: bool, do_decode: bool, save_frames: Path | None
) -> None:
    """Show what smolvlm-video sees in VIDEO: its facts, windows and the frames it would sample.

    Without VIDEO: what the model would run on here (device, dtype, attention, vision), and why.
    """
    if video is None:
        _print_machine(as_json)
        return
    info = probe(video)
    shots = video_shots(info, sampling)  # --split scenes: the shot pass, whose shots the windows follow
    plans = plan(info, sampling, shots)
    report: dict[str, Any] = {
        "video": info.to_dict(),
        "backend": choose_backend(info, sampling.backend),
        "sampling": sampling.to_dict() | {"frame_side": sampling.side},
        "shots": [shot.to_dict() for shot in shots] if shots is not None else None,
        "windows": [
            {
                "index": p.window.index,
                "start": p.window.start,
                "end": p.window.end,
                "timestamps": list(p.timestamps),
            }
            for p in plans
        ],
    }
    report["model_device"] = _machine()
    if do_decode or save_frames:
        videos = [decode_plan(info, plan, sampling) for plan in plans]
        for window, video in zip(report["windows"], videos, strict=True):
            window["decoded"] = _decoded(video, save_frames)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(report, sampling)


def _machine() -> dict[str, Any]:
    """What the model flags' `auto` picks on this machine, and why, and the speech model `auto` takes."""
    from smolvlm_video.model.devices import choose  # torch: imported only once a command needs it

    choice = choose()
    speech = SpeechOptions().model_id(choice.device.type)
    return {**choice.to_dict(), "speech_model": speech}


def _print_machine(as_json: bool) -> None:
    machine, models = _machine(), [asdict(spec) for spec in MODELS.values()]
    if as_json:
        click.echo(json.dumps({"model_device": machine, "models": models}, indent=2))
        return
    facts = Table(show_header=False, box=None)
    for name, value in _machine_rows(machine):
        facts.add_row(f"[bold]{name}[/]", value)
    Console().print(facts)
    known = Table("--model", "checkpoint", "frame side", "tokens a frame", "context", title="Known models")
    for spec in MODELS.values():
        known.add_row(spec.name, spec.hub_id, str(spec.frame_side), str(spec.tokens_per_frame),
                      f"{spec.context_length:,}")  # fmt: skip
    Console().print(known)


def _machine_rows(model: dict[str, Any]) -> list[tuple[str, str]]:
    compiled = "compiled" if model["compile"] else "eager"
    runs_on = (
        f"{model['device']}, {model['dtype']}, {model['attention']} attention, {model['vision']} vision, "
        f"{compiled} decoding"
    )
    speech = ("speech model", f"{model['speech_model']} (--speech-model auto on {model['device']})")
    return [("model runs on", runs_on), *(("", why) for why in model["why"]), speech]


def _decoded(video: SampledVideo, save_frames: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "backend": video.backend,
        "seconds": round(video.decode_seconds, 3),
        "shape": list(video.frames.shape),
        "timestamps": list(video.timestamps),
    }
    if save_frames:
        result["files"] = [str(path) for path in _save(video, save_frames)]
    return result


def _save(video: SampledVideo, folder: Path) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame, seconds in zip(video.frames, video.timestamps, strict=True):
        path = folder / f"window{video.window.index:02d}_{seconds:09.3f}s.jpg"
        Image.fromarray(frame).save(path, quality=92)
        paths.append(path)
    return paths


def _print_report(report: dict[str, Any], options: SamplingOptions) -> None:
    console = Console()
    facts = Table(show_header=False, box=None)
    video = report["video"]
    rows = [
        ("file", video["path"]),
        ("duration", f"{video['duration']:.2f} s"),
        ("fps", f"{video['fps']:.3f}" + (" (variable)" if video["variable_frame_rate"] else "")),
        ("frames", str(video["frame_count"])),
        ("size", f"{video['width']}x{video['height']}"),
        ("rotation", f"{video['rotation']}°"),
        ("codec", f"{video['codec']} in {video['container']}"),
        ("metadata from", video["metadata_source"]),
        ("backend", report["backend"]),
        (
            "sampling",
            f"{options.fps:g} fps, at most {options.max_frames} frames per window, side {options.side}px",
        ),
    ]
    rows += _machine_rows(report["model_device"])
    for name, value in rows:
        facts.add_row(f"[bold]{name}[/]", value)
    console.print(facts)
    if report["shots"] is not None:
        shots = Table(title=f"Shots ({len(report['shots'])})")
        for column in ("shot", "span", "seconds"):
            shots.add_column(column)
        for number, shot in enumerate(report["shots"]):
            span = f"{clock(shot['start'])}-{clock(shot['end'])}"
            shots.add_row(str(number), span, f"{shot['end'] - shot['start']:.2f}")
        console.print(shots)
    table = Table(title="Windows (one prompt each)")
    for column in ("window", "span", "frames", "timestamps", "decoded"):
        table.add_column(column)
    for window in report["windows"]:
        decoded = window.get("decoded")
        table.add_row(
            str(window["index"]),
            f"{clock(window['start'])}-{clock(window['end'])}",
            str(len(window["timestamps"])),
            ", ".join(clock(t) for t in window["timestamps"]),
            f"{decoded['backend']}, {decoded['seconds']} s, {decoded['shape']}" if decoded else "-",
        )
    console.print(table)
