//! Persistence: one `Store` over SQLite or Postgres, migrations, and the revision counter.
//!
//! Every query is written once in `$n` SQL and expanded for both pool types by `on_pool!`,
//! so the two backends cannot drift apart.

mod audit;
mod credentials;
mod instances;
mod migrations;
mod policies;
mod request_states;
mod sessions;
mod targets;
mod task_owners;
mod tokens;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use audit::{AuditDecision, AuditFilter, AuditRecord};
pub use credentials::{CredentialRecord, CredentialSlot};
pub use instances::InstanceRecord;
pub use migrations::MigrationState;
pub use policies::{PolicyRecord, PolicySubject, sort_subjects};
pub use sessions::SessionRecord;
pub use targets::TargetRecord;
pub use tokens::{ApiTokenRecord, AuthTokenRow};
pub use users::{UserPatch, UserRecord, UserRemoval};

/// Runs `$body` with `$pool` bound to whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is not supported: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`, anything else to `Database`.
    pub(crate) fn conflict_or(err: sqlx::Error, what: impl Into<String>) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what.into()),
            _ => Self::Database(err),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Cheap to clone: both pools are reference counted.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Connects without migrating. `sqlite://` URLs create the file (and its directory).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if let Some(dir) = opts.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Db::Sqlite(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        Ok(Self { db })
    }

    /// Connects and applies pending migrations: what `serve` and every admin command use.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let store = Self::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The number bumped by every admin write; servers poll it to reload their snapshots.
    pub async fn revision(&self) -> Result<i64, StoreError> {
        let rev: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT value FROM revision WHERE id = 1")
                .fetch_one(pool)
                .await
        })?;
        Ok(rev)
    }

    /// Bumps the revision without an admin write, so running servers reload: used after a
    /// change they would not otherwise notice, such as sessions ended by `reflow user recycle`.
    pub async fn bump_revision(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(BUMP_REVISION)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// Admin aggregates deleted by id (their rows cascade to what depends on them).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Table {
    Users,
    Targets,
    Policies,
}

impl Table {
    fn delete_sql(self) -> &'static str {
        match self {
            Table::Users => "DELETE FROM users WHERE id = $1",
            Table::Targets => "DELETE FROM targets WHERE id = $1",
            Table::Policies => "DELETE FROM policies WHERE id = $1",
        }
    }
}

impl Store {
    /// Deletes one row of an admin aggregate and bumps the revision if it existed; false when
    /// there was no such row.
    pub(crate) async fn delete_row(
        &self,
        table: Table,
        id: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(table.delete_sql())
                .bind(id)
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
}

const BUMP_REVISION: &str = "UPDATE revision SET value = value + 1 WHERE id = 1";

/// Hides the password of a database URL in messages and `config check`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            super::redact_url("postgres://reflow:s3cret@db:5432/reflow"),
            "postgres://reflow:***@db:5432/reflow"
        );
        assert_eq!(super::redact_url("sqlite://./x.db"), "sqlite://./x.db");
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
