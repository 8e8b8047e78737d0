// A minimal MCP client (Streamable HTTP, legacy era) over fetch, for checking what a user's
// client really gets through the gateway.
export class McpClient {
  constructor(base, token) {
    this.url = `${base}/mcp`;
    this.token = token;
    this.session = null;
    this.nextId = 1;
  }

  async send(method, params, notification = false) {
    const headers = {
      authorization: `Bearer ${this.token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
    };
    if (this.session) headers['mcp-session-id'] = this.session;
    const msg = { jsonrpc: '2.0', method, params };
    if (!notification) msg.id = this.nextId++;
    const res = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify(msg) });
    if (res.headers.get('mcp-session-id')) this.session = res.headers.get('mcp-session-id');
    if (notification) return null;
    const text = await res.text();
    if (!res.ok) throw new Error(`${method}: HTTP ${res.status} ${text}`);
    if ((res.headers.get('content-type') || '').includes('text/event-stream')) {
      for (const block of text.split('\n\n')) {
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
        if (!data) continue;
        const parsed = JSON.parse(data);
        if (parsed.id === msg.id) return parsed;
      }
      throw new Error(`${method}: no response in the stream`);
    }
    return JSON.parse(text);
  }

  async initialize() {
    const r = await this.send('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'browser-test', version: '1' } });
    if (r.error) throw new Error(`initialize: ${JSON.stringify(r.error)}`);
    await this.send('notifications/initialized', {}, true);
    return r.result;
  }

  async result(method, params = {}) {
    const r = await this.send(method, params);
    if (r.error) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
    return r.result;
  }
}
