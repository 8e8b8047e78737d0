//! W3C trace context of one MCP request: read from `params._meta.traceparent` (SEP-414) or the
//! HTTP `traceparent` header, and written into an upstream request's `_meta` and HTTP headers.
//! The codec is the OpenTelemetry SDK's propagator; nothing here parses `traceparent` by hand.

use std::collections::HashMap;

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use serde_json::Value;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The trace context fields a request arrived with, unparsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carrier {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Carrier {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let get = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Self {
            traceparent: get(TRACEPARENT),
            tracestate: get(TRACESTATE),
        }
    }

    pub fn from_meta(params: Option<&Value>) -> Self {
        let meta = params.and_then(|p| p.get("_meta"));
        let get = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Self {
            traceparent: get(TRACEPARENT),
            tracestate: get(TRACESTATE),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none()
    }

    /// The remote parent, or None when absent or malformed (a bad `traceparent` starts a new
    /// trace, as the W3C spec asks; it never fails the request).
    pub fn parent(&self) -> Option<SpanContext> {
        self.traceparent.as_ref()?;
        let cx = TraceContextPropagator::new().extract(self);
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            Some(sc.clone())
        } else {
            tracing::debug!(traceparent = ?self.traceparent, "ignoring a malformed traceparent");
            None
        }
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent.as_deref(),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

/// The parent of a request: the message's own `_meta` first (it travels with the request
/// through any hop), then the HTTP header.
pub fn incoming(header: &Carrier, params: Option<&Value>) -> Option<SpanContext> {
    Carrier::from_meta(params)
        .parent()
        .or_else(|| header.parent())
}

/// What an upstream request carries: `traceparent` and, when there is one, `tracestate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl Outgoing {
    pub fn of(sc: &SpanContext) -> Self {
        let cx = opentelemetry::Context::new().with_remote_span_context(sc.clone());
        let mut fields = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut fields);
        Self {
            traceparent: fields.remove(TRACEPARENT).unwrap_or_default(),
            tracestate: fields.remove(TRACESTATE).filter(|s| !s.is_empty()),
        }
    }

    /// Sets `params._meta.traceparent` (and `tracestate`), replacing what the client sent: the
    /// upstream's parent is the gateway's span, not the client's.
    pub fn inject_meta(&self, params: &mut Option<Value>) {
        let params = params.get_or_insert_with(|| Value::Object(Default::default()));
        let Some(obj) = params.as_object_mut() else {
            return;
        };
        let meta = obj
            .entry("_meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(TRACEPARENT.into(), Value::String(self.traceparent.clone()));
            match &self.tracestate {
                Some(ts) => {
                    meta.insert(TRACESTATE.into(), Value::String(ts.clone()));
                }
                None => {
                    meta.remove(TRACESTATE);
                }
            }
        }
    }
}

/// Trace ids that begin with the time (milliseconds since the epoch, 48 bits) and end with 80
/// random bits, for the SDK's tracer and for `local_span`. W3C Trace Context (level 2) asks
/// only that the rightmost 7 bytes be random. With the time first, the audit log's trace-id
/// index grows at its end; random ids made every audit row rewrite a random index page, most
/// of the database's write volume under load (UUIDv7 and X-Ray ids use the same layout).
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeOrderedIds;

impl IdGenerator for TimeOrderedIds {
    fn new_trace_id(&self) -> TraceId {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut id = [0u8; 16];
        id[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        rand::fill(&mut id[6..]);
        TraceId::from_bytes(id)
    }

    fn new_span_id(&self) -> SpanId {
        RandomIdGenerator::default().new_span_id()
    }
}

/// Ids for a span the OpenTelemetry layer did not make (export off): the parent's trace, or a
/// new one, and always a new span id, so audit rows and upstreams still share one trace id.
pub fn local_span(parent: Option<&SpanContext>) -> SpanContext {
    let ids = TimeOrderedIds;
    let (trace_id, flags, state) = match parent {
        Some(p) => (p.trace_id(), p.trace_flags(), p.trace_state().clone()),
        None => (
            ids.new_trace_id(),
            opentelemetry::trace::TraceFlags::default(),
            Default::default(),
        ),
    };
    SpanContext::new(trace_id, ids.new_span_id(), flags, false, state)
}

/// A child of `parent` with a new span id, for the same reason as `local_span`.
pub fn local_child(parent: &SpanContext) -> SpanContext {
    local_span(Some(parent))
}

pub fn trace_id_hex(id: TraceId) -> String {
    format!("{id:032x}")
}

pub fn span_id_hex(id: SpanId) -> String {
    format!("{id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_sort_by_time_and_end_random() {
        let ids = TimeOrderedIds;
        let first = ids.new_trace_id().to_bytes();
        let same_ms = ids.new_trace_id().to_bytes();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = ids.new_trace_id().to_bytes();
        assert!(first < later, "{first:?} then {later:?}");
        assert_ne!(first[9..], same_ms[9..], "the last 7 bytes are random");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let mut ms = [0u8; 8];
        ms[2..].copy_from_slice(&later[..6]);
        assert!(
            now - u64::from_be_bytes(ms) < 1000,
            "the prefix is the time"
        );
        assert_ne!(TraceId::from_bytes(later), TraceId::INVALID);
    }

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn meta_wins_over_the_header_and_malformed_values_are_ignored() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            "00-11111111111111111111111111111111-2222222222222222-01"
                .parse()
                .unwrap(),
        );
        let header = Carrier::from_headers(&h);
        let params = serde_json::json!({"_meta": {"traceparent": TP}});
        let p = incoming(&header, Some(&params)).unwrap();
        assert_eq!(
            trace_id_hex(p.trace_id()),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let p = incoming(&header, None).unwrap();
        assert_eq!(
            trace_id_hex(p.trace_id()),
            "11111111111111111111111111111111"
        );
        let bad = serde_json::json!({"_meta": {"traceparent": "00-zz-yy-01"}});
        assert_eq!(
            trace_id_hex(incoming(&header, Some(&bad)).unwrap().trace_id()),
            "11111111111111111111111111111111",
            "a malformed _meta value falls back to the header"
        );
        assert!(incoming(&Carrier::default(), Some(&bad)).is_none());
    }

    #[test]
    fn outgoing_replaces_the_clients_parent_and_keeps_other_meta() {
        let parent = Carrier::from_meta(Some(&serde_json::json!({"_meta": {"traceparent": TP}})))
            .parent()
            .unwrap();
        let child = local_child(&parent);
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        let out = Outgoing::of(&child);
        let mut params = Some(
            serde_json::json!({"name": "x", "_meta": {"traceparent": TP, "progressToken": 3}}),
        );
        out.inject_meta(&mut params);
        let meta = &params.unwrap()["_meta"];
        assert_eq!(meta["progressToken"], 3);
        assert_eq!(
            meta["traceparent"],
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
                span_id_hex(child.span_id())
            )
        );
        let mut none = None;
        out.inject_meta(&mut none);
        assert!(none.unwrap()["_meta"]["traceparent"].is_string());
    }
}
