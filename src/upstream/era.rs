//! Which protocol era an upstream URL speaks: the probe (`server/discover`, then `initialize` on
//! Streamable HTTP, then legacy HTTP+SSE) and the cache of its verdicts (DESIGN §3.1).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::modern::{ModernConn, Probe};
use super::{Core, Handshake, HttpTransport, ServerInfo, Transport, UpstreamError, UpstreamSpec};
use super::{http, sse};

/// The two MCP protocol eras.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2024-11-05 … 2025-11-25: `initialize`, sessions, server→client requests.
    Legacy,
    /// 2026-07-28: stateless requests with `_meta`, `server/discover`.
    Modern,
}

impl Era {
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum Verdict {
    /// With what `server/discover` said: a stateless server needs no handshake per connection.
    Modern(ServerInfo),
    /// Streamable HTTP or legacy SSE.
    Legacy(HttpTransport),
}

#[derive(Default)]
struct Inner {
    verdicts: Mutex<HashMap<String, Verdict>>,
    probes: AtomicU64,
}

/// Era verdicts per upstream URL, shared by every connection a gateway opens (cheap to clone).
#[derive(Clone, Default)]
pub struct EraCache(Arc<Inner>);

impl EraCache {
    /// How many `server/discover` probes were sent through this cache.
    pub fn probes(&self) -> u64 {
        self.0.probes.load(Ordering::Relaxed)
    }

    /// The cached verdict for `url`, if any.
    pub fn era(&self, url: &url::Url) -> Option<Era> {
        self.get(url.as_str()).map(|v| match v {
            Verdict::Modern(_) => Era::Modern,
            Verdict::Legacy(_) => Era::Legacy,
        })
    }

    /// Drops the verdict for a URL: the next connection probes again.
    pub(super) fn forget(&self, key: &str) {
        self.0
            .verdicts
            .lock()
            .expect("era cache poisoned")
            .remove(key);
    }

    fn get(&self, key: &str) -> Option<Verdict> {
        self.0
            .verdicts
            .lock()
            .expect("era cache poisoned")
            .get(key)
            .cloned()
    }

    fn put(&self, key: String, verdict: Verdict) {
        self.0
            .verdicts
            .lock()
            .expect("era cache poisoned")
            .insert(key, verdict);
    }
}

/// Opens the transport for `spec`, from the cached verdict when there is one.
pub(super) async fn open(
    core: &Arc<Core>,
    spec: &UpstreamSpec,
    handshake: &Handshake,
    client: &reqwest::Client,
    eras: &EraCache,
) -> Result<(Transport, ServerInfo), UpstreamError> {
    if spec.transport == HttpTransport::Stdio {
        return Err(UpstreamError::Protocol(
            "stdio is not an HTTP transport; use connect_stdio".into(),
        ));
    }
    if spec.transport == HttpTransport::Sse {
        let (conn, server) = sse::SseConn::connect(core, spec, handshake, client).await?;
        return Ok((Transport::Sse(conn), server));
    }
    if spec.transport == HttpTransport::StreamableHttp {
        return legacy(core, spec, handshake, client).await;
    }
    let key = spec.url.as_str().to_owned();
    if let Some(verdict) = eras.get(&key) {
        match open_as(verdict, core, spec, handshake, client, eras).await {
            Ok(opened) => return Ok(opened),
            Err(e) => {
                tracing::debug!(target: "reflow::upstream", upstream = %spec.name, error = %e, "connecting with the cached era failed; probing again");
                eras.forget(&key);
            }
        }
    }
    eras.0.probes.fetch_add(1, Ordering::Relaxed);
    let legacy_reason = match ModernConn::probe(core, spec, handshake, client, eras).await? {
        Probe::Modern(conn, server) => {
            tracing::debug!(target: "reflow::upstream", upstream = %spec.name, "the upstream speaks 2026-07-28");
            eras.put(key, Verdict::Modern(server.clone()));
            return Ok((Transport::Modern(conn), server));
        }
        Probe::Legacy(reason) => reason,
    };
    tracing::debug!(target: "reflow::upstream", upstream = %spec.name, reason = %legacy_reason, "no 2026-07-28 answer; trying initialize");
    let (transport, server) = legacy(core, spec, handshake, client).await?;
    eras.put(key, Verdict::Legacy(server.transport));
    Ok((transport, server))
}

async fn open_as(
    verdict: Verdict,
    core: &Arc<Core>,
    spec: &UpstreamSpec,
    handshake: &Handshake,
    client: &reqwest::Client,
    eras: &EraCache,
) -> Result<(Transport, ServerInfo), UpstreamError> {
    match verdict {
        Verdict::Modern(server) => {
            let conn = ModernConn::known(core, spec, handshake, client, eras);
            Ok((Transport::Modern(conn), server))
        }
        Verdict::Legacy(HttpTransport::Sse) => {
            let (conn, server) = sse::SseConn::connect(core, spec, handshake, client).await?;
            Ok((Transport::Sse(conn), server))
        }
        Verdict::Legacy(_) => {
            let (conn, server) = http::HttpConn::connect(core, spec, handshake, client).await?;
            Ok((Transport::Http(conn), server))
        }
    }
}

/// `initialize` on Streamable HTTP; with `Auto`, a 400/404/405 falls back to legacy HTTP+SSE.
async fn legacy(
    core: &Arc<Core>,
    spec: &UpstreamSpec,
    handshake: &Handshake,
    client: &reqwest::Client,
) -> Result<(Transport, ServerInfo), UpstreamError> {
    match http::HttpConn::connect(core, spec, handshake, client).await {
        Ok((conn, server)) => Ok((Transport::Http(conn), server)),
        Err(UpstreamError::Status { status, .. })
            if spec.transport == HttpTransport::Auto && matches!(status, 400 | 404 | 405) =>
        {
            tracing::debug!(target: "reflow::upstream", upstream = %spec.name, status, "falling back to legacy HTTP+SSE");
            let (conn, server) = sse::SseConn::connect(core, spec, handshake, client).await?;
            Ok((Transport::Sse(conn), server))
        }
        Err(e) => Err(e),
    }
}
