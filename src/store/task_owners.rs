//! Who created each relayed task (by its exposed id), shared by every replica so that a task
//! answers only its creator wherever the poll lands.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, on_pool};
use crate::domain::UserId;

impl Store {
    /// Records the creator of `task` and the tool (original name) that created it; a task id
    /// already recorded keeps its first owner.
    pub async fn record_task_owner(
        &self,
        task: &str,
        user: UserId,
        tool: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO task_owners (task_id, user_id, tool, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (task_id) DO NOTHING"
        )
        .bind(task)
        .bind(user.as_uuid())
        .bind(tool)
        .bind(at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The creator and creating tool of `task`, if reflow relayed its creation.
    pub async fn task_owner(&self, task: &str) -> Result<Option<(UserId, String)>, StoreError> {
        let row = on_pool!(self, |pool| {
            match sqlx::query("SELECT user_id, tool FROM task_owners WHERE task_id = $1")
                .bind(task)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some((
                    UserId::from_uuid(row.try_get("user_id")?),
                    row.try_get("tool")?,
                )),
                None => None,
            }
        });
        Ok(row)
    }

    /// Forgets owners of tasks created before `cutoff`.
    pub async fn prune_task_owners(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query(
            "DELETE FROM task_owners WHERE created_at < $1"
        )
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
