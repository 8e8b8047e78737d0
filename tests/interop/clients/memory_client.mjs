// Interop client on the TypeScript SDK v1 (@modelcontextprotocol/sdk 1.32.2) for a server-memory
// target behind reflow.
//
//   node memory_client.mjs URL TOKEN TARGET ENTITY
//
// Lists tools, calls TARGET__create_entities with one entity ENTITY, then TARGET__read_graph
// (TARGET '' : the bare names, the server itself, e.g. behind `reflow bridge`),
// ends the session (DELETE) and prints ONE JSON object: {tools, created, graph} or {fatal}.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = path.join(here, '..', '.deps', 'node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm');
const load = (p) => import(pathToFileURL(path.join(sdk, p)).href);
const { Client } = await load('client/index.js');
const { StreamableHTTPClientTransport } = await load('client/streamableHttp.js');
const { CallToolResultSchema } = await load('types.js');

const [url, token, target, entity] = process.argv.slice(2);
const out = { client: 'ts-sdk-v1' };
const tool = (n) => (target ? `${target}__${n}` : n);
const textOf = (r) => (r.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const finish = (code) => { process.stdout.write(`${JSON.stringify(out)}\n`); process.exit(code); };
const timer = setTimeout(() => { out.fatal = 'client timed out after 60 s'; finish(1); }, 60000);

try {
  const client = new Client({ name: 'reflow-interop-memory-ts', version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url),
    { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  out.protocol_version = transport.protocolVersion ?? null;
  out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const opts = { timeout: 20000 };
  out.created = textOf(await client.callTool({ name: tool('create_entities'), arguments: {
    entities: [{ name: entity, entityType: 'test', observations: ['written by ts'] }] } }, CallToolResultSchema, opts));
  out.graph = textOf(await client.callTool({ name: tool('read_graph'), arguments: {} }, CallToolResultSchema, opts));
  await transport.terminateSession();
  await client.close();
  clearTimeout(timer);
  finish(0);
} catch (e) {
  out.fatal = `${e && e.name}: ${e && e.message}`;
  clearTimeout(timer);
  finish(1);
}
