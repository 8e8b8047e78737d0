//! Downstream MCP sessions (legacy era), persisted so that any replica, or this process after a
//! restart, can resume a session it did not create. Not admin data: no revision bump here; a
//! recycle by another process bumps it explicitly (`Store::bump_revision`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;

use super::{Store, StoreError, on_pool};
use crate::domain::UserId;

#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: UserId,
    /// Hash of the principal's role and groups when the session began; a change recycles it.
    pub principal_hash: String,
    pub protocol_version: String,
    pub client_capabilities: Value,
    pub client_info: Value,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Store {
    pub async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (id, user_id, principal_hash, protocol_version, client_capabilities, \
                 client_info, created_at, last_seen_at, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&s.id)
            .bind(s.user_id.as_uuid())
            .bind(&s.principal_hash)
            .bind(&s.protocol_version)
            .bind(Json(&s.client_capabilities))
            .bind(Json(&s.client_info))
            .bind(s.created_at)
            .bind(s.last_seen_at)
            .bind(s.ended_at)
            .execute(pool)
            .await
            .map_err(|e| StoreError::conflict_or(e, "a session with this id"))?;
        });
        Ok(())
    }

    /// A session that has not ended.
    pub async fn live_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(on_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT id, user_id, principal_hash, protocol_version, client_capabilities, client_info, \
                 created_at, last_seen_at, ended_at FROM sessions WHERE id = $1 AND ended_at IS NULL",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            match row {
                None => None,
                Some(row) => {
                    let Json(client_capabilities): Json<Value> =
                        row.try_get("client_capabilities")?;
                    let Json(client_info): Json<Value> = row.try_get("client_info")?;
                    Some(SessionRecord {
                        id: row.try_get("id")?,
                        user_id: UserId::from_uuid(row.try_get("user_id")?),
                        principal_hash: row.try_get("principal_hash")?,
                        protocol_version: row.try_get("protocol_version")?,
                        client_capabilities,
                        client_info,
                        created_at: row.try_get("created_at")?,
                        last_seen_at: row.try_get("last_seen_at")?,
                        ended_at: row.try_get("ended_at")?,
                    })
                }
            }
        }))
    }

    /// Records activity for many sessions at once (written in the background, not per request).
    pub async fn touch_sessions(
        &self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for id in ids {
                sqlx::query(
                    "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Ends every live session of a user (recycling); returns how many were live in the store.
    pub async fn end_user_sessions(
        &self,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL")
                .bind(user.as_uuid())
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Ids of sessions ended at or after `since`: replicas end their in-memory copies.
    pub async fn sessions_ended_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at >= $1",
            )
            .bind(since)
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn end_session(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
                .bind(id)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends every session idle since before `cutoff`, and forgets ended ones older than
    /// `forget_before`. Returns how many were ended.
    pub async fn expire_sessions(
        &self,
        cutoff: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now = Utc::now();
        Ok(on_pool!(self, |pool| {
            let n = sqlx::query(
                "UPDATE sessions SET ended_at = $2 WHERE ended_at IS NULL AND last_seen_at < $1",
            )
            .bind(cutoff)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1")
                .bind(forget_before)
                .execute(pool)
                .await?;
            n
        }))
    }
}
