//! Redeemed 2026-07-28 `requestState`s, shared by every replica so that a state is usable once
//! across the whole deployment, not once per process. Rows live until the state expires.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, on_pool};

impl Store {
    /// Records the use of state `sid`; false when it was used before (a replay).
    pub async fn claim_request_state(
        &self,
        sid: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO used_request_states (sid, expires_at) VALUES ($1, $2) ON CONFLICT (sid) DO NOTHING"
        )
        .bind(sid)
        .bind(expires_at)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Forgets states that expired before `now` (they are refused as expired anyway).
    pub async fn prune_request_states(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query(
            "DELETE FROM used_request_states WHERE expires_at < $1"
        )
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
