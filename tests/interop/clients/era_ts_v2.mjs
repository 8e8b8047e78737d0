// One cell of the era matrix on the TypeScript SDK v2 (@modelcontextprotocol/client 2.4.0).
//
//   node era_ts_v2.mjs URL TOKEN MODE TOOL [ARGS_JSON] [ELICIT_JSON] [EXPECT_TOOL,...]
//
// MODE: auto | legacy | 2026-07-28 (a pin). Lists every tool page (retrying ~5 s until every
// EXPECT_TOOL is listed), calls TOOL with ARGS_JSON. With ELICIT_JSON it declares elicitation and
// accepts every elicitation/create with that content. Prints ONE JSON object on stdout.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, '..', '.deps', 'node_modules', '@modelcontextprotocol', 'client', 'dist', 'index.mjs');
const { Client, StreamableHTTPClientTransport } = await import(pathToFileURL(entry).href);

const [url, token, mode, tool, argsJson = '{}', elicitJson = '', expectArg = ''] = process.argv.slice(2);
const expect = expectArg.split(',').filter(Boolean);
const out = { client: `ts-client-2.4.0 mode=${mode}`, tools: [], call: {}, elicitations: [] };
const textOf = (r) => (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const negotiation = mode === 'auto' || mode === 'legacy' ? { mode } : { mode: { pin: mode } };
  const capabilities = elicitJson ? { elicitation: {} } : {};
  const client = new Client({ name: 'reflow-interop-ts-v2', version: '1.0.0' },
    { capabilities, versionNegotiation: negotiation });
  if (elicitJson) {
    const content = JSON.parse(elicitJson);
    client.setRequestHandler('elicitation/create', async (req) => {
      out.elicitations.push(req.params && req.params.message);
      return { action: 'accept', content };
    });
  }
  const transport = new StreamableHTTPClientTransport(new URL(url),
    { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  out.protocol_version = client.getNegotiatedProtocolVersion() ?? null;
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
    if (expect.every((w) => names.includes(w))) break;
    await sleep(500);
  }
  out.tools = names.sort();
  try {
    const r = await client.callTool({ name: tool, arguments: JSON.parse(argsJson) });
    out.call = { text: textOf(r), is_error: !!r.isError };
  } catch (e) {
    out.call = { exception: `${e && e.name}: ${e && e.message}` };
  }
  await client.close();
}

const timer = setTimeout(() => { out.fatal = 'timed out after 60 s'; console.log(JSON.stringify(out)); process.exit(0); }, 60000);
try {
  await main();
} catch (e) {
  out.fatal = `${e && e.name}: ${e && e.message}`;
}
clearTimeout(timer);
console.log(JSON.stringify(out));
process.exit(0);
