//! Routes one client request: answered locally, fanned out, or relayed to the one target that
//! owns the named tool, prompt or URI, with ids and progress tokens remapped.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::mcp::jsonrpc::id_key;
use crate::mcp::modern::check_call_headers;
use crate::mcp::prepared::{Prepared, PreparedResult};
use crate::mcp::{RpcError, codes, jsonrpc};
use crate::policy::ItemType;
use crate::store::{AuditDecision, AuditRecord};

use super::lists::ListKind;
use super::resolve::{Failure, Item, Method, Resolved, unknown};
use super::rewrite;
use super::session::Session;
use super::tasks;
use super::upstreams::{InFlight, UpstreamHandle};
use super::{Gateway, Outgoing, Sink};
use crate::telemetry::context::trace_id_hex;
use crate::telemetry::metrics::{ClientLabels, ServerLabels};
use crate::telemetry::spans::{ClientSpan, Origin, ServerRequest, ServerSpan};
use crate::upstream::{Era, HttpTransport, UpstreamError};

/// What a request answers with: a result, or a page of a list kept serialized in the cache.
enum Answer {
    Result(Value),
    Page(PreparedResult),
}

/// The `reflow.upstream.transport` of a client span.
fn transport_label(handle: &UpstreamHandle) -> &'static str {
    if handle.is_stdio() {
        return "stdio";
    }
    match handle.conn.server().transport {
        HttpTransport::Sse => "sse",
        _ => "streamable-http",
    }
}

/// The method label of a metric: the client's method for the ones the gateway knows, a fixed
/// word otherwise (a client must not be able to mint label values).
fn metric_method(parsed: Method, method: &str) -> String {
    if parsed == Method::Other {
        "other".into()
    } else {
        method.to_string()
    }
}

/// The request's params and the string field `key` of them, or the error naming what is missing.
fn required_str(params: Option<Value>, key: &str) -> Result<(Value, String), RpcError> {
    let params = params.ok_or_else(|| RpcError::invalid_params("missing params"))?;
    let value = params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params(format!("params.{key} must be a string")))?
        .to_string();
    Ok((params, value))
}

impl Gateway {
    /// Handles one request and sends its response (and anything before it) into `sink`, then
    /// records its span, metrics and audit row (after the response, so the client never waits).
    #[allow(clippy::too_many_arguments)]
    pub async fn handle_request(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: Value,
        method: &str,
        params: Option<Value>,
        origin: &Origin,
        sink: Sink,
    ) {
        let started = std::time::Instant::now();
        let resolved = self.resolve(session, method, params.as_ref());
        let arguments = match (&params, self.audit.log_arguments()) {
            (Some(p), true) => Some(crate::audit::redacted_arguments(p)),
            _ => None,
        };
        let protocol = session.protocol_version.lock().unwrap().clone();
        let exposed = resolved.item.as_ref().map(|i| i.exposed.as_str());
        let request = ServerRequest {
            method,
            tool: exposed.filter(|_| resolved.method == Method::ToolsCall),
            prompt: exposed.filter(|_| resolved.method == Method::PromptsGet),
            session_id: (!session.modern).then_some(session.id.as_str()),
            protocol_version: &protocol,
            request_id: &id,
            user_id: session.principal.user_id.to_string(),
        };
        let span = ServerSpan::start(&request, origin);
        let outcome = span
            .run(self.dispatch(session, &id, method, &resolved, params, &sink))
            .await;
        let (status, error, refused) = match &outcome {
            Ok(_) => (0, None, false),
            Err(f) => (
                f.rpc().code,
                Some(f.rpc().message.clone()),
                matches!(f, Failure::Refused(_)),
            ),
        };
        let error_type = match &outcome {
            Ok(Answer::Result(r)) if r.get("isError").and_then(Value::as_bool) == Some(true) => {
                Some("tool_error".to_string())
            }
            Ok(_) => None,
            Err(_) => Some(status.to_string()),
        };
        let message = match outcome {
            Ok(Answer::Result(result)) => Outgoing::Message(jsonrpc::response(id, result)),
            Ok(Answer::Page(result)) => Outgoing::Page(Prepared { id, result }),
            Err(f) => Outgoing::Message(jsonrpc::error_response(id, f.rpc())),
        };
        let _ = sink.send(message);
        let target_name = resolved.target_name();
        let (name, policy) = match resolved.item {
            Some(item) => (
                Some(item.exposed),
                item.decision
                    .and_then(|d| d.policy)
                    .map(|p| p.name.to_string()),
            ),
            None => (None, None),
        };
        let decision = if refused {
            AuditDecision::Deny
        } else {
            AuditDecision::Allow
        };
        span.finish(
            Some((decision.as_str(), policy.as_deref().unwrap_or_default())),
            error_type.as_deref(),
        );
        let elapsed = started.elapsed();
        span.span.in_scope(|| {
            tracing::debug!(target: "reflow::mcp", method, status, ms = elapsed.as_millis() as u64, "request done");
        });
        self.metrics.observe_server(
            &ServerLabels {
                mcp_method_name: metric_method(resolved.method, method),
                target: target_name.clone().unwrap_or_default(),
                mcp_protocol_version: protocol,
                error_type: error_type.unwrap_or_default(),
                gen_ai_tool_name: match (&name, resolved.method) {
                    (Some(n), Method::ToolsCall) if self.metrics.tool_label() => n.clone(),
                    _ => String::new(),
                },
            },
            elapsed.as_secs_f64(),
        );
        self.audit
            .record(AuditRecord {
                id: crate::store::new_audit_id(),
                session_id: (!session.modern).then(|| session.id.clone()),
                user_id: Some(session.principal.user_id),
                method: method.to_string(),
                target_name,
                name,
                decision,
                policy_name: policy,
                response_status: Some(status),
                error,
                duration_ms: elapsed.as_millis() as i64,
                request_body: arguments,
                trace_id: Some(trace_id_hex(span.context.trace_id())),
                created_at: chrono::Utc::now(),
            })
            .await;
    }

    async fn dispatch(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &Value,
        method: &str,
        resolved: &Resolved,
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Answer, Failure> {
        let item = resolved.item.as_ref();
        let result = match resolved.method {
            Method::List(kind) => {
                let (page, streamed) = self.list(session, kind, params.as_ref()).await?;
                // Nothing precedes the page, but a client gets the transport its upstreams
                // use: the conformance suite's server-sse-streams-functional passes against an
                // upstream that streams only if reflow streams its lists too.
                if streamed {
                    let _ = sink.send(Outgoing::Stream);
                }
                return Ok(Answer::Page(page));
            }
            Method::Ping => Ok(json!({})),
            Method::Initialize => {
                Err(RpcError::invalid_request("this session is already initialized").into())
            }
            Method::ToolsCall => {
                self.call_named(session, id, method, ListKind::Tools, item, params, sink)
                    .await
            }
            Method::PromptsGet => {
                self.call_named(session, id, method, ListKind::Prompts, item, params, sink)
                    .await
            }
            Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => {
                self.call_uri(session, id, method, item, params, sink).await
            }
            Method::Complete => self.complete(session, id, item, params, sink).await,
            Method::SetLogLevel => Ok(self.set_level(session, params).await?),
            Method::Task => {
                self.call_task(session, id, method, item, params, sink)
                    .await
            }
            Method::TasksList => Ok(self.list_tasks(session).await?),
            Method::Other => Err(RpcError::method_not_found(method).into()),
        };
        result.map(Answer::Result)
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_named(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &Value,
        method: &str,
        kind: ListKind,
        item: Option<&Item>,
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, Failure> {
        let (mut params, exposed) = required_str(params, "name")?;
        let what = if kind == ListKind::Tools {
            "tool"
        } else {
            "prompt"
        };
        let (target, original) = item
            .and_then(Item::allowed)
            .ok_or_else(|| unknown(what, &exposed))?;
        params["name"] = Value::String(original.clone());
        let handle = self.upstream(session, &target).await?;
        // An item the upstream does not list gets the gateway's own "unknown" answer, the same
        // one a denied item gets, so errors never tell denied and absent apart. An upstream
        // whose list cannot be read is given the benefit of the doubt.
        let listed = self.upstream_items(&handle, kind).await.ok();
        let listed = listed.as_deref().map(|items| {
            items
                .iter()
                .find(|i| i.get("name") == Some(&params["name"]))
        });
        match listed {
            Some(None) => return Err(unknown(what, &exposed)),
            // A 2026-07-28 call's `Mcp-Param-*` headers, against the schema of the tool now
            // located (after the policy decision: a hidden tool's schema tells nothing).
            Some(Some(tool)) if session.modern && kind == ListKind::Tools => {
                check_call_headers(tool, &params, &session.param_headers)
                    .map_err(Failure::Refused)?;
            }
            _ => {}
        }
        let result = self
            .forward_exposed(session, &handle, id, method, params, sink, method)
            .await?;
        if let Some(task) = tasks::created_task_id(&result) {
            let owner = tasks::Owner {
                user: session.principal.user_id,
                tool: original,
            };
            self.remember_task_owner(task, owner).await;
        }
        Ok(result)
    }

    /// tasks/get, tasks/result, tasks/cancel (and the extension's tasks/update): routed by the
    /// target named in the task id; a task created through reflow answers only its creator,
    /// and only while the creating tool is still allowed (others: "unknown task").
    async fn call_task(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &Value,
        method: &str,
        item: Option<&Item>,
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, Failure> {
        let mut params = params.ok_or_else(|| RpcError::invalid_params("missing params"))?;
        let exposed = item.map(|i| i.exposed.as_str()).unwrap_or_default();
        let (target, task_id) = item
            .and_then(|i| i.located.clone())
            .ok_or_else(|| unknown("task", exposed))?;
        if let Some(owner) = self.task_owner(exposed).await {
            let allowed = owner.user == session.principal.user_id
                && self
                    .decide(&session.principal, &target, ItemType::Tool, &owner.tool)
                    .allowed;
            if !allowed {
                return Err(unknown("task", exposed));
            }
        }
        params["taskId"] = Value::String(task_id);
        let handle = self.upstream(session, &target).await?;
        // tasks/result carries the underlying tool result, a 2026 tasks/get inlines it.
        let shape = if method == "tasks/result" {
            "tools/call"
        } else {
            method
        };
        Ok(self
            .forward_exposed(session, &handle, id, method, params, sink, shape)
            .await?)
    }

    /// Relays a request and gives the result the target's exposed URIs and task ids, rewriting
    /// URIs as in a result of `shape`.
    #[allow(clippy::too_many_arguments)]
    async fn forward_exposed(
        self: &Arc<Self>,
        session: &Arc<Session>,
        handle: &Arc<UpstreamHandle>,
        id: &Value,
        method: &str,
        params: Value,
        sink: &Sink,
        shape: &str,
    ) -> Result<Value, RpcError> {
        let mut result = self
            .forward(session, handle, id, method, Some(params), sink)
            .await?;
        rewrite::result_uris(shape, &mut result, &handle.target.prefix);
        rewrite::expose_task_ids(&mut result, &handle.target.name);
        Ok(result)
    }

    /// tasks/list: every visible upstream's tasks (first page of each), ids exposed.
    async fn list_tasks(self: &Arc<Self>, session: &Arc<Session>) -> Result<Value, RpcError> {
        let targets = self.visible_targets(&session.principal);
        let mut tasks = Vec::new();
        for (target, handle) in self.connect_all(session, &targets).await {
            if handle.conn.server().capabilities.get("tasks").is_none() {
                continue;
            }
            match handle.conn.request("tasks/list", None).await {
                Ok(mut page) => {
                    rewrite::expose_task_ids(&mut page, &target.name);
                    if let Some(Value::Array(items)) = page.get_mut("tasks") {
                        tasks.append(items);
                    }
                }
                Err(e) => {
                    tracing::warn!(target = %target.name, error = %e, "tasks/list failed upstream")
                }
            }
        }
        Ok(json!({ "tasks": tasks }))
    }

    async fn call_uri(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &Value,
        method: &str,
        item: Option<&Item>,
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, Failure> {
        let (mut params, exposed) = required_str(params, "uri")?;
        let (target, original) = item.and_then(Item::allowed).ok_or_else(|| {
            Failure::Refused(RpcError::new(
                codes::RESOURCE_NOT_FOUND,
                format!("resource not found: {exposed}"),
            ))
        })?;
        params["uri"] = Value::String(original.clone());
        let handle = self.upstream(session, &target).await?;
        if method == "resources/unsubscribe" {
            let key = (target.id, original.clone());
            session.subscriptions.lock().unwrap().remove(&key);
            // A shared upstream subscription serves every attached session: it ends only with
            // the last subscriber, or the others would stop getting their updates.
            let still_wanted = handle.owner.is_none()
                && self.attached_sessions(&handle).iter().any(|s| {
                    !Arc::ptr_eq(s, session) && s.subscriptions.lock().unwrap().contains(&key)
                });
            if still_wanted {
                return Ok(json!({}));
            }
        }
        let mut result = self
            .forward(session, &handle, id, method, Some(params), sink)
            .await?;
        match method {
            "resources/subscribe" => {
                session
                    .subscriptions
                    .lock()
                    .unwrap()
                    .insert((target.id, original));
            }
            "resources/unsubscribe" => {}
            _ => rewrite::result_uris(method, &mut result, &target.prefix),
        }
        Ok(result)
    }

    async fn complete(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &Value,
        item: Option<&Item>,
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, Failure> {
        let mut params = params.ok_or_else(|| RpcError::invalid_params("missing params"))?;
        let (what, field) = match params["ref"]["type"].as_str() {
            Some("ref/prompt") => ("prompt", "name"),
            Some("ref/resource") => ("resource template", "uri"),
            _ => {
                return Err(RpcError::invalid_params(
                    "params.ref.type must be ref/prompt or ref/resource",
                )
                .into());
            }
        };
        let exposed = params["ref"][field]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (target, original) = item
            .and_then(Item::allowed)
            .ok_or_else(|| unknown(what, &exposed))?;
        params["ref"][field] = Value::String(original);
        let handle = self.upstream(session, &target).await?;
        Ok(self
            .forward(
                session,
                &handle,
                id,
                "completion/complete",
                Some(params),
                sink,
            )
            .await?)
    }

    /// Relays one request to `handle`, remapping its id and progress token, and waits for the
    /// answer. Messages the upstream sends about it meanwhile reach `sink` via the pump.
    pub(crate) async fn forward(
        self: &Arc<Self>,
        session: &Arc<Session>,
        handle: &Arc<UpstreamHandle>,
        downstream_id: &Value,
        method: &str,
        mut params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, RpcError> {
        let upstream_id = handle.conn.next_id();
        let key = id_key(&upstream_id);
        let mut progress_token = None;
        if let Some(meta) = params
            .as_mut()
            .and_then(|p| p.get_mut("_meta"))
            .and_then(Value::as_object_mut)
            && let Some(token) = meta.get("progressToken").cloned()
        {
            // Tokens are only unique per client; on a shared upstream, use our request id.
            meta.insert(
                "progressToken".into(),
                Value::String(format!("reflow-{key}")),
            );
            progress_token = Some(token);
        }
        handle.in_flight.lock().unwrap().insert(
            key.clone(),
            InFlight {
                session: Arc::downgrade(session),
                sink: sink.clone(),
                progress_token,
            },
        );
        // A stdio server may send anything before its answer, and nothing on the wire says
        // whether it will: stream the answer, as an HTTP server that streams does (an HTTP
        // upstream's own stream says so itself, with StreamSignal::Opened).
        if handle.is_stdio() && !session.modern {
            let _ = sink.send(Outgoing::Stream);
        }
        let dkey = id_key(downstream_id);
        session
            .in_flight
            .lock()
            .unwrap()
            .insert(dkey.clone(), (handle.clone(), upstream_id.clone()));
        let client = ClientSpan::start(
            method,
            &handle.target.name,
            transport_label(handle),
            match handle.conn.server().era() {
                Era::Modern => "2026-07-28",
                Era::Legacy => "legacy",
            },
        );
        if let Some(out) = &client.outgoing {
            out.inject_meta(&mut params);
        }
        let sent = std::time::Instant::now();
        // A 2026-07-28 client answers a modern upstream's `input_required` itself: pass it
        // through (the retry carries its `inputResponses` back) instead of bridging it.
        let result = client
            .run(async {
                if session.modern {
                    handle
                        .conn
                        .request_passthrough(upstream_id, method, params, handle.target.timeout)
                        .await
                } else {
                    handle
                        .conn
                        .request_with_id(upstream_id, method, params, handle.target.timeout)
                        .await
                }
            })
            .await;
        handle.relayed_up_to_now().await;
        handle.in_flight.lock().unwrap().remove(&key);
        session.in_flight.lock().unwrap().remove(&dkey);
        if handle.target.is_http() {
            self.breakers
                .record(handle.target.id, result.as_ref().map(|_| ()));
        }
        let (error_type, reached) = match &result {
            Ok(r) if r.get("isError").and_then(Value::as_bool) == Some(true) => {
                ("tool_error".to_string(), true)
            }
            Ok(_) => (String::new(), true),
            Err(UpstreamError::Rpc(e)) => (e.code.to_string(), true),
            Err(e) => (e.to_rpc(&handle.target.name).code.to_string(), false),
        };
        if !error_type.is_empty() {
            client.fail(&error_type);
        }
        self.metrics.observe_client(
            &ClientLabels {
                target: handle.target.name.clone(),
                mcp_method_name: method.to_string(),
                error_type,
            },
            sent.elapsed().as_secs_f64(),
            reached,
        );
        let mut result = result.map_err(|e| e.to_rpc(&handle.target.name))?;
        if !session.modern
            && let Some(r) = result.as_object_mut()
        {
            // A 2026-07-28 field a modern upstream adds; a legacy result has no such member.
            r.remove("resultType");
        }
        Ok(result)
    }
}
