//! The Streamable HTTP transport (2025-03-26 … 2025-11-25): one POST per message answered with
//! JSON or an SSE stream, the GET stream for unsolicited messages, session ids with transparent
//! re-initialization on expiry, and SSE resumption (`Last-Event-ID` after `retry:`).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::sync::oneshot;
use url::Url;

use super::{
    Core, Events, Handshake, HttpTransport, Pending, ServerInfo, StreamSignal, UpstreamError,
    UpstreamSpec, content_type, event_message, events, outcome, response_id, send_error, serialize,
    server_info, status_error,
};
use crate::mcp::{headers, jsonrpc};

/// Reconnection delay until a stream says otherwise with `retry:`.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// Attempts to resume one POST's response stream before the request fails.
const MAX_RESUMES: u32 = 5;
/// Consecutive failed GET-stream connections before reflow stops reopening it.
const MAX_GET_FAILURES: u32 = 5;

/// The server's session as we last knew it. `generation` grows with every (re-)initialization,
/// so a stale 404 or a stale `Last-Event-ID` is recognised as belonging to an older session.
#[derive(Clone, Default)]
struct Session {
    id: Option<HeaderValue>,
    version: Option<HeaderValue>,
    generation: u64,
}

type Reinit = Shared<BoxFuture<'static, Result<(), UpstreamError>>>;

pub(super) struct HttpConn {
    core: Arc<Core>,
    client: reqwest::Client,
    url: Url,
    /// The spec's headers plus Accept and Content-Type, built once.
    post_headers: HeaderMap,
    get_headers: HeaderMap,
    timeout: Duration,
    handshake: Handshake,
    session: RwLock<Session>,
    /// The re-initialization in flight, keyed by the generation it replaces: every request that
    /// hit the same expired session awaits this one future instead of starting its own.
    reinit: Mutex<Option<(u64, Reinit)>>,
    /// Requests in flight. Their response normally comes on their own POST, but a server may
    /// deliver it on another stream (a resumed one, or the GET stream); it is routed from there.
    pending: Pending,
}

/// What waiting for a resumed stream produced.
enum Resumed {
    Stream(Events),
    /// The response arrived on another stream in the meantime.
    Answer(Value),
}

impl HttpConn {
    pub(super) async fn connect(
        core: &Arc<Core>,
        spec: &UpstreamSpec,
        handshake: &Handshake,
        client: &reqwest::Client,
    ) -> Result<(Arc<Self>, ServerInfo), UpstreamError> {
        let mut post_headers = spec.headers.clone();
        post_headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        post_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut get_headers = spec.headers.clone();
        get_headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let conn = Arc::new(Self {
            core: core.clone(),
            client: client.clone(),
            url: spec.url.clone(),
            post_headers,
            get_headers,
            timeout: spec.timeout,
            handshake: handshake.clone(),
            session: RwLock::new(Session::default()),
            reinit: Mutex::new(None),
            pending: Pending::default(),
        });
        let server = conn.initialize().await?;
        Ok((conn, server))
    }

    fn session(&self) -> Session {
        self.session.read().expect("session lock poisoned").clone()
    }

    /// `initialize` on a fresh session, then `notifications/initialized`; publishes the session.
    async fn initialize(&self) -> Result<ServerInfo, UpstreamError> {
        let id = self.core.next_id();
        let body = serialize(&jsonrpc::request(
            id.clone(),
            "initialize",
            Some(self.handshake.params()),
        ));
        let fresh = Session::default();
        let exchange = async {
            let resp = self.post(&fresh, body).await.map_err(send_error)?;
            if !resp.status().is_success() {
                return Err(status_error(resp).await);
            }
            let session_id = resp.headers().get(headers::SESSION_ID).cloned();
            // The handshake is not in `pending`: nothing else can carry its response.
            let (_never, mut answer) = tokio::sync::oneshot::channel();
            let result = self
                .read_answer(resp, &id, self.session().generation, &mut answer)
                .await?;
            Ok((result, session_id))
        };
        let (result, session_id) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        let server = server_info(result, HttpTransport::StreamableHttp)?;
        let generation = self.session().generation + 1;
        let session = Session {
            id: session_id,
            version: HeaderValue::from_str(&server.protocol_version).ok(),
            generation,
        };
        // The server must see `initialized` before anything else on the new session.
        let note = serialize(&jsonrpc::notification("notifications/initialized", None));
        let resp = tokio::time::timeout(self.timeout, self.post(&session, note))
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(send_error)?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        *self.session.write().expect("session lock poisoned") = session;
        Ok(server)
    }

    fn post(
        &self,
        session: &Session,
        body: Bytes,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
        let mut h = self.post_headers.clone();
        session_headers(&mut h, session);
        crate::telemetry::spans::add_trace_headers(&mut h);
        self.client
            .post(self.url.clone())
            .headers(h)
            .body(body)
            .send()
    }

    fn get(
        &self,
        session: &Session,
        last_event_id: Option<&str>,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
        let mut h = self.get_headers.clone();
        session_headers(&mut h, session);
        if let Some(v) = last_event_id.and_then(|id| HeaderValue::from_str(id).ok()) {
            h.insert(headers::LAST_EVENT_ID, v);
        }
        self.client.get(self.url.clone()).headers(h).send()
    }

    /// POSTs a message; a 404 on our session means it expired: re-initialize and post once more.
    async fn post_recovering(
        self: &Arc<Self>,
        body: Bytes,
    ) -> Result<reqwest::Response, UpstreamError> {
        let session = self.session();
        let resp = self
            .post(&session, body.clone())
            .await
            .map_err(send_error)?;
        let status = resp.status();
        let resp = if session.id.is_some()
            && (status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST)
        {
            // 404 is the spec's answer to a session the server no longer knows; servers that
            // restarted often say 400 instead ("Bad Request: No valid session ID provided").
            // Either way: one new session, one retry, then whatever the server says.
            let error = status_error(resp).await;
            let gone = status == StatusCode::NOT_FOUND
                || matches!(&error, UpstreamError::Status { body, .. } if names_a_session(body));
            if !gone {
                return Err(error);
            }
            tracing::info!(target: "reflow::upstream", upstream = %self.core.name, status = status.as_u16(), "upstream session is gone; re-initializing");
            self.reinitialize(session.generation).await?;
            self.post(&self.session(), body).await.map_err(send_error)?
        } else {
            resp
        };
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(status_error(resp).await)
        }
    }

    pub(super) async fn call(
        self: &Arc<Self>,
        id: &Value,
        body: Bytes,
    ) -> Result<Value, UpstreamError> {
        let (_guard, mut answer) = self.pending.insert(id);
        let resp = self.post_recovering(body).await?;
        let generation = self.session().generation;
        self.read_answer(resp, id, generation, &mut answer).await
    }

    /// Posts a notification or a response (the server answers 202).
    pub(super) async fn send(self: &Arc<Self>, body: Bytes) -> Result<(), UpstreamError> {
        let resp = self.post_recovering(body).await?;
        // Read the (empty) body so the pooled connection can be reused.
        let _ = resp.bytes().await;
        Ok(())
    }

    /// One re-initialization per expired session, however many requests noticed the expiry.
    async fn reinitialize(self: &Arc<Self>, stale: u64) -> Result<(), UpstreamError> {
        let shared = {
            let mut slot = self.reinit.lock().expect("reinit lock poisoned");
            if self.session().generation != stale {
                return Ok(()); // someone else already replaced that session
            }
            match &*slot {
                Some((g, f)) if *g == stale => f.clone(),
                _ => {
                    let this = self.clone();
                    let f = async move { this.initialize().await.map(|_| ()) }
                        .boxed()
                        .shared();
                    *slot = Some((stale, f.clone()));
                    f
                }
            }
        };
        let result = shared.await;
        if result.is_err() {
            // Let the next request try again rather than replay this failure forever.
            let mut slot = self.reinit.lock().expect("reinit lock poisoned");
            if matches!(&*slot, Some((g, _)) if *g == stale) {
                *slot = None;
            }
        }
        result
    }

    /// The response to `id` from a POST's answer: a JSON body or an SSE stream.
    async fn read_answer(
        &self,
        resp: reqwest::Response,
        id: &Value,
        generation: u64,
        answer: &mut oneshot::Receiver<Value>,
    ) -> Result<Value, UpstreamError> {
        let ct = content_type(&resp);
        if ct.starts_with("text/event-stream") {
            self.core.signal(id, StreamSignal::Opened).await;
            return self
                .read_stream(events(resp, self.core.max_message), id, generation, answer)
                .await;
        }
        if !ct.starts_with("application/json") {
            return Err(UpstreamError::Protocol(format!(
                "unexpected content type {ct:?} for a request"
            )));
        }
        let bytes = super::limits::body(resp, self.core.max_message).await?;
        let message: Value = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::Protocol(format!("the response is not JSON: {e}")))?;
        match response_id(&message) {
            Some(rid) if rid == id => outcome(message),
            _ => Err(UpstreamError::Protocol(
                "the JSON answer is not the response to the request".into(),
            )),
        }
    }

    /// Reads a POST's SSE stream: everything before our response goes to the gateway, in order,
    /// tagged with our request id. A stream that ends early is resumed on GET.
    async fn read_stream(
        &self,
        mut stream: Events,
        id: &Value,
        generation: u64,
        answer: &mut oneshot::Receiver<Value>,
    ) -> Result<Value, UpstreamError> {
        let mut last_event: Option<String> = None;
        let mut retry = DEFAULT_RETRY;
        let mut resumes = 0;
        loop {
            loop {
                // This stream first: what it carried before the response is delivered first.
                let ev = tokio::select! {
                    biased;
                    ev = stream.next() => ev,
                    elsewhere = &mut *answer => return elsewhere.map_err(|_| UpstreamError::Closed).and_then(outcome),
                };
                let Some(ev) = ev else { break };
                if !ev.id.is_empty() {
                    last_event = Some(ev.id.clone());
                }
                if let Some(r) = ev.retry {
                    retry = r;
                }
                let Some(message) = event_message(&ev, &self.core.name) else {
                    continue;
                };
                match response_id(&message) {
                    Some(rid) if rid == id => return outcome(message),
                    Some(other) => {
                        if let Some(waiter) = self.pending.take(other) {
                            let _ = waiter.send(message);
                        }
                    }
                    None => self.core.deliver(message, Some(id.clone())).await,
                }
            }
            let Some(last) = last_event.as_deref() else {
                return Err(UpstreamError::Protocol(
                    "the response stream ended before the response, and cannot be resumed".into(),
                ));
            };
            self.core.signal(id, StreamSignal::Broken { retry }).await;
            match self
                .resume(last, retry, &mut resumes, generation, answer)
                .await?
            {
                Resumed::Stream(resumed) => stream = resumed,
                Resumed::Answer(message) => return outcome(message),
            }
        }
    }

    /// GET with `Last-Event-ID` after the stream's retry delay, a bounded number of times.
    async fn resume(
        &self,
        last_event: &str,
        retry: Duration,
        resumes: &mut u32,
        generation: u64,
        answer: &mut oneshot::Receiver<Value>,
    ) -> Result<Resumed, UpstreamError> {
        loop {
            *resumes += 1;
            if *resumes > MAX_RESUMES {
                return Err(UpstreamError::Protocol(
                    "the response stream broke and could not be resumed".into(),
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                elsewhere = &mut *answer => {
                    return elsewhere.map(Resumed::Answer).map_err(|_| UpstreamError::Closed);
                }
            }
            let session = self.session();
            if session.generation != generation {
                return Err(UpstreamError::Protocol(
                    "the upstream session was replaced while a response was pending".into(),
                ));
            }
            match self.get(&session, Some(last_event)).await {
                Ok(resp)
                    if resp.status().is_success()
                        && content_type(&resp).starts_with("text/event-stream") =>
                {
                    return Ok(Resumed::Stream(events(resp, self.core.max_message)));
                }
                Ok(resp) => {
                    tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, status = resp.status().as_u16(), "could not resume a response stream")
                }
                Err(e) => {
                    tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, error = %super::describe(e), "could not resume a response stream")
                }
            }
        }
    }

    /// Opens the GET stream; it is read in the background until the connection closes. The first
    /// GET is answered before `connect` returns, so the server knows the stream before any request
    /// (and never sends a request's messages to a stream that opens later).
    pub(super) async fn start_get_stream(self: &Arc<Self>) {
        let first = tokio::time::timeout(self.timeout, self.get(&self.session(), None))
            .await
            .ok();
        let this = self.clone();
        let closed = self.core.closed_signal();
        tokio::spawn(async move {
            tokio::select! {
                _ = closed => {}
                _ = this.get_stream(first) => {}
            }
        });
    }

    async fn get_stream(self: &Arc<Self>, mut first: Option<reqwest::Result<reqwest::Response>>) {
        let name = self.core.name.clone();
        let mut last: Option<(u64, String)> = None;
        let mut retry = DEFAULT_RETRY;
        let mut failures = 0;
        loop {
            let session = self.session();
            // An event id only means something to the session that issued it.
            let resume = last
                .as_ref()
                .filter(|(g, _)| *g == session.generation)
                .map(|(_, id)| id.as_str());
            let answer = match first.take() {
                Some(answer) => answer,
                None => self.get(&session, resume).await,
            };
            match answer {
                Ok(resp) if resp.status() == StatusCode::METHOD_NOT_ALLOWED => {
                    tracing::debug!(target: "reflow::upstream", upstream = %name, "the upstream offers no GET stream");
                    return;
                }
                Ok(resp) if resp.status() == StatusCode::NOT_FOUND && session.id.is_some() => {
                    failures += 1;
                    match self.reinitialize(session.generation).await {
                        Ok(()) if failures < MAX_GET_FAILURES => continue,
                        Ok(()) => {}
                        Err(e) => {
                            tracing::debug!(target: "reflow::upstream", upstream = %name, error = %e, "re-initializing for the GET stream failed")
                        }
                    }
                }
                Ok(resp)
                    if resp.status().is_success()
                        && content_type(&resp).starts_with("text/event-stream") =>
                {
                    failures = 0;
                    let mut stream = events(resp, self.core.max_message);
                    while let Some(ev) = stream.next().await {
                        if !ev.id.is_empty() {
                            last = Some((session.generation, ev.id.clone()));
                        }
                        if let Some(r) = ev.retry {
                            retry = r;
                        }
                        let Some(message) = event_message(&ev, &name) else {
                            continue;
                        };
                        match response_id(&message).map(|id| self.pending.take(id)) {
                            Some(Some(waiter)) => {
                                let _ = waiter.send(message);
                            }
                            Some(None) => {
                                tracing::debug!(target: "reflow::upstream", upstream = %name, "ignoring a response nobody waits for")
                            }
                            None => self.core.deliver(message, None).await,
                        }
                    }
                }
                Ok(resp) if resp.status().is_success() => {
                    tracing::debug!(target: "reflow::upstream", upstream = %name, "the GET answer is not an event stream; no GET stream");
                    return;
                }
                Ok(resp) => {
                    failures += 1;
                    tracing::debug!(target: "reflow::upstream", upstream = %name, status = resp.status().as_u16(), "the GET stream was refused");
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(target: "reflow::upstream", upstream = %name, error = %super::describe(e), "the GET stream failed");
                }
            }
            if failures >= MAX_GET_FAILURES {
                tracing::warn!(target: "reflow::upstream", upstream = %name, "giving up on the GET stream after repeated failures");
                return;
            }
            tokio::time::sleep(retry).await;
        }
    }

    /// Ends the server's session (best effort: 405 means the server does not allow it).
    pub(super) async fn terminate(&self) {
        let session = self.session();
        let Some(id) = session.id else { return };
        let mut h = HeaderMap::new();
        for (k, v) in &self.get_headers {
            if k != ACCEPT {
                h.append(k, v.clone());
            }
        }
        h.insert(headers::SESSION_ID, id);
        if let Some(v) = session.version {
            h.insert(headers::PROTOCOL_VERSION, v);
        }
        let delete = self.client.delete(self.url.clone()).headers(h).send();
        let limit = self.timeout.min(Duration::from_secs(5));
        if let Ok(Err(e)) = tokio::time::timeout(limit, delete).await {
            tracing::debug!(target: "reflow::upstream", upstream = %self.core.name, error = %super::describe(e), "DELETE of the upstream session failed");
        }
    }
}

fn session_headers(h: &mut HeaderMap, session: &Session) {
    if let Some(id) = &session.id {
        h.insert(headers::SESSION_ID, id.clone());
    }
    if let Some(v) = &session.version {
        h.insert(headers::PROTOCOL_VERSION, v.clone());
    }
}

/// Whether a 400's body says the session is the problem (unknown, missing, invalid or expired
/// session id), as the TypeScript and Python SDKs' servers word it after a restart.
fn names_a_session(body: &str) -> bool {
    body.to_ascii_lowercase().contains("session")
}

#[cfg(test)]
mod session_error_tests {
    use super::names_a_session;

    #[test]
    fn the_sdk_wordings_of_a_lost_session_are_recognized() {
        assert!(names_a_session(
            r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#
        ));
        assert!(names_a_session("Bad Request: Session not found"));
        assert!(!names_a_session(
            r#"{"error":{"code":-32602,"message":"Invalid params"}}"#
        ));
    }
}
