//! A client request resolved once, before anything runs: its method, the item it names, the
//! target and original name behind that item, and the policy decision about it. Dispatch, the
//! audit row (and metrics and spans) all read this one value; nothing looks the name up again.

use std::sync::Arc;

use serde_json::Value;

use crate::mcp::RpcError;
use crate::policy::{Decision, ItemType};

use super::lists::ListKind;
use super::naming::{match_prefix, match_uri_prefix};
use super::rewrite;
use super::session::Session;
use super::{Gateway, Target};

/// The MCP methods the gateway routes; anything else is `Other` (answered "method not found").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Ping,
    Initialize,
    List(ListKind),
    ToolsCall,
    PromptsGet,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    Complete,
    SetLogLevel,
    /// tasks/get, tasks/result, tasks/cancel and the 2026 extension's tasks/update: routed by
    /// the target named in the task id.
    Task,
    TasksList,
    Other,
}

impl Method {
    pub fn parse(method: &str) -> Self {
        if let Some(kind) = ListKind::from_method(method) {
            return Self::List(kind);
        }
        match method {
            "ping" => Self::Ping,
            "initialize" => Self::Initialize,
            "tools/call" => Self::ToolsCall,
            "prompts/get" => Self::PromptsGet,
            "resources/read" => Self::ResourcesRead,
            "resources/subscribe" => Self::ResourcesSubscribe,
            "resources/unsubscribe" => Self::ResourcesUnsubscribe,
            "completion/complete" => Self::Complete,
            "logging/setLevel" => Self::SetLogLevel,
            "tasks/get" | "tasks/result" | "tasks/cancel" | "tasks/update" => Self::Task,
            "tasks/list" => Self::TasksList,
            _ => Self::Other,
        }
    }
}

/// The item a request names, where it lives, and whether the caller may use it.
#[derive(Clone, Debug)]
pub struct Item {
    /// The name, URI or task id as the client sent it.
    pub exposed: String,
    /// The target that owns it and its name or URI there; None when no visible target does.
    pub located: Option<(Arc<Target>, String)>,
    /// The policy decision (None for task ids, which are checked against their creator).
    pub decision: Option<Decision>,
}

impl Item {
    /// The target and original name, when the item exists for the caller and is allowed.
    pub fn allowed(&self) -> Option<(Arc<Target>, String)> {
        match (&self.located, &self.decision) {
            (Some(l), Some(d)) if d.allowed => Some(l.clone()),
            _ => None,
        }
    }
}

/// One request, resolved.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub method: Method,
    /// None when the request names no item (lists, ping, …) or lacks the field naming it.
    pub item: Option<Item>,
}

impl Resolved {
    pub fn target_name(&self) -> Option<String> {
        let item = self.item.as_ref()?;
        match &item.located {
            Some((t, _)) => Some(t.name.clone()),
            None if self.method == Method::Task => {
                rewrite::split_task_id(&item.exposed).map(|(t, _)| t.to_string())
            }
            None => None,
        }
    }
}

/// Why a request failed: the gateway refusing an item (denied and unknown look the same to
/// the client) or anything else (bad params, an upstream error, a timeout).
#[derive(Debug)]
pub enum Failure {
    Refused(RpcError),
    Error(RpcError),
}

impl From<RpcError> for Failure {
    fn from(e: RpcError) -> Self {
        Self::Error(e)
    }
}

impl Failure {
    pub fn rpc(&self) -> &RpcError {
        match self {
            Self::Refused(e) | Self::Error(e) => e,
        }
    }
}

/// The gateway's answer for an item that does not exist for the caller or is denied.
pub fn unknown(what: &str, name: &str) -> Failure {
    Failure::Refused(RpcError::invalid_params(format!("unknown {what}: {name}")))
}

impl Gateway {
    /// Resolves `method` with `params` for the session's caller: one target lookup and one
    /// policy decision.
    pub(super) fn resolve(
        &self,
        session: &Session,
        method: &str,
        params: Option<&Value>,
    ) -> Resolved {
        let method = Method::parse(method);
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let named = |field: &str| params.and_then(|p| text(p.get(field)));
        let item = match method {
            Method::ToolsCall => {
                named("name").map(|n| self.item_named(session, ListKind::Tools, n))
            }
            Method::PromptsGet => {
                named("name").map(|n| self.item_named(session, ListKind::Prompts, n))
            }
            Method::ResourcesRead | Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => {
                named("uri").map(|u| self.item_uri(session, u))
            }
            Method::Complete => {
                let reference = params.and_then(|p| p.get("ref"));
                let field = |f: &str| text(reference.and_then(|r| r.get(f)));
                match text(reference.and_then(|r| r.get("type"))).as_deref() {
                    Some("ref/prompt") => {
                        field("name").map(|n| self.item_named(session, ListKind::Prompts, n))
                    }
                    Some("ref/resource") => field("uri").map(|u| self.item_uri(session, u)),
                    _ => None,
                }
            }
            Method::Task => named("taskId").map(|id| self.item_task(session, id)),
            _ => None,
        };
        Resolved { method, item }
    }

    fn item_named(&self, session: &Session, kind: ListKind, exposed: String) -> Item {
        let located = self.locate_name(session, kind, &exposed);
        let item = if kind == ListKind::Prompts {
            ItemType::Prompt
        } else {
            ItemType::Tool
        };
        self.decided(session, exposed, located, item)
    }

    fn item_uri(&self, session: &Session, exposed: String) -> Item {
        let located = self.locate_uri(session, &exposed);
        self.decided(session, exposed, located, ItemType::Resource)
    }

    fn decided(
        &self,
        session: &Session,
        exposed: String,
        located: Option<(Arc<Target>, String)>,
        item: ItemType,
    ) -> Item {
        // Unknown items (or items of targets the caller may not see) are denied by default.
        let decision = match &located {
            Some((target, original)) => self.decide(&session.principal, target, item, original),
            None => Decision {
                allowed: false,
                policy: None,
            },
        };
        self.metrics.decision(decision.allowed, item.as_str());
        Item {
            exposed,
            located,
            decision: Some(decision),
        }
    }

    fn item_task(&self, session: &Session, exposed: String) -> Item {
        let located = rewrite::split_task_id(&exposed).and_then(|(t, task)| {
            self.visible_targets_among(&session.principal, |x| x.name == t)
                .into_iter()
                .next()
                .map(|x| (x, task.to_string()))
        });
        Item {
            exposed,
            located,
            decision: None,
        }
    }

    /// Like resolving a `resources/read`, for callers outside a request (listen streams).
    pub(crate) fn resolve_uri(
        &self,
        session: &Session,
        exposed: &str,
    ) -> Option<(Arc<Target>, String)> {
        self.item_uri(session, exposed.to_string()).allowed()
    }

    /// Finds the target and original name behind an exposed tool or prompt name (no policy).
    pub(super) fn locate_name(
        &self,
        session: &Session,
        kind: ListKind,
        exposed: &str,
    ) -> Option<(Arc<Target>, String)> {
        let principal = &session.principal;
        if let Some((target_name, original)) = self.names.get(kind, exposed)
            && let Some(t) = self
                .visible_targets_among(principal, |t| t.name == target_name)
                .into_iter()
                .next()
        {
            return Some((t, original));
        }
        // Only a target whose prefix begins the name can match it.
        let targets = self.visible_targets_among(principal, |t| exposed.starts_with(&t.prefix));
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
        // Only a target whose prefix begins the URI can match it.
        let targets =
            self.visible_targets_among(&session.principal, |t| exposed.starts_with(&t.prefix));
        let (prefix, rest) = match_uri_prefix(exposed, targets.iter().map(|t| t.prefix.as_str()))?;
        let prefix = prefix.to_string();
        targets
            .into_iter()
            .find(|t| t.prefix == prefix)
            .map(|t| (t, rest))
    }
}
