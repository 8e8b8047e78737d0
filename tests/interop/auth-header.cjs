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

// A few scenarios (http-header-validation) send raw requests with node:http, which bypasses
// undici: add the header there too, whichever of request(options[, cb]) or
// request(url[, options][, cb]) the caller used.
if (token) {
  const http = require('http');
  const original = http.request;
  const withAuthHeader = (opts) => {
    const headers = opts.headers || {};
    const has = Object.keys(headers).some((k) => k.toLowerCase() === 'authorization');
    return has ? opts : { ...opts, headers: { ...headers, authorization: `Bearer ${token}` } };
  };
  http.request = function request(...args) {
    if (typeof args[0] === 'string' || args[0] instanceof URL) {
      if (args[1] && typeof args[1] === 'object') args[1] = withAuthHeader(args[1]);
      else args.splice(1, 0, { headers: { authorization: `Bearer ${token}` } });
    } else if (args[0] && typeof args[0] === 'object') {
      args[0] = withAuthHeader(args[0]);
    }
    return original.apply(this, args);
  };
}
