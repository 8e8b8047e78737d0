//! How reaching an upstream fails, and the JSON-RPC error a downstream client sees for it.

use serde_json::json;

use crate::mcp::jsonrpc::{RpcError, codes};

#[derive(Clone, Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the upstream: {0}")]
    Connect(String),
    #[error("the upstream answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the upstream answered with an error: {0}")]
    Rpc(RpcError),
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the connection to the upstream is closed")]
    Closed,
    #[error("the upstream broke the protocol: {0}")]
    Protocol(String),
    /// A stdio upstream's process ended; says how (exit code or signal).
    #[error("the upstream process exited ({0})")]
    Exited(String),
    /// What serves the upstream went away under the request (a pod deleted or evicted).
    #[error("the upstream went away ({0})")]
    Gone(String),
}

impl UpstreamError {
    /// The JSON-RPC error a downstream client sees. An upstream's own JSON-RPC error passes through
    /// unchanged (its code and data mean something to the client); every failure of reaching the
    /// upstream names the target and carries no header value or URL.
    pub fn to_rpc(&self, target: &str) -> RpcError {
        let (code, message) = match self {
            UpstreamError::Rpc(e) => return e.clone(),
            UpstreamError::Connect(m) => (
                codes::UPSTREAM_ERROR,
                format!("upstream {target} is unreachable: {m}"),
            ),
            UpstreamError::Status { status, .. } => (
                codes::UPSTREAM_ERROR,
                format!("upstream {target} failed with HTTP status {status}"),
            ),
            UpstreamError::Timeout => (
                codes::REQUEST_TIMEOUT,
                format!("upstream {target} did not answer in time"),
            ),
            UpstreamError::Closed => (
                codes::UPSTREAM_ERROR,
                format!("the connection to upstream {target} is closed"),
            ),
            UpstreamError::Protocol(m) => (
                codes::UPSTREAM_ERROR,
                format!("upstream {target} broke the MCP protocol: {m}"),
            ),
            UpstreamError::Exited(status) => (
                codes::UPSTREAM_ERROR,
                format!(
                    "the process of upstream {target} exited ({status}); it restarts on the next call"
                ),
            ),
            UpstreamError::Gone(why) => (
                codes::UPSTREAM_ERROR,
                format!(
                    "upstream {target} went away ({why}); it is started again on the next call"
                ),
            ),
        };
        let mut err = RpcError::new(code, message);
        err.data = Some(json!({ "target": target }));
        err
    }
}
