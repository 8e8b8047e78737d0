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
mod revision_watch;
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

pub use audit::{AuditDecision, AuditFilter, AuditRecord, new_audit_id};
pub use credentials::{CredentialRecord, CredentialSlot};
pub use instances::InstanceRecord;
pub use migrations::MigrationState;
pub use policies::{PolicyRecord, PolicySubject, sort_subjects};
pub use revision_watch::RevisionWatch;
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
    #[error("cannot watch the database for changes: {0}")]
    Watch(String),
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

impl StoreError {
    /// What is wrong when the database cannot take the request right now (a fault that passes,
    /// not a bad request): disk full, read-only, locked, or the connection lost. None otherwise.
    pub fn unavailable(&self) -> Option<&'static str> {
        let StoreError::Database(e) = self else {
            return None;
        };
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                Some("no database connection is free")
            }
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                Some("the database connection was lost")
            }
            sqlx::Error::Database(db) => {
                let code = db.code()?;
                // SQLite reports its (extended) result code as a number, Postgres a SQLSTATE.
                if let Ok(n) = code.parse::<i64>() {
                    return match n & 0xff {
                        13 => Some("the disk is full"),
                        8 => Some("the database is read-only"),
                        5 | 6 => Some("the database is locked"),
                        10 | 14 => Some("the database cannot be written (I/O error)"),
                        _ => None,
                    };
                }
                match code.as_ref() {
                    "53100" => Some("the disk is full"),
                    "25006" => Some("the database is read-only"),
                    c if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") => {
                        Some("the database is unavailable")
                    }
                    _ => None,
                }
            }
            _ => None,
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
                // A multi-row insert (an audit batch) keeps a statement journal; on disk that
                // is a temporary file created, written and unlinked per batch.
                .pragma("temp_store", "memory")
                .busy_timeout(Duration::from_secs(10));
            if let Some(dir) = opts.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .after_release(|conn, _| Box::pin(release_sqlite(conn)))
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

    /// True once `close` began: background work stops quietly instead of warning.
    pub fn is_closed(&self) -> bool {
        on_pool!(self, |pool| pool.is_closed())
    }
}

/// Keeps a SQLite connection only if it is back in autocommit mode. When a write fails with
/// "disk full" SQLite may roll the transaction back itself, sqlx's ROLLBACK then fails, and the
/// connection would return to the pool believing it is in a transaction, or holding the write
/// lock: every later write would wait and fail with "database is locked" until a restart.
/// Closing such a connection ends its transaction.
async fn release_sqlite(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the locked handle gives exclusive use of the connection's `sqlite3`, and
    // sqlite3_get_autocommit only reads its state.
    let autocommit =
        unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) };
    drop(handle);
    if autocommit == 0 {
        tracing::warn!("closing a database connection left inside a transaction");
        return Ok(false);
    }
    Ok(true)
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
        self.write_by_id(table.delete_sql(), id).await
    }

    /// Runs one statement on the row `id` (its `$1`) and bumps the revision if it touched one;
    /// false when there was no such row.
    pub(crate) async fn write_by_id(
        &self,
        sql: &'static str,
        id: uuid::Uuid,
    ) -> Result<bool, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(sql)
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
    /// An audit batch's statement journal stays in memory: no temporary file per batch.
    #[tokio::test]
    async fn sqlite_connections_keep_temporary_data_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = super::Store::connect(&url, 2).await.unwrap();
        let super::Db::Sqlite(pool) = &store.db else {
            unreachable!("a sqlite URL")
        };
        // Two connections at once: the pragma is set on each, not on the first only.
        let (mut a, mut b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
        for conn in [&mut a, &mut b] {
            let mode: i64 = sqlx::query_scalar("PRAGMA temp_store")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(mode, 2, "temp_store should be MEMORY (2)");
        }
    }

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
