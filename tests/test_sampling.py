import pytest

from smolvlm_video.errors import OptionsError
from smolvlm_video.options import GenerationOptions, SamplingOptions
from smolvlm_video.video.probe import VideoInfo
from smolvlm_video.video.sampling import frame_count, plan, windows


def info(duration: float, fps: float = 25.0, frames: int | None = None) -> VideoInfo:
    count = round(duration * fps) if frames is None else frames
    return VideoInfo("v.mp4", duration, fps, count, 640, 360, 0, "h264", "mp4", False, "container")


@pytest.mark.parametrize(
    ("duration", "spans"),
    [
        (30, [(0, 30)]),
        (210, [(0, 210)]),  # 3.5 minutes exactly: one window
        (211, [(0, 105.5), (105.5, 211)]),
        (420, [(0, 210), (210, 420)]),  # 7 minutes
        (600, [(0, 200), (200, 400), (400, 600)]),  # 10 minutes: 3 windows
    ],
)
def test_windows(duration, spans):
    flat = [edge for w in windows(duration) for edge in (w.start, w.end)]
    assert flat == pytest.approx([edge for span in spans for edge in span])


@pytest.mark.parametrize(
    ("seconds", "fps", "max_frames", "available", "expected"),
    [
        (30, 1, 64, 750, 30),
        (210, 1, 64, 6300, 64),
        (0.04, 1, 64, 1, 1),  # a 1-frame video still gets its frame
        (10, 30, 64, 50, 50),  # never more than the frames that exist
        (3, 0.1, 64, 75, 1),  # at least one
    ],
)
def test_frame_count(seconds, fps, max_frames, available, expected):
    assert frame_count(seconds, fps, max_frames, available) == expected


def test_plan_spreads_frames_evenly_and_skips_edges_of_long_videos():
    (only,) = plan(info(210), SamplingOptions())
    assert len(only.indices) == 64
    assert only.timestamps[0] == pytest.approx(1.0)  # 1 s skipped at the start
    assert only.timestamps[-1] == pytest.approx(209.0, abs=0.05)
    gaps = {round(b - a, 1) for a, b in zip(only.timestamps, only.timestamps[1:], strict=False)}
    assert len(gaps) <= 2  # even spacing, up to rounding to whole frames


def test_plan_short_video_keeps_its_edges():
    (only,) = plan(info(30), SamplingOptions())
    assert len(only.indices) == 30
    assert only.indices[0] == 0 and only.indices[-1] == 749


def test_plan_single_frame_video():
    (only,) = plan(info(0.04, frames=1), SamplingOptions())
    assert only.indices == (0,)


def test_ten_minutes_in_three_ordered_windows():
    plans = plan(info(600, fps=30), SamplingOptions())
    assert [len(p.indices) for p in plans] == [64, 64, 64]
    stamps = [t for p in plans for t in p.timestamps]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    for p in plans:
        assert p.window.start <= p.timestamps[0] and p.timestamps[-1] < p.window.end


def test_window_longer_than_video_is_clamped():
    (only,) = plan(info(20), SamplingOptions(start=5, end=500))
    assert (only.window.start, only.window.end) == (5, 20)
    assert only.timestamps[0] >= 5 and only.timestamps[-1] < 20


def test_window_past_the_end_is_an_error():
    with pytest.raises(OptionsError, match="past the end"):
        plan(info(20), SamplingOptions(start=30))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 0},
        {"fps": -1},
        {"fps": float("nan")},
        {"max_frames": 0},
        {"start": 5, "end": 2},
        {"backend": "x"},
    ],
)
def test_bad_sampling_options(kwargs):
    with pytest.raises(OptionsError):
        SamplingOptions(**kwargs)


def test_generation_options():
    from smolvlm_video.model.generate import generate_kwargs

    assert generate_kwargs(GenerationOptions()) == {
        "max_new_tokens": 256,
        "do_sample": False,
        "repetition_penalty": 1.0,
    }
    sampled = generate_kwargs(GenerationOptions.from_temperature(0.5))
    assert sampled["do_sample"] and sampled["temperature"] == 0.5


def test_options_state_only_the_generation_settings_that_take_effect():
    greedy = GenerationOptions(temperature=0.3, top_p=0.5).to_dict()
    assert not greedy["do_sample"] and greedy["temperature"] is None and greedy["top_p"] is None
    sampled = GenerationOptions.from_temperature(0.5, top_p=0.8).to_dict()
    assert (sampled["do_sample"], sampled["temperature"], sampled["top_p"]) == (True, 0.5, 0.8)


def test_bad_generation_options():
    with pytest.raises(OptionsError):
        GenerationOptions(max_new_tokens=0)
    with pytest.raises(OptionsError):
        GenerationOptions.from_temperature(-1)
