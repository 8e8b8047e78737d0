//! Routes one client request: answered locally, fanned out, or relayed to the one target that
//! owns the named tool, prompt or URI, with ids and progress tokens remapped.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::mcp::{RpcError, codes, jsonrpc};
use crate::policy::{Decision, ItemType};
use crate::store::{AuditDecision, AuditRecord};

use super::lists::ListKind;
use super::naming::{match_prefix, match_uri_prefix};
use super::rewrite;
use super::session::Session;
use super::tasks;
use super::upstreams::{InFlight, UpstreamHandle};
use super::{Gateway, Outgoing, Sink, Target};

/// Key of an id in our maps: its JSON text, so 1 and "1" stay distinct.
pub(crate) fn id_key(id: &Value) -> String {
    id.to_string()
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

/// Whether an error is the gateway refusing an item (unknown and denied look the same).
fn is_refusal(message: &str) -> bool {
    [
        "unknown tool:",
        "unknown prompt:",
        "unknown task:",
        "unknown resource",
        "resource not found:",
    ]
    .iter()
    .any(|p| message.starts_with(p))
}

fn unknown(what: &str, name: &str) -> RpcError {
    // Same answer for "does not exist" and "not allowed": denied items look absent.
    RpcError::invalid_params(format!("unknown {what}: {name}"))
}

impl Gateway {
    /// Handles one request and sends its response (and anything before it) into `sink`, then
    /// queues its audit row (after the response, so the client never waits for it).
    pub async fn handle_request(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: Value,
        method: &str,
        params: Option<Value>,
        sink: Sink,
    ) {
        let started = std::time::Instant::now();
        let (target, name, decision) = self.audit_subject(session, method, params.as_ref());
        let arguments = match (&params, self.audit.log_arguments()) {
            (Some(p), true) => Some(crate::audit::redacted_arguments(p)),
            _ => None,
        };
        let outcome = self.dispatch(session, &id, method, params, &sink).await;
        let (status, error) = match &outcome {
            Ok(_) => (0, None),
            Err(e) => (e.code, Some(e.message.clone())),
        };
        let message = match outcome {
            Ok(result) => jsonrpc::response(id, result),
            Err(e) => jsonrpc::error_response(id, &e),
        };
        let _ = sink.send(Outgoing::Message(message));
        let refused = error.as_deref().is_some_and(is_refusal)
            || decision.as_ref().is_some_and(|d| !d.allowed);
        self.audit
            .record(AuditRecord {
                id: uuid::Uuid::new_v4(),
                session_id: (!session.modern).then(|| session.id.clone()),
                user_id: Some(session.principal.user_id),
                method: method.to_string(),
                target_name: target,
                name,
                decision: if refused {
                    AuditDecision::Deny
                } else {
                    AuditDecision::Allow
                },
                policy_name: decision.and_then(|d| d.policy).map(|p| p.name.to_string()),
                response_status: Some(status),
                error,
                duration_ms: started.elapsed().as_millis() as i64,
                request_body: arguments,
                created_at: chrono::Utc::now(),
            })
            .await;
    }

    /// The item a request names (tool, prompt, URI, task), the target it belongs to, and the
    /// policy decision about it (None when the request names no item).
    fn audit_subject(
        &self,
        session: &Session,
        method: &str,
        params: Option<&Value>,
    ) -> (Option<String>, Option<String>, Option<Decision>) {
        let Some(p) = params else {
            return (None, None, None);
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let (name, item, located) = match method {
            "tools/call" | "prompts/get" => {
                let (kind, item) = if method == "tools/call" {
                    (ListKind::Tools, ItemType::Tool)
                } else {
                    (ListKind::Prompts, ItemType::Prompt)
                };
                let n = text(p.get("name"));
                let l = n
                    .as_deref()
                    .and_then(|n| self.locate_name(session, kind, n));
                (n, item, l)
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let n = text(p.get("uri"));
                let l = n.as_deref().and_then(|u| self.locate_uri(session, u));
                (n, ItemType::Resource, l)
            }
            "tasks/get" | "tasks/result" | "tasks/cancel" | "tasks/update" => {
                let n = text(p.get("taskId"));
                let t = n
                    .as_deref()
                    .and_then(rewrite::split_task_id)
                    .map(|(t, _)| t.to_string());
                return (t, n, None);
            }
            "completion/complete" => {
                return (
                    None,
                    text(p["ref"].get("name").or(p["ref"].get("uri"))),
                    None,
                );
            }
            _ => return (None, None, None),
        };
        match located {
            Some((target, original)) => {
                let decision = self.decide(&session.principal, &target, item, &original);
                (Some(target.name.clone()), name, Some(decision))
            }
            // Unknown items (or targets the caller may not see) are denied by default.
            None => (
                None,
                name,
                Some(Decision {
                    allowed: false,
                    policy: None,
                }),
            ),
        }
    }

    async fn dispatch(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &Value,
        method: &str,
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, RpcError> {
        if let Some(kind) = ListKind::from_method(method) {
            let (result, streamed) = self.list(session, kind, params.as_ref()).await?;
            if streamed {
                let _ = sink.send(Outgoing::Stream);
            }
            return Ok(result);
        }
        match method {
            "ping" => Ok(json!({})),
            "initialize" => Err(RpcError::invalid_request(
                "this session is already initialized",
            )),
            "tools/call" => {
                self.call_named(session, id, method, ListKind::Tools, params, sink)
                    .await
            }
            "prompts/get" => {
                self.call_named(session, id, method, ListKind::Prompts, params, sink)
                    .await
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                self.call_uri(session, id, method, params, sink).await
            }
            "completion/complete" => self.complete(session, id, params, sink).await,
            "logging/setLevel" => self.set_level(session, params).await,
            // tasks/update exists only in the 2026 tasks extension.
            "tasks/get" | "tasks/result" | "tasks/cancel" | "tasks/update" => {
                self.call_task(session, id, method, params, sink).await
            }
            "tasks/list" => self.list_tasks(session).await,
            m => Err(RpcError::method_not_found(m)),
        }
    }

    /// The target and original name behind an exposed tool or prompt name, if the caller's
    /// policies allow it. A denied item resolves exactly like an unknown one: not at all.
    fn resolve_name(
        &self,
        session: &Session,
        kind: ListKind,
        exposed: &str,
    ) -> Option<(Arc<Target>, String)> {
        let (target, original) = self.locate_name(session, kind, exposed)?;
        let item = if kind == ListKind::Prompts {
            ItemType::Prompt
        } else {
            ItemType::Tool
        };
        self.decide(&session.principal, &target, item, &original)
            .allowed
            .then_some((target, original))
    }

    /// Like `resolve_name` for URIs (resources and templates).
    pub(crate) fn resolve_uri(
        &self,
        session: &Session,
        exposed: &str,
    ) -> Option<(Arc<Target>, String)> {
        let (target, original) = self.locate_uri(session, exposed)?;
        self.decide(&session.principal, &target, ItemType::Resource, &original)
            .allowed
            .then_some((target, original))
    }

    /// Finds the target and original name behind an exposed tool or prompt name (no policy).
    fn locate_name(
        &self,
        session: &Session,
        kind: ListKind,
        exposed: &str,
    ) -> Option<(Arc<Target>, String)> {
        let targets = self.visible_targets(&session.principal);
        if let Some((target_name, original)) = self
            .names
            .lock()
            .unwrap()
            .get(&(kind, exposed.to_string()))
            .cloned()
            && let Some(t) = targets.iter().find(|t| t.name == target_name)
        {
            return Some((t.clone(), original));
        }
        let (prefix, rest) = match_prefix(
            exposed,
            &self.opts.separator,
            targets.iter().map(|t| t.prefix.as_str()),
        )?;
        let prefix = prefix.to_string();
        targets
            .into_iter()
            .find(|t| t.prefix == prefix)
            .map(|t| (t, rest))
    }

    fn locate_uri(&self, session: &Session, exposed: &str) -> Option<(Arc<Target>, String)> {
        let targets = self.visible_targets(&session.principal);
        let (prefix, rest) = match_uri_prefix(exposed, targets.iter().map(|t| t.prefix.as_str()))?;
        let prefix = prefix.to_string();
        targets
            .into_iter()
            .find(|t| t.prefix == prefix)
            .map(|t| (t, rest))
    }

    async fn call_named(
        self: &Arc<Self>,
        session: &Arc<Session>,
        id: &Value,
        method: &str,
        kind: ListKind,
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, RpcError> {
        let (mut params, exposed) = required_str(params, "name")?;
        let what = if kind == ListKind::Tools {
            "tool"
        } else {
            "prompt"
        };
        let (target, original) = self
            .resolve_name(session, kind, &exposed)
            .ok_or_else(|| unknown(what, &exposed))?;
        params["name"] = Value::String(original);
        let handle = self.upstream(session, &target).await?;
        // An item the upstream does not list gets the gateway's own "unknown" answer, the same
        // one a denied item gets, so errors never tell denied and absent apart.
        if !self.upstream_has(&handle, kind, &params["name"]).await {
            return Err(unknown(what, &exposed));
        }
        let result = self
            .forward_exposed(session, &handle, id, method, params.clone(), sink, method)
            .await?;
        if let Some(task) = tasks::created_task_id(&result) {
            let owner = tasks::Owner {
                user: session.principal.user_id,
                tool: params["name"].as_str().unwrap_or_default().to_string(),
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
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, RpcError> {
        let mut params = params.ok_or_else(|| RpcError::invalid_params("missing params"))?;
        let exposed = params
            .get("taskId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let targets = self.visible_targets(&session.principal);
        let (target, task_id) = rewrite::split_task_id(&exposed)
            .and_then(|(t, task)| {
                targets
                    .iter()
                    .find(|x| x.name == t)
                    .map(|x| (x.clone(), task.to_string()))
            })
            .ok_or_else(|| unknown("task", &exposed))?;
        if let Some(owner) = self.task_owner(&exposed).await {
            let allowed = owner.user == session.principal.user_id
                && self
                    .decide(&session.principal, &target, ItemType::Tool, &owner.tool)
                    .allowed;
            if !allowed {
                return Err(unknown("task", &exposed));
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
        self.forward_exposed(session, &handle, id, method, params, sink, shape)
            .await
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
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, RpcError> {
        let (mut params, exposed) = required_str(params, "uri")?;
        let (target, original) = self.resolve_uri(session, &exposed).ok_or_else(|| {
            RpcError::new(
                codes::RESOURCE_NOT_FOUND,
                format!("resource not found: {exposed}"),
            )
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
        params: Option<Value>,
        sink: &Sink,
    ) -> Result<Value, RpcError> {
        let mut params = params.ok_or_else(|| RpcError::invalid_params("missing params"))?;
        let reference = params.get("ref").cloned().unwrap_or(Value::Null);
        let (target, original, field) = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let name = reference
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let (t, o) = self
                    .resolve_name(session, ListKind::Prompts, name)
                    .ok_or_else(|| unknown("prompt", name))?;
                (t, o, "name")
            }
            Some("ref/resource") => {
                let uri = reference
                    .get("uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let (t, o) = self
                    .resolve_uri(session, uri)
                    .ok_or_else(|| unknown("resource template", uri))?;
                (t, o, "uri")
            }
            _ => {
                return Err(RpcError::invalid_params(
                    "params.ref.type must be ref/prompt or ref/resource",
                ));
            }
        };
        params["ref"][field] = Value::String(original);
        let handle = self.upstream(session, &target).await?;
        self.forward(
            session,
            &handle,
            id,
            "completion/complete",
            Some(params),
            sink,
        )
        .await
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
        // A 2026-07-28 client answers a modern upstream's `input_required` itself: pass it
        // through (the retry carries its `inputResponses` back) instead of bridging it.
        let result = if session.modern {
            handle
                .conn
                .request_passthrough(upstream_id, method, params, handle.target.timeout)
                .await
        } else {
            handle
                .conn
                .request_with_id(upstream_id, method, params, handle.target.timeout)
                .await
        };
        handle.relayed_up_to_now().await;
        handle.in_flight.lock().unwrap().remove(&key);
        session.in_flight.lock().unwrap().remove(&dkey);
        result.map_err(|e| e.to_rpc(&handle.target.name))
    }
}
