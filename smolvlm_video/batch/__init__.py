"""The batch engine: many clips captioned into records, surviving bad files and interruptions.

- `clips`: the video files under some folders.
- `prefetch`: every window of every clip, probed, planned and decoded a bounded way ahead.
- `answering`: chats answered in batches, a failure narrowed down to the chat that fails alone.
- `captioning`: a job's prompts over a clip's windows, into one record per clip.
- `records`: the record, and the JSONL file that holds them durably.
- `runs`: a run over some paths: resume, shards, subtitles, and the local or Ray engine (`ray_engine`).
- `subtitles`: SRT and WebVTT from a record.
"""
