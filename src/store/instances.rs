//! Instances: one row per stdio process or Kubernetes pod reflow started (target, isolation key, pid,
//! status, when it started, was last used and stopped), so operators can see and restart them
//! from the API or the CLI. Runtime data, not admin data: only a stop request bumps the
//! revision (so the serving process notices it).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{BUMP_REVISION, Store, StoreError, on_pool};
use crate::domain::{InstanceId, InstanceStatus, TargetId};

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct InstanceRecord {
    pub id: InstanceId,
    pub target_id: TargetId,
    /// `shared:<target>`, `role:<role>`, `group:<group>` or `user:<user id>`.
    pub isolation_key: String,
    /// Which gateway process runs it (`host:pid:nonce`).
    pub replica: String,
    pub pid: Option<u32>,
    /// A Kubernetes target's pod, `namespace/name` (None for stdio processes).
    pub pod: Option<String>,
    pub status: InstanceStatus,
    pub started_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

const INSTANCE_COLUMNS: &str =
    "id, target_id, isolation_key, replica, pid, pod, status, started_at, last_used_at, stopped_at";

macro_rules! instance_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let pid: Option<i32> = row.try_get("pid")?;
        InstanceRecord {
            id: InstanceId::from_uuid(row.try_get("id")?),
            target_id: TargetId::from_uuid(row.try_get("target_id")?),
            isolation_key: row.try_get("isolation_key")?,
            replica: row.try_get("replica")?,
            pid: pid.and_then(|p| u32::try_from(p).ok()),
            pod: row.try_get("pod")?,
            status: InstanceStatus::parse(&status)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            started_at: row.try_get("started_at")?,
            last_used_at: row.try_get("last_used_at")?,
            stopped_at: row.try_get("stopped_at")?,
        }
    }};
}

impl Store {
    pub async fn insert_instance(&self, i: &InstanceRecord) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO instances (id, target_id, isolation_key, replica, pid, status, started_at, \
                 last_used_at, stopped_at, pod) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(i.id.as_uuid())
            .bind(i.target_id.as_uuid())
            .bind(&i.isolation_key)
            .bind(&i.replica)
            .bind(i.pid.and_then(|p| i32::try_from(p).ok()))
            .bind(i.status.as_str())
            .bind(i.started_at)
            .bind(i.last_used_at)
            .bind(i.stopped_at)
            .bind(&i.pod)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A target's instances, live ones first, newest first.
    pub async fn list_instances(
        &self,
        target: TargetId,
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE target_id = $1 \
             ORDER BY (stopped_at IS NULL) DESC, started_at DESC"
        ));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(target.as_uuid())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(instance_from_row!(row));
            }
            out
        }))
    }

    /// Every instance not yet stopped (running or asked to stop), of any target and replica.
    pub async fn live_instances(&self) -> Result<Vec<InstanceRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE stopped_at IS NULL"
        ));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(instance_from_row!(row));
            }
            out
        }))
    }

    /// Records recent use of running instances (the gateway calls this once per GC tick).
    pub async fn touch_instances(
        &self,
        ids: &[InstanceId],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for id in ids {
                sqlx::query(
                    "UPDATE instances SET last_used_at = $2 WHERE id = $1 AND stopped_at IS NULL",
                )
                .bind(id.as_uuid())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Marks instances ended (`Stopped` or `Crashed`); rows already ended keep their first end.
    pub async fn end_instances(
        &self,
        ids: &[InstanceId],
        status: InstanceStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for id in ids {
                sqlx::query(
                    "UPDATE instances SET status = $2, stopped_at = $3 WHERE id = $1 AND stopped_at IS NULL",
                )
                .bind(id.as_uuid())
                .bind(status.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Asks whichever process runs them to stop a target's live instances (`reflow target
    /// restart`, `POST /api/targets/{id}/restart-instances`): marks them `stop_requested` and
    /// bumps the revision so every serving process notices. Returns how many were marked.
    pub async fn request_instance_stop(&self, target: TargetId) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE instances SET status = $2 WHERE target_id = $1 AND stopped_at IS NULL",
            )
            .bind(target.as_uuid())
            .bind(InstanceStatus::StopRequested.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
            n
        }))
    }
}
