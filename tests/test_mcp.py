"""The demo as an MCP server, called through the `mcp` client library as an agent would."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from pathlib import Path

import httpx
import pytest

pytest.importorskip("gradio")
pytest.importorskip("mcp")
from demo_server import served
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from smolvlm_video.demo import DemoConfig, launch_kwargs

pytestmark = [pytest.mark.slow]
TESTCARD = Path(__file__).resolve().parent.parent / "examples" / "images" / "testcard.png"
TOOLS = {"chat", "analyze", "describe_video", "ask"}


@pytest.fixture(scope="module")
def config(tiny_checkpoint: Path) -> DemoConfig:
    model = str(tiny_checkpoint)
    return DemoConfig(model=model, models=(model,), device="cpu", max_new_tokens=24, mcp_server=True)


async def tools_and_answers(url: str) -> tuple[list, object, object]:
    """The tools the server lists, and its replies to `ask` about the test card: sent as a data: URI, and
    as the URL of the same file uploaded to the app."""
    image = "data:image/png;base64," + base64.b64encode(TESTCARD.read_bytes()).decode("ascii")
    with TESTCARD.open("rb") as file:
        (uploaded,) = httpx.post(f"{url}gradio_api/upload", files={"files": file}).json()
    arguments = {"question": "What is shown?", "max_new_tokens": 8}
    async with (
        streamable_http_client(f"{url}gradio_api/mcp/") as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = (await session.list_tools()).tools
        by_uri = await session.call_tool("ask", {"media": image, **arguments})
        by_url = await session.call_tool("ask", {"media": f"{url}gradio_api/file={uploaded}", **arguments})
        return tools, by_uri, by_url


def test_the_tools_are_listed_described_and_answer(config):
    with served(config) as url:
        tools, reply, refused = asyncio.run(tools_and_answers(url))
    by_name = {tool.name: tool for tool in tools}
    assert by_name.keys() >= TOOLS and "live" not in by_name  # the camera is a page, not a tool
    for name in TOOLS:
        properties = by_name[name].inputSchema["properties"]
        described = {p for p, schema in properties.items() if schema.get("description")}
        assert described == properties.keys(), f"{name}: undescribed {properties.keys() - described}"
    ask = by_name["ask"]
    assert ask.description.startswith("Ask one question about one image or video")
    assert "data: URI" in ask.inputSchema["properties"]["media"]["description"]
    for name in TOOLS:  # which form each client sends, as docs/demo.md says: Gradio's own line alone did not
        assert "data: URI, which every client can" in by_name[name].description, name
    assert not reply.isError
    texts = [part.text for part in reply.content if part.type == "text"]
    assert texts and "An image, " in " ".join(texts)  # what the model saw: the test card, decoded
    assert refused.isError  # Gradio fetches no URL of a local address, not even its own (docs/demo.md)


def test_the_log_says_whether_mcp_is_on(config, caplog):
    with caplog.at_level(logging.INFO, logger="smolvlm_video.demo"):
        assert launch_kwargs(config)["mcp_server"] is True
        assert launch_kwargs(dataclasses.replace(config, mcp_server=False))["mcp_server"] is False
    assert [r.getMessage().split(":")[0].split(" (")[0] for r in caplog.records] == [
        "MCP server on",
        "MCP server off",
    ]
