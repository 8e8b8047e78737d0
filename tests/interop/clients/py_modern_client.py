#!/usr/bin/env python3
"""A Python SDK (mcp 2.3.0) client of either era against reflow, for tests/it/modern_sdk.rs.

    py_modern_client.py URL --token T --mode 2026-07-28|auto|legacy --call NAME
                        [--elicit NAME --answer TEXT]

Lists every tool (all pages), calls NAME with {"message": "hi"}, and, with --elicit, calls that
tool declaring elicitation and answering every elicitation with {"answer": TEXT} (on the
2026-07-28 wire the SDK drives the input_required retry itself). Prints ONE JSON object on
stdout; never raises.
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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": args.mode, "tools": [], "call": None, "elicit": None,
                           "elicitations": [], "errors": []}
    headers = {"Authorization": f"Bearer {args.token}"}

    async def on_elicit(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        out["elicitations"].append(params.message)
        return types.ElicitResult(action="accept", content={"answer": args.answer})

    transport = streamable_http_client(args.url, http_client=create_mcp_http_client(headers=headers))
    kwargs: dict[str, Any] = {"mode": args.mode, "read_timeout_seconds": 20}
    if args.elicit:
        kwargs["elicitation_callback"] = on_elicit
    async with Client(transport, **kwargs) as client:
        out["protocol_version"] = client.protocol_version
        names: list[str] = []
        cursor = None
        while True:
            res = await client.list_tools(cursor=cursor)
            names += [t.name for t in res.tools]
            cursor = res.next_cursor
            if not cursor:
                break
        out["tools"] = sorted(names)
        called = await client.call_tool(args.call, {"message": "hi"})
        out["call"] = {"text": text_of(called), "is_error": bool(called.is_error)}
        if args.elicit:
            asked = await client.call_tool(args.elicit, {"topic": "life"})
            out["elicit"] = {"text": text_of(asked), "is_error": bool(asked.is_error)}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--token", required=True)
    p.add_argument("--mode", default="auto")
    p.add_argument("--call", required=True)
    p.add_argument("--elicit")
    p.add_argument("--answer", default="")
    args = p.parse_args()
    try:
        out = asyncio.run(asyncio.wait_for(run(args), 60))
    except BaseException as e:  # noqa: BLE001 - reported, never raised
        out = {"mode": args.mode, "errors": [f"{type(e).__name__}: {e}",
                                             traceback.format_exc()[-2000:]]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
