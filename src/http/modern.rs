//! The MCP endpoint, 2026-07-28 era: one self-contained POST per request on `/mcp`. The
//! header ladder first (400 with -32602/-32020/-32022, 404/-32601 for methods the era does not
//! have), then the request runs statelessly and is answered as JSON when nothing precedes the
//! response, else as an SSE stream scoped to the request; closing it cancels the request.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::AppState;
use crate::auth::Principal;
use crate::gateway::{Call, Session, Step};
use crate::mcp::modern::{self as wire};
use crate::mcp::{Kind, RpcError, classify, codes, headers, jsonrpc};
use crate::telemetry::spans::Origin;

use super::edge_audit::Note;

/// A JSON-RPC message as plain JSON, with the status its error code maps to.
fn reply(message: Value) -> Response {
    let status = message["error"]["code"]
        .as_i64()
        .map(wire::http_status)
        .unwrap_or(200);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Json(message),
    )
        .into_response()
}

fn error(id: Value, e: RpcError) -> Response {
    reply(jsonrpc::error_response(id, &e))
}

/// An error the endpoint answers itself, before the router: noted for the audit log.
fn refuse(note: &mut Option<Note>, message: &Value, id: Value, e: RpcError) -> Response {
    let status = StatusCode::from_u16(wire::http_status(e.code)).unwrap_or(StatusCode::BAD_REQUEST);
    *note = Some(Note::refused(Some(message), status, &e));
    error(id, e)
}

fn accepts_sse(h: &HeaderMap) -> bool {
    super::wire::accepts(h, "text/event-stream")
}

/// Handles one modern POST (the caller has parsed the body and checked content types).
pub async fn post(
    state: &AppState,
    caller: Principal,
    h: &HeaderMap,
    ip: std::net::IpAddr,
    mut message: Value,
    note: &mut Option<Note>,
) -> Response {
    let (id, method) = match classify(&message) {
        Kind::Request { id, method } => (id.clone(), method.to_string()),
        // No client→server notification means anything here (cancelling is closing the
        // stream); acknowledged and dropped like the reference servers do.
        Kind::Notification { method } => {
            *note = Some(Note::served(method, None, None));
            return StatusCode::ACCEPTED.into_response();
        }
        Kind::Invalid(reason) => {
            return refuse(
                note,
                &message,
                message.get("id").cloned().unwrap_or(Value::Null),
                RpcError::invalid_request(reason),
            );
        }
        Kind::Response { .. } | Kind::Error { .. } => {
            return refuse(
                note,
                &message,
                Value::Null,
                RpcError::invalid_request(
                    "a 2026-07-28 POST carries one request or notification, never a response",
                ),
            );
        }
    };
    if wire::REMOVED_METHODS.contains(&method.as_str()) {
        return refuse(note, &message, id, RpcError::method_not_found(&method));
    }
    for name in [headers::PROTOCOL_VERSION, headers::METHOD, headers::NAME] {
        if h.get_all(name).iter().count() > 1 {
            return refuse(
                note,
                &message,
                id,
                RpcError::new(
                    codes::HEADER_MISMATCH,
                    format!("the {name} header appears more than once"),
                ),
            );
        }
    }
    let envelope = match wire::check_envelope(&message, |n| super::wire::header_str(h, n)) {
        Ok(e) => e,
        Err(e) => return refuse(note, &message, id, e),
    };
    if !wire::METHODS.contains(&method.as_str()) {
        return refuse(note, &message, id, RpcError::method_not_found(&method));
    }
    let gateway = state.gateway.clone();
    // Checked by the router against the called tool's schema once it has located the tool.
    let param_headers = wire::ParamHeaders::of(
        h.iter()
            .map(|(name, value)| (name.as_str(), value.to_str().ok())),
    );
    let session = Arc::new(Session::modern(
        caller,
        &envelope.protocol_version,
        envelope.client_capabilities,
        param_headers,
    ));
    let params = message.get("params");
    let origin = Origin::of(h, params, ip);
    if wire::task_method(&method)
        && !wire::declares_tasks(&session.client_capabilities.lock().unwrap())
    {
        return refuse(note, &message, id, missing_tasks_extension(&method));
    }
    match method.as_str() {
        // Both are answered here, not by the router, so noted here for the audit log.
        "server/discover" => {
            let result = gateway.discover(&session).await;
            *note = Some(Note::served(&method, None, None));
            return reply(jsonrpc::response(id, result));
        }
        "subscriptions/listen" => {
            // Boxed: a listen stream's future is large and would size every other request's.
            return Box::pin(listen(state, &session, (&message, id), params, h, note)).await;
        }
        _ => {}
    }
    let resuming = wire::interactive(&method)
        && params
            .as_ref()
            .is_some_and(|p| p.get("requestState").is_some());
    let call = if resuming {
        match gateway
            .resume_call(session, id.clone(), &method, params.cloned(), origin)
            .await
        {
            Ok(call) => call,
            Err(e) => return refuse(note, &message, id, e),
        }
    } else {
        // Nothing is refused past here: the params move on without a copy.
        let params = message.as_object_mut().and_then(|m| m.remove("params"));
        gateway.start_call(session, id, &method, params, origin)
    };
    respond(call, accepts_sse(h)).await
}

/// -32021 for a tasks method from a request that did not declare the extension (SEP-2663).
fn missing_tasks_extension(method: &str) -> RpcError {
    RpcError::new(
        codes::MISSING_CLIENT_CAPABILITY,
        format!(
            "{method} needs the {} extension; declare it in _meta[{:?}].extensions",
            wire::TASKS_EXTENSION,
            wire::CLIENT_CAPABILITIES_KEY
        ),
    )
    .with_data(json!({ "requiredCapabilities": { "extensions": { wire::TASKS_EXTENSION: {} } } }))
}

/// JSON when the response comes first (or the client takes no SSE), else an SSE stream of
/// the request's notifications ending with the response. A client that closes the stream
/// drops the call, which cancels the upstream request.
async fn respond(mut call: Call, sse: bool) -> Response {
    let first = match call.next().await {
        Step::Final(m) => return reply(m),
        Step::Page(page) => return super::wire::json_text(page.to_json()),
        Step::Note(n) => n,
    };
    if !sse {
        loop {
            match call.next().await {
                Step::Final(m) => return reply(m),
                Step::Page(page) => return super::wire::json_text(page.to_json()),
                Step::Note(_) => {}
            }
        }
    }
    // Messages as JSON text: a list page is written out from the text the list cache keeps.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let _ = tx.send(first.to_string());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                step = call.next() => match step {
                    Step::Note(n) => {
                        if tx.send(n.to_string()).is_err() {
                            break;
                        }
                    }
                    Step::Final(m) => {
                        let _ = tx.send(m.to_string());
                        break;
                    }
                    Step::Page(page) => {
                        let _ = tx.send(page.to_json());
                        break;
                    }
                },
                _ = tx.closed() => break,
            }
        }
    });
    sse_of(rx)
}

fn sse_of(rx: tokio::sync::mpsc::UnboundedReceiver<String>) -> Response {
    let events = UnboundedReceiverStream::new(rx)
        .map(|m| Ok::<_, Infallible>(Event::default().event("message").data(m)));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `subscriptions/listen`: the acknowledgement first, then the matching notifications for as
/// long as the client keeps the stream open.
async fn listen(
    state: &AppState,
    session: &Arc<Session>,
    (message, id): (&Value, Value),
    params: Option<&Value>,
    h: &HeaderMap,
    note: &mut Option<Note>,
) -> Response {
    if !accepts_sse(h) {
        return refuse(
            note,
            message,
            id,
            RpcError::invalid_request("subscriptions/listen needs Accept: text/event-stream"),
        );
    }
    let (ack, rx) = match state.gateway.listen(session, &id, params).await {
        Ok(pair) => pair,
        Err(e) => return refuse(note, message, id, e),
    };
    *note = Some(Note::served("subscriptions/listen", None, None));
    // When the gateway ends the subscription (shutdown), the stream closes with its result.
    let closing = jsonrpc::response(
        id.clone(),
        json!({ "resultType": "complete", "_meta": { wire::SUBSCRIPTION_ID_KEY: id } }),
    );
    let events = stream::once(async move { ack })
        .chain(UnboundedReceiverStream::new(rx))
        .chain(stream::once(async move { closing }))
        .map(|m| Ok::<_, Infallible>(Event::default().event("message").data(m.to_string())));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
