// Node --require preload: make host-less listen() calls bind 127.0.0.1 instead of all
// interfaces, e.g. `PORT=3001 node --require ./loopback.cjs .../server-everything/dist/index.js
// streamableHttp`, or the conformance client-mode mock servers (`listen(0)`).
// Handles listen(port[, backlog][, cb]), listen([cb]) and listen({port}) without host; leaves
// explicit hosts, unix-socket paths, fds and handles alone.
// The socket is bound synchronously (a pre-bound TCP handle), so code that calls
// server.address().port right after listen() — as express `app.listen(0)` users do — still works;
// passing a host to listen() instead would make address() null until the async DNS step is done.
'use strict';
const net = require('net');
const origListen = net.Server.prototype.listen;
let TCP, TCPConstants;
try { ({ TCP, constants: TCPConstants } = process.binding('tcp_wrap')); } catch { TCP = null; }

function boundHandle(port) {
  if (!TCP) return null;
  const h = new TCP(TCPConstants.SERVER);
  const err = h.bind('127.0.0.1', port);
  if (err) { h.close(); return null; }
  return h;
}

net.Server.prototype.listen = function listen(...args) {
  let port, rest;
  const a0 = args[0];
  if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    if (typeof args[1] === 'string') return origListen.apply(this, args); // explicit host
    port = Number(a0); rest = args.slice(1);
  } else if (a0 === undefined || typeof a0 === 'function') {
    port = 0; rest = a0 === undefined ? args.slice(1) : args;
  } else if (a0 && typeof a0 === 'object' && !a0._handle && a0.fd === undefined && a0.path === undefined
             && a0.handle === undefined && a0.host === undefined) {
    port = Number(a0.port || 0); rest = args.slice(1);
    if (a0.backlog !== undefined) rest.unshift(a0.backlog);
  } else {
    return origListen.apply(this, args);
  }
  const h = boundHandle(port);
  if (h) return origListen.call(this, h, ...rest);
  return origListen.call(this, port, '127.0.0.1', ...rest); // async fallback (e.g. EADDRINUSE -> 'error')
};
