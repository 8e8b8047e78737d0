//! Learning at once of writes by other processes (the CLI, other replicas): Postgres servers
//! LISTEN on `reflow_revision` (notified by migration 7's trigger), SQLite servers watch the
//! database files. Either only wakes the revision check; the poll stays as the fallback.

use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use tokio::sync::Notify;

use super::{Db, Store, StoreError};

/// Keeps the watch alive; dropping it stops it.
pub enum RevisionWatch {
    Listen(tokio::task::JoinHandle<()>),
    Files(notify::RecommendedWatcher),
    /// An in-memory database: no other process can write it.
    None,
}

impl Drop for RevisionWatch {
    fn drop(&mut self) {
        if let RevisionWatch::Listen(task) = self {
            task.abort();
        }
    }
}

impl Store {
    /// Calls `wake.notify_one()` soon after any process commits to this database (this one
    /// included: the check that follows is one indexed read).
    pub async fn watch_revision(&self, wake: Arc<Notify>) -> Result<RevisionWatch, StoreError> {
        match &self.db {
            Db::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen("reflow_revision").await?;
                Ok(RevisionWatch::Listen(tokio::spawn(async move {
                    loop {
                        match listener.recv().await {
                            Ok(_) => wake.notify_one(),
                            Err(e) => {
                                // recv reconnects on its next call; the poll covers the gap.
                                tracing::warn!(error = %e, "listening for revision changes failed; retrying");
                                wake.notify_one();
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                })))
            }
            Db::Sqlite(pool) => {
                let file = pool.connect_options().get_filename().to_path_buf();
                let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
                    return Ok(RevisionWatch::None);
                };
                if name == ":memory:" || file.as_os_str().is_empty() {
                    return Ok(RevisionWatch::None);
                }
                let dir = if dir.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    dir
                };
                let name = name.to_string_lossy().into_owned();
                let mut watcher =
                    notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                        let Ok(event) = event else { return };
                        // The database, its -wal and -shm: a commit by any process writes one.
                        let ours = event.paths.iter().any(|p| {
                            p.file_name()
                                .is_some_and(|f| f.to_string_lossy().starts_with(&name))
                        });
                        if ours && event.kind.is_modify() {
                            wake.notify_one();
                        }
                    })
                    .map_err(|e| StoreError::Watch(e.to_string()))?;
                watcher
                    .watch(dir, notify::RecursiveMode::NonRecursive)
                    .map_err(|e| StoreError::Watch(format!("{}: {e}", dir.display())))?;
                Ok(RevisionWatch::Files(watcher))
            }
        }
    }
}
