"""One model at a time, loaded on first use and kept until another is asked for."""

from __future__ import annotations

import gc
import threading

from smolvlm_video.model import LoadedModel, load_model


class ModelCache:
    """Loads models lazily and holds only the last one, so switching models never doubles memory."""

    def __init__(self, device: str = "auto", dtype: str = "auto") -> None:
        self.device = device
        self.dtype = dtype
        self._lock = threading.Lock()
        self._name: str | None = None
        self._model: LoadedModel | None = None

    def get(self, name: str) -> LoadedModel:
        """The model called `name`, loading it (and dropping the previous one) if it is not the one held."""
        with self._lock:
            if self._model is None or self._name != name:
                self._drop()
                self._model = load_model(name, device=self.device, dtype=self.dtype)
                self._name = name
            return self._model

    @property
    def loaded(self) -> str | None:
        """The name of the model held now, if any."""
        return self._name

    def _drop(self) -> None:
        self._model, self._name = None, None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
