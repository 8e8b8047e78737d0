#!/usr/bin/env python3
"""One cell of the era matrix on the Python SDK (mcp 2.3.0), for tests/interop/run.

    era_py.py URL --token T --mode auto|2026-07-28|legacy --tool NAME [--args JSON]
              [--elicit JSON] [--expect-tool NAME ...]

Connects to reflow's /mcp in the given mode, lists every tool page (retrying ~5 s until each
--expect-tool is listed), calls --tool with --args. With --elicit it declares the elicitation
capability and answers every elicitation/create with `accept` + that content (recording the
message), so a tool that elicits completes across the era bridge.
Prints ONE JSON object on stdout: {protocol_version, tools, call: {text, is_error} | {exception},
elicitations: [...]}; never raises.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from typing import Any

from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"client": f"python-mcp mode={args.mode}", "tools": [], "call": {},
                           "elicitations": []}
    headers = {"Authorization": f"Bearer {args.token}"}
    content = json.loads(args.elicit) if args.elicit else None

    async def on_elicit(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        out["elicitations"].append(getattr(params, "message", ""))
        return types.ElicitResult(action="accept", content=content)

    transport = streamable_http_client(args.url, http_client=create_mcp_http_client(headers=headers))
    kwargs: dict[str, Any] = {"mode": args.mode, "read_timeout_seconds": 20, "cache": None}
    if content is not None:
        kwargs["elicitation_callback"] = on_elicit
    async with Client(transport, **kwargs) as client:
        out["protocol_version"] = client.protocol_version
        names: list[str] = []
        for attempt in range(11):
            names = []
            cursor = None
            while True:
                res = await client.list_tools(cursor=cursor)
                names += [t.name for t in res.tools]
                cursor = res.next_cursor
                if not cursor:
                    break
            out["list_attempts"] = attempt + 1
            if set(args.expect_tool) <= set(names):
                break
            await asyncio.sleep(0.5)
        out["tools"] = sorted(names)
        try:
            r = await client.call_tool(args.tool, json.loads(args.args))
            out["call"] = {"text": text_of(r), "is_error": bool(r.is_error)}
        except Exception as e:  # noqa: BLE001
            out["call"] = {"exception": f"{type(e).__name__}: {e}"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--token", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--args", default="{}")
    ap.add_argument("--elicit", default=None)
    ap.add_argument("--expect-tool", action="append", default=[])
    args = ap.parse_args()
    try:
        out = asyncio.run(asyncio.wait_for(run(args), timeout=60))
    except BaseException as e:  # noqa: BLE001 - report everything, incl. ExceptionGroup/timeouts
        out = {"client": f"python-mcp mode={args.mode}", "fatal": f"{type(e).__name__}: {e}",
               "trace": traceback.format_exc(limit=6)[-1500:]}
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
