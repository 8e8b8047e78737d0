#!/usr/bin/env python3
"""Interop client on the Python SDK (mcp 2.3.0) for a server-memory target behind reflow.

    memory_client.py URL --token T --target P --entity NAME [--mode legacy|auto]

Lists tools, calls P__create_entities with one entity NAME, then P__read_graph (with --target ''
the bare names: the server itself, e.g. behind `reflow bridge`), and prints ONE
JSON object: {"tools": [...], "created": text, "graph": text} (or {"fatal": ...}); never raises.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import traceback
from typing import Any

from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def run(a: argparse.Namespace) -> dict[str, Any]:
    tool = (lambda n: f"{a.target}__{n}") if a.target else (lambda n: n)
    out: dict[str, Any] = {"client": f"python-mcp mode={a.mode}"}
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {a.token}"})
    async with Client(streamable_http_client(a.url, http_client=http), mode=a.mode,
                      read_timeout_seconds=20, cache=None) as client:
        out["protocol_version"] = client.protocol_version
        out["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
        r = await client.call_tool(tool("create_entities"), {"entities": [
            {"name": a.entity, "entityType": "test", "observations": [f"written by {a.mode} python"]}]})
        out["created"] = text_of(r)
        r = await client.call_tool(tool("read_graph"), {})
        out["graph"] = text_of(r)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--token", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--entity", required=True)
    ap.add_argument("--mode", default="legacy", choices=["legacy", "auto"])
    a = ap.parse_args()
    try:
        out = asyncio.run(asyncio.wait_for(run(a), timeout=60))
    except BaseException as e:  # noqa: BLE001 - report everything, incl. ExceptionGroup/timeouts
        out = {"fatal": f"{type(e).__name__}: {e}", "trace": traceback.format_exc(limit=6)[-1500:]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
