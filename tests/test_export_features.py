"""Exports declare their types: `datasets` loads every format typed from the declaration, not from the first
rows, where a null carries no type (its guess failed with "Couldn't cast array of type string to null")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from smolvlm_video.batch.records import CaptionRecord, WindowCaption, clip_id, fingerprint
from smolvlm_video.export import CutOptions, ExportOptions, export
from smolvlm_video.export.features import VIDEO, features_dict, features_yaml
from smolvlm_video.options import GenerationOptions, SamplingOptions

datasets = pytest.importorskip("datasets")

ROOT = Path(__file__).resolve().parent.parent
SCENE = json.loads((ROOT / "examples" / "schemas" / "scene.json").read_text())


def test_features_are_written_as_datasets_writes_them():
    schema = pa.schema(
        [
            ("text", pa.string()),
            ("stamps", pa.list_(pa.float64())),
            ("scene", pa.struct([("people", pa.bool_()), ("tags", pa.list_(pa.string()))])),
            ("shots", pa.list_(pa.struct([("n", pa.int64())]))),
            ("grid", pa.list_(pa.list_(pa.int64()))),
            ("clip", VIDEO),
        ]
    )
    expected = datasets.Features.from_arrow_schema(schema)
    expected["clip"] = datasets.Video()
    assert features_dict(schema) == expected.to_dict()  # the VIDEO column a Video: its type says so
    assert features_yaml(schema) == expected._to_yaml_list()
    with pytest.raises(ValueError, match="no datasets type"):
        features_dict(pa.schema([("x", pa.float16())]))


def _record(path: Path, index: int, tags: list[str], setting: str | None) -> dict:
    scene = {"setting": setting, "people": index % 2 == 0, "motion": None, "tags": tags}
    window = WindowCaption(1.0, 2.0, f"window {index}", 4, [1.0, 1.25, 1.5, 1.75], {"scene": scene})
    record = CaptionRecord(
        path=str(path),
        abs_path=str(path),
        id=clip_id(path),
        status="ok",
        caption=window.caption,
        answers={"scene": scene},
        windows=[window],
        model={"id": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "revision": None},
        prompts=[{"name": "scene", "text": "Describe the scene.", "schema": json.dumps(SCENE)}],
        sampling=SamplingOptions().to_dict(),
        generation=GenerationOptions().to_dict(),
        video={
            "duration": 6.0,
            "fps": 25.0,
            "width": 320,
            "height": 240,
            "codec": "h264",
            "rotation": 0,
            "fingerprint": fingerprint(path),
        },
    )
    return json.loads(record.to_json())


@pytest.fixture(scope="module")
def nulls_first(tmp_path_factory) -> Path:
    """Records whose first five (what `datasets` guesses types from) have no tags, no setting and clips that
    cut; the sixth has tags, a setting, and a source gone since it was captioned, so its cut fails."""
    folder = tmp_path_factory.mktemp("nulls-first")
    records = []
    for index in range(6):
        source = folder / "clips" / f"{index}.mp4"
        source.parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / "examples" / "clips" / "testsrc2.mp4", source)
        last = index == 5
        records.append(_record(source, index, ["sky"] if last else [], "outdoor" if last else None))
    (folder / "clips" / "5.mp4").unlink()
    out = folder / "captions.jsonl"
    out.write_text("".join(json.dumps(record) + "\n" for record in records))
    return out


def test_webdataset_loads_typed_with_the_features_beside_it(nulls_first, tmp_path):
    folder = tmp_path / "wds"
    report = export(nulls_first, folder, ExportOptions(format="webdataset", cut=CutOptions()))
    assert report.cuts == {"cut": 5, "not_found": 1}
    shards = sorted((folder / "data").glob("*.tar"))
    assert [s.name.split("-")[2] for s in shards] == [
        "00000",
        "uncut",
    ]  # the failed cut in a shard of its own
    features = datasets.Features.from_dict(json.loads((folder / "features.json").read_text()))
    loaded = datasets.load_dataset(
        "webdataset", data_files=[str(s) for s in shards], features=features, split="train"
    )
    assert loaded.features == features and len(loaded) == 6
    scene = features["json"]["answers"]["scene"]
    assert scene["tags"] == datasets.List(datasets.Value("string")) and scene["setting"] == datasets.Value(
        "string"
    )
    assert features["json"]["cut_error_type"] == datasets.Value("string") and isinstance(
        features["mp4"], datasets.Video
    )
    documents = loaded["json"]
    assert [d["cut_error_type"] for d in documents] == [None] * 5 + ["not_found"]
    assert [d["answers"]["scene"]["tags"] for d in documents] == [[]] * 5 + [["sky"]]
    clips = loaded.cast_column("mp4", datasets.Video(decode=False))["mp4"]
    assert [clip is None for clip in clips] == [False] * 5 + [True]


def test_the_hf_folder_loads_typed_from_its_card(nulls_first, tmp_path):
    folder = tmp_path / "hf"
    export(nulls_first, folder, ExportOptions(format="hf", cut=CutOptions()))
    windows = datasets.load_dataset(str(folder), "windows", split="train")
    card = datasets.load_dataset_builder(str(folder), "windows").info.features
    assert windows.features == card and isinstance(card["cut_path"], datasets.Video)
    assert card["answers"]["scene"]["tags"] == datasets.List(datasets.Value("string"))
    assert windows["cut_error_type"] == [None] * 5 + ["not_found"]
    files = windows.cast_column("cut_path", datasets.Video(decode=False))["cut_path"]
    assert all((folder / f["path"]).is_file() and f["bytes"] is None for f in files[:5]) and files[5] is None
    clips = datasets.load_dataset(str(folder), "clips", split="train")
    assert clips.features == datasets.load_dataset_builder(str(folder), "clips").info.features
    assert len(clips) == 6


def test_plain_parquet_carries_its_features(nulls_first, tmp_path):
    folder = tmp_path / "parquet"
    export(nulls_first, folder, ExportOptions(format="parquet", cut=CutOptions()))
    windows = datasets.load_dataset("parquet", data_files=str(folder / "windows.parquet"), split="train")
    assert isinstance(windows.features["cut_path"], datasets.Video)
