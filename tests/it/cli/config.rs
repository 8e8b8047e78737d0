//! `reflow db status` / `db migrate`, `reflow config check` (redaction, unknown keys, files),
//! and shell completions in sync with the committed files.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support;
use crate::support::cli::{Target, run_reflow};

#[tokio::test]
async fn db_status_and_migrate() {
    let db = support::test_db().await;
    let t = Target::of(&db);
    t.run(&["db", "migrate"]).await.ok();
    let status = t.run(&["db", "status", "--json"]).await;
    let status = status.ok().json();
    let rows = status
        .as_array()
        .unwrap_or_else(|| panic!("array: {status}"));
    assert_eq!(rows.len(), 8, "{status}");
    assert_eq!(rows[0]["version"], 1, "{status}");
    assert_eq!(rows[1]["version"], 2, "{status}");
    assert_eq!(rows[2]["version"], 3, "{status}");
    assert_eq!(rows[3]["version"], 4, "{status}");
    assert_eq!(rows[4]["version"], 5, "{status}");
    assert_eq!(rows[5]["version"], 6, "{status}");
    assert_eq!(rows[7]["version"], 8, "{status}");
    assert!(rows[1]["applied_at"].is_string(), "{status}");
    let applied = rows[0]["applied_at"]
        .as_str()
        .unwrap_or_else(|| panic!("applied_at set: {status}"));
    chrono::DateTime::parse_from_rfc3339(applied).unwrap();
    // Migrating again is a no-op.
    t.run(&["db", "migrate"]).await.ok();
    let again = t.run(&["db", "status", "--json"]).await.ok().json();
    assert_eq!(again, status);
    let human = t.run(&["db", "status"]).await;
    let listed = &human.ok().stdout;
    assert!(
        listed.contains("0001") && listed.contains("0002"),
        "{}",
        human.describe()
    );
}

#[tokio::test]
async fn db_status_on_an_unmigrated_database_shows_pending() {
    let db = support::test_db().await;
    let t = Target::of(&db);
    let status = t.run(&["db", "status", "--json"]).await.ok().json();
    assert_eq!(status[0]["version"], 1, "{status}");
    assert_eq!(
        status[0]["applied_at"],
        Value::Null,
        "status must not migrate: {status}"
    );
}

#[tokio::test]
async fn config_check_redacts_and_rejects_unknown_keys() {
    let db = support::test_db().await;
    let t = Target::of(&db);
    let jwt = "j".repeat(20) + &"W".repeat(20);
    assert_eq!(jwt.len(), 40);
    let r = t
        .run_with(
            &["config", "check", "--json"],
            None,
            &[("REFLOW_AUTH_JWT_SECRET", &jwt)],
        )
        .await;
    let cfg = r.ok().json();
    assert_eq!(cfg["database"]["url"], "[redacted]", "{cfg}");
    assert_eq!(cfg["auth"]["jwt_secret"], "[redacted]", "{cfg}");
    assert_eq!(cfg["data_dir"], t.data_dir.display().to_string(), "{cfg}");
    assert!(
        !r.stdout.contains(&jwt) && !r.stderr.contains(&jwt),
        "jwt secret leaked:\n{}",
        r.describe()
    );

    // Human output: redacted too.
    let r = t
        .run_with(
            &["config", "check"],
            None,
            &[("REFLOW_AUTH_JWT_SECRET", &jwt)],
        )
        .await;
    r.ok();
    assert!(
        !r.stdout.contains(&jwt) && !r.stderr.contains(&jwt),
        "jwt secret leaked:\n{}",
        r.describe()
    );
    assert!(r.stdout.contains("[redacted]"), "{}", r.describe());

    // A password in a Postgres URL never appears.
    let pg = "postgres://reflow:hunter2hunter2@db.invalid:5432/reflow";
    let r = run_reflow(
        &[
            "--database-url".into(),
            pg.into(),
            "config".into(),
            "check".into(),
            "--json".into(),
        ],
        None,
        &[],
    )
    .await;
    r.ok();
    assert!(
        !r.stdout.contains("hunter2hunter2"),
        "db password leaked:\n{}",
        r.describe()
    );

    // Unknown key in a config file: exit 1, naming the key path.
    let file = db.dir.path().join("bad.yaml");
    std::fs::write(&file, "server: {prot: 1}\n").unwrap();
    let file_arg = file.display().to_string();
    t.run(&["--config", &file_arg, "config", "check"])
        .await
        .fails(1, "server.prot");

    // A valid file is accepted and applied.
    let good = db.dir.path().join("good.yaml");
    std::fs::write(&good, "server:\n  port: 9123\n").unwrap();
    let good_arg = good.display().to_string();
    let cfg = t
        .run(&["--config", &good_arg, "config", "check", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(cfg["server"]["port"], 9123, "{cfg}");

    // A too-short secret is rejected.
    t.run_with(
        &["config", "check"],
        None,
        &[("REFLOW_AUTH_JWT_SECRET", "short")],
    )
    .await
    .fails(1, "jwt_secret");
}

fn completions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("completions")
}

#[tokio::test]
async fn completions_match_committed_files() {
    for (shell, file) in [
        ("bash", "reflow.bash"),
        ("zsh", "_reflow"),
        ("fish", "reflow.fish"),
    ] {
        let r = run_reflow(&["completions".into(), shell.into()], None, &[]).await;
        r.ok();
        assert!(r.stdout.contains("reflow"), "{shell}: {}", r.describe());
        let path = completions_dir().join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            r.stdout == committed,
            "completions/{file} is out of date with the CLI definition. Regenerate with:\n  \
             cargo build && target/debug/reflow completions {shell} > completions/{file}\n\
             (or regenerate all three: for s in bash:reflow.bash zsh:_reflow fish:reflow.fish; do \
             target/debug/reflow completions ${{s%%:*}} > completions/${{s#*:}}; done)"
        );
    }
    run_reflow(&["completions".into(), "tcsh".into()], None, &[])
        .await
        .fails(2, "tcsh");
}
