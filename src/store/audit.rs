//! The audit log: one row per MCP request and authorization decision, written in batches.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Store, StoreError, on_pool};
use crate::domain::UserId;

/// Whether the gateway let the request through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecision {
    Allow,
    Deny,
}

impl AuditDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// A new audit row id: time-ordered (UUIDv7), so each insert lands at the end of the
/// primary-key index instead of on a random page (random v4 ids made every row rewrite a
/// different index page: ~6 page writes per request at one client).
pub fn new_audit_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: uuid::Uuid,
    pub session_id: Option<String>,
    pub user_id: Option<UserId>,
    pub method: String,
    pub target_name: Option<String>,
    /// The tool or prompt name, or the resource URI, as the client sent it.
    pub name: Option<String>,
    pub decision: AuditDecision,
    pub policy_name: Option<String>,
    /// 0 for success, else the JSON-RPC error code the client received.
    pub response_status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The request's params, only with `audit.log_arguments`, secret-looking values redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    /// The W3C trace id (32 hex digits) shared by the request's spans and its upstream calls.
    pub trace_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub limit: i64,
    pub offset: i64,
    pub user_id: Option<UserId>,
    pub target: Option<String>,
    pub method: Option<String>,
    pub decision: Option<AuditDecision>,
    pub since: Option<DateTime<Utc>>,
    /// Rows strictly before this time.
    pub until: Option<DateTime<Utc>>,
    pub trace_id: Option<String>,
}

/// `response_status` is INTEGER, which Postgres makes 32-bit: widened so both backends decode
/// it as i64.
const COLUMNS: &str = "id, session_id, user_id, method, target_name, name, decision, policy_name, \
                       CAST(response_status AS BIGINT) AS response_status, error, duration_ms, \
                       request_body, trace_id, created_at";

const INSERT_INTO: &str = "INSERT INTO audit_log (id, session_id, user_id, method, target_name, name, \
    decision, policy_name, response_status, error, duration_ms, request_body, trace_id, created_at) ";

/// Rows per INSERT statement: a power of two, at most 256 (14 bind parameters each stays far
/// below SQLite's 32,766 and Postgres's 65,535 parameters per statement). Each size is its own
/// SQL text; with any size the per-connection statement caches (100 each) fill with large
/// programs and RSS grows for minutes (seen in the soak); unprepared, every batch pays a
/// prepare. Nine sizes stay prepared, and a batch takes at most nine statements plus one per
/// 256 rows.
const MAX_ROWS_PER_STATEMENT: usize = 256;

/// `rows` cut into power-of-two chunks, largest first.
fn statement_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = if rows.len() >= MAX_ROWS_PER_STATEMENT {
            MAX_ROWS_PER_STATEMENT
        } else {
            1 << rows.len().ilog2()
        };
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

impl Store {
    /// Writes a batch in one transaction, in multi-row INSERTs: all rows land or none do.
    pub async fn insert_audit(&self, rows: &[AuditRecord]) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in statement_chunks(rows) {
                let mut insert = sqlx::QueryBuilder::new(INSERT_INTO);
                insert.push_values(chunk, |mut b, r| {
                    b.push_bind(r.id)
                        .push_bind(r.session_id.as_deref())
                        .push_bind(r.user_id.map(|u| u.as_uuid()))
                        .push_bind(r.method.as_str())
                        .push_bind(r.target_name.as_deref())
                        .push_bind(r.name.as_deref())
                        .push_bind(r.decision.as_str())
                        .push_bind(r.policy_name.as_deref())
                        // The column is INTEGER on both backends; JSON-RPC codes fit in 32 bits.
                        .push_bind(
                            r.response_status
                                .map(|c| c.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
                        )
                        .push_bind(r.error.as_deref())
                        .push_bind(r.duration_ms)
                        .push_bind(r.request_body.as_deref())
                        .push_bind(r.trace_id.as_deref())
                        .push_bind(r.created_at);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Newest first.
    pub async fn query_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_log WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR target_name = $2) \
             AND ($3 IS NULL OR method = $3) AND ($4 IS NULL OR decision = $4) AND ($5 IS NULL OR created_at >= $5) \
             AND ($8 IS NULL OR created_at < $8) AND ($9 IS NULL OR trace_id = $9) ORDER BY created_at DESC, id LIMIT $6 OFFSET $7"
        ));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(f.user_id.map(|u| u.as_uuid()))
                .bind(f.target.as_deref())
                .bind(f.method.as_deref())
                .bind(f.decision.map(AuditDecision::as_str))
                .bind(f.since)
                .bind(f.limit)
                .bind(f.offset)
                .bind(f.until)
                .bind(f.trace_id.as_deref())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let decision: String = row.try_get("decision")?;
                let user: Option<uuid::Uuid> = row.try_get("user_id")?;
                out.push(AuditRecord {
                    id: row.try_get("id")?,
                    session_id: row.try_get("session_id")?,
                    user_id: user.map(UserId::from_uuid),
                    method: row.try_get("method")?,
                    target_name: row.try_get("target_name")?,
                    name: row.try_get("name")?,
                    decision: AuditDecision::parse(&decision).ok_or_else(|| {
                        StoreError::Corrupt(format!("audit decision {decision:?}"))
                    })?,
                    policy_name: row.try_get("policy_name")?,
                    response_status: row.try_get("response_status")?,
                    error: row.try_get("error")?,
                    duration_ms: row.try_get("duration_ms")?,
                    request_body: row.try_get("request_body")?,
                    trace_id: row.try_get("trace_id")?,
                    created_at: row.try_get("created_at")?,
                });
            }
            out
        }))
    }

    /// Deletes rows older than `before`; returns how many.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("DELETE FROM audit_log WHERE created_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_use_nine_statement_sizes_at_most() {
        let rows: Vec<u32> = (0..1000).collect();
        for n in [0, 1, 2, 3, 255, 256, 257, 511, 1000] {
            let sizes: Vec<usize> = super::statement_chunks(&rows[..n])
                .map(<[u32]>::len)
                .collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{sizes:?}");
            assert!(
                sizes.iter().all(|s| s.is_power_of_two() && *s <= 256),
                "{sizes:?}"
            );
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        }
        let sizes: Vec<usize> = super::statement_chunks(&rows[..1000])
            .map(<[u32]>::len)
            .collect();
        assert_eq!(sizes, [256, 256, 256, 128, 64, 32, 8]);
    }
}
