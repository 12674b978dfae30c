"""Hugging Face Spaces entry point: serves the smolvlm-video demo (settings from SMOLVLM_* variables)."""

import contextlib
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

with contextlib.suppress(ImportError):  # on ZeroGPU, spaces patches torch before anything touches CUDA
    import spaces  # noqa: F401

from demo import build_demo, launch_kwargs

demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the app says at start whether MCP is on
    demo.launch(**launch_kwargs())
