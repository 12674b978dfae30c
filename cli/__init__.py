"""The `smolvlm-video` command line, installed as `smolvlm_video.cli`."""
