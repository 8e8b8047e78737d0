//! Embedded migrations for both backends (same numbering), and their status.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{Store, StoreError, on_pool};

/// (version, description, sqlite SQL, postgres SQL). Append only; never edit a shipped entry.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "modern state",
        include_str!("../../migrations/sqlite/0002_modern_state.sql"),
        include_str!("../../migrations/postgres/0002_modern_state.sql"),
    ),
    (
        3,
        "user credentials",
        include_str!("../../migrations/sqlite/0003_user_credentials.sql"),
        include_str!("../../migrations/postgres/0003_user_credentials.sql"),
    ),
    (
        4,
        "audit trace id",
        include_str!("../../migrations/sqlite/0004_audit_trace_id.sql"),
        include_str!("../../migrations/postgres/0004_audit_trace_id.sql"),
    ),
    (
        5,
        "session generation",
        include_str!("../../migrations/sqlite/0005_session_generation.sql"),
        include_str!("../../migrations/postgres/0005_session_generation.sql"),
    ),
    (
        6,
        "kubernetes",
        include_str!("../../migrations/sqlite/0006_kubernetes.sql"),
        include_str!("../../migrations/postgres/0006_kubernetes.sql"),
    ),
    (
        7,
        "revision notify",
        include_str!("../../migrations/sqlite/0007_revision_notify.sql"),
        include_str!("../../migrations/postgres/0007_revision_notify.sql"),
    ),
    (
        8,
        "target restarts",
        include_str!("../../migrations/sqlite/0008_target_restarts.sql"),
        include_str!("../../migrations/postgres/0008_target_restarts.sql"),
    ),
];

fn migrator(postgres: bool) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, desc, lite, pg)| {
                let sql: &'static str = if postgres { pg } else { lite };
                Migration::new(
                    *version,
                    Cow::Borrowed(*desc),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    )
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    pub applied_at: Option<DateTime<Utc>>,
}

impl Store {
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            super::Db::Sqlite(pool) => migrator(false).run(pool).await?,
            super::Db::Postgres(pool) => migrator(true).run(pool).await?,
        }
        Ok(())
    }

    /// Every known migration with when it was applied (None = pending).
    pub async fn migration_status(&self) -> Result<Vec<MigrationState>, StoreError> {
        let table_exists: bool = match &self.db {
            super::Db::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(pool)
            .await?
                > 0,
            super::Db::Postgres(pool) => sqlx::query_scalar::<_, bool>(
                "SELECT to_regclass('_sqlx_migrations') IS NOT NULL",
            )
            .fetch_one(pool)
            .await?,
        };
        let mut applied: Vec<(i64, DateTime<Utc>)> = Vec::new();
        if table_exists {
            applied = on_pool!(self, |pool| {
                sqlx::query("SELECT version, installed_on FROM _sqlx_migrations WHERE success")
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get("version")?, r.try_get("installed_on")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
        }
        Ok(MIGRATIONS
            .iter()
            .map(|(version, desc, _, _)| MigrationState {
                version: *version,
                description: (*desc).to_string(),
                applied_at: applied.iter().find(|(v, _)| v == version).map(|(_, t)| *t),
            })
            .collect())
    }
}
