//! MCP wire helpers: the JSON-RPC envelope, method names, protocol versions. No I/O.
//!
//! Messages stay `serde_json::Value` end to end (DESIGN §3.2): only the fields the gateway must
//! read or rewrite are touched, so unknown and future fields pass through untouched.

pub mod jsonrpc;
pub mod modern;
pub mod prepared;

pub use jsonrpc::{Kind, RpcError, classify, codes};

/// Protocol versions of the legacy (session) era, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
pub const LATEST_LEGACY_VERSION: &str = LEGACY_VERSIONS[0];
/// The first stateless protocol version.
pub const MODERN_VERSION: &str = "2026-07-28";

/// Header names of the Streamable HTTP transport.
pub mod headers {
    pub const SESSION_ID: &str = "mcp-session-id";
    pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
    pub const LAST_EVENT_ID: &str = "last-event-id";
    /// 2026-07-28: the request's method, mirrored from the body.
    pub const METHOD: &str = "mcp-method";
    /// 2026-07-28: the tool or prompt name or the resource URI, mirrored from the body.
    pub const NAME: &str = "mcp-name";
    /// 2026-07-28: `Mcp-Param-{token}` mirrors a tool argument annotated with `x-mcp-header`.
    pub const PARAM_PREFIX: &str = "mcp-param-";
}

/// What reflow says it is, in `initialize` results and upstream handshakes.
pub fn implementation_info() -> serde_json::Value {
    serde_json::json!({ "name": "reflow", "version": env!("CARGO_PKG_VERSION") })
}
