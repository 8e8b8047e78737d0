#!/usr/bin/env python3
"""Policy check on the Python SDK (mcp 2.3.0) for tests/interop/run.

    py_policy_client.py URL --token T

As a `dev` user whose policies allow target `ever` but deny its `echo` tool (and grant nothing
on `everse`): lists tools (retrying ~5 s while policies propagate), calls `ever__get-sum`
(allowed) and `ever__echo` (denied). Prints ONE JSON object; never raises.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import traceback

from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def run(url: str, token: str) -> dict:
    out: dict = {"tools": [], "allowed_call": None, "denied_call": None}
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with Client(streamable_http_client(url, http_client=http), mode="legacy") as c:
        deadline = time.monotonic() + 5
        while True:
            names = [t.name for t in (await c.list_tools()).tools]
            if ("ever__get-sum" in names and "ever__echo" not in names) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        out["tools"] = names
        r = await c.call_tool("ever__get-sum", {"a": 2, "b": 3})
        out["allowed_call"] = {
            "is_error": bool(getattr(r, "is_error", False)),
            "text": "\n".join(x.text for x in r.content if isinstance(x, types.TextContent)),
        }
        try:
            d = await c.call_tool("ever__echo", {"message": "should not pass"})
            out["denied_call"] = {"raised": False, "is_error": bool(getattr(d, "is_error", False))}
        except Exception as e:  # the SDK raises on a JSON-RPC error
            out["denied_call"] = {"raised": True, "error": str(e)}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--token", required=True)
    a = p.parse_args()
    try:
        result = asyncio.run(run(a.url, a.token))
    except Exception:
        result = {"crash": traceback.format_exc()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
