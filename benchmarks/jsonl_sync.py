"""What durability costs: appending records with a sync timer (JsonlWriter) against an fsync per record.

    python benchmarks/jsonl_sync.py [--records 2000] [--folder DIR]

Writes `--records` real-sized caption records (about 1.5 KB each) to a file in `--folder` (default:
the current folder, so the disk under test is the one the records would go to) three ways: flushed
only (no durability, the floor), JsonlWriter (each record on the disk within 2 s, by a timer), and
an fsync after every record. Prints the time per record of each.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from smolvlm_video.batch.records import CaptionRecord, JsonlWriter, WindowCaption


def record(index: int) -> CaptionRecord:
    caption = "A person walks a dog along a beach at sunset while waves roll in. " * 8
    segment = WindowCaption(0.0, 210.0, caption, 64, [i * 3.3 for i in range(64)])
    return CaptionRecord(path=f"clips/{index}.mp4", abs_path=f"/data/clips/{index}.mp4", id=f"{index:016x}",
                         status="ok", caption=caption, windows=[segment])  # fmt: skip


def per_record(path: Path, records: list[CaptionRecord], sync: bool) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    started = time.perf_counter()
    for item in records:
        os.write(fd, (item.to_json() + "\n").encode())
        if sync:
            os.fsync(fd)
    seconds = time.perf_counter() - started
    os.close(fd)
    return seconds


def with_writer(path: Path, records: list[CaptionRecord]) -> float:
    started = time.perf_counter()
    with JsonlWriter(path) as writer:
        for item in records:
            writer.write(item)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--folder", type=Path, default=Path.cwd())
    args = parser.parse_args()
    records = [record(i) for i in range(args.records)]
    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        results = {
            "flush only (no durability)": per_record(Path(scratch, "a.jsonl"), records, sync=False),
            "JsonlWriter (sync within 2 s)": with_writer(Path(scratch, "b.jsonl"), records),
            "fsync every record": per_record(Path(scratch, "c.jsonl"), records, sync=True),
        }
    print(f"{args.records} records of {len(records[0].to_json())} bytes in {args.folder}")
    for name, seconds in results.items():
        print(f"{name:>30}: {1000 * seconds / args.records:7.3f} ms a record ({seconds:.2f} s)")


if __name__ == "__main__":
    main()
