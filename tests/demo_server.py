"""The demo served in this process on a free port, for tests that call it as a client would."""

from __future__ import annotations

import contextlib
import socket
import sys
import types
from collections.abc import Iterator

from smolvlm_video.demo import DemoConfig, build_demo, launch_kwargs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(config: DemoConfig) -> Iterator[str]:
    """The app for `config` on 127.0.0.1, as its URL, closed afterwards."""
    demo = build_demo(config)
    kwargs = launch_kwargs(config, server_name="127.0.0.1", server_port=free_port())
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    try:
        yield url
    finally:
        demo.close()


def fake_spaces(monkeypatch) -> list[int]:
    """Install a `spaces` module whose GPU decorator calls each duration function with the decorated
    function's own arguments, as ZeroGPU does; returns the list of seconds reserved, call by call."""
    reserved: list[int] = []

    def gpu(duration):
        def decorate(function):
            def run(*args):
                reserved.append(duration(*args))
                yield from function(*args)

            return run

        return decorate

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    return reserved
