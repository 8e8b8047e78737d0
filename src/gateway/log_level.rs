//! `logging/setLevel` per caller: the level is the session's, the gateway filters the log
//! messages it relays by it, and shared upstream connections are never set to one client's level.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Gateway;
use super::session::Session;
use crate::mcp::RpcError;

impl Gateway {
    /// Records the caller's level (the gateway filters what it relays to this client) and tells
    /// the upstreams: a connection of this session's own gets the level itself; a shared one is
    /// asked once for everything, since its level would otherwise apply to every client on it.
    pub(super) async fn set_level(
        self: &Arc<Self>,
        session: &Arc<Session>,
        params: Option<Value>,
    ) -> Result<Value, RpcError> {
        let level = params
            .as_ref()
            .and_then(|p| p.get("level"))
            .and_then(Value::as_str)
            .filter(|l| crate::mcp::modern::is_log_level(l))
            .ok_or_else(|| {
                RpcError::invalid_params(
                    "level must be one of debug, info, notice, warning, error, critical, alert, emergency",
                )
            })?
            .to_string();
        *session.log_level.lock().unwrap() = Some(level);
        let targets = self.visible_targets(&session.principal);
        for (target, handle) in self.connect_all(session, &targets).await {
            if handle.conn.server().capabilities.get("logging").is_none() {
                continue;
            }
            let upstream_params = if handle.owner.is_some() {
                params.clone()
            } else if handle
                .logs_everything
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                continue;
            } else {
                Some(json!({"level": "debug"}))
            };
            if let Err(e) = handle
                .conn
                .request("logging/setLevel", upstream_params)
                .await
            {
                tracing::warn!(target = %target.name, error = %e, "logging/setLevel failed upstream");
            }
        }
        Ok(json!({}))
    }
}
