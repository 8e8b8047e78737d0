//! Fan-out of the four list methods: concurrent per-target fetches (all upstream pages, cached
//! per connection), renaming, deterministic merge, and the gateway's own pagination.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::mcp::RpcError;
use crate::mcp::prepared::PreparedResult;
use crate::policy::ItemType;

use super::breaker::LeftOut;
use super::list_cache::{Merged, Sources};
use super::naming::{expose, expose_uri};
use super::policies::Compiled;
use super::session::Session;
use super::upstreams::UpstreamHandle;
use super::{Gateway, Target};

/// A target left out of lists or sessions is logged at most this often per reason (with the
/// count left unlogged).
const LIST_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

/// Upstream pages followed per list before giving up (a cursor loop guard).
const MAX_UPSTREAM_PAGES: usize = 100;

impl ListKind {
    pub fn from_method(method: &str) -> Option<Self> {
        Some(match method {
            "tools/list" => Self::Tools,
            "prompts/list" => Self::Prompts,
            "resources/list" => Self::Resources,
            "resources/templates/list" => Self::ResourceTemplates,
            _ => return None,
        })
    }

    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Prompts => "prompts/list",
            Self::Resources => "resources/list",
            Self::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The array in the result that holds the items.
    pub fn key(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The upstream capability that says the list exists at all.
    fn capability(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources | Self::ResourceTemplates => "resources",
        }
    }

    pub fn changed_notification(self) -> &'static str {
        match self {
            Self::Tools => "notifications/tools/list_changed",
            Self::Prompts => "notifications/prompts/list_changed",
            Self::Resources | Self::ResourceTemplates => "notifications/resources/list_changed",
        }
    }

    pub fn from_changed_notification(method: &str) -> &'static [ListKind] {
        match method {
            "notifications/tools/list_changed" => &[Self::Tools],
            "notifications/prompts/list_changed" => &[Self::Prompts],
            "notifications/resources/list_changed" => &[Self::Resources, Self::ResourceTemplates],
            _ => &[],
        }
    }
}

impl Gateway {
    /// Connects to each target concurrently; failures are logged and left out.
    pub(crate) async fn connect_all(
        self: &Arc<Self>,
        session: &Arc<Session>,
        targets: &[Arc<Target>],
    ) -> Vec<(Arc<Target>, Arc<UpstreamHandle>)> {
        let attempts = targets.iter().map(|t| async move {
            let leased = self.upstream(session, t).await;
            (t.clone(), leased.map(super::upstreams::Leased::into_handle))
        });
        join_all(attempts)
            .await
            .into_iter()
            .filter_map(|(t, r)| match r {
                Ok(h) => Some((t, h)),
                Err(e) => {
                    if let Some(unlogged) =
                        self.breakers
                            .list_warning(t.id, LeftOut::Unreachable, LIST_WARN_EVERY)
                    {
                        tracing::warn!(target = %t.name, error = %e.message, unlogged, "target left out: unreachable");
                    }
                    None
                }
            })
            .collect()
    }

    /// Every item of `kind` at one upstream, from cache or by following its pages.
    pub(super) async fn upstream_items(
        &self,
        handle: &UpstreamHandle,
        kind: ListKind,
    ) -> Result<Arc<Vec<Value>>, RpcError> {
        if handle
            .conn
            .server()
            .capabilities
            .get(kind.capability())
            .is_none()
        {
            return Ok(Arc::new(Vec::new()));
        }
        if let Some(items) = handle.cached(kind, self.opts.list_cache_ttl) {
            return Ok(items);
        }
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_UPSTREAM_PAGES {
            let params = cursor.take().map(|c| json!({ "cursor": c }));
            let page = handle.conn.request(kind.method(), params).await;
            if handle.target.is_http() {
                self.breakers
                    .record(handle.target.id, page.as_ref().map(|_| ()));
            }
            let page = page.map_err(|e| e.to_rpc(&handle.target.name))?;
            if let Some(Value::Array(page_items)) = page.get(kind.key()) {
                items.extend(page_items.iter().cloned());
            }
            match page.get("nextCursor") {
                Some(c @ Value::String(_)) => cursor = Some(c.clone()),
                _ => break,
            }
        }
        let items = Arc::new(items);
        handle
            .lists
            .lock()
            .unwrap()
            .insert(kind, (std::time::Instant::now(), items.clone()));
        Ok(items)
    }

    /// The item as the client sees it: a copy with its name or URI carrying the target's prefix.
    fn expose_item(&self, target: &Target, kind: ListKind, item: &Value, original: &str) -> Value {
        let mut item = item.clone();
        let (field, exposed) = match kind {
            ListKind::Tools | ListKind::Prompts => (
                "name",
                expose(
                    &target.prefix,
                    &self.opts.separator,
                    original,
                    self.opts.max_name_len,
                ),
            ),
            ListKind::Resources => ("uri", expose_uri(&target.prefix, original)),
            ListKind::ResourceTemplates => ("uriTemplate", expose_uri(&target.prefix, original)),
        };
        item[field] = Value::String(exposed);
        item
    }

    /// One page of the merged list for one session (its items the JSON text the list cache
    /// keeps), and whether any contributing upstream
    /// answers with SSE streams (then so does the gateway).
    pub(crate) async fn list(
        self: &Arc<Self>,
        session: &Arc<Session>,
        kind: ListKind,
        params: Option<&Value>,
    ) -> Result<(PreparedResult, bool), RpcError> {
        let offset = match params.and_then(|p| p.get("cursor")) {
            None | Some(Value::Null) => 0,
            Some(Value::String(c)) => self.cursors.decode(kind.method(), c)?,
            Some(_) => return Err(RpcError::invalid_params("cursor must be a string")),
        };
        let (merged, streamed) = self.merged(session, kind).await;
        let (raw, next) = merged.page(offset);
        let mut members = serde_json::Map::new();
        if let Some(next) = next {
            members.insert(
                "nextCursor".into(),
                Value::String(self.cursors.encode(kind.method(), next)),
            );
        }
        let page = PreparedResult {
            key: kind.key(),
            raw,
            members,
        };
        Ok((page, streamed))
    }

    /// The whole merged list of `kind` as this session sees it (from the cache when nothing it
    /// depends on changed), and whether any contributing upstream answers with SSE streams.
    pub(crate) async fn merged(
        self: &Arc<Self>,
        session: &Arc<Session>,
        kind: ListKind,
    ) -> (Arc<Merged>, bool) {
        let policies = self.policies.load();
        let targets = self.visible_targets(&session.principal);
        let fetches = targets.iter().map(|t| async move {
            let result = match tokio::time::timeout(t.timeout, async {
                let handle = self.upstream(session, t).await?;
                let streams = handle
                    .streams_answers
                    .load(std::sync::atomic::Ordering::Relaxed);
                self.upstream_items(&handle, kind)
                    .await
                    .map(|items| (items, streams))
            })
            .await
            {
                Ok(r) => r,
                Err(_) => Err(RpcError::new(
                    crate::mcp::codes::REQUEST_TIMEOUT,
                    "timed out",
                )),
            };
            (t.clone(), result)
        });
        let mut upstream = Vec::new();
        let mut streamed = false;
        for (target, result) in join_all(fetches).await {
            match result {
                Ok((items, streams)) => {
                    streamed |= streams;
                    upstream.push((target, items));
                }
                Err(e) => {
                    if let Some(unlogged) =
                        self.breakers
                            .list_warning(target.id, LeftOut::ListFailed, LIST_WARN_EVERY)
                    {
                        tracing::warn!(target = %target.name, list = kind.method(), error = %e.message, unlogged, "partial list: target failed");
                    }
                }
            }
        }
        let sources = Sources {
            policy_revision: policies.revision,
            principal: session.principal.clone(),
            upstream,
        };
        let merged = match self.list_cache.get(kind, &sources) {
            Some(m) => m,
            None => {
                let m = Arc::new(self.merge(kind, &policies, sources));
                self.list_cache.put(kind, m.clone());
                m
            }
        };
        (merged, streamed)
    }

    /// Filters, renames and merges the upstream lists in `sources` for its caller, and teaches
    /// the name map the shortened names it shows.
    fn merge(&self, kind: ListKind, policies: &Compiled, sources: Sources) -> Merged {
        let mut merged = Vec::new();
        let mut learned = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        let field = match kind {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        };
        let item_type = match kind {
            ListKind::Tools => ItemType::Tool,
            ListKind::Prompts => ItemType::Prompt,
            ListKind::Resources | ListKind::ResourceTemplates => ItemType::Resource,
        };
        for (target, items) in &sources.upstream {
            for raw in items.iter() {
                // Decided before anything is copied: denied items are simply absent, as if the
                // upstream did not have them.
                let Some(original) = raw.get(field).and_then(Value::as_str) else {
                    continue;
                };
                if !policies
                    .decide(&sources.principal, target.id, item_type, original)
                    .allowed
                {
                    continue;
                }
                let item = self.expose_item(target, kind, raw, original);
                let key = item
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(first) = seen.get(&key) {
                    tracing::warn!(name = %key, kept = %first, dropped = %target.name, list = kind.method(), "name collision between targets; give one of them a prefix");
                    continue;
                }
                if matches!(kind, ListKind::Tools | ListKind::Prompts) {
                    // Only names that survive the collision check map back, so a call reaches
                    // the very tool the list showed.
                    learned.push((
                        (kind, key.clone()),
                        (target.name.clone(), original.to_string()),
                    ));
                }
                seen.insert(key, target.name.clone());
                merged.push(item);
            }
        }
        self.names.learn(learned);
        Merged::new(sources, merged, self.opts.page_size)
    }
}
