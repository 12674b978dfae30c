"""Caption on Ray: the local engine's own steps, spread over a cluster with Ray Data.

The clip list becomes a `ray.data` Dataset. Probing and decoding run as CPU tasks with
`prepare_clip`, the function the local engine's decode workers run; generation runs in an actor
pool where each actor loads the model once and captions batches with `caption_batch`, the local
engine's own batching. Records stream back to the caller, who writes them as the local engine's
are written: same schema, same resume, and a bad clip is an error record, never a failed job.

Requires the extra: pip install 'smolvlm-video[ray]'.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .captioning import CaptionJob, caption_batch, prepare_clip, usable_cores
from .errors import SmolVLMVideoError
from .records import CaptionRecord

DECODE_CPUS = 0.5  # logical CPUs a decoding task asks Ray for


class RayUnavailableError(SmolVLMVideoError):
    """Ray is not installed, or the cluster cannot be reached."""

    code = "ray"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the job runs."""

    address: str | None = (
        None  # a cluster to join ("ray://host:10001", "auto"); None: $RAY_ADDRESS or a local Ray
    )
    concurrency: int = 1  # generation actors (model copies)
    num_gpus_per_worker: float | None = None  # None: 1 where the cluster has GPUs, else 0 (CPU actors)


@dataclass(frozen=True)
class ModelSpec:
    """How each actor loads its copy of the model."""

    name: str
    revision: str | None = None
    device: str = "auto"
    dtype: str = "auto"


class Captioner:
    """An actor: loads the model once, then captions the batches of prepared clips it is handed."""

    def __init__(self, spec: ModelSpec, job_fields: dict[str, Any], torch_threads: int = 0) -> None:
        from .model import load_model

        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        model = load_model(spec.name, spec.revision, spec.device, spec.dtype)
        self.job = CaptionJob(model=model, **job_fields)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        clips = [pickle.loads(blob) for blob in batch["clip"]]
        return {"record": [record.to_json() for record in caption_batch(self.job, clips)]}


def prepare_row(row: dict[str, Any], job_fields: dict[str, Any]) -> dict[str, bytes]:
    """A Ray task: probe and decode one clip (one decoder thread: the tasks share the cores)."""
    clip = prepare_clip(row["abs_path"], job_fields["sampling"], threads=1)
    clip.path = row["path"]  # the record keeps the path as given
    return {"clip": pickle.dumps(clip)}


def caption_clips_ray(
    spec: ModelSpec, job_fields: dict[str, Any], paths: Sequence[str], options: RayOptions | None = None
) -> Iterator[CaptionRecord]:
    """One record per path, as the cluster finishes them (not in input order).

    `job_fields` are CaptionJob's fields but the model (prompts, sampling with its frame side set,
    generation, system, batch_size, summarize).
    """
    options = options or RayOptions()
    ray = _connect(options)
    gpus = options.num_gpus_per_worker
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    rows = [{"path": path, "abs_path": os.path.abspath(path)} for path in paths]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    # Decoding takes half a logical CPU: two single-threaded decoders share a core well, and the
    # different request keeps Ray from fusing the decoding into the actors.
    dataset = dataset.map(prepare_row, fn_kwargs={"job_fields": job_fields}, num_cpus=DECODE_CPUS)
    dataset = dataset.map_batches(
        Captioner,
        fn_constructor_kwargs={
            "spec": spec,
            "job_fields": job_fields,
            "torch_threads": 0 if gpus else max(1, usable_cores() // options.concurrency),
        },
        batch_size=job_fields.get("batch_size", 4),
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=options.concurrency),
        num_gpus=gpus,
        num_cpus=0 if gpus else 1,
    )
    for row in dataset.iter_rows():
        yield CaptionRecord.from_dict(json.loads(row["record"]))


def _connect(options: RayOptions) -> Any:
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError(
            "The Ray engine needs Ray: pip install 'smolvlm-video[ray]' (or 'ray[data]')."
        ) from error
    if ray.is_initialized():
        return ray
    address = options.address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if not address:  # a local Ray: room for the actors and at least one decoding task beside them
        kwargs.update(num_cpus=max(usable_cores(), options.concurrency + 1), include_dashboard=False)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise RayUnavailableError(
            f"Cannot start or join Ray at {address or 'a local cluster'}: {error}"
        ) from error
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the caller shows progress, one tick per record
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray
