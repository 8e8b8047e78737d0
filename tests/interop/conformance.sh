#!/usr/bin/env bash
# Run both official conformance suites (server mode) against URL with Node 22:
#   legacy @modelcontextprotocol/conformance@0.1.16:        --suite all                   -> OUTDIR/legacy
#   next   @modelcontextprotocol/conformance@0.2.0-alpha.12: --requirements 2025-11-25    -> OUTDIR/next
# Usage: conformance.sh URL OUTDIR [extra args passed to both runs]
#   with --scenario S in the extra args: legacy runs just S, next runs S with --spec-version (not --requirements)
# Prints both `Total:` lines (prefixed legacy:/next:), full output in OUTDIR/{legacy,next}.log.
# Exit 0 when both suites RAN (failed checks are not an error: compare the scores);
# non-zero when either could not run (no Total line, crash, timeout).
# REFLOW_TOKEN set -> every request carries `Authorization: Bearer $REFLOW_TOKEN` (auth-header.cjs).
# CONFORMANCE_NEXT_REQUIREMENTS=2026-07-28 selects another requirement set for the next run.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 2 ]]; then echo "usage: $0 URL OUTDIR [extra args]" >&2; exit 2; fi
URL="$1"; OUT="$2"; shift 2
# shellcheck source=env.sh
source "$HERE/env.sh"
[[ -x "$NODE22" && -f "$CONFORMANCE_LEGACY" && -f "$CONFORMANCE_NEXT" ]] || { echo "run $HERE/setup first" >&2; exit 2; }
mkdir -p "$OUT"
REQ="${CONFORMANCE_NEXT_REQUIREMENTS:-2025-11-25}"
TMO="${CONFORMANCE_RUN_TIMEOUT:-600}"
rc=0
run() { # name entry args...
  local name="$1" entry="$2"; shift 2
  timeout "$TMO" "$NODE22" --require "$HERE/auth-header.cjs" "$entry" server --url "$URL" -o "$OUT/$name" "$@" \
    > "$OUT/$name.log" 2>&1
  local st=$?
  local total; total="$(grep -E '^Total: [0-9]+ passed, [0-9]+ failed' "$OUT/$name.log" | tail -1)"
  if [[ -z "$total" ]]; then # a single --scenario run prints "Passed: P/N, F failed, W warnings" instead
    total="$(sed -nE 's/^Passed: ([0-9]+)\/[0-9]+, ([0-9]+) failed.*/Total: \1 passed, \2 failed/p' "$OUT/$name.log" | tail -1)"
  fi
  if [[ -z "$total" ]]; then
    echo "$name: DID NOT RUN (exit $st), see $OUT/$name.log" >&2; tail -5 "$OUT/$name.log" >&2; rc=1
  else
    echo "$name: $total"
  fi
}
if [[ " $* " == *" --scenario "* ]]; then
  # one scenario: --suite/--requirements cannot be combined with --scenario
  run legacy "$CONFORMANCE_LEGACY" "$@"
  run next "$CONFORMANCE_NEXT" --spec-version "$REQ" "$@"
else
  run legacy "$CONFORMANCE_LEGACY" --suite all "$@"
  run next "$CONFORMANCE_NEXT" --requirements "$REQ" "$@"
fi
exit $rc
