"""The models the app serves: loaded on first use, or all at start-up (ZeroGPU), and kept."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Iterable

from smolvlm_video.model.loading import LoadedModel, load_model
from smolvlm_video.options import ModelOptions


class ModelCache:
    """Loads models when first asked for and keeps the last `keep`, so switching never holds more.

    With `keep=1` (the default) a switch drops the model held before loading the next, so memory
    never doubles. `preload` loads models now, as ZeroGPU requires: placed at start-up, not per request.
    """

    def __init__(self, options: ModelOptions | None = None, keep: int = 1) -> None:
        self.options = options or ModelOptions()  # device, dtype, attention and vision for every model
        self.keep = max(1, keep)
        self._lock = threading.Lock()
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()

    def get(self, name: str) -> LoadedModel:
        """The model called `name`, loading it (and dropping the least recently used) if it is not held."""
        with self._lock:
            if name not in self._models:
                while len(self._models) >= self.keep:
                    self._drop(next(iter(self._models)))
                o = self.options
                self._models[name] = load_model(
                    name, device=o.device, dtype=o.dtype, attn_implementation=o.attention, vision=o.vision
                )
            self._models.move_to_end(name)
            return self._models[name]

    def preload(self, names: Iterable[str]) -> None:
        """Load these models now, keeping all of them."""
        names = list(dict.fromkeys(names))
        self.keep = max(self.keep, len(names))
        for name in names:
            self.get(name)

    @property
    def held(self) -> tuple[str, ...]:
        """The names of every model held now, least recently used first."""
        return tuple(self._models)

    def _drop(self, name: str) -> None:
        del self._models[name]
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
