#!/usr/bin/env python3
"""The load and the checks of scripts/soak (see that script's header for what it runs).

Python's standard library only (http.client, threads, sqlite3, subprocess): it runs on any
python3 >= 3.8 with nothing installed. scripts/soak starts `reflow serve` and hands this
driver its URL, PID and data directory; the driver starts the two upstreams itself (it
restarts one of them), sets reflow up through its API, runs the load, then checks:

  1. no unexpected error: every answer is what that request must get (check_* below). The
     expected errors are counted by kind: calls of an unknown tool (a JSON-RPC error), calls
     to up2 and lists without up2 while up2 restarts (from its kill until the first successful
     call after it listens again, and at most RECOVERY_LIMIT s after it listens), and a
     connection reflow closed right after a 401 (retried once on a new connection);
  2. audit rows = requests: every POST and DELETE to /mcp carries a unique W3C trace id (our
     `traceparent`); each one that got an HTTP answer other than 401 must have exactly one
     audit row with that trace id (none missing, none twice, none foreign), and the counts
     per method must be equal; the 401s must be counted by the "(unauthenticated)" rows
     (written aggregated, once a second) when this reflow has them; /metrics must say
     reflow_audit_rows_dropped_total 0. DELETE /mcp carries a trace id and is counted too;
  3. RSS flat: after the warm-up (max(60 s, 20 % of the run)), the largest VmRSS sampled is
     at most 110 % of the VmRSS at the end of the warm-up. The warm-up is at least 60 s because
     bounded caches fill first: SQLite keeps up to 2 MiB of pages per pooled connection
     (database.max_connections, 10: ~20 MiB) and the audit table grows by ~0.3 MB/s here, so
     a debug build's RSS climbs ~25 MiB over the first ~90 s and is flat after (with
     max_connections 2: ~7 MiB).

Prints a summary and a last line `SOAK_JSON {...}`; exit status 0 only when all three hold.
"""

import argparse
import http.client
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
ADMIN_EMAIL = "admin@soak.example"
USER_EMAIL = "user@soak.example"
PASSWORD_ADMIN = "soak-admin-password"
PASSWORD_USER = "soak-user-password"
UP1, UP2 = "up1", "up2"  # up2 is the one that restarts
ACCEPT = "application/json, text/event-stream"
REQUEST_TIMEOUT = 30.0  # seconds: an answer slower than this is a hang (unexpected)
CLI_PROPAGATION_LIMIT = 3.0  # seconds for a CLI write (token create/revoke) to reach the server
RECOVERY_LIMIT = 20.0  # seconds after up2 listens again by which its calls must succeed again
MAX_SAMPLES = 25  # unexpected errors printed in full
UNAUTHENTICATED = "(unauthenticated)"  # the method of the audit rows that count 401s
AUDITS_401 = False  # whether this reflow writes those rows (found in its binary at start)
DISCOVER = True  # send 2026 server/discover requests (--no-discover leaves them out)


def now():
    return time.monotonic()


def log(text):
    """One line on stderr in one write, so the threads' lines do not interleave."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# ------------------------------------------------------------------------------ bookkeeping


class Ledger:
    """Every MCP request sent, whether it must leave an audit row, and every error."""

    def __init__(self):
        self.lock = threading.Lock()
        self.run_id = random.getrandbits(63) | (1 << 62)
        self.next_seq = 0
        self.expect_row = bytearray()  # by sequence number: 1 = an audit row is due
        self.sent = Counter()  # by method, all POSTs to /mcp
        self.rows_due = Counter()  # by method, those that must have an audit row
        self.kinds = Counter()  # by request kind (legacy/modern, what), all outcomes
        self.expected = Counter()  # expected errors by kind
        self.unexpected = Counter()  # unexpected errors by kind
        self.samples = []  # the first MAX_SAMPLES unexpected errors, in full
        self.other = Counter()  # DELETEs, 401 checks, admin operations, ...
        self.info = Counter()  # informational counts
        self.maxima = defaultdict(float)

    def seq(self):
        with self.lock:
            n = self.next_seq
            self.next_seq += 1
            self.expect_row.append(0)
            return n

    def traceparent(self, n):
        return "00-%016x%016x-%016x-01" % (self.run_id, n, random.getrandbits(63) | 1)

    def answered(self, n, method, audited):
        with self.lock:
            self.sent[method] += 1
            if audited:
                self.expect_row[n] = 1
                self.rows_due[method] += 1

    def kind(self, k):
        with self.lock:
            self.kinds[k] += 1

    def expect(self, k):
        with self.lock:
            self.expected[k] += 1

    def fail(self, k, detail):
        with self.lock:
            self.unexpected[k] += 1
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append({"t": round(now() - T0, 2), "kind": k, "detail": detail[:600]})
            total = sum(self.unexpected.values())
        if total <= 50:
            log("soak: UNEXPECTED %s: %s" % (k, detail[:300]))
        elif total == 51:
            log("soak: (further unexpected errors are counted, not printed)")

    def count(self, k, n=1):
        with self.lock:
            self.other[k] += n

    def note(self, k, n=1):
        with self.lock:
            self.info[k] += n

    def peak(self, k, v):
        with self.lock:
            self.maxima[k] = max(self.maxima[k], v)


T0 = now()
L = Ledger()
STOP = threading.Event()


# ------------------------------------------------------------------------------ HTTP


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.msg = None  # the JSON-RPC message, when there is one
        ctype = headers.get("content-type", "")
        try:
            if ctype.startswith("text/event-stream"):
                # The last `data:` line that is a JSON-RPC response (not a priming event).
                for line in body.decode().splitlines():
                    if line.startswith("data:"):
                        data = line[5:].strip()
                        if data:
                            m = json.loads(data)
                            if "result" in m or "error" in m:
                                self.msg = m
            elif body:
                self.msg = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            self.msg = None

    def text(self):
        return "HTTP %d %s" % (self.status, self.body[:300].decode("utf-8", "replace"))


class Client:
    """One keep-alive connection to reflow (one per worker: like a real client)."""

    def __init__(self, base):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None
        self.used = 0  # requests answered on the current connection
        self.last = None  # (status, monotonic time) of its last answer
        self.opened = None  # monotonic time the current connection was opened
        self.local = None  # its local address: to find it in reflow's debug log

    def state(self):
        """For error reports: how the connection that failed had been used."""
        if not self.used:
            return "on a new connection"
        return "on a connection (%s, opened %.3f s before) with %d answers, the last HTTP %d %.3f s before" % (
            self.local, now() - self.opened, self.used, self.last[0], now() - self.last[1])

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.used, self.last, self.opened, self.local = 0, None, None, None

    def request(self, method, path, body=None, headers=None):
        """Returns a Reply, or raises OSError / http.client.HTTPException (connection dropped, timeout)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=h)
            if self.opened is None:
                self.opened = now()
                self.local = "%s:%d" % self.conn.sock.getsockname()[:2]
            r = self.conn.getresponse()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            self.used += 1
            self.last = (r.status, now())
            if r.will_close:
                self.close()
            return Reply(r.status, hdrs, raw)
        except BaseException as e:
            e.soak_state = self.state()
            e.soak_after_401 = self.last is not None and self.last[0] == 401
            self.close()
            raise


def api(base, method, path, token=None, body=None, want=(200,)):
    """One admin-API request on a fresh connection. Returns (status, parsed JSON or None)."""
    c = Client(base)
    h = {"Accept": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    try:
        r = c.request(method, path, body, h)
    finally:
        c.close()
    parsed = None
    if r.body:
        try:
            parsed = json.loads(r.body)
        except ValueError:
            parsed = r.body.decode("utf-8", "replace")
    if r.status not in want:
        raise RuntimeError("%s %s: HTTP %d (wanted %s): %s" % (method, path, r.status, want, r.body[:300]))
    return r.status, parsed


# ------------------------------------------------------------------------------ MCP requests


def meta():
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "reflow-soak", "version": "0"},
    }


def mcp_post(client, token, message, era, session=None, kind=None, retried=False):
    """POST one message to /mcp. Returns (reply or None, error text or None, sent_at).

    Counts the request for the audit comparison: a row is due when reflow answered and the
    answer is not 401 (a refused credential leaves no row: there is no caller to record)."""
    n = L.seq()
    h = {"Accept": ACCEPT, "Authorization": "Bearer " + token, "traceparent": L.traceparent(n)}
    method = message.get("method", "")
    if era == "legacy":
        h["MCP-Protocol-Version"] = LEGACY
        if session:
            h["Mcp-Session-Id"] = session
    else:
        h["MCP-Protocol-Version"] = MODERN
        h["Mcp-Method"] = method
        name = message.get("params", {}).get("name")
        if name is not None:
            h["Mcp-Name"] = name
    sent = now()
    if kind:
        L.kind(kind)
    try:
        r = client.request("POST", "/mcp", message, h)
    except (OSError, http.client.HTTPException) as e:
        if getattr(e, "soak_after_401", False) and not retried:
            # reflow answered 401 before it read the request body (http.client sends headers
            # and body in two writes), so hyper could not drain the body and closed the
            # connection without `Connection: close`. A client reconnects: so do we, once.
            L.answered(n, method, False)
            with L.lock:
                NO_ANSWER.add(n)
            L.expect("http:connection_closed_after_401")
            return mcp_post(client, token, message, era, session, None, retried=True)
        # No answer: we cannot know whether reflow recorded it; the request is unexpected
        # anyway, and the audit comparison reports it as "unknown" rather than missing.
        L.answered(n, method, False)
        with L.lock:
            L.info["no_answer_requests"] += 1
            NO_ANSWER.add(n)
        took = now() - sent
        return None, "%s after %.3f s %s: %r" % (
            type(e).__name__, took, getattr(e, "soak_state", "?"), e), sent
    L.answered(n, method, r.status != 401)
    if r.status == 401:
        L.count("mcp_401")
    L.peak("max_request_s", now() - sent)
    return r, None, sent


NO_ANSWER = set()


def mcp_delete(client, token, session):
    """DELETE /mcp for `session`; counted for the audit comparison like a POST (the row's
    method is "DELETE /mcp"). Raises what the connection raises."""
    n = L.seq()
    h = {"Authorization": "Bearer " + token, "Mcp-Session-Id": session,
         "MCP-Protocol-Version": LEGACY, "traceparent": L.traceparent(n)}
    try:
        r = client.request("DELETE", "/mcp", None, h)
    except (OSError, http.client.HTTPException):
        L.answered(n, "DELETE /mcp", False)
        with L.lock:
            NO_ANSWER.add(n)
        raise
    L.answered(n, "DELETE /mcp", r.status != 401)
    if r.status == 401:
        L.count("mcp_401")
    return r


def request_id():
    return random.getrandbits(40)


def call_msg(era, tool, text):
    params = {"name": tool, "arguments": {"text": text}}
    if era == "modern":
        params["_meta"] = meta()
    return {"jsonrpc": "2.0", "id": request_id(), "method": "tools/call", "params": params}


def list_msg(era):
    params = {"_meta": meta()} if era == "modern" else {}
    return {"jsonrpc": "2.0", "id": request_id(), "method": "tools/list", "params": params}


# ------------------------------------------------------------------------------ the restarting upstream


class Upstreams:
    """Both upstreams are this driver's children; up2 restarts (same port). A restart window
    runs from just before the kill until the first successful call to up2 sent after it
    listens again: failures of calls to up2 sent in a window are expected, others are not."""

    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.proc = {}
        self.port = {}
        self.lock = threading.Lock()
        self.windows = []  # [kill_at, up_at or None, closed_at or None]
        self.restarts = 0

    def start(self, name, port=0):
        out = open(os.path.join(self.work, "%s.out" % name), "a")
        err = open(os.path.join(self.work, "%s.err" % name), "a")
        p = subprocess.Popen([self.binary, str(port)], stdout=subprocess.PIPE, stderr=err,
                             start_new_session=False)
        line = p.stdout.readline().decode().strip()
        out.write(line + "\n")
        out.close()
        err.close()
        if not line.startswith("http://127.0.0.1:"):
            p.kill()
            raise RuntimeError("%s printed no URL (got %r; see %s/%s.err)" % (name, line, self.work, name))
        self.proc[name] = p
        self.port[name] = int(line.rsplit(":", 1)[1].split("/")[0])
        with open(os.path.join(self.work, "pids", name), "w") as f:
            f.write("%d\n" % p.pid)
        return line

    def stop_all(self):
        for p in self.proc.values():
            if p.poll() is None:
                p.kill()
                p.wait()

    def restart(self, name, down_s):
        sig = signal.SIGKILL if self.restarts % 2 == 0 else signal.SIGTERM
        with self.lock:
            self.windows.append([now() - 0.5, None, None])
        self.proc[name].send_signal(sig)
        self.proc[name].wait()
        time.sleep(down_s)
        for attempt in range(50):
            try:
                self.start(name, self.port[name])
                break
            except RuntimeError:
                time.sleep(0.2)  # the port may be in TIME_WAIT for a moment
        else:
            raise RuntimeError("%s would not start again on port %d" % (name, self.port[name]))
        with self.lock:
            self.windows[-1][1] = now()
        self.restarts += 1
        return sig

    def in_window(self, sent):
        """The restart window a request sent at `sent` falls in, or None."""
        with self.lock:
            for w in self.windows:
                if w[0] <= sent and (w[2] is None or sent <= w[2]):
                    return w
        return None

    def failure_expected(self, sent):
        """A call to up2 sent then failed: expected in a restart window, unless up2 had been
        listening again for more than RECOVERY_LIMIT seconds when it was sent."""
        w = self.in_window(sent)
        if w is None:
            return False, "outside any restart window"
        if w[1] is not None and sent - w[1] > RECOVERY_LIMIT:
            return False, "up2 had listened again for %.1f s" % (sent - w[1])
        return True, ""

    def recoveries(self):
        with self.lock:
            return [round(w[2] - w[1], 2) if w[2] is not None and w[1] is not None else None
                    for w in self.windows]

    def succeeded(self, sent):
        """A call to up2 sent at `sent` succeeded: it closes the open windows it is after."""
        with self.lock:
            for w in self.windows:
                if w[2] is None and w[1] is not None and sent >= w[1]:
                    w[2] = now()
                    L.peak("max_recovery_s", w[2] - w[1])



# ------------------------------------------------------------------------------ checks of answers


def check_call(r, err, sent, tool, text, what):
    """A tools/call of echo on `tool` ("up1__echo"/"up2__echo"). Returns True on success."""
    target = tool.split("__")[0]
    if err is not None:
        L.fail("%s:no_answer" % what, err)
        return False
    if r.status >= 500:
        L.fail("%s:http_%d" % (what, r.status), r.text())
        return False
    m = r.msg
    ok = (r.status == 200 and isinstance(m, dict) and "result" in m
          and not m["result"].get("isError")
          and (m["result"].get("content") or [{}])[0].get("text") == text)
    if ok:
        if target == UP2:
            UPS.succeeded(sent)
        return True
    failed_cleanly = r.status == 200 and isinstance(m, dict) and (
        "error" in m or ("result" in m and m["result"].get("isError")))
    if target == UP2 and failed_cleanly:
        ok, why = UPS.failure_expected(sent)
        if ok:
            L.expect("%s:up2_restarting" % what)
            return False
        L.fail("%s:up2_error" % what, "%s: %s" % (why, r.text()))
        return False
    L.fail("%s:%s" % (what, "error" if failed_cleanly else "bad_answer"), "%s %s" % (tool, r.text()))
    return False


def check_unknown_tool(r, err, what):
    """A tools/call of a tool no upstream has (up1__nope): a JSON-RPC error, never a result."""
    if err is not None:
        L.fail("%s:no_answer" % what, err)
        return
    m = r.msg
    if r.status < 500 and isinstance(m, dict) and ("error" in m or m.get("result", {}).get("isError")):
        L.expect("%s:unknown_tool" % what)
        return
    L.fail("%s:unknown_tool_answer" % what, r.text())


def check_list(r, err, sent, what):
    if err is not None:
        L.fail("%s:no_answer" % what, err)
        return
    m = r.msg
    if r.status != 200 or not isinstance(m, dict) or "result" not in m:
        L.fail("%s:list_failed" % what, r.text())
        return
    names = {t.get("name") for t in m["result"].get("tools", [])}
    if "up1__echo" not in names:
        L.fail("%s:list_without_up1" % what, "tools: %s" % sorted(names))
    if "up2__echo" not in names:
        ok, why = UPS.failure_expected(sent)
        if ok:
            L.expect("%s:list_without_up2_restarting" % what)
        else:
            L.fail("%s:list_without_up2" % what, "%s; tools: %s" % (why, sorted(names)))


def check_accepted(r, err, what):
    if err is not None:
        L.fail("%s:no_answer" % what, err)
    elif r.status != 202:
        L.fail("%s:status_%d" % (what, r.status), r.text())


# ------------------------------------------------------------------------------ the load


def legacy_session(client, token, wid, i):
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": {},
                       "clientInfo": {"name": "reflow-soak", "version": "0"}}}
    r, err, _ = mcp_post(client, token, init, "legacy", kind="legacy:initialize")
    if err is not None:
        L.fail("legacy:initialize:no_answer", err)
        return
    sid = r.headers.get("mcp-session-id")
    if r.status != 200 or not sid or not isinstance(r.msg, dict) or \
            r.msg.get("result", {}).get("protocolVersion") != LEGACY:
        L.fail("legacy:initialize:failed", r.text())
        return
    r, err, _ = mcp_post(client, token, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                         "legacy", sid, kind="legacy:notification")
    check_accepted(r, err, "legacy:notifications/initialized")
    r, err, sent = mcp_post(client, token, list_msg("legacy"), "legacy", sid, kind="legacy:tools/list")
    check_list(r, err, sent, "legacy:tools/list")
    last_id = None
    for k in range(random.randint(1, 6)):
        if STOP.is_set():
            break
        p = random.random()
        if p < 0.08:
            msg = call_msg("legacy", "up1__nope", "x")
            r, err, _ = mcp_post(client, token, msg, "legacy", sid, kind="legacy:tools/call:unknown")
            check_unknown_tool(r, err, "legacy:tools/call")
        elif p < 0.16:
            msg = {"jsonrpc": "2.0", "id": request_id(), "method": "ping"}
            r, err, _ = mcp_post(client, token, msg, "legacy", sid, kind="legacy:ping")
            if err is not None:
                L.fail("legacy:ping:no_answer", err)
            elif r.status != 200 or not isinstance(r.msg, dict) or "result" not in r.msg:
                L.fail("legacy:ping:failed", r.text())
        else:
            tool = random.choice(("up1__echo", "up2__echo"))
            text = "soak-%d-%d-%d" % (wid, i, k)
            msg = call_msg("legacy", tool, text)
            last_id = msg["id"]
            r, err, sent = mcp_post(client, token, msg, "legacy", sid, kind="legacy:tools/call")
            check_call(r, err, sent, tool, text, "legacy:tools/call")
    if last_id is not None and random.random() < 0.5:
        # A cancellation of a request that has finished: the receiver must ignore it.
        msg = {"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": last_id, "reason": "soak"}}
        r, err, _ = mcp_post(client, token, msg, "legacy", sid, kind="legacy:notification")
        check_accepted(r, err, "legacy:notifications/cancelled")
    if random.random() < 0.75:
        L.kind("legacy:DELETE")
        try:
            r = mcp_delete(client, token, sid)
            L.count("legacy_session_deleted")
            if r.status not in (200, 202, 204):
                L.fail("legacy:DELETE:status_%d" % r.status, r.text())
        except (OSError, http.client.HTTPException) as e:
            L.fail("legacy:DELETE:no_answer", repr(e))
    else:
        L.count("legacy_session_abandoned")


def modern_request(client, token, wid, i):
    p = random.random()
    if p < 0.25:
        r, err, sent = mcp_post(client, token, list_msg("modern"), "modern", kind="modern:tools/list")
        check_list(r, err, sent, "modern:tools/list")
    elif p < 0.31:
        msg = call_msg("modern", "up1__nope", "x")
        r, err, _ = mcp_post(client, token, msg, "modern", kind="modern:tools/call:unknown")
        check_unknown_tool(r, err, "modern:tools/call")
    elif p < 0.35 and DISCOVER:
        msg = {"jsonrpc": "2.0", "id": request_id(), "method": "server/discover", "params": {"_meta": meta()}}
        r, err, _ = mcp_post(client, token, msg, "modern", kind="modern:server/discover")
        if err is not None:
            L.fail("modern:server/discover:no_answer", err)
        elif r.status != 200 or not isinstance(r.msg, dict) or "result" not in r.msg:
            L.fail("modern:server/discover:failed", r.text())
    else:
        tool = random.choice(("up1__echo", "up2__echo"))
        text = "soak-m-%d-%d" % (wid, i)
        r, err, sent = mcp_post(client, token, call_msg("modern", tool, text), "modern",
                                kind="modern:tools/call")
        check_call(r, err, sent, tool, text, "modern:tools/call")


def worker(base, token, wid, legacy_share):
    client = Client(base)
    i = 0
    while not STOP.is_set():
        i += 1
        try:
            if random.random() < legacy_share:
                legacy_session(client, token, wid, i)
            else:
                modern_request(client, token, wid, i)
        except Exception as e:  # a bug in this driver must not look like a pass
            L.fail("driver:exception", "worker %d: %r" % (wid, e))
            time.sleep(0.5)
    client.close()


# ------------------------------------------------------------------------------ chaos: tokens, policies, restarts


class Chaos:
    def __init__(self, args, ctx):
        self.args = args
        self.ctx = ctx
        self.extra_policy = False

    def cli(self, *argv):
        cmd = [self.args.reflow_bin, "--data-dir", self.args.data_dir, "--json"] + list(argv)
        p = subprocess.run(cmd, capture_output=True, timeout=60,
                           env=dict(os.environ, REFLOW_LOGGING_LEVEL="warn"))
        if p.returncode != 0:
            raise RuntimeError("reflow %s: exit %d: %s" % (" ".join(argv), p.returncode,
                                                           p.stderr.decode()[-400:]))
        out = p.stdout.decode().strip()
        return json.loads(out) if out else None

    # One API token's life: created (CLI or API), used in both eras, revoked (API or CLI),
    # then refused (401) on the session it opened, in the 2026 era and on a new initialize.
    def token_cycle(self, i):
        base, ctx = self.args.base, self.ctx
        created_by = "cli" if i % 2 == 0 else "api"
        revoked_by = "api" if i % 2 == 0 else "cli"
        if created_by == "cli":
            out = self.cli("token", "create", "--user", USER_EMAIL, "--name", "soak-%d" % i)
        else:
            _, out = api(base, "POST", "/api/auth/tokens", ctx["user_jwt"], {"name": "soak-%d" % i}, (201,))
        tid, tok = out["api_token"]["id"], out["token"]
        L.count("tokens_created_" + created_by)
        c = Client(base)
        try:
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": {"protocolVersion": LEGACY, "capabilities": {},
                               "clientInfo": {"name": "reflow-soak-token", "version": "0"}}}
            # A token the CLI wrote reaches the server through its change notification: allow
            # it CLI_PROPAGATION_LIMIT seconds (401 until then; such requests leave no row).
            t0 = now()
            while True:
                r, err, _ = mcp_post(c, tok, init, "legacy", kind="token:initialize")
                if err is not None:
                    L.fail("token:initialize:no_answer", err)
                    return
                if r.status == 401 and created_by == "cli" and now() - t0 < CLI_PROPAGATION_LIMIT:
                    L.note("token_new_401_retries")
                    time.sleep(0.05)
                    continue
                break
            if created_by == "cli":
                L.peak("max_cli_token_create_propagation_s", now() - t0)
            sid = r.headers.get("mcp-session-id")
            if r.status != 200 or not sid:
                L.fail("token:new_token_refused", "%s token: %s" % (created_by, r.text()))
                return
            r, err, _ = mcp_post(c, tok, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                                 "legacy", sid, kind="token:notification")
            check_accepted(r, err, "token:notifications/initialized")
            msg = call_msg("legacy", "up1__echo", "tok-%d" % i)
            r, err, sent = mcp_post(c, tok, msg, "legacy", sid, kind="token:tools/call")
            check_call(r, err, sent, "up1__echo", "tok-%d" % i, "token:legacy:tools/call")
            msg = call_msg("modern", "up1__echo", "tokm-%d" % i)
            r, err, sent = mcp_post(c, tok, msg, "modern", kind="token:tools/call")
            check_call(r, err, sent, "up1__echo", "tokm-%d" % i, "token:modern:tools/call")
            # Revoke.
            if revoked_by == "api":
                api(base, "DELETE", "/api/auth/tokens/%s" % tid, ctx["user_jwt"], None, (200, 204))
            else:
                self.cli("token", "revoke", tid)
            L.count("tokens_revoked_" + revoked_by)
            t0 = now()
            # The session it opened: refused from now on (API: at once; CLI: within the limit).
            while True:
                msg = call_msg("legacy", "up1__echo", "revoked-%d" % i)
                r, err, _ = mcp_post(c, tok, msg, "legacy", sid, kind="token:revoked_check")
                if err is not None:
                    L.fail("token:revoked_check:no_answer", err)
                    return
                if r.status == 401:
                    break
                if revoked_by == "cli" and now() - t0 < CLI_PROPAGATION_LIMIT and r.status == 200:
                    L.note("token_revoked_still_served_while_propagating")
                    time.sleep(0.05)
                    continue
                L.fail("token:revoked_token_accepted", "revoked by %s %.2f s ago: %s" % (
                    revoked_by, now() - t0, r.text()))
                return
            L.peak("max_%s_revoke_propagation_s" % revoked_by, now() - t0)
            for label, msg, era, s in (
                    ("modern", call_msg("modern", "up1__echo", "revoked"), "modern", None),
                    ("initialize", init, "legacy", None)):
                r, err, _ = mcp_post(c, tok, msg, era, s, kind="token:revoked_check")
                if err is not None:
                    L.fail("token:revoked_check:no_answer", err)
                elif r.status != 401:
                    L.fail("token:revoked_token_accepted", "%s after revocation: %s" % (label, r.text()))
            L.count("revoked_token_refused_401", 3)
            # The user's session it opened ends with the user's other token.
            c.close()
            r = mcp_delete(c, ctx["user_token"], sid)
            if r.status not in (200, 202, 204, 404):
                L.fail("token:DELETE:status_%d" % r.status, r.text())
        finally:
            c.close()

    # Policy edits, in turn: priority and description of up1's policy (API), a deny policy for
    # up1__nope* added and removed again (API), up2's policy's subjects replaced by the same
    # subject (API), up1's description through the CLI. None may deny an allowed echo.
    def policy_cycle(self, i):
        base, admin = self.args.base, self.ctx["admin_jwt"]
        op = i % 4
        if op == 0:
            api(base, "PUT", "/api/policies/soak-up1", admin,
                {"priority": 100 + i % 7, "description": "soak edit %d" % i})
            L.count("policy_updated_api")
        elif op == 1:
            if self.extra_policy:
                api(base, "DELETE", "/api/policies/soak-deny-nope", admin, None, (204,))
                L.count("policy_removed_api")
            else:
                api(base, "POST", "/api/policies", admin, {
                    "name": "soak-deny-nope", "effect": "deny", "target": UP1,
                    "resource_type": "tool", "resource_pattern": "nope.*", "priority": 1000,
                    "subjects": [{"subject_type": "user", "subject_value": USER_EMAIL}]}, (201,))
                L.count("policy_added_api")
            self.extra_policy = not self.extra_policy
        elif op == 2:
            api(base, "PUT", "/api/policies/soak-up2", admin, {
                "subjects": [{"subject_type": "user", "subject_value": USER_EMAIL}],
                "description": "soak subjects %d" % i})
            L.count("policy_subjects_replaced_api")
        else:
            self.cli("policy", "update", "soak-up1", "--description", "soak cli edit %d" % i)
            L.count("policy_updated_cli")

    def run(self, name, every, fn, first):
        i = 0
        next_at = now() + first
        while not STOP.wait(max(0.0, next_at - now())):
            next_at += every
            try:
                fn(i)
            except Exception as e:
                L.fail("chaos:%s" % name, repr(e))
            i += 1

    def restart(self, i):
        sig = UPS.restart(UP2, self.args.down_seconds)
        L.count("upstream_restarts")
        L.count("upstream_restarts_" + signal.Signals(sig).name)
        log("soak: t=%5.1fs restarted %s (%s, %.1f s down)" % (
            now() - T0, UP2, signal.Signals(sig).name, self.args.down_seconds))



# ------------------------------------------------------------------------------ RSS and metrics


def read_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    return out


def metrics(base, admin):
    c = Client(base)
    try:
        r = c.request("GET", "/metrics", None, {"Authorization": "Bearer " + admin})
    finally:
        c.close()
    out = {}
    for line in r.body.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        base_name = name.split("{")[0]
        try:
            out[base_name] = out.get(base_name, 0.0) + float(value)
        except ValueError:
            pass
    return out


def sampler(pid, every, samples, base, admin, msamples):
    k = 0
    while True:
        try:
            s = read_status(pid)
        except OSError:
            L.fail("reflow:exited", "reflow (PID %d) is gone" % pid)
            STOP.set()
            return
        s["t"] = round(now() - T0, 1)
        samples.append(s)
        if k % 5 == 0:
            try:
                m = metrics(base, admin)
                msamples.append({"t": s["t"], "sessions": m.get("reflow_sessions_active"),
                                 "queue": m.get("reflow_audit_queue_depth"),
                                 "written": m.get("reflow_audit_rows_written_total")})
            except Exception as e:
                L.fail("metrics:scrape", repr(e))
        k += 1
        if STOP.wait(every):
            return


# ------------------------------------------------------------------------------ setup and audit


def setup(args):
    base = args.base
    _, out = api(base, "POST", "/api/auth/register", None,
                 {"email": ADMIN_EMAIL, "password": PASSWORD_ADMIN}, (201,))
    admin = out["token"]
    _, out = api(base, "POST", "/api/users", admin, {"email": USER_EMAIL, "password": PASSWORD_USER}, (201,))
    if out.get("role") != "user":
        raise RuntimeError("the second account is not role user: %s" % out)
    for name in (UP1, UP2):
        url = "http://127.0.0.1:%d/mcp" % UPS.port[name]
        api(base, "POST", "/api/targets", admin, {"name": name, "url": url}, (201,))
        api(base, "POST", "/api/policies", admin, {
            "name": "soak-" + name, "effect": "allow", "target": name, "resource_type": "all",
            "priority": 100, "subjects": [{"subject_type": "user", "subject_value": USER_EMAIL}]}, (201,))
    _, out = api(base, "POST", "/api/auth/login", None, {"email": USER_EMAIL, "password": PASSWORD_USER})
    user_jwt = out["token"]
    _, out = api(base, "POST", "/api/auth/tokens", user_jwt, {"name": "soak-load"}, (201,))
    return {"admin_jwt": admin, "user_jwt": user_jwt, "user_token": out["token"]}


def audit_rows(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute("SELECT method, trace_id, error FROM audit_log").fetchall()
    finally:
        con.close()


def seq_of(trace, prefix, limit):
    """The sequence number in one of our trace ids, or None for any other trace id."""
    if not trace or len(trace) != 32 or not trace.startswith(prefix):
        return None
    try:
        n = int(trace[16:], 16)
    except ValueError:
        return None
    return n if n < limit else None


def compare_audit(db, base, admin):
    """Waits for the writer to flush (the row count stops moving), then matches rows to requests."""
    due = sum(L.expect_row)
    time.sleep(2.5)  # 401s are written once a second; the writer batches the rest
    last, stable_since, deadline = -1, now(), now() + 30
    while now() < deadline:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
        n = con.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        con.close()
        if n != last:
            last, stable_since = n, now()
        elif n >= due and now() - stable_since > 1.0 or now() - stable_since > 5.0:
            break
        time.sleep(0.25)
    rows = audit_rows(db)
    prefix = "%016x" % L.run_id
    seen = bytearray(len(L.expect_row))
    foreign = Counter()
    by_method = Counter()
    dup = 0
    unauth_rows, unauth_counted, unanswered_rows = 0, 0, 0
    for method, trace, error in rows:
        if method == UNAUTHENTICATED:
            # 401s are written aggregated: one row per address, endpoint and reason a second,
            # "...; N request(s) from IP to /mcp within a second".
            unauth_rows += 1
            mm = re.search(r"; (\d+) request\(s\) from ", error or "")
            unauth_counted += int(mm.group(1)) if mm else 0
            continue
        n = seq_of(trace, prefix, len(seen))
        if n is None:
            foreign[method] += 1
            by_method[method] += 1
            continue
        if n in NO_ANSWER:
            # A request that got no answer (an unexpected error in itself) may or may not have
            # a row: left out of the comparison either way.
            unanswered_rows += 1
            continue
        by_method[method] += 1
        if seen[n]:
            dup += 1
        seen[n] = min(255, seen[n] + 1)
    missing = [n for n in range(len(seen)) if L.expect_row[n] and not seen[n] and n not in NO_ANSWER]
    extra = [n for n in range(len(seen)) if seen[n] and not L.expect_row[n] and n not in NO_ANSWER]
    m = metrics(base, admin)
    refused = L.other["mcp_401"]
    return {
        "rows": len(rows) - unauth_rows - unanswered_rows,
        "rows_for_unanswered_requests": unanswered_rows,
        "unauthenticated_rows": unauth_rows,
        "unauthenticated_counted": unauth_counted,
        "unauthenticated_sent": refused,
        "unauthenticated_ok": (unauth_counted == refused) if AUDITS_401 else (unauth_rows == 0),
        "requests_due": due,
        "requests_sent": L.next_seq,
        "missing": len(missing),
        "missing_first": missing[:10],
        "extra": len(extra),
        "extra_first": extra[:10],
        "duplicates": dup,
        "foreign": sum(foreign.values()),
        "foreign_by_method": dict(foreign),
        "rows_by_method": dict(sorted(by_method.items())),
        "due_by_method": dict(sorted(L.rows_due.items())),
        "metric_written": m.get("reflow_audit_rows_written_total"),
        "metric_dropped": m.get("reflow_audit_rows_dropped_total"),
        "metric_sessions_active": m.get("reflow_sessions_active"),
    }


UPS = None


def main():
    global UPS
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--reflow-pid", type=int, required=True)
    ap.add_argument("--reflow-bin", required=True)
    ap.add_argument("--upstream-bin", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--restart-every", type=float, default=30, help="seconds; 0: no restarts")
    ap.add_argument("--down-seconds", type=float, default=1.5)
    ap.add_argument("--token-every", type=float, default=10)
    ap.add_argument("--policy-every", type=float, default=5)
    ap.add_argument("--rss-every", type=float, default=2)
    ap.add_argument("--rss-bound", type=float, default=0.10)
    ap.add_argument("--legacy-share", type=float, default=0.35,
                    help="share of worker iterations that are a legacy session (else one 2026 request)")
    ap.add_argument("--no-discover", action="store_true",
                    help="send no server/discover (to look past its missing audit row)")
    args = ap.parse_args()
    global DISCOVER
    DISCOVER = not args.no_discover

    os.makedirs(os.path.join(args.work, "pids"), exist_ok=True)
    UPS = Upstreams(args.upstream_bin, args.work)
    try:
        return run(args)
    finally:
        STOP.set()
        UPS.stop_all()


def binary_mentions(path, needle):
    tail = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return False
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]


def run(args):
    global AUDITS_401
    AUDITS_401 = binary_mentions(args.reflow_bin, UNAUTHENTICATED.encode())
    for name in (UP1, UP2):
        url = UPS.start(name)
        log("soak: %s at %s" % (name, url))
    ctx = setup(args)
    db = os.path.join(args.data_dir, "reflow.db")
    if not os.path.exists(db):
        cands = [f for f in os.listdir(args.data_dir) if f.endswith(".db")]
        if not cands:
            raise RuntimeError("no SQLite database in %s" % args.data_dir)
        db = os.path.join(args.data_dir, cands[0])

    # One call to each upstream in each era before the load: the set-up works.
    c = Client(args.base)
    for tool in ("up1__echo", "up2__echo"):
        msg = call_msg("modern", tool, "hello")
        r, err, sent = mcp_post(c, ctx["user_token"], msg, "modern", kind="preflight")
        if not check_call(r, err, sent, tool, "hello", "preflight"):
            log("soak: preflight failed: %s" % (err or r.text()))
            return 1
    c.close()

    global T0
    T0 = now()
    warm = max(60.0, 0.2 * args.seconds)
    samples, msamples = [], []
    chaos = Chaos(args, ctx)
    threads = [threading.Thread(target=worker, args=(args.base, ctx["user_token"], w, args.legacy_share),
                                daemon=True)
               for w in range(args.workers)]
    threads += [
        threading.Thread(target=chaos.run, args=("tokens", args.token_every, chaos.token_cycle, 3), daemon=True),
        threading.Thread(target=chaos.run, args=("policies", args.policy_every, chaos.policy_cycle, 2), daemon=True),
    ]
    if args.restart_every > 0:
        threads.append(threading.Thread(target=chaos.run, daemon=True, args=(
            "restart", args.restart_every, chaos.restart, min(15.0, args.restart_every / 2))))
    sampler_thread = threading.Thread(
        target=sampler, args=(args.reflow_pid, args.rss_every, samples, args.base, ctx["admin_jwt"], msamples),
        daemon=True)
    sampler_thread.start()
    for t in threads:
        t.start()
    log("soak: load running for %.0f s: %d workers, token cycle every %.0f s, policy edit every %.0f s, %s" % (
        args.seconds, args.workers, args.token_every, args.policy_every,
        "up2 restart every %.0f s" % args.restart_every if args.restart_every > 0 else "no up2 restarts"))
    last_report = now()
    while now() - T0 < args.seconds and not STOP.is_set():
        time.sleep(0.5)
        if now() - last_report >= 30:
            last_report = now()
            rss = samples[-1]["VmRSS"] if samples else 0
            log("soak: t=%5.0fs %d requests, %d unexpected errors, RSS %.1f MiB" % (
                now() - T0, L.next_seq, sum(L.unexpected.values()), rss / 1024))
    elapsed = now() - T0
    STOP.set()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT + 60)
        if t.is_alive():
            L.fail("driver:thread_hung", t.name)
    sampler_thread.join(timeout=10)
    try:
        samples.append(dict(read_status(args.reflow_pid), t=round(now() - T0, 1)))
    except OSError:
        pass

    # After the load: up2 is back; it must answer again in both eras within the window limit.
    c = Client(args.base)
    deadline = now() + RECOVERY_LIMIT + 5
    for era in ("legacy", "modern"):
        while True:
            if era == "legacy":
                init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                        "params": {"protocolVersion": LEGACY, "capabilities": {},
                                   "clientInfo": {"name": "reflow-soak-final", "version": "0"}}}
                r, err, _ = mcp_post(c, ctx["user_token"], init, "legacy", kind="final")
                sid = r.headers.get("mcp-session-id") if r else None
            else:
                sid = None
            msg = call_msg(era, "up2__echo", "final")
            r, err, sent = mcp_post(c, ctx["user_token"], msg, era, sid, kind="final")
            ok = (err is None and r.status == 200 and isinstance(r.msg, dict) and "result" in r.msg
                  and not r.msg["result"].get("isError"))
            if ok:
                UPS.succeeded(sent)
                break
            if now() > deadline:
                L.fail("final:up2_unusable", err or r.text())
                break
            time.sleep(0.5)
    c.close()

    audit = compare_audit(db, args.base, ctx["admin_jwt"])

    # RSS: the sample at the end of the warm-up, and the largest one after it.
    rss_rule = "max VmRSS after warm-up <= (1 + %.2f) x VmRSS at end of warm-up (first %.0f s)" % (
        args.rss_bound, warm)
    warm_samples = [s for s in samples if s["t"] <= warm]
    rest = [s for s in samples if s["t"] > warm]
    rss = {"rule": rss_rule, "samples": len(samples), "warmup_s": warm}
    if samples:
        rss.update(start_kib=samples[0]["VmRSS"], end_kib=samples[-1]["VmRSS"],
                   max_kib=max(s["VmRSS"] for s in samples),
                   anon_start_kib=samples[0].get("RssAnon"), anon_end_kib=samples[-1].get("RssAnon"),
                   file_end_kib=samples[-1].get("RssFile"), threads_end=samples[-1].get("Threads"))
    if warm_samples and rest:
        w = warm_samples[-1]["VmRSS"]
        mx = max(s["VmRSS"] for s in rest)
        rss.update(warm_kib=w, max_after_warm_kib=mx, growth=round(mx / w - 1, 4),
                   ok=mx <= w * (1 + args.rss_bound))
    else:
        rss.update(ok=False, note="run too short: no samples after the warm-up")
    with open(os.path.join(args.work, "rss.jsonl"), "w") as f:
        for s in samples:
            f.write(json.dumps(s) + "\n")
    with open(os.path.join(args.work, "metrics.jsonl"), "w") as f:
        for s in msamples:
            f.write(json.dumps(s) + "\n")

    audit_ok = (audit["missing"] == 0 and audit["extra"] == 0 and audit["duplicates"] == 0
                and audit["foreign"] == 0 and audit["rows"] == audit["requests_due"]
                and audit["unauthenticated_ok"]
                and audit["rows_by_method"] == audit["due_by_method"] and not audit["metric_dropped"])
    unexpected = sum(L.unexpected.values())
    result = {
        "ok": unexpected == 0 and audit_ok and rss["ok"],
        "seconds": round(elapsed, 1),
        "workers": args.workers,
        "requests_mcp": L.next_seq,
        "requests_per_s": round(L.next_seq / elapsed, 1) if elapsed else 0,
        "requests_by_kind": dict(sorted(L.kinds.items())),
        "expected_errors": dict(sorted(L.expected.items())),
        "unexpected_errors": dict(sorted(L.unexpected.items())),
        "operations": dict(sorted(L.other.items())),
        "info": dict(sorted(L.info.items())),
        "maxima_s": {k: round(v, 3) for k, v in sorted(L.maxima.items())},
        "up2_recovery_s": UPS.recoveries(),
        "audit_ok": audit_ok,
        "audit": audit,
        "rss": rss,
        "sessions_active_samples": [s["sessions"] for s in msamples],
        "loadavg_end": open("/proc/loadavg").read().split()[:3],
    }
    report(result)
    return 0 if result["ok"] else 1


def report(r):
    p = print
    p()
    p("reflow scripts/soak: %.0f s, %d workers, %d MCP requests (%.0f/s)" % (
        r["seconds"], r["workers"], r["requests_mcp"], r["requests_per_s"]))
    p("requests by kind:")
    for k, v in r["requests_by_kind"].items():
        p("  %-34s %9d" % (k, v))
    p("operations:")
    for k, v in r["operations"].items():
        p("  %-34s %9d" % (k, v))
    p("expected errors (by kind):")
    for k, v in r["expected_errors"].items() or [("(none)", 0)]:
        p("  %-44s %7d" % (k, v))
    p("unexpected errors (by kind):")
    for k, v in r["unexpected_errors"].items() or [("(none)", 0)]:
        p("  %-44s %7d" % (k, v))
    for s in L.samples:
        p("    t=%ss %s: %s" % (s["t"], s["kind"], s["detail"]))
    if r["info"]:
        p("notes: " + ", ".join("%s=%d" % kv for kv in r["info"].items()))
    p("maxima (s): " + ", ".join("%s=%.3f" % kv for kv in r["maxima_s"].items()))
    p("up2 restarts: first successful call %s s after it listened again (limit %.0f s)" % (
        r["up2_recovery_s"], RECOVERY_LIMIT))
    a = r["audit"]
    p("audit: %d rows for %d requests due a row (%d sent; 401s leave none): missing %d, extra %d, "
      "duplicated %d, foreign %d; per method %s; metric written %s, dropped %s -> %s" % (
          a["rows"], a["requests_due"], a["requests_sent"], a["missing"], a["extra"], a["duplicates"],
          a["foreign"], "equal" if a["rows_by_method"] == a["due_by_method"] else "DIFFERENT",
          fmt(a["metric_written"]), fmt(a["metric_dropped"]), "OK" if r["audit_ok"] else "FAILED"))
    p("audit of 401s: %d refused requests; %s" % (
        a["unauthenticated_sent"],
        ("%d aggregated (unauthenticated) rows counting %d requests -> %s" % (
            a["unauthenticated_rows"], a["unauthenticated_counted"], "OK" if a["unauthenticated_ok"] else "FAILED"))
        if AUDITS_401 else "this reflow build does not audit 401s (no \"(unauthenticated)\" in its binary)"))
    if a["rows_by_method"] != a["due_by_method"]:
        p("  rows by method: %s" % a["rows_by_method"])
        p("  due by method:  %s" % a["due_by_method"])
    s = r["rss"]
    if "warm_kib" in s:
        p("RSS (MiB): start %.1f, end of warm-up %.1f, max after %.1f (%+.1f %%), end %.1f; anon start %.1f "
          "end %.1f -> %s" % (
              s["start_kib"] / 1024, s["warm_kib"] / 1024, s["max_after_warm_kib"] / 1024, 100 * s["growth"],
              s["end_kib"] / 1024, (s["anon_start_kib"] or 0) / 1024, (s["anon_end_kib"] or 0) / 1024,
              "OK" if s["ok"] else "FAILED"))
    else:
        p("RSS: %s -> FAILED" % s.get("note"))
    p("RSS rule: " + s["rule"])
    p("sessions active (metric, every %d samples): %s" % (5, r["sessions_active_samples"]))
    p("verdict: %s" % ("PASS" if r["ok"] else "FAIL"))
    p()
    p("SOAK_JSON " + json.dumps(r, separators=(",", ":")))
    sys.stdout.flush()


def fmt(v):
    return "n/a" if v is None else "%d" % v


if __name__ == "__main__":
    sys.exit(main())
