"""The Gradio demo: image and video chat on the smolvlm_video core.

    >>> from smolvlm_video.demo import build_demo
    >>> build_demo().launch()

`app.py` at the repository root serves it on Hugging Face Spaces; `smolvlm-video demo` serves it
from the command line. Settings come from environment variables (see `DemoConfig.from_env`).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported anywhere

from .app import build_demo, launch_kwargs
from .config import DemoConfig

__all__ = ["DemoConfig", "build_demo", "launch_kwargs"]
