//! Fresh databases for tests.
//!
//! `REFLOW_TEST_POSTGRES_URL` (a role that may CREATE DATABASE) adds Postgres to the storage
//! suite; `REFLOW_TEST_BACKEND=postgres` also moves every server and CLI test onto it.

use tempfile::TempDir;

pub struct TestDb {
    pub url: String,
    pub label: &'static str,
    /// Keeps the SQLite file (and the data dir) alive for the test's duration.
    pub dir: TempDir,
}

fn postgres_url() -> Option<String> {
    std::env::var("REFLOW_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

async fn fresh_postgres(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("reflow_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to REFLOW_TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("REFLOW_TEST_POSTGRES_URL must end in /DBNAME");
    format!("{base}/{name}")
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("reflow.db").display()
    );
    TestDb {
        url,
        label: "sqlite",
        dir,
    }
}

pub async fn postgres() -> Option<TestDb> {
    let admin = postgres_url()?;
    Some(TestDb {
        url: fresh_postgres(&admin).await,
        label: "postgres",
        dir: tempfile::tempdir().unwrap(),
    })
}

/// The database for a server or CLI test: SQLite, or Postgres under REFLOW_TEST_BACKEND=postgres.
pub async fn test_db() -> TestDb {
    if std::env::var("REFLOW_TEST_BACKEND").as_deref() == Ok("postgres") {
        return postgres()
            .await
            .expect("REFLOW_TEST_BACKEND=postgres needs REFLOW_TEST_POSTGRES_URL");
    }
    sqlite().await
}

/// Every backend the storage suite must pass on: SQLite always, Postgres when configured.
pub async fn backends() -> Vec<TestDb> {
    let mut out = vec![sqlite().await];
    out.extend(postgres().await);
    out
}

/// Holds back writes to one stored session, as a slow or busy database would, until dropped
/// or released: SQLite's write lock (every write waits), or a Postgres row lock (that row's
/// updates wait). Reads go on.
pub enum SessionWriteHold {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl SessionWriteHold {
    pub async fn take(db: &TestDb, session: &str) -> Self {
        use sqlx::Connection;
        if db.label == "sqlite" {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            Self::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql("BEGIN").execute(&mut conn).await.unwrap();
            let locked = sqlx::query("SELECT id FROM sessions WHERE id = $1 FOR UPDATE")
                .bind(session)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            assert_eq!(locked.len(), 1, "session {session} is stored");
            Self::Postgres(conn)
        }
    }

    pub async fn release(self) {
        match self {
            Self::Sqlite(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
            Self::Postgres(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}
