//! `reflow policy …` through the built binary: add, list --json, test (explain), export,
//! apply of the export is a no-op, apply of a changed file prints the diff, --dry-run and
//! --prune.

use std::process::Stdio;
use std::time::Duration;

use reflow::service::UserService;
use reflow::store::Store;
use serde_json::Value;

use crate::support;

struct Cli {
    url: String,
    data_dir: std::path::PathBuf,
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        &self.stdout
    }
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Cli {
    async fn run(&self, args: &[&str]) -> Out {
        let data_dir = self.data_dir.display().to_string();
        let mut full = vec!["--database-url", &self.url, "--data-dir", &data_dir];
        full.extend_from_slice(args);
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_reflow"))
            .args(&full)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn reflow");
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("reflow finishes within 60 s")
            .unwrap();
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[tokio::test]
async fn policy_lifecycle_test_export_and_apply() {
    let db = support::test_db().await;
    let cli = Cli {
        url: db.url.clone(),
        data_dir: db.dir.path().join("data"),
    };
    cli.run(&[
        "target",
        "add",
        "github",
        "--url",
        "https://gh.example.com/mcp",
    ])
    .await
    .ok();
    let store = Store::open(&db.url, 1).await.unwrap();
    UserService::new(store.clone())
        .create(
            "alice@example.com",
            "correct horse battery",
            "dev",
            &["ops".to_string()],
        )
        .await
        .unwrap();
    store.close().await;

    let p = cli
        .run(&[
            "--json",
            "policy",
            "add",
            "no-delete",
            "--effect",
            "deny",
            "--everyone",
            "--target",
            "github",
            "--type",
            "tool",
            "--pattern",
            "delete_.*",
            "--priority",
            "500",
        ])
        .await
        .json();
    assert_eq!(p["target_name"], "github");
    assert_eq!(p["priority"], 500);
    cli.run(&[
        "policy",
        "add",
        "ops-tools",
        "--effect",
        "allow",
        "--group",
        "ops",
        "--user",
        "alice@example.com",
        "--priority",
        "-3",
        "--description",
        "ops may use tools",
    ])
    .await
    .ok();
    let bad = cli
        .run(&[
            "policy",
            "add",
            "bad",
            "--effect",
            "deny",
            "--pattern",
            "(",
            "--everyone",
        ])
        .await;
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("resource_pattern"), "{}", bad.stderr);

    let list = cli.run(&["--json", "policy", "list"]).await.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["admin-all", "no-delete", "ops-tools"],
        "evaluation order"
    );

    // test: the decision, the deciding policy, and why higher ones did not match.
    let out = cli
        .run(&[
            "policy",
            "test",
            "--user",
            "alice@example.com",
            "--target",
            "github",
            "--tool",
            "delete_repo",
        ])
        .await;
    let text = out.ok();
    assert!(text.starts_with("deny: alice@example.com"), "{text}");
    assert!(text.contains("by policy no-delete"), "{text}");
    assert!(
        text.contains("admin-all") && text.contains("subject:"),
        "{text}"
    );
    let r = cli
        .run(&[
            "--json",
            "policy",
            "test",
            "--user",
            "alice@example.com",
            "--target",
            "github",
            "--tool",
            "undelete_repo",
        ])
        .await
        .json();
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["policy"]["name"], "ops-tools");
    assert_eq!(r["trace"][1]["reason"], "pattern");

    // export → apply is a no-op.
    let yaml = cli.run(&["policy", "export"]).await.ok().to_string();
    assert!(
        yaml.contains("user:alice@example.com"),
        "users by email: {yaml}"
    );
    assert!(yaml.contains("target: github"), "targets by name: {yaml}");
    let file = db.dir.path().join("policies.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let f = file.display().to_string();
    assert_eq!(
        cli.run(&["policy", "apply", "-f", &f]).await.ok().trim(),
        "no changes"
    );
    assert_eq!(
        cli.run(&["policy", "apply", "-f", &f, "--prune"])
            .await
            .ok()
            .trim(),
        "no changes"
    );

    // A changed file: one policy changed, one added, one dropped.
    let changed = yaml
        .replace("priority: 500", "priority: 400")
        .replace("name: ops-tools", "name: ops-tools-2");
    std::fs::write(&file, &changed).unwrap();
    let before = cli.run(&["--json", "policy", "list"]).await.json();
    let dry = cli
        .run(&["policy", "apply", "-f", &f, "--prune", "--dry-run"])
        .await;
    let lines: Vec<&str> = dry.ok().lines().collect();
    assert_eq!(
        lines,
        [
            "~ no-delete (priority)",
            "+ ops-tools-2",
            "- ops-tools",
            "(dry run: nothing changed)"
        ]
    );
    assert_eq!(
        cli.run(&["--json", "policy", "list"]).await.json(),
        before,
        "dry run changed nothing"
    );

    let applied = cli.run(&["policy", "apply", "-f", &f]).await;
    assert_eq!(
        applied.ok().lines().collect::<Vec<_>>(),
        ["~ no-delete (priority)", "+ ops-tools-2"]
    );
    let names: Vec<String> = cli
        .run(&["--json", "policy", "list"])
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["admin-all", "no-delete", "ops-tools", "ops-tools-2"],
        "no prune: kept"
    );
    assert_eq!(
        cli.run(&["policy", "apply", "-f", &f, "--prune"])
            .await
            .ok()
            .trim(),
        "- ops-tools"
    );
    assert_eq!(
        cli.run(&["policy", "apply", "-f", &f, "--prune"])
            .await
            .ok()
            .trim(),
        "no changes"
    );

    // enable/disable/update/remove.
    let d = cli
        .run(&["--json", "policy", "disable", "no-delete"])
        .await
        .json();
    assert_eq!(d["enabled"], false);
    let u = cli
        .run(&[
            "--json",
            "policy",
            "update",
            "no-delete",
            "--all-targets",
            "--clear-pattern",
            "--role",
            "dev",
        ])
        .await
        .json();
    assert_eq!(
        (u["target_id"].clone(), u["resource_pattern"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(u["subjects"][0]["subject_value"], "dev");
    assert_eq!(u["enabled"], false, "update leaves enabled alone");
    cli.run(&["policy", "remove", "no-delete"]).await.ok();
    assert_eq!(
        cli.run(&["policy", "show", "no-delete"]).await.code,
        Some(1)
    );
}
