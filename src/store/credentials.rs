//! Upstream credentials at rest: sealed tokens and env entries per target and scope. The store
//! only moves ciphertext; sealing and opening happen in `credentials` and the service.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{BUMP_REVISION, Store, StoreError, on_pool};
use crate::domain::{CredentialId, CredentialKind, CredentialScope, TargetId};

/// One row of `target_credentials`. `ciphertext` is only ever sealed bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    pub id: CredentialId,
    pub target_id: TargetId,
    pub kind: CredentialKind,
    pub scope: CredentialScope,
    /// "" for the default scope; a role, a group name or a user id otherwise.
    pub scope_value: String,
    /// "" for the token; the env key otherwise.
    pub key: String,
    pub ciphertext: Vec<u8>,
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// By hand: sealed bytes are useless to a reader of logs, and their length hints at the value's.
impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("id", &self.id)
            .field("target_id", &self.target_id)
            .field("kind", &self.kind)
            .field("scope", &self.scope)
            .field("scope_value", &self.scope_value)
            .field("key", &self.key)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Which scope's entries of one kind a write replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSlot {
    pub target_id: TargetId,
    pub kind: CredentialKind,
    pub scope: CredentialScope,
    pub scope_value: String,
}

const COLUMNS: &str =
    "id, target_id, kind, scope, scope_value, key, ciphertext, key_id, created_at, updated_at";

const UPSERT: &str = "INSERT INTO target_credentials \
     (id, target_id, kind, scope, scope_value, key, ciphertext, key_id, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (target_id, kind, scope, scope_value, key) DO UPDATE SET \
     ciphertext = excluded.ciphertext, key_id = excluded.key_id, updated_at = excluded.updated_at";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

macro_rules! credential_from_row {
    ($row:expr) => {{
        let row = $row;
        let kind: String = row.try_get("kind")?;
        let scope: String = row.try_get("scope")?;
        CredentialRecord {
            id: CredentialId::from_uuid(row.try_get("id")?),
            target_id: TargetId::from_uuid(row.try_get("target_id")?),
            kind: CredentialKind::parse(&kind).map_err(corrupt)?,
            scope: CredentialScope::parse(&scope).map_err(corrupt)?,
            scope_value: row.try_get("scope_value")?,
            key: row.try_get("key")?,
            ciphertext: row.try_get("ciphertext")?,
            key_id: row.try_get("key_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! upsert {
    ($c:expr, $exec:expr) => {
        sqlx::query(UPSERT)
            .bind($c.id.as_uuid())
            .bind($c.target_id.as_uuid())
            .bind($c.kind.as_str())
            .bind($c.scope.as_str())
            .bind($c.scope_value.as_str())
            .bind($c.key.as_str())
            .bind($c.ciphertext.as_slice())
            .bind($c.key_id.as_str())
            .bind($c.created_at)
            .bind($c.updated_at)
            .execute($exec)
            .await
    };
}

impl Store {
    /// Inserts or updates each record (keyed by target, kind, scope, scope value and key) in one
    /// transaction; on update the row keeps its id and creation time.
    pub async fn upsert_credentials(&self, records: &[CredentialRecord]) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for c in records {
                upsert!(c, &mut *tx)?;
            }
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Makes `records` the whole content of `slot`: entries of the slot not among them go.
    pub async fn replace_credentials(
        &self,
        slot: &CredentialSlot,
        records: &[CredentialRecord],
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "DELETE FROM target_credentials WHERE target_id = $1 AND kind = $2 \
                 AND scope = $3 AND scope_value = $4",
            )
            .bind(slot.target_id.as_uuid())
            .bind(slot.kind.as_str())
            .bind(slot.scope.as_str())
            .bind(slot.scope_value.as_str())
            .execute(&mut *tx)
            .await?;
            for c in records {
                upsert!(c, &mut *tx)?;
            }
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes one entry of `slot`; false when it did not exist.
    pub async fn delete_credential(
        &self,
        slot: &CredentialSlot,
        key: &str,
    ) -> Result<bool, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "DELETE FROM target_credentials WHERE target_id = $1 AND kind = $2 \
                 AND scope = $3 AND scope_value = $4 AND key = $5",
            )
            .bind(slot.target_id.as_uuid())
            .bind(slot.kind.as_str())
            .bind(slot.scope.as_str())
            .bind(slot.scope_value.as_str())
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        }))
    }

    /// The credentials of one target, ordered by kind, scope, scope value and key.
    pub async fn target_credentials(
        &self,
        target: TargetId,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM target_credentials WHERE target_id = $1 \
             ORDER BY kind, scope, scope_value, key"
        ));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(target.as_uuid())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(credential_from_row!(row));
            }
            out
        }))
    }

    /// Every credential of every target: what a snapshot is built from.
    pub async fn all_credentials(&self) -> Result<Vec<CredentialRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM target_credentials \
             ORDER BY target_id, kind, scope, scope_value, key"
        ));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(credential_from_row!(row));
            }
            out
        }))
    }

    /// Key rotation: reads every credential and writes back what `reseal` returns for it
    /// (new ciphertext and key id), all in one transaction, so either every value moves to the
    /// new key or none does. Returns how many were resealed.
    pub async fn reseal_credentials<E>(
        &self,
        mut reseal: impl FnMut(&CredentialRecord) -> Result<(Vec<u8>, String), E>,
    ) -> Result<usize, E>
    where
        E: From<StoreError>,
    {
        let select = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM target_credentials"));
        let db = |e: sqlx::Error| E::from(StoreError::from(e));
        let count = on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            // Write first: a SQLite transaction that reads and then writes cannot wait for the
            // write lock (it fails at once with "database is locked" if another connection wrote
            // in between, e.g. a running server during `rotate-key`); one that starts by writing
            // waits for it under busy_timeout like any other write.
            sqlx::query(BUMP_REVISION)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let rows = sqlx::query(select).fetch_all(&mut *tx).await.map_err(db)?;
            let mut records = Vec::with_capacity(rows.len());
            for row in &rows {
                let record: Result<CredentialRecord, StoreError> =
                    (|| Ok(credential_from_row!(row)))();
                records.push(record?);
            }
            for c in &records {
                let (ciphertext, key_id) = reseal(c)?;
                sqlx::query(
                    "UPDATE target_credentials SET ciphertext = $2, key_id = $3 WHERE id = $1",
                )
                .bind(c.id.as_uuid())
                .bind(ciphertext)
                .bind(key_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            records.len()
        });
        Ok(count)
    }
}
