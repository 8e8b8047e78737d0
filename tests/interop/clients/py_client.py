#!/usr/bin/env python3
"""Interop client on the Python SDK (mcp 2.3.0) for tests/interop/run.

    py_client.py URL --token T [--mode legacy|auto] [--transport streamable-http|sse]
                 [--targets ever,everse] [--basic]

Connects to reflow (URL = .../mcp for streamable-http, .../sse for legacy SSE), declares the
sampling capability (answers every sampling/createMessage with CANNED), then for each target
prefix P in --targets:
  - lists tools (retrying up to ~5 s until P__echo, and unless --basic, P__trigger-sampling-request,
    are listed: server-everything registers its sampling tool only after initialization)
  - calls P__echo {message: "hi-from-py-P"}
  - unless --basic: calls P__trigger-long-running-operation {duration: 1, steps: 3} with a progress
    callback, and P__trigger-sampling-request {prompt: ..., maxTokens: 20}
Prints ONE JSON object on stdout (the run script judges it); never raises.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import traceback
from typing import Any

from mcp import Client, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

CANNED = "canned-sampling-answer-from-py"


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"client": f"python-mcp mode={args.mode} transport={args.transport}",
                           "tools": [], "echo": {}, "progress": {}, "long_result": {},
                           "sampling_requests": [], "sampling_result": {}, "errors": []}
    headers = {"Authorization": f"Bearer {args.token}"}

    async def on_sampling(_ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        msgs = [m.content.text for m in params.messages if isinstance(m.content, types.TextContent)]
        out["sampling_requests"].append(msgs)
        return types.CreateMessageResult(role="assistant", model="interop-canned-model",
                                         content=types.TextContent(type="text", text=CANNED))

    if args.transport == "sse":
        transport = sse_client(args.url, headers=headers, timeout=10)
    else:
        transport = streamable_http_client(args.url, http_client=create_mcp_http_client(headers=headers))
    targets = [t for t in args.targets.split(",") if t]

    async with Client(transport, mode=args.mode, sampling_callback=on_sampling,
                      read_timeout_seconds=20, cache=None) as client:
        out["protocol_version"] = client.protocol_version
        wanted = {f"{t}__echo" for t in targets}
        if not args.basic:
            wanted |= {f"{t}__trigger-sampling-request" for t in targets}
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
            if wanted <= set(names):
                break
            await asyncio.sleep(0.5)
        out["tools"] = sorted(names)

        for t in targets:
            try:
                r = await client.call_tool(f"{t}__echo", {"message": f"hi-from-py-{t}"})
                out["echo"][t] = {"text": text_of(r), "is_error": bool(r.is_error)}
            except Exception as e:  # noqa: BLE001
                out["echo"][t] = {"exception": f"{type(e).__name__}: {e}"}
            if args.basic:
                continue
            progress: list[list[Any]] = []
            out["progress"][t] = progress

            async def on_progress(p: float, total: float | None, msg: str | None, _l=progress) -> None:
                _l.append([p, total])

            try:
                t0 = time.monotonic()
                r = await client.call_tool(f"{t}__trigger-long-running-operation", {"duration": 1, "steps": 3},
                                           progress_callback=on_progress)
                out["long_result"][t] = {"text": text_of(r), "is_error": bool(r.is_error),
                                         "seconds": round(time.monotonic() - t0, 2)}
            except Exception as e:  # noqa: BLE001
                out["long_result"][t] = {"exception": f"{type(e).__name__}: {e}"}
            try:
                r = await client.call_tool(f"{t}__trigger-sampling-request",
                                           {"prompt": f"say hi for {t}", "maxTokens": 20})
                out["sampling_result"][t] = {"text": text_of(r), "is_error": bool(r.is_error)}
            except Exception as e:  # noqa: BLE001
                out["sampling_result"][t] = {"exception": f"{type(e).__name__}: {e}"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--token", required=True)
    ap.add_argument("--mode", default="legacy", choices=["legacy", "auto"])
    ap.add_argument("--transport", default="streamable-http", choices=["streamable-http", "sse"])
    ap.add_argument("--targets", default="ever,everse")
    ap.add_argument("--basic", action="store_true", help="list + echo only")
    args = ap.parse_args()
    try:
        out = asyncio.run(asyncio.wait_for(run(args), timeout=60))
    except BaseException as e:  # noqa: BLE001 - report everything, incl. ExceptionGroup/timeouts
        out = {"client": f"python-mcp mode={args.mode} transport={args.transport}",
               "fatal": f"{type(e).__name__}: {e}",
               "trace": traceback.format_exc(limit=6)[-1500:]}
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
