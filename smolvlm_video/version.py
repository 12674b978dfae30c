"""The version of smolvlm-video: in every record, and the package's version on install."""

__version__ = "0.1.0"
