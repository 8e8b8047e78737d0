//! The legacy HTTP+SSE transport (2024-11-05): one long GET stream that first names the POST
//! endpoint and then carries every message from the server; responses are matched to waiting
//! requests by id. The stream is the session: when it ends, the connection is closed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;
use url::Url;

use super::{
    Core, Events, Handshake, HttpTransport, Pending, ServerInfo, UpstreamError, UpstreamSpec,
    content_type, event_message, events, outcome, response_id, send_error, serialize, server_info,
    status_error,
};
use crate::mcp::jsonrpc;

pub(super) struct SseConn {
    core: Arc<Core>,
    client: reqwest::Client,
    /// Where messages are POSTed, as the server's `endpoint` event named it.
    endpoint: Url,
    post_headers: HeaderMap,
    pending: Pending,
}

impl SseConn {
    pub(super) async fn connect(
        core: &Arc<Core>,
        spec: &UpstreamSpec,
        handshake: &Handshake,
        client: &reqwest::Client,
    ) -> Result<(Arc<Self>, ServerInfo), UpstreamError> {
        let (endpoint, stream) = tokio::time::timeout(spec.timeout, open(spec, client))
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        let mut post_headers = spec.headers.clone();
        post_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let conn = Arc::new(Self {
            core: core.clone(),
            client: client.clone(),
            endpoint,
            post_headers,
            pending: Pending::default(),
        });
        let reader = conn.clone();
        tokio::spawn(async move { reader.read(stream).await });
        match conn.initialize(handshake, spec.timeout).await {
            Ok(server) => Ok((conn, server)),
            Err(e) => {
                // Stops the reader, which holds the stream open.
                core.close();
                Err(e)
            }
        }
    }

    async fn initialize(
        &self,
        handshake: &Handshake,
        timeout: Duration,
    ) -> Result<ServerInfo, UpstreamError> {
        let id = self.core.next_id();
        let body = serialize(&jsonrpc::request(
            id.clone(),
            "initialize",
            Some(handshake.params()),
        ));
        let result = tokio::time::timeout(timeout, self.call(&id, body))
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        let server = server_info(result, HttpTransport::Sse)?;
        let note = serialize(&jsonrpc::notification("notifications/initialized", None));
        tokio::time::timeout(timeout, self.send(note))
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        Ok(server)
    }

    /// Demultiplexes the stream until it ends, then closes the connection.
    async fn read(self: Arc<Self>, mut stream: Events) {
        let closed = self.core.closed_signal();
        let work = async {
            while let Some(ev) = stream.next().await {
                let Some(message) = event_message(&ev, &self.core.name) else {
                    continue;
                };
                match response_id(&message).map(|id| self.pending.take(id)) {
                    Some(Some(waiter)) => {
                        let _ = waiter.send(message);
                    }
                    Some(None) => {
                        tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, "ignoring a response nobody waits for")
                    }
                    None => self.core.deliver(message, None).await,
                }
            }
        };
        tokio::select! {
            _ = closed => {}
            _ = work => {
                tracing::info!(target: "reflow::upstream", upstream = %self.core.name, "the upstream closed its SSE stream; connection closed");
            }
        }
        // Closed first, then cleared: a request registering after the clear sees `closed`.
        self.core.close();
        self.pending.clear();
    }

    pub(super) async fn call(&self, id: &Value, body: Bytes) -> Result<Value, UpstreamError> {
        let (_guard, answer) = self.pending.insert(id);
        if self.core.is_closed() {
            return Err(UpstreamError::Closed);
        }
        self.send(body).await?;
        match answer.await {
            Ok(message) => outcome(message),
            Err(_) => Err(UpstreamError::Closed),
        }
    }

    /// POSTs one message to the endpoint (the server answers 202; the response, if any, comes on
    /// the stream).
    pub(super) async fn send(&self, body: Bytes) -> Result<(), UpstreamError> {
        let mut headers = self.post_headers.clone();
        crate::telemetry::spans::add_trace_headers(&mut headers);
        let resp = self
            .client
            .post(self.endpoint.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(send_error)?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        // Read the short body ("Accepted") so the pooled connection can be reused.
        let _ = resp.bytes().await;
        Ok(())
    }

    /// After `close()`: waiting requests fail now rather than at their timeout.
    pub(super) fn closed(&self) {
        self.pending.clear();
    }
}

/// GETs the stream and waits for the `endpoint` event.
async fn open(
    spec: &UpstreamSpec,
    client: &reqwest::Client,
) -> Result<(Url, Events), UpstreamError> {
    let mut h = spec.headers.clone();
    h.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    let resp = client
        .get(spec.url.clone())
        .headers(h)
        .send()
        .await
        .map_err(send_error)?;
    if !resp.status().is_success() {
        return Err(status_error(resp).await);
    }
    if !content_type(&resp).starts_with("text/event-stream") {
        return Err(UpstreamError::Protocol(
            "the legacy SSE endpoint did not answer with an event stream".into(),
        ));
    }
    let mut stream = events(resp, spec.max_message);
    while let Some(ev) = stream.next().await {
        if ev.event != "endpoint" {
            continue;
        }
        let endpoint = spec.url.join(ev.data.trim()).map_err(|e| {
            UpstreamError::Protocol(format!("the endpoint event is not a URL: {e}"))
        })?;
        // Never send the target's credentials to a host the operator did not configure.
        if endpoint.origin() != spec.url.origin() {
            return Err(UpstreamError::Protocol(
                "the endpoint event names another origin".into(),
            ));
        }
        return Ok((endpoint, stream));
    }
    Err(UpstreamError::Protocol(
        "the SSE stream ended before the endpoint event".into(),
    ))
}
