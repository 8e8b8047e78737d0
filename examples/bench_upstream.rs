//! A fast MCP upstream for `scripts/bench`: an rmcp 3.11 Streamable HTTP server with one tool,
//! `echo`, that answers with its `text`. The same shape as the upstream in benches/gateway.rs:
//! stateless (`legacy_session_mode: false`, so no `Mcp-Session-Id` and no per-session task) and
//! `json_response` (a plain `application/json` body instead of SSE framing), so the direct path
//! is as cheap as rmcp gets. rmcp serves both protocol eras on it by default: legacy
//! (2025-11-25, `initialize` answered without a session) and 2026-07-28 (per-request `_meta`).
//!
//! `bench_upstream [PORT]` listens on 127.0.0.1:PORT (0 or absent: a free port) at `/mcp` and
//! prints the bound URL (`http://127.0.0.1:NNNNN/mcp`) as the first line on stdout, then serves
//! until killed. Runtime: tokio multi-threaded with its default worker count (one per core),
//! like an ordinary production server; the load generator and the proxies share those cores.

use std::io::Write;
use std::sync::Arc;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{schemars, tool, tool_router};
use serde::Deserialize;

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct EchoArgs {
    text: String,
}

#[derive(Clone)]
struct BenchTools;

#[tool_router(server_handler)]
impl BenchTools {
    #[tool(description = "Answers with its text")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p
            .parse()
            .map_err(|_| anyhow::anyhow!("usage: bench_upstream [PORT] (got {p:?})"))?,
        None => 0,
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let service = StreamableHttpService::new(
        || Ok(BenchTools),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    // The script reads this line to learn the port; flush so it is not stuck in a buffer.
    let mut out = std::io::stdout().lock();
    writeln!(out, "http://{addr}/mcp")?;
    out.flush()?;
    drop(out);
    axum::serve(listener, app).await?;
    Ok(())
}
