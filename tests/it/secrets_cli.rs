//! `reflow secret …` through the built binary beside a running server: values go in through
//! stdin and never come out; `rotate-key` re-encrypts so a restarted server resolves the same
//! values under the new key.

use std::process::Stdio;
use std::time::Duration;

use reflow::credentials::CredentialSnapshot;
use reflow::crypto::SecretBox;
use reflow::domain::{GroupName, Role, TargetId, UserId};
use reflow::store::Store;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::{self, TestServer, TestServerOptions};

const PW: &str = "correct horse battery";
const TOKEN: &str = "ghp_cliSECRETtoken_123456";
const REGION: &str = "region-SECRET-value-eu1";

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `reflow --database-url … --data-dir … ARGS` with `stdin` piped in.
async fn reflow(db: &support::TestDb, args: &[&str], stdin: &str) -> Out {
    let data = db.dir.path().join("data");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_reflow"))
        .args([
            "--database-url",
            &db.url,
            "--data-dir",
            &data.display().to_string(),
        ])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn reflow");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.as_bytes()).await.unwrap();
    drop(pipe);
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

#[track_caller]
fn assert_clean(out: &Out) {
    for secret in [TOKEN, REGION] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{out}"
        );
    }
}

async fn resolve(s: &TestServer, token: &str) -> Value {
    let (status, body) = s.get("/api/targets/github/env/resolve", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn set_list_unset_and_rotate_key_through_the_cli() {
    let s = TestServer::start_with(TestServerOptions::default()).await;
    let (admin, _) = s.register("admin@example.com", PW).await;
    let (status, t) = s
        .post(
            "/api/targets",
            Some(&admin),
            json!({"name": "github", "url": "https://api.example.com/mcp", "auth_type": "bearer"}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let target: TargetId = t["id"].as_str().unwrap().parse().unwrap();

    let out = reflow(
        &s.db,
        &["secret", "set", "github", "--default", "--value-stdin"],
        &format!("{TOKEN}\n"),
    )
    .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert_clean(&out);
    let out = reflow(
        &s.db,
        &[
            "secret",
            "set",
            "github",
            "--role",
            "admin",
            "--env",
            "REGION",
            "--value-stdin",
        ],
        REGION,
    )
    .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert_clean(&out);
    // A value that would be a user-scope BASE_URL is refused; values are never argv.
    let out = reflow(
        &s.db,
        &[
            "secret",
            "set",
            "github",
            "--user",
            "admin@example.com",
            "--env",
            "BASE_URL",
            "--value-stdin",
        ],
        "https://evil.example",
    )
    .await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("BASE_URL") && !out.stderr.contains("evil"),
        "{out}"
    );
    assert_eq!(
        reflow(&s.db, &["secret", "set", "github", "--value", TOKEN], "")
            .await
            .code,
        Some(2)
    );
    let out = reflow(&s.db, &["secret", "set", "github"], "").await;
    assert_eq!(out.code, Some(1), "no terminal, no value source: {out}");

    let out = reflow(&s.db, &["--json", "secret", "list", "github"], "").await;
    assert_eq!(out.code, Some(0), "{out}");
    assert_clean(&out);
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let rows: Vec<(String, String, Value, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["scope"].as_str().unwrap().into(),
                e["scope_value"].clone(),
                e["key"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("env".into(), "role".into(), json!("admin"), json!("REGION")),
            ("token".into(), "default".into(), Value::Null, Value::Null),
        ]
    );
    let out = reflow(&s.db, &["secret", "list", "github"], "").await;
    assert!(
        out.stdout.contains("REGION") && out.stdout.contains("default"),
        "{out}"
    );
    assert_clean(&out);

    // The running server picks the CLI writes up through the revision poll.
    let seen = support::gw::eventually(Duration::from_secs(5), || async {
        let r = resolve(&s, &admin).await;
        (r["token"]["masked"] == "gh…56").then_some(r)
    })
    .await
    .expect("the server sees the CLI's token");
    assert_eq!(
        seen["env"]["REGION"],
        json!({"scope": "role", "scope_value": "admin", "masked": "re…u1"})
    );

    // Rotate to a new key (hex in a file); the data-dir key file is replaced.
    let data = s.db.dir.path().join("data");
    let old_key_text = std::fs::read_to_string(data.join("encryption.key")).unwrap();
    let new_key = [42u8; 32];
    let key_file = s.db.dir.path().join("new.key");
    std::fs::write(&key_file, hex::encode(new_key)).unwrap();
    let out = reflow(
        &s.db,
        &[
            "secret",
            "rotate-key",
            "--new-key-file",
            key_file.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("re-encrypted 2 value(s)"), "{out}");
    assert_clean(&out);
    assert_ne!(
        std::fs::read_to_string(data.join("encryption.key")).unwrap(),
        old_key_text
    );
    let again = reflow(
        &s.db,
        &[
            "secret",
            "rotate-key",
            "--new-key-file",
            key_file.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_eq!(again.code, Some(1), "the key in use: {again}");

    // Exactly the same values open under the new key, and no longer under the old one.
    let store = Store::open(&s.db.url, 2).await.unwrap();
    let snap = CredentialSnapshot::load(&store, &SecretBox::new(&new_key))
        .await
        .unwrap();
    let r = snap.resolve(target, UserId::new(), &Role::admin(), &[] as &[GroupName]);
    assert_eq!(r.token.as_ref().unwrap().0.expose(), TOKEN);
    assert_eq!(r.env["REGION"].0.expose(), REGION);
    use base64::Engine as _;
    let old: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(old_key_text.trim())
        .unwrap()
        .try_into()
        .unwrap();
    assert!(
        CredentialSnapshot::load(&store, &SecretBox::new(&old))
            .await
            .is_err()
    );
    store.close().await;

    // A restarted server (reading the replaced key file) resolves the same values.
    let db = s.stop().await;
    let s = TestServer::start_on(db, TestServerOptions::default()).await;
    let (_, login) = s
        .post(
            "/api/auth/login",
            None,
            json!({"email": "admin@example.com", "password": PW}),
        )
        .await;
    let admin = login["token"].as_str().unwrap().to_string();
    assert_eq!(resolve(&s, &admin).await, seen);

    let out = reflow(
        &s.db,
        &[
            "secret", "unset", "github", "--role", "admin", "--env", "REGION",
        ],
        "",
    )
    .await;
    assert_eq!(out.code, Some(0), "{out}");
    let out = reflow(
        &s.db,
        &[
            "secret", "unset", "github", "--role", "admin", "--env", "REGION",
        ],
        "",
    )
    .await;
    assert_eq!(out.code, Some(1), "already gone: {out}");
    let out = reflow(&s.db, &["--json", "secret", "list", "github"], "").await;
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
