"""Encode each image and video once: the vision encoder's features, shared in a batch and kept across calls.

Most of a video's time before the first token goes to the vision encoder. So a medium is known by its
content (`media.medium_key`: a hash of the sampled frames' or the image's pixels), and its features are made
once per batch however many chats carry it (a prompt file's prompts for one window), then kept in the
model's `FeatureCache` for later calls: a follow-up turn, the same upload again under another name.
The cache is bounded in bytes and lets the least recently used entries go. The features are the
encoder's own output for those pixels, so an answer never depends on whether they came from the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .registry import FEATURE_CACHE_MB

if TYPE_CHECKING:
    from .inputs import ChatBatch
    from .loading import LoadedModel

logger = logging.getLogger(__name__)

MB = 1_000_000


@dataclass
class CacheStats:
    """What a cache has done since the model loaded: lookups, hits, media encoded, and the seconds it took."""

    hits: int = 0
    misses: int = 0
    encoded: int = 0  # media that went through the vision encoder (a batch's shared medium counts once)
    encoder_calls: int = 0
    encode_seconds: float = 0.0
    evicted: int = 0


class FeatureCache:
    """A medium's vision features by `medium_key`, up to `max_bytes` in all, least recently used out first.

    Entries stay in the model's dtype, on its device. `max_bytes=0` keeps nothing across calls (a batch
    still encodes a shared medium once). Safe to use from several threads.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, max_bytes)
        self.stats = CacheStats()
        self._entries: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def for_device(cls, device: torch.device, mb: int | None = None) -> FeatureCache:
        """A cache of `mb` MB, or of the device type's default (`registry.FEATURE_CACHE_MB`)."""
        default = FEATURE_CACHE_MB.get(device.type, FEATURE_CACHE_MB["cpu"])
        return cls((default if mb is None else mb) * MB)

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> torch.Tensor | None:
        """The features kept for `key`, now the most recently used; None (a miss) if there are none."""
        with self._lock:
            features = self._entries.get(key)
            if features is None:
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return features

    def put(self, key: str, features: torch.Tensor) -> None:
        """Keep `features`, letting the least recently used entries go until they fit under the bound."""
        size = features.nbytes
        if size > self.max_bytes:
            if self.max_bytes:
                logger.debug("Features of %d bytes exceed the cache's %d: not kept.", size, self.max_bytes)
            return
        with self._lock:
            if key in self._entries:
                return
            while self._bytes + size > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes
                self.stats.evicted += 1
            self._entries[key] = features
            self._bytes += size

    def count(self, media: int, seconds: float) -> None:
        """One encoder call, of `media` media, that took `seconds`."""
        with self._lock:
            self.stats.encoder_calls += 1
            self.stats.encoded += media
            self.stats.encode_seconds += seconds

    def discard(self, keys: Iterable[str]) -> None:
        """Let these entries go, if held: a batch job's windows, once every prompt about them is answered."""
        with self._lock:
            for key in keys:
                dropped = self._entries.pop(key, None)
                if dropped is not None:
                    self._bytes -= dropped.nbytes

    def clear(self) -> None:
        """Let every entry go (after running out of memory, for one)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def media_features(
    model: LoadedModel, batch: ChatBatch, held: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Every medium of `batch` as vision features (one row per image token): `held`, then the rest encoded.

    Each medium not held is encoded once, whatever the number of chats that carry it, and kept in the
    model's cache. `model.vision` says how the encoder takes them: "batched", all of them in one call,
    the shape a GPU runs best; "per-chat", the new media of one chat per call, the CPU's choice (there a
    bigger vision call is slower per frame: 256M shape, bfloat16, 0.36 s a frame for 32 frames against
    0.29 s for 8). Call under torch.inference_mode().
    """
    features = dict(held)
    new = [key for key in dict.fromkeys(k for row in batch.media for k in row) if key not in features]
    if model.vision == "batched":
        groups = [new]
    else:  # per-chat: a medium is encoded with the first chat that carries it
        groups, waiting = [], set(new)
        for row in batch.media:
            groups.append([key for key in dict.fromkeys(row) if key in waiting])
            waiting -= set(groups[-1])
    for group in filter(None, groups):
        features |= _encode(model, group, batch)
    return features


def _encode(model: LoadedModel, keys: list[str], batch: ChatBatch) -> dict[str, torch.Tensor]:
    """One vision-encoder call for these media; each one's features, also kept in the model's cache."""
    cache = model.features
    started = time.perf_counter()
    pixels = [batch.pixels[key] for key in keys]
    values = torch.cat([p.values for p in pixels], dim=1).to(model.dtype)
    masks = torch.cat([p.mask for p in pixels], dim=1)
    rows = encode_frames(model, values, masks, model.vision_chunk)
    sizes = [p.values.shape[1] * model.tokens_per_frame for p in pixels]
    parts = rows.split(sizes)  # a copy of each where there are several: no view holds the others' rows
    found = {key: part.clone() if len(parts) > 1 else part for key, part in zip(keys, parts, strict=True)}
    _synchronize(model.device)  # the encoder's time, not just its launch
    cache.count(len(keys), time.perf_counter() - started)
    for key, f in found.items():
        cache.put(key, f)
    return found


def encode_frames(model: LoadedModel, values: torch.Tensor, masks: torch.Tensor, chunk: int) -> torch.Tensor:
    """The encoder's rows (one per image token) for frames `values` (1, frames, 3, side, side), `chunk`
    frames a call: each frame is encoded on its own, so the rows are the same whatever the chunk, and
    the activations held at once are a chunk's (`loading.vision_chunk`)."""
    parts = []
    for start in range(0, values.shape[1], max(1, chunk)):
        window = slice(start, start + max(1, chunk))
        output = model.model.get_image_features(
            pixel_values=values[:, window], pixel_attention_mask=masks[:, window]
        )
        rows = getattr(output, "pooler_output", output)  # an output object, or the tensor itself
        if isinstance(rows, (list, tuple)):
            rows = torch.cat(list(rows))
        parts.append(rows.reshape(-1, rows.shape[-1]))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA and MPS run it asynchronously); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
