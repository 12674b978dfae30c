"""Hugging Face Spaces entry point: serves the smolvlm-video demo (settings from SMOLVLM_* variables)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from demo import build_demo, launch_kwargs

demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
