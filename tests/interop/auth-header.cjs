// Node --require preload: when REFLOW_TOKEN is set, add `Authorization: Bearer $REFLOW_TOKEN`
// to every global fetch() request that does not already carry an Authorization header.
// The conformance suite has no header option; use:
//   REFLOW_TOKEN=... NODE_OPTIONS="--require /path/auth-header.cjs" node conformance ...
// (or node --require ./auth-header.cjs ...).
'use strict';
const token = process.env.REFLOW_TOKEN;
if (token && typeof globalThis.fetch === 'function' && !globalThis.fetch.__reflowAuth) {
  const origFetch = globalThis.fetch;
  const wrapped = function fetch(input, init) {
    const base = (typeof Request !== 'undefined' && input instanceof Request) ? input.headers : undefined;
    const headers = new Headers((init && init.headers) || base || undefined);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    return origFetch.call(this, input, { ...(init || {}), headers });
  };
  wrapped.__reflowAuth = true;
  globalThis.fetch = wrapped;
}
