//! Who created each task reflow relayed (2025-11-25 tasks and the 2026 tasks extension), so a
//! task id works only for its creator and only while the tool that created it is allowed.
//! Recorded in the store, so every replica (and this one after a restart) knows; kept in
//! memory too, so polling a task costs no database read on the replica that created it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::UserId;

/// How long an owner record is kept (longer than any upstream's task TTL we expect).
const KEEP: Duration = Duration::from_secs(24 * 3600);
/// Records kept at most; the oldest go first.
const MAX: usize = 100_000;

/// The creator of a task and the tool (original name, on the task id's target) it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub user: UserId,
    pub tool: String,
}

#[derive(Default)]
pub(crate) struct TaskOwners {
    owners: Mutex<HashMap<String, (Owner, Instant)>>,
}

/// The exposed task id a `tools/call` result created: flat (2026 `CreateTaskResult`) or in a
/// `task` wrapper (2025-11-25).
pub(crate) fn created_task_id(result: &Value) -> Option<&str> {
    if result.get("resultType").and_then(Value::as_str) == Some("task") {
        return result.get("taskId").and_then(Value::as_str);
    }
    result
        .get("task")
        .and_then(|t| t.get("taskId"))
        .and_then(Value::as_str)
}

impl TaskOwners {
    pub fn record(&self, exposed: &str, owner: Owner) {
        let mut owners = self.owners.lock().unwrap();
        let now = Instant::now();
        if owners.len() >= MAX {
            owners.retain(|_, (_, at)| now.duration_since(*at) < KEEP);
            if owners.len() >= MAX
                && let Some(oldest) = owners
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
            {
                owners.remove(&oldest);
            }
        }
        owners.insert(exposed.to_string(), (owner, now));
    }

    pub fn get(&self, exposed: &str) -> Option<Owner> {
        let owners = self.owners.lock().unwrap();
        owners
            .get(exposed)
            .filter(|(_, at)| at.elapsed() < KEEP)
            .map(|(o, _)| o.clone())
    }
}

impl super::Gateway {
    /// Records `owner` as the creator of task `exposed`, here and in the store.
    pub(crate) async fn remember_task_owner(&self, exposed: &str, owner: Owner) {
        let stored = self
            .store
            .record_task_owner(exposed, owner.user, &owner.tool, chrono::Utc::now())
            .await;
        if let Err(e) = stored {
            // This replica still knows; others fall back to target visibility for this task.
            tracing::warn!(error = %e, "recording a task's owner failed");
        }
        self.task_owners.record(exposed, owner);
    }

    /// The creator of task `exposed`: from memory, else from the store (another replica created
    /// it, or this one before a restart).
    pub(crate) async fn task_owner(&self, exposed: &str) -> Option<Owner> {
        if let Some(owner) = self.task_owners.get(exposed) {
            return Some(owner);
        }
        match self.store.task_owner(exposed).await {
            Ok(Some((user, tool))) => {
                let owner = Owner { user, tool };
                self.task_owners.record(exposed, owner.clone());
                Some(owner)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "looking up a task's owner failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_created_tasks_in_both_eras_and_remembers_owners() {
        let modern = json!({"resultType": "task", "taskId": "t/1", "status": "working"});
        let legacy = json!({"task": {"taskId": "t/2", "status": "working"}});
        let plain = json!({"resultType": "complete", "content": [], "taskId": "no"});
        assert_eq!(created_task_id(&modern), Some("t/1"));
        assert_eq!(created_task_id(&legacy), Some("t/2"));
        assert_eq!(created_task_id(&plain), None);

        let owners = TaskOwners::default();
        let owner = Owner {
            user: UserId::new(),
            tool: "slow".into(),
        };
        owners.record("t/1", owner.clone());
        assert_eq!(owners.get("t/1"), Some(owner));
        assert_eq!(owners.get("t/2"), None);
    }
}
