// A tiny MCP server (Streamable HTTP, JSON responses, 2025-06-18) for the browser tests:
// tools echo and add, one resource, one prompt. Node's http module only.
import http from 'node:http';
import { randomUUID } from 'node:crypto';

const TOOLS = [
  { name: 'echo', description: 'Echoes its text', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } },
  { name: 'add', description: 'Adds two numbers', inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } } },
  { name: 'delete_all', description: 'Dangerous', inputSchema: { type: 'object' } },
];

function answer(msg) {
  const ok = (result) => ({ jsonrpc: '2.0', id: msg.id, result });
  switch (msg.method) {
    case 'initialize':
      return ok({ protocolVersion: '2025-06-18', capabilities: { tools: {}, resources: {}, prompts: {} }, serverInfo: { name: 'browser-test-upstream', version: '1.0.0' } });
    case 'tools/list': return ok({ tools: TOOLS });
    case 'resources/list': return ok({ resources: [{ uri: 'file:///readme.txt', name: 'readme', mimeType: 'text/plain' }] });
    case 'prompts/list': return ok({ prompts: [{ name: 'greet', description: 'Says hello' }] });
    case 'ping': return ok({});
    case 'tools/call': {
      const { name, arguments: args = {} } = msg.params || {};
      if (name === 'echo') return ok({ content: [{ type: 'text', text: String(args.text ?? '') }] });
      if (name === 'add') return ok({ content: [{ type: 'text', text: String((args.a || 0) + (args.b || 0)) }] });
      return ok({ content: [{ type: 'text', text: 'done' }] });
    }
    default:
      return { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `unknown method ${msg.method}` } };
  }
}

/** Starts the server on 127.0.0.1 (any port); resolves to { url, close }. */
export function startUpstream() {
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') { res.writeHead(405).end(); return; }
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      let msg;
      try { msg = JSON.parse(body); } catch { res.writeHead(400).end(); return; }
      if (msg.id === undefined) { res.writeHead(202).end(); return; }
      const headers = { 'content-type': 'application/json' };
      if (msg.method === 'initialize') headers['mcp-session-id'] = randomUUID();
      res.writeHead(200, headers).end(JSON.stringify(answer(msg)));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ url: `http://127.0.0.1:${server.address().port}/mcp`, close: () => server.close() });
  }));
}
