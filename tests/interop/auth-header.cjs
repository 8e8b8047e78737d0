// Node --require preload: when REFLOW_TOKEN is set, every HTTP request this process makes carries
// `Authorization: Bearer $REFLOW_TOKEN` unless it already has an Authorization header.
// The conformance suite has no header option, and some of its scenarios use undici's request()
// rather than fetch(); both go through undici's global dispatcher (shared by Node's fetch and any
// undici copy via a global symbol), so an interceptor on it covers them all.
'use strict';
const token = process.env.REFLOW_TOKEN;
if (token) {
  const path = require('path');
  const deps = path.join(__dirname, '.deps', 'node_modules');
  const undici = require(require.resolve('undici', { paths: [path.join(deps, 'conformance-legacy'), deps] }));
  const value = `Bearer ${token}`;
  const withAuth = (headers) => {
    if (Array.isArray(headers)) {
      const has = headers.some((v, i) => i % 2 === 0 && String(v).toLowerCase() === 'authorization');
      return has ? headers : [...headers, 'authorization', value];
    }
    if (headers && typeof headers === 'object') {
      const has = Object.keys(headers).some((k) => k.toLowerCase() === 'authorization');
      return has ? headers : { ...headers, authorization: value };
    }
    return { authorization: value };
  };
  const intercept = (dispatch) => (opts, handler) => dispatch({ ...opts, headers: withAuth(opts.headers) }, handler);
  undici.setGlobalDispatcher(new undici.Agent().compose(intercept));
}
