//! Storage faults. SQLite: the database on a real, small tmpfs that the test fills to the last
//! byte and then frees. Calls go on while the disk is full, `/ready` says the database is
//! degraded, admin writes fail with a clear error, and once space returns every audit row
//! written during the fault is in the log: nothing lost, nothing left locked. Postgres: a
//! cluster of the test's own stopped and started again under load.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::db::TestDb;
use crate::support::gw::{PW, eventually};
use crate::support::mcp_client::McpClient;
use crate::support::server::{TestServer, TestServerOptions};
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

/// A tmpfs of a few MiB mounted on a fresh directory; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the disk refuses another byte; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        loop {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        // The last partial pages too.
        while f.write_all(&[7u8; 512]).is_ok() {}
        while f.write_all(&[7u8]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn audited(server: &TestServer, admin: &str, method: &str) -> usize {
    let (status, rows) = server
        .get(
            &format!("/api/logs?method={method}&limit=1000"),
            Some(admin),
        )
        .await;
    assert_eq!(status, 200, "{rows}");
    rows.as_array().map_or(0, Vec::len)
}

/// A server on `db` with an admin, target `a` (an echo upstream) and the admin's MCP session.
async fn serve_on(
    db: TestDb,
    opts: TestServerOptions,
) -> (TestServer, String, UpstreamServer, McpClient) {
    let server = TestServer::start_on(db, opts).await;
    let (admin, _) = server.register("admin@example.com", PW).await;
    let up = UpstreamServer::start(UpstreamConfig::tools("a", ["echo"])).await;
    let (status, t) = server
        .post(
            "/api/targets",
            Some(&admin),
            json!({"name": "a", "url": up.url}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let mut client = McpClient::new(&server, &admin);
    client.initialize().await;
    (server, admin, up, client)
}

/// An admin write: a policy for target `a`.
async fn add_policy(server: &TestServer, admin: &str) -> (u16, Value) {
    server
        .post(
            "/api/policies",
            Some(admin),
            json!({"name": "p", "target": "a", "resource_type": "all", "effect": "allow",
                   "priority": 1, "subjects": [{"subject_type": "everyone"}]}),
        )
        .await
}

async fn ready(server: &TestServer) -> (u16, Value) {
    server.get("/ready", None).await
}

fn sqlite_on(disk: &SmallDisk) -> TestDb {
    TestDb {
        url: format!(
            "sqlite://{}?mode=rwc",
            disk.path().join("reflow.db").display()
        ),
        label: "sqlite",
        dir: tempfile::tempdir().unwrap(),
    }
}

async fn metric(server: &TestServer, admin: &str, name: &str) -> f64 {
    let line = crate::support::requests::metric_line(server, admin, &format!("{name} ")).await;
    line.and_then(|l| l[name.len() + 1..].parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
#[ignore = "mounts a tmpfs: needs root, which CI has (.ci/run runs the ignored tests)"]
async fn a_full_disk_delays_the_audit_log_and_loses_nothing_once_space_returns() {
    let disk = SmallDisk::mount("6m");
    let db = sqlite_on(&disk);
    let (server, admin, _up, client) = serve_on(db, TestServerOptions::default()).await;

    for _ in 0..20 {
        client.result("tools/list", json!({})).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            (audited(&server, &admin, "tools/list").await == 20).then_some(())
        })
        .await
        .is_some(),
        "the first 20 lists are audited"
    );
    assert_eq!(ready(&server).await.1["database"], "ok");

    let filler = disk.fill();
    // Calls go on: the audit queue holds their rows, nobody waits for the disk.
    for i in 0..200 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            client.result("tools/list", json!({})),
        )
        .await
        .unwrap_or_else(|_| panic!("list {i} on a full disk did not answer within 5 s"));
        assert!(r["tools"].is_array(), "{r}");
    }
    let degraded = eventually(Duration::from_secs(15), || async {
        let (status, body) = ready(&server).await;
        (body["database"] == "degraded").then_some((status, body))
    })
    .await
    .expect("/ready reports the database degraded while writes fail");
    assert_eq!(degraded.0, 200, "degraded is still ready: calls work");
    assert!(
        degraded.1["reason"]
            .as_str()
            .unwrap_or("")
            .contains("the disk is full"),
        "{}",
        degraded.1
    );
    assert!(
        degraded.1["audit_queued"].as_u64().unwrap_or(0) >= 200,
        "{}",
        degraded.1
    );
    // An admin write fails with an error that says why, not a hang.
    let (status, body) = tokio::time::timeout(Duration::from_secs(15), add_policy(&server, &admin))
        .await
        .expect("an admin write on a full disk answers within 15 s");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("database"),
        "{body}"
    );

    // The fault lasts a while (a writer that gave up after a few retries would lose rows).
    for _ in 0..20 {
        client.result("tools/list", json!({})).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    std::fs::remove_file(filler).unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            (audited(&server, &admin, "tools/list").await == 240).then_some(())
        })
        .await
        .is_some(),
        "every list made during the fault is audited once space returns (have {})",
        audited(&server, &admin, "tools/list").await
    );
    let (status, body) = ready(&server).await;
    assert_eq!((status, &body["database"]), (200, &json!("ok")), "{body}");
    // Nothing was left holding the write lock: writes work again at once.
    let (status, body) = add_policy(&server, &admin).await;
    assert_eq!(status, 201, "{body}");

    // Shutdown on a full disk is bounded by the grace (10 s for the flush, 10 s for the close),
    // whatever the store does: the rows it cannot write are counted and logged as lost.
    let _filler = disk.fill();
    for _ in 0..10 {
        client.result("tools/list", json!({})).await;
    }
    let clock = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(40), server.stop())
        .await
        .expect("the server stops within the shutdown grace on a full disk");
    eprintln!("stopped on a full disk in {:?}", clock.elapsed());
}

/// `audit.queue_size` bounds what a fault may hold: past it rows are dropped, counted and
/// logged, calls never wait for the disk, and every row is either written or counted.
#[tokio::test]
#[ignore = "mounts a tmpfs: needs root, which CI has (.ci/run runs the ignored tests)"]
async fn a_small_audit_queue_drops_and_counts_what_a_fault_cannot_hold() {
    let disk = SmallDisk::mount("6m");
    let opts = TestServerOptions {
        audit_queue_size: Some(50),
        ..TestServerOptions::default()
    };
    let (server, admin, _up, client) = serve_on(sqlite_on(&disk), opts).await;
    // The session's own rows are written first, so every row counted below is a list's.
    eventually(Duration::from_secs(10), || async {
        (audited(&server, &admin, "notifications/initialized").await == 1).then_some(())
    })
    .await
    .expect("the session's rows are written");
    let filler = disk.fill();
    for i in 0..300 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            client.result("tools/list", json!({})),
        )
        .await
        .unwrap_or_else(|_| panic!("list {i} waited for the full disk"));
        assert!(r["tools"].is_array(), "{r}");
    }
    let (_, body) = ready(&server).await;
    assert_eq!(body["database"], "degraded", "{body}");
    let dropped = metric(&server, &admin, "reflow_audit_rows_dropped_total").await;
    // 300 rows, room for 50 queued plus the writer's batch in hand: most are dropped.
    assert!(dropped >= 200.0, "dropped {dropped}");
    std::fs::remove_file(filler).unwrap();
    let accounted = eventually(Duration::from_secs(30), || async {
        let written = audited(&server, &admin, "tools/list").await;
        (written as f64 + dropped == 300.0).then_some(written)
    })
    .await;
    assert!(
        accounted.is_some(),
        "each list is written or counted as dropped: {} written, {dropped} dropped",
        audited(&server, &admin, "tools/list").await
    );
}

/// A PostgreSQL cluster of the test's own (scripts/pg-test-cluster.sh), so stopping it harms no
/// other test; stopped when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    url: String,
}

impl OwnPostgres {
    fn script(command: &str, dir: &Path) -> String {
        let out = std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/pg-test-cluster.sh"
        ))
        .arg(command)
        .arg(dir)
        .output()
        .expect("run scripts/pg-test-cluster.sh");
        assert!(
            out.status.success(),
            "pg-test-cluster.sh {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("pg").tempdir().unwrap();
        let url = Self::script("start", dir.path());
        Self { dir, url }
    }

    fn stop(&self) {
        Self::script("stop", self.dir.path());
    }

    fn resume(&self) {
        Self::script("resume", self.dir.path());
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/pg-test-cluster.sh"
        ))
        .arg("stop")
        .arg(self.dir.path())
        .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts, stops and resumes a PostgreSQL cluster of its own: needs PostgreSQL installed, as .ci/run does"]
async fn postgres_stopped_and_started_under_load_loses_no_audit_row() {
    let pg = OwnPostgres::start();
    let db = TestDb {
        url: pg.url.clone(),
        label: "postgres",
        dir: tempfile::tempdir().unwrap(),
    };
    let (server, admin, _up, client) = serve_on(db, TestServerOptions::default()).await;

    // Load: a list every 20 ms from before the outage to after it; each must answer in 5 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        async move {
            let mut answered = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = tokio::time::timeout(
                    Duration::from_secs(5),
                    client.request("tools/list", json!({})),
                )
                .await
                .expect("a list answers within 5 s while the database is down");
                assert!(r["result"]["tools"].is_array(), "{r}");
                answered += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answered
        }
    };
    let outage = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        tokio::task::block_in_place(|| pg.stop());
        let down = eventually(Duration::from_secs(10), || async {
            let (status, body) = ready(&server).await;
            (status == 503).then_some(body)
        })
        .await
        .expect("/ready says 503 while the database is down");
        assert_eq!(down["database"], "unreachable", "{down}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        tokio::task::block_in_place(|| pg.resume());
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let (answered, ()) = tokio::join!(load, outage);
    assert!(
        answered > 100,
        "the load ran through the outage: {answered}"
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            (audited(&server, &admin, "tools/list").await == answered).then_some(())
        })
        .await
        .is_some(),
        "every one of the {answered} lists is audited once the database is back (have {})",
        audited(&server, &admin, "tools/list").await
    );
    let (status, body) = ready(&server).await;
    assert_eq!((status, &body["database"]), (200, &json!("ok")), "{body}");
    let (status, body) = add_policy(&server, &admin).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}
