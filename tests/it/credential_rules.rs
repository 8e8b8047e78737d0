//! Who may put what into an upstream's credentials, tried as an attacker would: a non-admin user
//! writing loader, interpreter and path variables (or anything the target does not declare) at
//! their own user scope is refused and nothing is stored; a declared key reaches only that user's
//! stdio child (read from /proc/PID/environ); a deny-listed row planted straight into the database
//! never reaches a child; children never start in the gateway's working directory; the CLI, which
//! acts as admin, is held to the deny-list too, and `reflow secret audit` reports old rows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reflow::app::Secrets;
use reflow::credentials::seal_context;
use reflow::crypto::SecretBox;
use reflow::domain::{CredentialId, CredentialKind, CredentialScope, TargetId};
use reflow::store::{CredentialRecord, Store};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::cli::Target as Cli;
use crate::support::gw::{Gw, eventually};
use crate::support::stdio::{FIXTURE, add_stdio_target, client, pid_of, user};

/// What an attacker would try first, and a key the target simply does not declare.
const ATTACKS: &[(&str, &str)] = &[
    ("NODE_OPTIONS", "--require /tmp/payload.js"),
    ("LD_PRELOAD", "/tmp/payload.so"),
    ("PATH", "/tmp/evil-bin"),
    ("BASH_ENV", "/tmp/payload.sh"),
    ("REFLOW_DATA_DIR", "/tmp/elsewhere"),
    ("PYTHONPATH", "/tmp/evil-py"),
    ("npm_config_registry", "https://evil.example"),
    ("UNDECLARED_KEY", "x"),
];

/// A stdio target whose users may supply GITHUB_TOKEN (and nothing else), visible to everyone.
async fn declared_target(gw: &Gw, name: &str, isolation: &str) -> String {
    let tid = add_stdio_target(gw, name, &FIXTURE, &[], isolation, json!({})).await;
    let (status, body) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/targets/{tid}"),
            Some(&gw.admin),
            Some(json!({"user_env": ["GITHUB_TOKEN"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_env"], json!(["GITHUB_TOKEN"]), "{body}");
    assert_eq!(body["user_token"], false, "{body}");
    tid
}

/// The user-scope env keys stored for `uid`, as the admin sees them.
async fn stored_user_keys(gw: &Gw, tid: &str, uid: &str) -> Vec<String> {
    let (status, view) = gw
        .server
        .get(&format!("/api/targets/{tid}/env"), Some(&gw.admin))
        .await;
    assert_eq!(status, 200, "{view}");
    serde_json::from_value(view["user"][uid].clone()).unwrap_or_default()
}

/// A process's environment, from the kernel rather than from what the child says.
fn proc_environ(pid: u32) -> BTreeMap<String, String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("read /proc/PID/environ");
    raw.split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| {
            let text = String::from_utf8_lossy(kv);
            text.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn proc_cwd(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/cwd")).expect("read /proc/PID/cwd")
}

#[tokio::test]
async fn a_user_cannot_write_loader_interpreter_path_or_undeclared_keys() {
    let gw = Gw::start().await;
    let tid = declared_target(&gw, "fx", "per_user").await;
    let (uid, token) = user(&gw, "mallory@example.com", "dev", &[]).await;
    let path = format!("/api/targets/{tid}/env/user/{uid}");
    for (key, value) in ATTACKS {
        for method in [Method::POST, Method::PUT] {
            let (status, body) = gw
                .server
                .send(
                    method.clone(),
                    &path,
                    Some(&token),
                    Some(json!({ *key: value })),
                )
                .await;
            let message = body["error"].as_str().unwrap_or_default();
            assert!(
                status == 403 || status == 422,
                "{method} {key}: {status} {body}"
            );
            assert!(message.contains(key), "the error names {key}: {body}");
        }
    }
    // One refused key spoils the whole write: the declared one beside it is not stored either.
    let (status, body) = gw
        .server
        .post(
            &path,
            Some(&token),
            json!({"GITHUB_TOKEN": "ghp_x", "LD_PRELOAD": "/tmp/p.so"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        stored_user_keys(&gw, &tid, &uid).await.is_empty(),
        "nothing stored"
    );
    // Deny-listed keys are a 422 naming the rule; undeclared ones a 403 naming what is allowed.
    let (status, body) = gw
        .server
        .post(&path, Some(&token), json!({"LD_PRELOAD": "/tmp/p.so"}))
        .await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("LD_*"), "{body}");
    let (status, body) = gw
        .server
        .post(&path, Some(&token), json!({"SOME_KEY": "v"}))
        .await;
    assert_eq!(status, 403);
    assert!(
        body["error"].as_str().unwrap().contains("GITHUB_TOKEN"),
        "{body}"
    );
    // The token is not declared either (user_token false).
    let (status, body) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/targets/{tid}/token"),
            Some(&token),
            Some(json!({"token": "mine"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    // The admin may write an undeclared key at the user's scope, but not a deny-listed one.
    let (status, body) = gw
        .server
        .post(&path, Some(&gw.admin), json!({"SOME_KEY": "v"}))
        .await;
    assert_eq!(status, 200, "{body}");
    for scope in [format!("user/{uid}"), "default".into(), "role/dev".into()] {
        let (status, body) = gw
            .server
            .post(
                &format!("/api/targets/{tid}/env/{scope}"),
                Some(&gw.admin),
                json!({"NODE_OPTIONS": "--require /tmp/p.js"}),
            )
            .await;
        assert_eq!(status, 422, "admin at {scope}: {body}");
    }
    assert_eq!(stored_user_keys(&gw, &tid, &uid).await, ["SOME_KEY"]);
    // Declaring a deny-listed key on the target is refused too.
    let (status, body) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/targets/{tid}"),
            Some(&gw.admin),
            Some(json!({"user_env": ["GITHUB_TOKEN", "NODE_OPTIONS"]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("user_env"),
        "{body}"
    );
}

#[tokio::test]
async fn a_declared_key_reaches_only_its_users_child_which_runs_outside_the_gateway_dir() {
    let gw = Gw::start().await;
    let tid = declared_target(&gw, "fx", "shared").await;
    let (alice_id, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let (_, bob) = user(&gw, "bob@example.com", "dev", &[]).await;
    let (status, body) = gw
        .server
        .post(
            &format!("/api/targets/{tid}/env/user/{alice_id}"),
            Some(&alice),
            json!({"GITHUB_TOKEN": "ghp_alice_only_123"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (a, b) = (client(&gw, &alice).await, client(&gw, &bob).await);
    let (pa, pb) = (pid_of(&a, "fx").await, pid_of(&b, "fx").await);
    assert_ne!(pa, pb, "different credentials, different processes");
    let (ea, eb) = (proc_environ(pa), proc_environ(pb));
    assert_eq!(
        ea.get("GITHUB_TOKEN").map(String::as_str),
        Some("ghp_alice_only_123")
    );
    assert_eq!(eb.get("GITHUB_TOKEN"), None, "bob's child: {eb:?}");

    let gateway_dir = std::env::current_dir().unwrap();
    let data_dir = gw.server.settings.data_dir.canonicalize().unwrap();
    for pid in [pa, pb] {
        let cwd = proc_cwd(pid);
        assert_ne!(
            cwd, gateway_dir,
            "pid {pid} runs in the gateway's directory"
        );
        assert!(!cwd.starts_with(&data_dir), "pid {pid} runs in {cwd:?}");
        let name = cwd.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("reflow-stdio-"), "a scratch dir: {cwd:?}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cwd).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{cwd:?}");
    }
}

/// Seals and stores one user-scope env row with the server's key, bypassing every check: what an
/// older database (or a direct SQL write) may hold.
async fn plant(gw: &Gw, tid: TargetId, uid: &str, key: &str, value: &str) {
    let secrets = Secrets::load_or_generate(&gw.server.settings).unwrap();
    let sealer = SecretBox::new(&secrets.encryption_key);
    let context = seal_context(tid, CredentialKind::Env, CredentialScope::User, uid, key);
    let (ciphertext, key_id) = sealer.seal(value.as_bytes(), &context);
    let now =
        chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
    let store = Store::open(&gw.server.db.url, 1).await.unwrap();
    store
        .upsert_credentials(&[CredentialRecord {
            id: CredentialId::new(),
            target_id: tid,
            kind: CredentialKind::Env,
            scope: CredentialScope::User,
            scope_value: uid.to_string(),
            key: key.to_string(),
            ciphertext,
            key_id: key_id.as_str().to_string(),
            created_at: now,
            updated_at: now,
        }])
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test]
async fn deny_listed_rows_planted_in_the_database_never_reach_a_child() {
    let gw = Gw::start().await;
    let tid = declared_target(&gw, "fx", "per_user").await;
    let (uid, token) = user(&gw, "eve@example.com", "dev", &[]).await;
    let target: TargetId = tid.parse().unwrap();
    for (key, value) in [
        ("NODE_OPTIONS", "--require /tmp/payload.js"),
        ("LD_PRELOAD", "/tmp/payload.so"),
        ("PATH", "/tmp/evil-bin"),
        ("BASH_ENV", "/tmp/payload.sh"),
        // A declared key planted the same way: proves the planted rows are read at all.
        ("GITHUB_TOKEN", "ghp_planted_456"),
    ] {
        plant(&gw, target, &uid, key, value).await;
    }
    // The server reloads on the revision bump; wait until it resolves the planted token.
    let resolved = eventually(Duration::from_secs(10), || async {
        let (_, body) = gw
            .server
            .get(&format!("/api/targets/{tid}/env/resolve"), Some(&token))
            .await;
        body["env"].get("GITHUB_TOKEN").is_some().then_some(body)
    })
    .await
    .expect("the planted declared key resolves");
    for key in ["NODE_OPTIONS", "LD_PRELOAD", "PATH", "BASH_ENV"] {
        assert!(resolved["env"].get(key).is_none(), "{key}: {resolved}");
    }

    let c = client(&gw, &token).await;
    let env = proc_environ(pid_of(&c, "fx").await);
    assert_eq!(
        env.get("GITHUB_TOKEN").map(String::as_str),
        Some("ghp_planted_456")
    );
    assert_eq!(env.get("NODE_OPTIONS"), None, "{env:?}");
    assert_eq!(env.get("LD_PRELOAD"), None, "{env:?}");
    assert_eq!(env.get("BASH_ENV"), None, "{env:?}");
    assert_ne!(env.get("PATH").map(String::as_str), Some("/tmp/evil-bin"));

    // The audit reports the planted rows (and an undeclared admin-written one), changing nothing.
    let cli = Cli::of(&gw.server.db);
    cli.run_stdin(
        &[
            "secret",
            "set",
            "fx",
            "--user",
            "eve@example.com",
            "--env",
            "OTHER_KEY",
            "--value-stdin",
        ],
        "v",
    )
    .await
    .ok();
    let report = cli.run(&["--json", "secret", "audit"]).await;
    let rows = report.ok().json();
    let mut found: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["finding"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("BASH_ENV".into(), "denied_key".into()),
            ("LD_PRELOAD".into(), "denied_key".into()),
            ("NODE_OPTIONS".into(), "denied_key".into()),
            ("OTHER_KEY".into(), "undeclared_user_value".into()),
            ("PATH".into(), "denied_key".into()),
        ] as [(String, String); 5],
        "{rows}"
    );
    let report = cli.run(&["secret", "audit"]).await;
    report.ok();
    assert!(
        report.stdout.contains("NODE_OPTIONS") && report.stdout.contains("eve@example.com"),
        "{}",
        report.describe()
    );
    assert!(!report.stdout.contains("payload"), "no value is shown");
}

#[tokio::test]
async fn the_cli_acts_as_admin_but_the_deny_list_binds_it_too() {
    let gw = Gw::start().await;
    declared_target(&gw, "fx", "per_user").await;
    user(&gw, "carol@example.com", "dev", &[]).await;
    let cli = Cli::of(&gw.server.db);
    for key in [
        "NODE_OPTIONS",
        "LD_PRELOAD",
        "PATH",
        "BASH_ENV",
        "REFLOW_DATA_DIR",
    ] {
        let run = cli
            .run_stdin(
                &[
                    "secret",
                    "set",
                    "fx",
                    "--user",
                    "carol@example.com",
                    "--env",
                    key,
                    "--value-stdin",
                ],
                "/tmp/payload",
            )
            .await;
        run.fails(1, key);
        assert!(!run.stderr.contains("/tmp/payload"), "{}", run.describe());
    }
    // The target's declaration through the CLI; a deny-listed key cannot be declared.
    cli.run(&[
        "target",
        "update",
        "fx",
        "--user-env",
        "GITHUB_TOKEN",
        "--user-env",
        "SLACK_TOKEN",
        "--user-token",
        "true",
    ])
    .await
    .ok();
    let shown = cli.run(&["target", "show", "fx", "--json"]).await;
    let shown = shown.ok().json();
    assert_eq!(
        shown["user_env"],
        json!(["GITHUB_TOKEN", "SLACK_TOKEN"]),
        "{shown}"
    );
    assert_eq!(shown["user_token"], true, "{shown}");
    cli.run(&["target", "update", "fx", "--user-env", "NODE_OPTIONS"])
        .await
        .fails(1, "NODE_OPTIONS");
    cli.run(&["target", "update", "fx", "--no-user-env"])
        .await
        .ok();
    let shown = cli.run(&["target", "show", "fx", "--json"]).await;
    assert_eq!(shown.ok().json()["user_env"], json!([]));
    // An undeclared key is fine for an admin.
    cli.run_stdin(
        &[
            "secret",
            "set",
            "fx",
            "--user",
            "carol@example.com",
            "--env",
            "UNDECLARED",
            "--value-stdin",
        ],
        "v",
    )
    .await
    .ok();
    let listed = cli.run(&["--json", "secret", "list", "fx"]).await;
    let keys: Vec<Value> = listed
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].clone())
        .collect();
    assert_eq!(
        keys,
        [json!("UNDECLARED")],
        "only the allowed key is stored"
    );
}
