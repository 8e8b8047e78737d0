//! `reflow target …` through the built binary on a fresh database: add (HTTP and stdio with
//! trailing args), list --json, update, enable/disable, remove, and validation exit codes.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support;

struct Cli {
    url: String,
    data_dir: std::path::PathBuf,
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    args: Vec<String>,
}

impl Out {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{self}");
        self
    }
    #[track_caller]
    fn json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reflow {:?}\nexit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl Cli {
    /// Runs `reflow --database-url … --data-dir … ARGS` with PATH and HOME only.
    async fn run(&self, args: &[&str]) -> Out {
        let mut full = vec![
            "--database-url".to_string(),
            self.url.clone(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_reflow"))
            .args(&full)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "HOME",
                std::env::var_os("HOME").unwrap_or_else(|| "/nonexistent".into()),
            )
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
            args: full,
        }
    }
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

#[tokio::test]
async fn target_lifecycle_through_the_cli() {
    let db = support::test_db().await;
    let cli = Cli {
        url: db.url.clone(),
        data_dir: db.dir.path().join("data"),
    };

    let http = cli
        .run(&[
            "--json",
            "target",
            "add",
            "github",
            "--url",
            "https://api.example.com/mcp",
            "--transport",
            "sse",
            "--prefix",
            "gh",
            "--timeout",
            "30s",
            "--statefulness",
            "stateful",
            "--auth-type",
            "header",
            "--auth-header-name",
            "X-Token",
            "--tag",
            "prod",
            "--tag",
            "vcs",
            "--env",
            "ORG=acme",
            "--env",
            "EMPTY=",
            "--disabled",
        ])
        .await
        .json();
    assert_eq!(http["transport_type"], "sse");
    assert_eq!(http["timeout"], 30);
    assert_eq!(http["env"], json!({"ORG": "acme", "EMPTY": ""}));
    assert_eq!(http["enabled"], false);

    let stdio_args = ["-y", "--root=/srv/a b", "-", "--", "é"];
    let mut add = vec![
        "target",
        "add",
        "files",
        "--stdio",
        "--cwd",
        "/srv",
        "--isolation",
        "per_user",
        "--",
        "npx",
    ];
    add.extend(stdio_args);
    let out = cli.run(&add).await;
    out.ok();
    assert!(out.stdout.contains("created target files"), "{out}");

    let list = cli.run(&["target", "list", "--json"]).await.json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["name"], "files", "sorted by name: {list}");
    let files = named(&list, "files");
    assert_eq!(files["transport_type"], "stdio");
    assert_eq!(files["command"], "npx");
    assert_eq!(files["args"], json!(stdio_args), "args kept exactly");
    assert_eq!(files["cwd"], "/srv");
    assert_eq!(files["isolation_boundary"], "per_user");
    assert_eq!(named(&list, "github")["prefix"], "gh");

    let table = cli.run(&["target", "list"]).await;
    table.ok();
    for cell in ["NAME", "github", "https://api.example.com/mcp", "npx -y"] {
        assert!(table.stdout.contains(cell), "{cell}: {table}");
    }

    let up = cli
        .run(&["--json", "target", "update", "files", "--prefix", ""])
        .await
        .json();
    assert_eq!(up["prefix"], "", "unprefixed: {up}");
    assert_eq!(
        up["args"],
        json!(stdio_args),
        "update keeps what it was not given"
    );
    let up = cli
        .run(&["--json", "target", "update", "files", "--clear-prefix"])
        .await
        .json();
    assert_eq!(up["prefix"], Value::Null);

    let id = http["id"].as_str().unwrap();
    let on = cli.run(&["--json", "target", "enable", id]).await.json();
    assert_eq!(
        (on["name"].as_str(), on["enabled"].as_bool()),
        (Some("github"), Some(true))
    );
    let off = cli
        .run(&["--json", "target", "disable", "files"])
        .await
        .json();
    assert_eq!(off["enabled"], false);
    let shown = cli
        .run(&["--json", "target", "show", "github"])
        .await
        .json();
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["tags"], json!(["prod", "vcs"]));

    cli.run(&["target", "remove", "files"]).await.ok();
    let list = cli.run(&["--json", "target", "list"]).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let gone = cli.run(&["target", "show", "files"]).await;
    assert_eq!(gone.code, Some(1), "{gone}");
    assert!(gone.stderr.contains("not found"), "{gone}");
}

#[tokio::test]
async fn invalid_targets_exit_1_naming_the_field() {
    let db = support::test_db().await;
    let cli = Cli {
        url: db.url.clone(),
        data_dir: db.dir.path().join("data"),
    };
    let cases: [(&[&str], &str); 4] = [
        (&["target", "add", "x", "--url", "ftp://example.com"], "url"),
        (&["target", "add", "x", "--url", "not a url"], "url"),
        (&["target", "add", "x", "--stdio"], "command"),
        (
            &[
                "target",
                "add",
                "x",
                "--url",
                "https://e.com",
                "--env",
                "NOEQUALS",
            ],
            "env",
        ),
    ];
    for (args, field) in cases {
        let out = cli.run(args).await;
        assert_eq!(out.code, Some(1), "{out}");
        assert!(
            out.stderr.contains(&format!("{field}:")),
            "should name {field}: {out}"
        );
    }
    let list = cli.run(&["--json", "target", "list"]).await.json();
    assert_eq!(list, json!([]), "nothing was stored");
}

#[tokio::test]
async fn target_test_connects_with_the_default_scope_credentials() {
    use crate::support::upstream::{UpstreamConfig, UpstreamServer};
    let up = UpstreamServer::start(UpstreamConfig::tools("r", ["echo"])).await;
    let db = crate::support::test_db().await;
    let cli = crate::support::cli::Target::of(&db);
    cli.run(&[
        "target",
        "add",
        "gh",
        "--url",
        &up.url,
        "--auth-type",
        "bearer",
    ])
    .await
    .ok();
    cli.run(&["target", "test", "gh"])
        .await
        .fails(1, "reflow secret set gh --default");
    cli.run_stdin(
        &["secret", "set", "gh", "--default", "--value-stdin"],
        "tok-default-123\n",
    )
    .await
    .ok();
    let report = cli.run(&["--json", "target", "test", "gh"]).await;
    let r = report.ok().json();
    assert_eq!(r["counts"]["tools"], 1, "{r}");
    assert!(
        !report.stdout.contains("tok-default-123") && !report.stderr.contains("tok-default-123"),
        "the token is never printed: {}",
        report.describe()
    );
    let seen = up.log.lock().unwrap().headers.clone();
    assert!(
        seen.iter()
            .any(|(k, v)| k == "authorization" && v == "Bearer tok-default-123"),
        "the upstream got the default token: {seen:?}"
    );
}
