//! The legacy MCP endpoint's streams and session end: `GET /mcp` (a session's standalone
//! stream, a stream resumed with `Last-Event-ID`, or without a session the legacy HTTP+SSE
//! endpoint), `GET /sse`, `DELETE /mcp`, and the SSE encoding of a session's streams. Each
//! leaves an audit row, as a POST does: the method column names the HTTP request (`GET /mcp`,
//! `DELETE /mcp`, `GET /sse`), which no JSON-RPC method can be.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::AppState;
use super::edge_audit::{self, Note};
use super::extract::{Caller, ClientIp};
use super::wire::{accepts, header_str, rpc_error};
use crate::auth::Principal;
use crate::gateway::session::{Event as SessionEvent, STANDALONE, event_id, parse_event_id};
use crate::gateway::{SessionError, SessionTransport};
use crate::mcp::{RpcError, codes, headers};

/// How long a client waits before reconnecting a broken stream.
const RETRY: Duration = Duration::from_millis(1000);

/// One SSE event as bytes. Our data is compact JSON (no newlines), or empty for priming.
fn sse_frame(id: &str, data: &str, retry: Option<Duration>) -> Bytes {
    let mut out = format!("id: {id}\n");
    if let Some(r) = retry {
        out.push_str(&format!("retry: {}\n", r.as_millis()));
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// An SSE response over a session stream: the priming event (id, retry, empty data) first when
/// `prime`, then the stream's events; comments keep an idle long-lived stream open.
pub(super) fn sse_response(
    stream: u64,
    events: tokio::sync::mpsc::UnboundedReceiver<SessionEvent>,
    prime: bool,
    keep_alive: bool,
) -> Response {
    let priming =
        prime.then(|| Ok::<_, Infallible>(sse_frame(&event_id(stream, 0), "", Some(RETRY))));
    let tick = keep_alive.then(|| tokio::time::interval(Duration::from_secs(15)));
    let body = stream::unfold((events, tick), move |(mut events, mut tick)| async move {
        let next = match tick.as_mut() {
            Some(t) => tokio::select! {
                e = events.recv() => e.map(Some),
                _ = t.tick() => Some(None),
            },
            None => events.recv().await.map(Some),
        };
        let frame = match next? {
            Some((seq, message)) => sse_frame(&event_id(stream, seq), &message, None),
            None => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, Infallible>(frame), (events, tick)))
    });
    let body = stream::iter(priming).chain(body);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(axum::body::Body::from_stream(body))
        .expect("static headers are valid")
}

/// What one of these requests did: served (the session it was for, and the response), or
/// refused with an HTTP status and a JSON-RPC error.
type Outcome = Result<(String, Response), (StatusCode, RpcError)>;

/// The request being answered, for its audit row: the method column's text, the caller, the
/// headers (their `traceparent`) and the peer address.
type Request<'a> = (&'static str, &'a Principal, &'a HeaderMap, std::net::IpAddr);

/// Writes the audit row of `outcome` and gives its response.
async fn audited(
    state: &AppState,
    request: Request<'_>,
    work: impl Future<Output = Outcome>,
) -> Response {
    let started = Instant::now();
    let outcome = work.await;
    let (method, caller, headers, ip) = request;
    let (note, res) = match outcome {
        Ok((session, res)) => (Note::served(method, Some(&session), None), res),
        Err((status, error)) => (
            Note::refused_request(method, status, &error),
            rpc_error(status, None, error),
        ),
    };
    edge_audit::record(state, caller, headers, ip, started, note).await;
    res
}

/// The 404 that tells the client its session is gone and it must initialize again.
fn session_gone(e: SessionError) -> (StatusCode, RpcError) {
    (
        StatusCode::NOT_FOUND,
        RpcError::new(codes::INVALID_REQUEST, e.to_string()),
    )
}

/// GET /mcp: the standalone stream of a session, or a resumed one with `Last-Event-ID`;
/// without a session header it is the legacy SSE endpoint, as in the original gateway.
pub(super) async fn get_mcp(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Response {
    audited(
        &state,
        ("GET /mcp", &caller, &headers, ip),
        open_stream(&state, &caller, &headers),
    )
    .await
}

async fn open_stream(state: &AppState, caller: &Principal, headers: &HeaderMap) -> Outcome {
    let Some(session_id) = header_str(headers, headers::SESSION_ID) else {
        return Ok(legacy_stream(state, caller.clone(), "/message"));
    };
    if !accepts(headers, "text/event-stream") {
        return Err((
            StatusCode::NOT_ACCEPTABLE,
            RpcError::invalid_request("Accept must include text/event-stream"),
        ));
    }
    let session = state
        .gateway
        .session(session_id, caller)
        .await
        .map_err(session_gone)?;
    let (stream, after) = match header_str(headers, headers::LAST_EVENT_ID).and_then(parse_event_id)
    {
        Some((stream, seq)) => (stream, Some(seq)),
        None => (STANDALONE, None),
    };
    let events = session.attach(stream, after).ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            RpcError::invalid_request("unknown Last-Event-ID"),
        )
    })?;
    let standalone = stream == STANDALONE;
    let res = sse_response(stream, events, standalone, standalone);
    Ok((session.id.clone(), res))
}

/// DELETE /mcp: ends the caller's session.
pub(super) async fn delete_mcp(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Response {
    audited(
        &state,
        ("DELETE /mcp", &caller, &headers, ip),
        end_session(&state, &caller, &headers),
    )
    .await
}

async fn end_session(state: &AppState, caller: &Principal, headers: &HeaderMap) -> Outcome {
    let session_id = header_str(headers, headers::SESSION_ID).ok_or_else(|| {
        (
            StatusCode::BAD_REQUEST,
            RpcError::invalid_request("missing Mcp-Session-Id header"),
        )
    })?;
    let session = state
        .gateway
        .session(session_id, caller)
        .await
        .map_err(session_gone)?;
    state.gateway.end_session(&session).await;
    Ok((session.id.clone(), StatusCode::NO_CONTENT.into_response()))
}

/// GET /sse: the legacy HTTP+SSE endpoint.
pub(super) async fn legacy_sse(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Response {
    audited(&state, ("GET /sse", &caller, &headers, ip), async {
        Ok(legacy_stream(&state, caller.clone(), "/message"))
    })
    .await
}

/// Opens a legacy HTTP+SSE session: the `endpoint` event first, then every message for it.
/// Gives the new session's id with the response.
fn legacy_stream(state: &AppState, caller: Principal, path: &str) -> (String, Response) {
    let session = state
        .gateway
        .create_session(caller, SessionTransport::LegacySse);
    let endpoint = format!("{path}?session_id={}", session.id);
    let events = session
        .attach(STANDALONE, Some(0))
        .expect("standalone stream exists");
    let first = stream::once(async move {
        Ok::<_, Infallible>(Event::default().event("endpoint").data(endpoint))
    });
    let messages = UnboundedReceiverStream::new(events)
        .map(|(_, message)| Ok(Event::default().event("message").data(message)));
    let res = Sse::new(first.chain(messages))
        .keep_alive(KeepAlive::default())
        .into_response();
    (session.id.clone(), res)
}
