// Interop client on the TypeScript SDK v1 (@modelcontextprotocol/sdk 1.32.2) for tests/interop/run.
//
//   node ts_v1_client.mjs URL TOKEN [targets=ever,everse]
//
// Streamable HTTP to reflow's /mcp; declares sampling (answers with CANNED). For each target P:
// lists tools (retrying up to ~5 s until P__echo and P__trigger-sampling-request are listed),
// calls P__echo, P__trigger-long-running-operation {duration:1, steps:3} with onprogress, and
// P__trigger-sampling-request. Prints ONE JSON object on stdout; the run script judges it.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = path.join(here, '..', '.deps', 'node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm');
const load = (p) => import(pathToFileURL(path.join(sdk, p)).href);
const { Client } = await load('client/index.js');
const { StreamableHTTPClientTransport } = await load('client/streamableHttp.js');
const { CreateMessageRequestSchema, CallToolResultSchema } = await load('types.js');

const [url, token, targetsArg = 'ever,everse'] = process.argv.slice(2);
const targets = targetsArg.split(',').filter(Boolean);
const CANNED = 'canned-sampling-answer-from-ts';
const out = { client: 'ts-sdk-v1', tools: [], echo: {}, progress: {}, long_result: {},
  sampling_requests: [], sampling_result: {}, errors: [] };
const textOf = (r) => (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const errText = (e) => `${e && e.name}: ${e && e.message}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const client = new Client({ name: 'reflow-interop-ts-v1', version: '1.0.0' },
    { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    out.sampling_requests.push(req.params.messages.map((m) => m.content && m.content.text));
    return { role: 'assistant', model: 'interop-canned-model', content: { type: 'text', text: CANNED } };
  });
  const transport = new StreamableHTTPClientTransport(new URL(url),
    { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  out.protocol_version = transport.protocolVersion ?? null;
  const wanted = targets.flatMap((t) => [`${t}__echo`, `${t}__trigger-sampling-request`]);
  let names = [];
  for (let attempt = 1; attempt <= 11; attempt++) {
    names = [];
    let cursor;
    do {
      const res = await client.listTools(cursor ? { cursor } : undefined);
      names.push(...res.tools.map((t) => t.name));
      cursor = res.nextCursor;
    } while (cursor);
    out.list_attempts = attempt;
    if (wanted.every((w) => names.includes(w))) break;
    await sleep(500);
  }
  out.tools = names.sort();
  const opts = { timeout: 20000 };
  for (const t of targets) {
    try {
      const r = await client.callTool({ name: `${t}__echo`, arguments: { message: `hi-from-ts-${t}` } },
        CallToolResultSchema, opts);
      out.echo[t] = { text: textOf(r), is_error: !!r.isError };
    } catch (e) { out.echo[t] = { exception: errText(e) }; }
    const progress = (out.progress[t] = []);
    try {
      const t0 = Date.now();
      const r = await client.callTool(
        { name: `${t}__trigger-long-running-operation`, arguments: { duration: 1, steps: 3 } },
        CallToolResultSchema, { ...opts, onprogress: (p) => progress.push([p.progress, p.total ?? null]) });
      out.long_result[t] = { text: textOf(r), is_error: !!r.isError, seconds: (Date.now() - t0) / 1000 };
    } catch (e) { out.long_result[t] = { exception: errText(e) }; }
    try {
      const r = await client.callTool(
        { name: `${t}__trigger-sampling-request`, arguments: { prompt: `say hi for ${t}`, maxTokens: 20 } },
        CallToolResultSchema, opts);
      out.sampling_result[t] = { text: textOf(r), is_error: !!r.isError };
    } catch (e) { out.sampling_result[t] = { exception: errText(e) }; }
  }
  try { await transport.terminateSession(); } catch (e) { out.errors.push(`terminateSession: ${errText(e)}`); }
  await client.close();
}

const timer = setTimeout(() => { out.fatal = 'client timed out after 60 s'; finish(1); }, 60000);
function finish(code) { clearTimeout(timer); process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(code)); }
main().then(() => finish(0), (e) => { out.fatal = errText(e); out.trace = String(e && e.stack).slice(0, 1500); finish(0); });
