//! One-off look at an HTTP upstream, as `reflow target test` and the UI's "Test connection"
//! do it: connect (probing the era), list every tool, resource and prompt (all pages), close.

use serde_json::{Value, json};

use super::{
    Handshake, HttpTransport, ServerInfo, UpstreamConnection, UpstreamError, UpstreamSpec,
};

/// Pages followed per list before giving up on an upstream that never stops paginating.
const MAX_PAGES: usize = 100;

/// What an upstream offers, as it described each item (unprefixed, unfiltered).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Offer {
    pub tools: Vec<Value>,
    pub resources: Vec<Value>,
    pub prompts: Vec<Value>,
}

#[derive(Clone, Debug)]
pub struct ProbeReport {
    pub server: ServerInfo,
    pub offer: Offer,
}

impl ProbeReport {
    /// The report as JSON: era, transport, server info, capabilities and counts.
    pub fn summary(&self, target: &str, url: &url::Url) -> Value {
        json!({
            "target": target,
            "url": url.as_str(),
            "era": self.server.era().as_str(),
            "transport": self.server.transport.as_str(),
            "protocol_version": self.server.protocol_version,
            "server_info": self.server.server_info,
            "capabilities": self.server.capabilities,
            "counts": {
                "tools": self.offer.tools.len(),
                "resources": self.offer.resources.len(),
                "prompts": self.offer.prompts.len(),
            },
        })
    }
}

async fn list_all(
    conn: &UpstreamConnection,
    method: &str,
    key: &str,
) -> Result<Vec<Value>, UpstreamError> {
    let mut items = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let page = conn
            .request(method, cursor.take().map(|c| json!({ "cursor": c })))
            .await?;
        if let Some(Value::Array(a)) = page.get(key) {
            items.extend(a.iter().cloned());
        }
        match page.get("nextCursor") {
            Some(c @ Value::String(_)) => cursor = Some(c.clone()),
            _ => break,
        }
    }
    Ok(items)
}

/// Connects to `spec` (within its timeout), lists what it offers and closes the connection.
pub async fn probe(spec: UpstreamSpec) -> Result<ProbeReport, UpstreamError> {
    let timeout = spec.timeout;
    let handshake = Handshake {
        protocol_version: crate::mcp::LATEST_LEGACY_VERSION.to_string(),
        capabilities: json!({}),
        client_info: crate::mcp::implementation_info(),
    };
    let (conn, _inbound) = tokio::time::timeout(
        timeout,
        UpstreamConnection::connect(spec, handshake, reqwest::Client::new()),
    )
    .await
    .map_err(|_| UpstreamError::Timeout)??;
    let server = conn.server().clone();
    let mut offer = Offer::default();
    for (method, key, slot) in [
        ("tools/list", "tools", &mut offer.tools),
        ("resources/list", "resources", &mut offer.resources),
        ("prompts/list", "prompts", &mut offer.prompts),
    ] {
        if server.capabilities.get(key).is_some() {
            match list_all(&conn, method, key).await {
                Ok(items) => *slot = items,
                Err(e) => {
                    conn.close().await;
                    return Err(e);
                }
            }
        }
    }
    conn.close().await;
    Ok(ProbeReport { server, offer })
}

/// The spec `target test` uses for an HTTP target's transport setting.
pub fn transport_for(t: crate::domain::Transport) -> HttpTransport {
    match t {
        crate::domain::Transport::Sse => HttpTransport::Sse,
        _ => HttpTransport::Auto,
    }
}
