#!/usr/bin/env bash
# Measures what the dashboard's live stream costs: CPU time of `reflow serve` while `hey`
# sends tools/call at RATE req/s for SECS seconds, with 0, 1 and 10 clients on
# /api/observability/stream. Needs: hey (Debian), node, curl. Usage:
#   tests/browser/stream-cost.sh [REFLOW_BIN] [RATE] [SECS]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${1:-$HERE/../../target/release/reflow}"
RATE="${2:-1000}"
SECS="${3:-20}"
DIR="$(mktemp -d)"
PORT=$((20000 + RANDOM % 20000))
BASE="http://127.0.0.1:$PORT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

REFLOW_LOGGING_LEVEL=warn "$BIN" serve --port "$PORT" --data-dir "$DIR" & GW=$!
PIDS+=("$GW")
node --input-type=module -e "
import { startUpstream } from '$HERE/upstream.mjs';
const u = await startUpstream(); console.log(u.url);
setInterval(() => {}, 1 << 30);" > "$DIR/upstream" & PIDS+=("$!")
for _ in $(seq 100); do [[ -s $DIR/upstream ]] && curl -sf "$BASE/health" >/dev/null && break; sleep 0.1; done
UP="$(cat "$DIR/upstream")"
J='content-type: application/json'
TOKEN=$(curl -sf "$BASE/api/auth/register" -H "$J" -d '{"email":"a@example.com","password":"correct horse battery"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
curl -sf "$BASE/api/targets" -H "$J" -H "authorization: Bearer $TOKEN" -d "{\"name\":\"demo\",\"url\":\"$UP\"}" >/dev/null
SESSION=$(curl -si "$BASE/mcp" -H "$J" -H 'accept: application/json, text/event-stream' -H "authorization: Bearer $TOKEN" \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"hey","version":"1"}}}' \
  | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
curl -sf "$BASE/mcp" -H "$J" -H 'accept: application/json, text/event-stream' -H "authorization: Bearer $TOKEN" -H "mcp-session-id: $SESSION" \
  -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null || true

cpu() { awk '{print $14 + $15}' "/proc/$GW/stat"; }
TICKS=$(getconf CLK_TCK)
measure() {
  local clients=$1 streams=()
  for _ in $(seq "$clients"); do
    curl -sN "$BASE/api/observability/stream" -H "authorization: Bearer $TOKEN" >/dev/null & streams+=("$!")
  done
  sleep 1
  local before after
  before=$(cpu)
  hey -z "${SECS}s" -c 10 -q $((RATE / 10)) -m POST -H "authorization: Bearer $TOKEN" -H "mcp-session-id: $SESSION" \
    -H 'accept: application/json, text/event-stream' -T application/json \
    -d '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"demo__echo","arguments":{"text":"hi"}}}' "$BASE/mcp" > "$DIR/hey"
  after=$(cpu)
  for s in "${streams[@]}"; do kill "$s" 2>/dev/null || true; done
  local rps; rps=$(awk '/Requests\/sec/{print $2}' "$DIR/hey")
  awk -v b="$before" -v a="$after" -v t="$TICKS" -v s="$SECS" -v c="$clients" -v r="$rps" \
    'BEGIN { printf "stream clients %2d: %7.1f req/s, reflow CPU %5.1f%% of one core\n", c, r, 100 * (a - b) / t / s }'
}
measure 0
measure 1
measure 10
