"""Probing and decoding real files that ffmpeg makes: formats, rotation, and every kind of bad input."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import H264, ffmpeg, requires_ffmpeg

from smolvlm_video import SamplingOptions, probe, sample_video, sample_windows
from smolvlm_video.errors import (
    CorruptVideoError,
    EmptyVideoError,
    NotAVideoError,
    OptionsError,
    VideoNotFoundError,
)
from smolvlm_video.video import decode as decode_module
from smolvlm_video.video import pyav_decoder
from smolvlm_video.video.probe import _header_untrustworthy, _with_packet_count

pytestmark = requires_ffmpeg
BACKENDS = ["pyav", *(["decord"] if decode_module.decord_available() else [])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_landscape(clip, backend):
    video = sample_video(clip, SamplingOptions(max_frames=4, frame_side=64, backend=backend))
    assert video.backend == backend
    assert video.frames.shape == (3, 48, 64, 3) and video.frames.dtype == np.uint8
    assert video.timestamps == pytest.approx((0.0, 1.48, 2.96))
    assert video.indices == (0, 37, 74)


def test_backends_agree_on_frames(clip):
    if len(BACKENDS) < 2:
        pytest.skip("decord is not installed")
    a, b = (sample_video(clip, SamplingOptions(frame_side=64, backend=name)) for name in BACKENDS)
    assert a.indices == b.indices
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 8  # same frames, two scalers


def test_rotated_phone_video_stays_portrait(make_video, media_dir):
    plain = make_video("landscape.mp4", size="320x240")
    rotated = media_dir / "rotated.mp4"
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info = probe(rotated)
    assert (info.width, info.height, info.rotation) == (240, 320, 90)
    video = sample_video(rotated, SamplingOptions(max_frames=2, frame_side=64, backend=BACKENDS[-1]))
    assert video.backend == "pyav"  # decord mis-scales rotated videos, so even a request for it gets PyAV
    assert video.frames.shape[1:] == (64, 48, 3)
    upright = sample_video(plain, SamplingOptions(max_frames=2, frame_side=64, backend="pyav"))
    # The rotated file's frames are the plain file's frames turned a quarter counter-clockwise.
    assert np.abs(np.rot90(upright.frames[0]).astype(int) - video.frames[0].astype(int)).mean() < 4


def test_natively_portrait_video(make_video):
    video = sample_video(
        make_video("portrait.mp4", size="120x200"), SamplingOptions(max_frames=2, frame_side=100)
    )
    assert video.frames.shape[1:] == (100, 60, 3)


def test_4k_video_is_scaled_right_after_decoding(make_video):
    path = make_video("uhd.mp4", size="3840x2160", rate=5, seconds=1)
    video = sample_video(path, SamplingOptions(max_frames=2))
    assert probe(path).width == 3840
    assert video.frames.shape[1:] == (288, 512, 3)


def test_variable_frame_rate(media_dir):
    path = media_dir / "vfr.mp4"
    graph = "testsrc2=s=160x120:r=10:d=2[a];testsrc2=s=160x120:r=30:d=2[b];[a][b]concat=n=2:v=1[v]"
    ffmpeg("-filter_complex", graph, "-map", "[v]", "-vsync", "vfr", *H264, str(path))
    info = probe(path)
    assert info.variable_frame_rate and info.metadata_source == "packets"
    assert info.frame_count == 80
    video = sample_video(path, SamplingOptions(fps=2))
    assert video.frame_count == 8
    assert list(video.timestamps) == sorted(video.timestamps) and video.timestamps[-1] <= 4.0


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]),
        ("h264.mkv", H264),
        ("vp8.webm", ["-c:v", "libvpx", "-deadline", "realtime"]),
    ],
)
def test_other_containers_and_codecs(make_video, name, codec):
    path = make_video(name, codec=tuple(codec))
    info = probe(path)
    assert info.frame_count == 75 and info.fps == pytest.approx(25)
    if name.endswith(".webm"):
        assert decode_module.choose_backend(info) == "pyav"
    video = sample_video(path, SamplingOptions(frame_side=64))
    assert video.frames.shape == (3, 48, 64, 3)


def test_header_without_frame_count_or_fps_is_fixed_by_counting_packets(make_video):
    info = probe(make_video("h264.mkv"))
    assert info.metadata_source == "packets"  # Matroska has no frame count in its header
    broken = dataclasses.replace(info, frame_count=0, fps=0.0)
    assert _header_untrustworthy(broken)
    fixed = _with_packet_count(broken)
    assert (fixed.frame_count, fixed.fps, fixed.metadata_source) == (75, pytest.approx(25), "packets")
    no_length = _with_packet_count(dataclasses.replace(broken, duration=0.0))  # from the last packet's end
    assert (no_length.duration, no_length.fps) == (pytest.approx(3.0), pytest.approx(25))


def test_truncated_webm_counts_its_packets_and_sampling_names_the_cut(make_video, media_dir):
    whole = make_video("cut.webm", seconds=4, codec=("-c:v", "libvpx-vp9", "-deadline", "realtime"))
    cut = media_dir / "cut-half.webm"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    info = probe(cut)
    assert info.duration == pytest.approx(4) and 0 < info.frame_count < 100  # the header's length only
    with pytest.raises(CorruptVideoError, match="truncated") as raised:
        sample_video(cut, SamplingOptions(max_frames=8))
    assert str(cut) in str(raised.value)


def test_long_video_is_sampled_window_by_window(make_video):
    path = make_video("long.mp4", size="64x48", rate=2, seconds=430)
    clips = list(sample_windows(path, SamplingOptions(max_frames=8)))
    assert [c.window.index for c in clips] == [0, 1, 2]
    stamps = [t for c in clips for t in c.timestamps]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert sample_video(path).window.end == pytest.approx(210)  # one window: the first 210 s


def test_auto_decodes_with_pyav_and_a_missing_decord_is_a_clear_error(clip, monkeypatch):
    assert sample_video(clip, SamplingOptions(max_frames=2)).backend == "pyav"
    monkeypatch.setattr(decode_module, "decord_available", lambda: False)
    with pytest.raises(OptionsError, match="pip install decord"):
        sample_video(clip, SamplingOptions(max_frames=2, backend="decord"))


def test_decord_failure_falls_back_to_pyav(clip, monkeypatch):
    if "decord" not in BACKENDS:
        pytest.skip("decord is not installed")

    def broken(*args, **kwargs):
        raise RuntimeError("DECORDError: cannot decode")

    monkeypatch.setattr(decode_module, "_decode_decord", broken)
    assert sample_video(clip, SamplingOptions(max_frames=2, backend="decord")).backend == "pyav"


@pytest.mark.parametrize("name", ["with space.mp4", "vidéo 東京.mp4"])
def test_paths_with_spaces_and_non_ascii(clip, media_dir, name):
    path = media_dir / name
    shutil.copy(clip, path)
    assert sample_video(path, SamplingOptions(max_frames=2)).frame_count == 2


def _bad(media_dir: Path, clip: Path, kind: str) -> Path:
    path = media_dir / f"bad-{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video, just a note\n" * 20)
    elif kind == "truncated":
        path.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    elif kind == "image":
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48",
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "png",
            str(path),
        )
    elif kind == "zero-frames":
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "0", "-c:v", "libx264", str(path))
    elif kind == "audio":
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(path))
    return path


@pytest.mark.parametrize(
    ("kind", "error", "cause"),
    [
        ("missing", VideoNotFoundError, "no such file"),
        ("empty", EmptyVideoError, "empty"),
        ("zero-frames", EmptyVideoError, "no video frames"),
        ("text", NotAVideoError, "text file"),
        ("truncated", CorruptVideoError, "truncated"),
        ("image", NotAVideoError, "image"),
        ("audio", NotAVideoError, "audio but no video"),
    ],
)
def test_bad_input_names_the_file_and_the_cause(media_dir, clip, kind, error, cause):
    path = _bad(media_dir, clip, kind)
    with pytest.raises(error, match=cause) as raised:
        sample_video(path, SamplingOptions(max_frames=2))
    assert str(path) in str(raised.value)


def test_snap_to_keyframes_moves_little_keeps_order_and_span():
    from smolvlm_video.video.targets import snap_to_keyframes

    keyframes = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert snap_to_keyframes([0.5, 5.2, 9.5], keyframes, 1.0) == [0.5, 6.0, 9.5]  # the ends stay inside
    assert snap_to_keyframes([1.0, 1.6, 2.1], keyframes, 1.0) == [1.0, 1.6, 2.0]  # a third of a gap at most
    assert snap_to_keyframes([3.0, 7.4], keyframes, 0.5) == [3.0, 7.4]  # nothing within 0.5 s
    assert snap_to_keyframes([3.0, 7.4], [], 1.0) == [3.0, 7.4]


def test_snapped_frames_are_keyframes_and_match_exact_decoding(make_video):
    # One keyframe a second, B-frames (decode and presentation times differ), 20 s, a frame every 4 s.
    path = make_video("gop1s.mp4", rate=25, seconds=20, codec=("-c:v", "libx264", "-g", "25", "-bf", "2"))
    options = SamplingOptions(fps=0.25, frame_side=64, backend="pyav")
    snapped = sample_video(path, options)
    exact = sample_video(path, dataclasses.replace(options, snap_seconds=0))
    assert snapped.frame_count == exact.frame_count == 5
    assert list(snapped.timestamps) == sorted(set(snapped.timestamps))
    moved = [abs(a - b) for a, b in zip(snapped.timestamps, exact.timestamps, strict=True)]
    assert max(moved) <= 1.0 and any(moved)
    assert all(t == int(t) for t in snapped.timestamps[1:-1])  # inner frames sit on the keyframes
    for index, time in zip(
        snapped.indices, snapped.timestamps, strict=True
    ):  # the same picture as exact decoding
        same = sample_video(
            path, dataclasses.replace(options, snap_seconds=0, start=time, end=time + 0.5, max_frames=1)
        )
        assert same.indices == (index,)
        assert (
            np.abs(same.frames[0].astype(int) - snapped.frames[list(snapped.indices).index(index)]).mean() < 2
        )


def x264(pyramid: str) -> tuple[str, ...]:
    """libx264 at its default preset and 3 B-frames, with this B-pyramid (none, strict or normal)."""
    return ("-c:v", "libx264", "-preset", "medium", "-bf", "3", "-b-pyramid", pyramid, "-pix_fmt", "yuv420p")


X264_PYRAMIDS = {  # x264's defaults have 3 B-frames with a normal B-pyramid; strict is Blu-ray's
    "x264-pyramid-normal": x264("normal"),
    "x264-pyramid-strict": x264("strict"),
    "hevc-bframes": (
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error:bframes=4:b-pyramid=1",
        "-pix_fmt",
        "yuv420p",
    ),
}


def _every_frame(path: Path, side: int) -> dict[int, tuple[np.ndarray, str]]:
    """Frame number -> (scaled RGB, picture type), decoding every frame, one thread, nothing skipped."""
    import av
    from av.video.frame import PictureType

    info = probe(path)
    width, height = decode_module.scaled_size(info.width, info.height, side)
    frames = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = float(stream.start_time * stream.time_base)
        for frame in container.decode(stream):
            number = round((frame.time - origin) * info.fps)
            kind = PictureType(frame.pict_type).name
            frames[number] = (pyav_decoder._scaled(frame, width, height), kind)
    return frames


@pytest.mark.parametrize("name", list(X264_PYRAMIDS))
def test_exact_mode_equals_frames_decoded_one_by_one(make_video, name):
    path = make_video(f"{name}.mp4", size="160x120", rate=25, seconds=12, codec=X264_PYRAMIDS[name])
    options = SamplingOptions(fps=4, max_frames=40, frame_side=64, snap_seconds=0, backend="pyav")
    reference = _every_frame(path, 64)
    for threads in (1, 2):  # skipping must hold with frame threading too
        video = decode_module.decode(probe(path), sample_video(path, options).indices, 64, "pyav", threads, 0)
        assert len(video.frames) == 40
        kinds = {reference[i][1] for i in video.indices}
        assert "B" in kinds  # some targets need the frames after them decoded first
        for index, frame in zip(video.indices, video.frames, strict=True):
            assert np.array_equal(frame, reference[index][0]), f"frame {index} differs"


def test_exact_mode_takes_consecutive_frames_exactly(make_video):
    # A target on every frame: the decoder takes packets of later targets before it gives back the
    # current one, and none of them may be skipped.
    name = "x264-pyramid-normal"
    path = make_video(f"{name}.mp4", size="160x120", rate=25, seconds=12, codec=X264_PYRAMIDS[name])
    options = SamplingOptions(fps=25, max_frames=25, frame_side=64, start=4, end=5, snap_seconds=0)
    reference = _every_frame(path, 64)
    video = sample_video(path, options)
    assert video.indices == tuple(range(100, 125))
    for index, frame in zip(video.indices, video.frames, strict=True):
        assert np.array_equal(frame, reference[index][0]), f"frame {index} differs"


@pytest.mark.parametrize("snap_seconds", [0.0, 1.0])
def test_keyframe_intervals_decode_in_parallel_lanes_alike(make_video, monkeypatch, snap_seconds):
    # A keyframe a second: the intervals go to two decoders at once, and nothing about the frames changes.
    path = make_video("gop1s.mp4", rate=25, seconds=20, codec=("-c:v", "libx264", "-g", "25", "-bf", "2"))
    info = probe(path)
    indices = sample_video(path, SamplingOptions(fps=2, frame_side=64, snap_seconds=0)).indices
    threads_seen = set()
    pick = pyav_decoder._Lane.pick

    def recording_pick(lane, group):
        threads_seen.add(threading.current_thread().name.split("_")[0])
        return pick(lane, group)

    monkeypatch.setattr(pyav_decoder._Lane, "pick", recording_pick)
    one = decode_module.decode(info, indices, 64, "pyav", threads=1, snap_seconds=snap_seconds)
    assert threads_seen == {"MainThread"}
    two = decode_module.decode(info, indices, 64, "pyav", threads=2, snap_seconds=snap_seconds)
    assert threads_seen == {"MainThread", "smolvlm-lane"}
    assert len(one.frames) == len(indices) and one.timestamps == two.timestamps and one.indices == two.indices
    assert np.array_equal(one.frames, two.frames)


@pytest.mark.parametrize("name", ["keyframes-b2.mp4", "keyframes-b2.mkv"])
def test_keyframe_times_are_presentation_times(make_video, name):
    # MP4 indexes decode times, 2 frames ahead of presentation here (2 B-frames); Matroska's cues are
    # presentation times. A target shown just before a keyframe must count in the interval before it.
    import av

    path = make_video(name, rate=25, seconds=5, codec=("-c:v", "libx264", "-g", "25", "-bf", "2"))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        shown = [round(frame.time, 3) for frame in container.decode(stream) if frame.key_frame]
    with av.open(str(path)) as container:
        indexed = pyav_decoder.keyframe_times(container, container.streams.video[0])
    indexed = [round(time, 3) for time in indexed]
    assert indexed == shown == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_no_seek_back_onto_the_keyframe_just_taken():
    # The index says 4.2666667 s, the frame taken says 4.2666666 s: the same keyframe, decode forward.
    keyframes = [0.0, 4.2666667, 8.5333333]
    assert not pyav_decoder._should_seek(keyframes, 4.2666666, 4.7, tolerance=1 / 60)
    assert pyav_decoder._should_seek(keyframes, 4.1, 4.7, tolerance=1 / 60)  # a keyframe between: seek
    assert pyav_decoder._should_seek(keyframes, 4.3, 8.6, tolerance=1 / 60)


def test_keyframe_groups_split_where_a_keyframe_lies_between_targets():
    from smolvlm_video.video.targets import Target, keyframe_groups

    targets = [Target(time) for time in (0.5, 1.5, 2.0, 2.5, 7.0)]
    assert [[t.time for t in group] for group in keyframe_groups(targets, [0.0, 2.0, 4.0])] == [
        [0.5, 1.5],
        [2.0, 2.5],
        [7.0],
    ]
    assert keyframe_groups(targets, []) == [targets]  # no index: one decoder scans it all


def test_default_mode_moves_targets_onto_reference_frames(make_video):
    # B-frames that no frame refers to: the sampler may move a target by a frame or two onto an I or P.
    codec = ("-c:v", "libx264", "-bf", "3", "-b-pyramid", "none", "-g", "250", "-pix_fmt", "yuv420p")
    path = make_video("nonref-b.mp4", size="160x120", rate=25, seconds=12, codec=codec)
    reference = _every_frame(path, 64)
    options = SamplingOptions(fps=4, max_frames=40, frame_side=64, backend="pyav")
    snapped, exact = (
        sample_video(path, options),
        sample_video(path, dataclasses.replace(options, snap_seconds=0)),
    )
    assert {reference[i][1] for i in exact.indices} >= {"B"}
    inner = snapped.indices[1:-1]  # the first and last stay put, so no frame leaves the window's span
    assert {reference[i][1] for i in inner} <= {"I", "P"}
    assert (snapped.indices[0], snapped.indices[-1]) == (exact.indices[0], exact.indices[-1])
    moved = [abs(a - b) for a, b in zip(snapped.timestamps, exact.timestamps, strict=True)]
    assert max(moved) <= 0.25 / 3 + 0.02  # a third of the 0.25 s between targets, at most
    for index, frame in zip(snapped.indices, snapped.frames, strict=True):
        assert np.array_equal(frame, reference[index][0])  # the true picture of the frame taken
