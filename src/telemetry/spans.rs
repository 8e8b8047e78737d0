//! The spans of one MCP request, after the OpenTelemetry MCP conventions: a SERVER span per
//! client request and a CLIENT span per upstream call, and the task-local context through which
//! an upstream transport learns the `traceparent` of the call it is carrying.
//!
//! With export off the spans still exist (JSON logs carry their ids) and the ids are made here,
//! so audit rows and upstreams share one trace id whether or not anything is exported.

use std::net::IpAddr;

use opentelemetry::trace::SpanContext;
use serde_json::Value;
use tracing::field::Empty;

use super::context::{self, Carrier, Outgoing};

/// The `tracing` target of every span meant for export; the OTLP layer takes only these.
pub const TARGET: &str = "reflow::otel";

/// Where a request came from: its trace context and the peer address.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub carrier: Carrier,
    pub peer: Option<IpAddr>,
}

impl Origin {
    /// The request's own `params._meta.traceparent` when it parses, else the HTTP header's.
    pub fn of(headers: &axum::http::HeaderMap, params: Option<&Value>, peer: IpAddr) -> Self {
        let meta = Carrier::from_meta(params);
        let carrier = if meta.parent().is_some() {
            meta
        } else {
            Carrier::from_headers(headers)
        };
        Self {
            carrier,
            peer: (!peer.is_unspecified()).then_some(peer),
        }
    }
}

/// What the SERVER span of one request says about it.
pub struct ServerRequest<'a> {
    pub method: &'a str,
    /// The tool or prompt name, for the span name and `gen_ai.*` attributes.
    pub tool: Option<&'a str>,
    pub prompt: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub protocol_version: &'a str,
    pub request_id: &'a Value,
    pub user_id: String,
}

pub struct ServerSpan {
    pub span: tracing::Span,
    pub context: SpanContext,
}

tokio::task_local! {
    /// The SERVER span context of the request this task is handling.
    static REQUEST: SpanContext;
    /// The trace context of the upstream call this task is making.
    static UPSTREAM: Outgoing;
}

impl ServerSpan {
    pub fn start(req: &ServerRequest<'_>, origin: &Origin) -> Self {
        let parent = origin.carrier.parent();
        let name = match (req.tool, req.prompt) {
            (Some(n), _) | (None, Some(n)) => format!("{} {n}", req.method),
            _ => req.method.to_string(),
        };
        let span = tracing::info_span!(
            target: TARGET,
            "mcp.server",
            otel.name = %name,
            otel.kind = "server",
            otel.status_code = Empty,
            trace_id = Empty,
            span_id = Empty,
        );
        let context = exported_context(&span, parent.as_ref(), |s| {
            otel::server_attributes(s, req, origin)
        })
        .unwrap_or_else(|| context::local_span(parent.as_ref()));
        span.record("trace_id", context::trace_id_hex(context.trace_id()));
        span.record("span_id", context::span_id_hex(context.span_id()));
        Self { span, context }
    }

    /// Records the outcome: `error.type` is the JSON-RPC code or `tool_error`.
    pub fn finish(&self, policy: Option<(&str, &str)>, error_type: Option<&str>) {
        if let Some(e) = error_type {
            self.span.record("otel.status_code", "ERROR");
            otel::set(&self.span, "error.type", e.to_string());
        }
        if let Some((decision, name)) = policy {
            otel::set(&self.span, "reflow.policy.decision", decision.to_string());
            if !name.is_empty() {
                otel::set(&self.span, "reflow.policy.name", name.to_string());
            }
        }
    }

    /// Runs `f` (the request's dispatch) inside this span, with its context task-local.
    /// Not an `async fn`: one would keep `f` as an argument beside the wrapped copy it awaits,
    /// doubling the request's future, which is moved (copied) at every level on its way in.
    pub fn run<F: Future>(&self, f: F) -> impl Future<Output = F::Output> + use<F> {
        use tracing::Instrument;
        REQUEST.scope(self.context.clone(), f.instrument(self.span.clone()))
    }
}

/// A CLIENT span for one upstream call, child of the current request's span.
pub struct ClientSpan {
    pub span: tracing::Span,
    pub outgoing: Option<Outgoing>,
}

impl ClientSpan {
    pub fn start(method: &str, target: &str, transport: &'static str, era: &'static str) -> Self {
        let span = tracing::info_span!(
            target: TARGET,
            "mcp.client",
            otel.name = %method,
            otel.kind = "client",
            otel.status_code = Empty,
        );
        let parent = REQUEST.try_with(Clone::clone).ok();
        let context = exported_context(&span, None, |s| {
            otel::client_attributes(s, method, target, transport, era)
        })
        .or_else(|| parent.as_ref().map(context::local_child));
        Self {
            span,
            outgoing: context.as_ref().map(Outgoing::of),
        }
    }

    pub fn fail(&self, error_type: &str) {
        self.span.record("otel.status_code", "ERROR");
        otel::set(&self.span, "error.type", error_type.to_string());
    }

    /// Runs the upstream call inside this span, its `traceparent` visible to the transport.
    /// Not an `async fn`, for the reason given at `ServerSpan::run`.
    pub fn run<F: Future>(&self, f: F) -> impl Future<Output = F::Output> + use<F> {
        use futures_util::future::Either;
        use tracing::Instrument;
        let f = f.instrument(self.span.clone());
        match &self.outgoing {
            Some(o) => Either::Left(UPSTREAM.scope(o.clone(), f)),
            None => Either::Right(f),
        }
    }
}

/// The trace context of the upstream call the current task is making, for HTTP headers.
pub fn current_upstream() -> Option<Outgoing> {
    UPSTREAM.try_with(Clone::clone).ok()
}

/// Puts the current upstream call's `traceparent` (and `tracestate`) on an HTTP request to it.
pub fn add_trace_headers(headers: &mut axum::http::HeaderMap) {
    let Some(out) = current_upstream() else {
        return;
    };
    if let Ok(v) = out.traceparent.parse() {
        headers.insert(context::TRACEPARENT, v);
    }
    if let Some(Ok(v)) = out.tracestate.as_deref().map(str::parse) {
        headers.insert(context::TRACESTATE, v);
    }
}

/// The span's context as the OpenTelemetry layer made it, or None when export is off.
fn exported_context(
    span: &tracing::Span,
    parent: Option<&SpanContext>,
    attributes: impl FnOnce(&tracing::Span),
) -> Option<SpanContext> {
    otel::context(span, parent, attributes)
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::{SpanContext, TraceContextExt};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::{Origin, ServerRequest};

    pub fn context(
        span: &tracing::Span,
        parent: Option<&SpanContext>,
        attributes: impl FnOnce(&tracing::Span),
    ) -> Option<SpanContext> {
        if span.is_disabled() {
            return None;
        }
        if let Some(p) = parent {
            let cx = opentelemetry::Context::new().with_remote_span_context(p.clone());
            if span.set_parent(cx).is_err() {
                return None; // no OpenTelemetry layer: export is off
            }
        }
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            return None;
        }
        attributes(span);
        Some(sc)
    }

    pub fn set(span: &tracing::Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
        span.set_attribute(key, value);
    }

    pub fn server_attributes(span: &tracing::Span, req: &ServerRequest<'_>, origin: &Origin) {
        span.set_attribute("mcp.method.name", req.method.to_string());
        span.set_attribute("mcp.protocol.version", req.protocol_version.to_string());
        span.set_attribute(
            "jsonrpc.request.id",
            crate::mcp::jsonrpc::id_key(req.request_id),
        );
        span.set_attribute("network.transport", "tcp");
        span.set_attribute("network.protocol.name", "http");
        span.set_attribute("enduser.id", req.user_id.clone());
        if let Some(s) = req.session_id {
            span.set_attribute("mcp.session.id", s.to_string());
        }
        if let Some(t) = req.tool {
            span.set_attribute("gen_ai.tool.name", t.to_string());
            span.set_attribute("gen_ai.operation.name", "execute_tool");
        }
        if let Some(p) = req.prompt {
            span.set_attribute("gen_ai.prompt.name", p.to_string());
        }
        if let Some(peer) = origin.peer {
            span.set_attribute("client.address", peer.to_string());
        }
    }

    pub fn client_attributes(
        span: &tracing::Span,
        method: &str,
        target: &str,
        transport: &'static str,
        era: &'static str,
    ) {
        span.set_attribute("mcp.method.name", method.to_string());
        span.set_attribute("reflow.target", target.to_string());
        span.set_attribute("reflow.upstream.transport", transport);
        span.set_attribute("reflow.upstream.era", era);
        span.set_attribute(
            "network.transport",
            if transport == "stdio" { "pipe" } else { "tcp" },
        );
    }
}

#[cfg(not(feature = "otel"))]
mod otel {
    use opentelemetry::trace::SpanContext;

    use super::{Origin, ServerRequest};

    pub fn context(
        _: &tracing::Span,
        _: Option<&SpanContext>,
        _: impl FnOnce(&tracing::Span),
    ) -> Option<SpanContext> {
        None
    }
    pub fn set(_: &tracing::Span, _: &'static str, _: String) {}
    pub fn server_attributes(_: &tracing::Span, _: &ServerRequest<'_>, _: &Origin) {}
    pub fn client_attributes(
        _: &tracing::Span,
        _: &str,
        _: &str,
        _: &'static str,
        _: &'static str,
    ) {
    }
}
