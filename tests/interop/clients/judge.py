#!/usr/bin/env python3
"""Judge one client's JSON summary (py_client.py / ts_v1_client.mjs output) for tests/interop/run.

    judge.py LABEL SUMMARY_FILE --targets ever,everse --canned TEXT --echo-prefix hi-from-py [--basic]

Prints one line per check: `PASS LABEL what` or `FAIL LABEL what: expected ..., got ...`.
Exit status is always 0; the run script counts the lines.
"""

from __future__ import annotations

import argparse
import json


def short(v: object, n: int = 300) -> str:
    s = v if isinstance(v, str) else json.dumps(v)
    return s if len(s) <= n else s[:n] + "..."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("label")
    ap.add_argument("summary")
    ap.add_argument("--targets", default="ever,everse")
    ap.add_argument("--canned", required=True)
    ap.add_argument("--echo-prefix", required=True)
    ap.add_argument("--basic", action="store_true")
    a = ap.parse_args()
    targets = [t for t in a.targets.split(",") if t]

    checks: list[tuple[str, str | None]] = []  # (name, failure reason or None)
    names = ["tools listed"] + [f"echo {t}" for t in targets]
    if not a.basic:
        names += [f"progress {t}" for t in targets] + [f"sampling {t}" for t in targets]

    raw = open(a.summary, encoding="utf-8", errors="replace").read().strip()
    try:
        s = json.loads(raw.splitlines()[-1]) if raw else None
    except (ValueError, IndexError):
        s = None
    if not isinstance(s, dict):
        for n in names:
            checks.append((n, f"client printed no JSON summary; output was: {short(raw) or '(nothing)'}"))
    elif "fatal" in s:
        for n in names:
            checks.append((n, f"client failed before finishing: {s['fatal']} | {short(s.get('trace', ''), 600)}"))
    else:
        tools = s.get("tools", [])
        want = [f"{t}__echo" for t in targets]
        if not a.basic:
            want += [f"{t}__{n}" for t in targets for n in ("trigger-long-running-operation",
                                                              "trigger-sampling-request")]
        missing = [w for w in want if w not in tools]
        # server-everything's own names must not leak unprefixed (other targets, e.g. the
        # conformance fixture with prefix '', may legitimately list unprefixed names)
        bare = {"echo", "trigger-long-running-operation", "trigger-sampling-request", "get-sum"}
        unprefixed = [n for n in tools if n in bare]
        if missing or unprefixed:
            checks.append(("tools listed", f"expected {want} (all prefixed), missing {missing}, unprefixed "
                                           f"{unprefixed}; got {len(tools)} tools after "
                                           f"{s.get('list_attempts')} list(s): {short(tools, 800)}"))
        else:
            checks.append(("tools listed", None))
        for t in targets:
            e = s.get("echo", {}).get(t, {})
            exp = f"Echo: {a.echo_prefix}-{t}"
            ok = e.get("text") == exp and not e.get("is_error")
            checks.append((f"echo {t}", None if ok else f"expected text {exp!r}, got {short(e)}"))
        if not a.basic:
            for t in targets:
                p = s.get("progress", {}).get(t, [])
                r = s.get("long_result", {}).get(t, {})
                text_ok = "Long running operation completed" in str(r.get("text", "")) and not r.get("is_error")
                if p and text_ok:
                    checks.append((f"progress {t}", None))
                else:
                    checks.append((f"progress {t}", f"expected >=1 progress notification (server sends 3: 1/3..3/3) "
                                                    f"and a 'Long running operation completed' result; got progress "
                                                    f"{p}, result {short(r)}"))
            for t in targets:
                r = s.get("sampling_result", {}).get(t, {})
                reqs = [m for m in s.get("sampling_requests", []) if f"say hi for {t}" in json.dumps(m)]
                ok = a.canned in str(r.get("text", "")) and not r.get("is_error") and reqs
                checks.append((f"sampling {t}", None if ok else
                               f"expected a sampling/createMessage mentioning 'say hi for {t}' at the client and "
                               f"the canned answer {a.canned!r} in the tool result; client saw "
                               f"{len(reqs)} matching request(s) (all: {short(s.get('sampling_requests', []))}), "
                               f"tool result {short(r, 500)}"))
    for n, why in checks:
        print(f"PASS {a.label} {n}" if why is None else f"FAIL {a.label} {n}: {why}")


if __name__ == "__main__":
    main()
