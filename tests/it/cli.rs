//! The built `reflow` binary: admin commands against a fresh database, exit codes, JSON output,
//! completions in sync, and CLI writes reaching a running server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cli::{Target, run_reflow};
use crate::support::{self, TestServer, TestServerOptions};

fn find_user<'a>(list: &'a Value, email: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("{email} not in {list}"))
}

#[tokio::test]
async fn user_add_list_show_and_errors() {
    let db = support::test_db().await;
    let t = Target::of(&db);

    let added = t
        .run_stdin(
            &[
                "user",
                "add",
                "alice@example.com",
                "--role",
                "dev",
                "--group",
                "ops",
                "--password-stdin",
                "--json",
            ],
            "correct horse battery\n",
        )
        .await;
    let added = added.ok().json();
    assert_eq!(added["email"], "alice@example.com", "{added}");
    assert!(
        added.get("password_hash").is_none(),
        "never print the hash: {added}"
    );

    let list = t.run(&["user", "list", "--json"]).await;
    let list = list.ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let alice = find_user(&list, "alice@example.com");
    assert_eq!(alice["role"], "dev", "{alice}");
    assert_eq!(alice["groups"], serde_json::json!(["ops"]), "{alice}");
    assert_eq!(alice["id"], added["id"], "{alice}");
    assert!(
        alice["id"]
            .as_str()
            .is_some_and(|s| s.parse::<uuid::Uuid>().is_ok()),
        "{alice}"
    );

    let show = t
        .run(&["user", "show", "alice@example.com", "--json"])
        .await;
    let show = show.ok().json();
    assert_eq!(show["id"], alice["id"], "{show}");
    assert_eq!(show["tokens"], serde_json::json!([]), "{show}");
    // By id too.
    let id = alice["id"].as_str().unwrap();
    let by_id = t.run(&["user", "show", id, "--json"]).await;
    assert_eq!(by_id.ok().json()["email"], "alice@example.com");

    // Human output names the user.
    let human = t.run(&["user", "list"]).await;
    assert!(
        human.ok().stdout.contains("alice@example.com"),
        "{}",
        human.describe()
    );

    // Same email again (different case): exit 1, "already exists".
    t.run_stdin(
        &["user", "add", "Alice@Example.com", "--password-stdin"],
        "another password\n",
    )
    .await
    .fails(1, "already exists");
    // Too short a password: exit 1 naming the field.
    t.run_stdin(
        &["user", "add", "bob@example.com", "--password-stdin"],
        "abc\n",
    )
    .await
    .fails(1, "password");
    // No password on stdin and no terminal: exit 1, no prompt hang.
    t.run(&["user", "add", "bob@example.com"])
        .await
        .fails(1, "password-stdin");
    // Usage errors are clap's exit 2.
    t.run(&["user", "add"]).await.fails(2, "Usage");
    t.run(&["user", "frobnicate"]).await.fails(2, "Usage");
    // Unknown user: exit 1.
    t.run(&["user", "show", "nobody@example.com"])
        .await
        .fails(1, "nobody@example.com");

    // None of the failures created anything.
    let list = t.run(&["user", "list", "--json"]).await;
    let list = list.ok().json();
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alice@example.com"]);
}

#[tokio::test]
async fn user_set_role_groups_passwd_remove_and_last_admin() {
    let db = support::test_db().await;
    let t = Target::of(&db);
    t.run_stdin(
        &[
            "user",
            "add",
            "root@example.com",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "root password 1\n",
    )
    .await
    .ok();
    t.run_stdin(
        &["user", "add", "alice@example.com", "--password-stdin"],
        "alice password 1\n",
    )
    .await
    .ok();

    let r = t
        .run(&["user", "set-role", "alice@example.com", "dev", "--json"])
        .await;
    assert_eq!(r.ok().json()["role"], "dev");
    let r = t
        .run(&["user", "set-groups", "alice@example.com", "b,a", "--json"])
        .await;
    assert_eq!(
        r.ok().json()["groups"],
        serde_json::json!(["a", "b"]),
        "groups are sorted"
    );
    let show = t
        .run(&["user", "show", "alice@example.com", "--json"])
        .await;
    let show = show.ok().json();
    assert_eq!(
        (show["role"].as_str(), show["groups"].clone()),
        (Some("dev"), serde_json::json!(["a", "b"]))
    );
    let r = t
        .run(&["user", "set-groups", "alice@example.com", "--json"])
        .await;
    assert_eq!(
        r.ok().json()["groups"],
        serde_json::json!([]),
        "no groups given: none"
    );
    t.run(&["user", "set-role", "alice@example.com", "not a role"])
        .await
        .fails(1, "role");

    // passwd: the stored hash changes and verifies the new password, not the old one.
    let store = reflow::store::Store::open(&db.url, 1).await.unwrap();
    let email = reflow::domain::Email::parse("alice@example.com").unwrap();
    let old_hash = store
        .user_by_email(&email)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    t.run_stdin(
        &["user", "passwd", "alice@example.com", "--password-stdin"],
        "brand new secret\n",
    )
    .await
    .ok();
    let new_hash = store
        .user_by_email(&email)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_ne!(old_hash, new_hash, "passwd must change the hash");
    assert!(reflow::crypto::verify_password(
        "brand new secret",
        Some(&new_hash)
    ));
    assert!(!reflow::crypto::verify_password(
        "alice password 1",
        Some(&new_hash)
    ));
    t.run_stdin(
        &["user", "passwd", "alice@example.com", "--password-stdin"],
        "short\n",
    )
    .await
    .fails(1, "password");
    store.close().await;

    // The last admin can be neither demoted nor removed.
    t.run(&["user", "set-role", "root@example.com", "user"])
        .await
        .fails(1, "last admin");
    t.run(&["user", "remove", "root@example.com"])
        .await
        .fails(1, "last admin");
    let list = t.run(&["user", "list", "--json"]).await;
    assert_eq!(
        find_user(&list.ok().json(), "root@example.com")["role"],
        "admin"
    );

    // With a second admin, the first can go.
    t.run(&["user", "set-role", "alice@example.com", "admin"])
        .await
        .ok();
    t.run(&["user", "set-role", "root@example.com", "user"])
        .await
        .ok();
    t.run(&["user", "set-role", "alice@example.com", "user"])
        .await
        .fails(1, "last admin");
    let removed = t
        .run(&["user", "remove", "root@example.com", "--json"])
        .await;
    assert!(
        removed.ok().json()["removed"].is_string(),
        "{}",
        removed.describe()
    );
    t.run(&["user", "remove", "root@example.com"])
        .await
        .fails(1, "root@example.com");
    t.run(&["user", "remove", "alice@example.com"])
        .await
        .fails(1, "last admin");
    let list = t.run(&["user", "list", "--json"]).await;
    let list = list.ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["email"], "alice@example.com");
}

#[tokio::test]
async fn token_create_list_revoke() {
    let db = support::test_db().await;
    let t = Target::of(&db);
    t.run_stdin(
        &["user", "add", "alice@example.com", "--password-stdin"],
        "alice password 1\n",
    )
    .await
    .ok();
    let user_id = t
        .run(&["user", "show", "alice@example.com", "--json"])
        .await
        .ok()
        .json()["id"]
        .clone();

    let created = t
        .run(&[
            "token",
            "create",
            "--user",
            "alice@example.com",
            "--name",
            "laptop",
            "--json",
        ])
        .await;
    let created = created.ok().json();
    let api = &created["api_token"];
    assert_eq!(api["name"], "laptop", "{created}");
    assert_eq!(api["user_id"], user_id, "{created}");
    assert_eq!(
        api["expires_at"],
        Value::Null,
        "no --expires-in: never expires: {created}"
    );
    assert_eq!(api["revoked_at"], Value::Null, "{created}");
    let created_at = api["created_at"].as_str().expect("created_at");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at}"
    );
    let token_id = api["id"].as_str().expect("id").to_string();
    let token = created["token"].as_str().expect("token");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert!(
        !t.run(&["token", "list", "--json"])
            .await
            .stdout
            .contains(token),
        "secret shown once"
    );

    // Expiring token.
    let exp = t
        .run(&[
            "token",
            "create",
            "--user",
            "alice@example.com",
            "--name",
            "ci",
            "--expires-in",
            "2h",
            "--json",
        ])
        .await;
    let exp = exp.ok().json();
    let exp_at =
        chrono::DateTime::parse_from_rfc3339(exp["api_token"]["expires_at"].as_str().unwrap())
            .unwrap();
    let left = exp_at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(118) && left <= chrono::Duration::minutes(120),
        "{exp}"
    );

    // Human output: a client snippet with the Authorization header.
    let human = t
        .run(&[
            "token",
            "create",
            "--user",
            "alice@example.com",
            "--name",
            "desk",
        ])
        .await;
    human.ok();
    assert!(human.stdout.contains("mcpServers"), "{}", human.describe());
    assert!(
        human.stdout.contains("Authorization"),
        "{}",
        human.describe()
    );
    assert!(human.stdout.contains("Bearer ey"), "{}", human.describe());

    let list = t.run(&["token", "list", "--json"]).await;
    let list = list.ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["desk", "ci", "laptop"], "newest first: {list}");
    let laptop = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == token_id.as_str())
        .unwrap();
    assert_eq!(laptop["revoked_at"], Value::Null);
    let by_user = t
        .run(&["token", "list", "--user", "alice@example.com", "--json"])
        .await;
    assert_eq!(by_user.ok().json().as_array().unwrap().len(), 3);

    let revoked = t.run(&["token", "revoke", &token_id, "--json"]).await;
    assert!(
        revoked.ok().json()["revoked_at"].is_string(),
        "{}",
        revoked.describe()
    );
    let list = t.run(&["token", "list", "--json"]).await.ok().json();
    let laptop = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == token_id.as_str())
        .unwrap();
    assert!(
        laptop["revoked_at"].is_string(),
        "revoked_at set after revoke: {laptop}"
    );
    let others_revoked = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["revoked_at"].is_null())
        .count();
    assert_eq!(others_revoked, 1, "only the one token is revoked: {list}");

    t.run(&["token", "revoke", &token_id])
        .await
        .fails(1, &token_id);
    t.run(&["token", "revoke", "not-a-uuid"])
        .await
        .fails(1, "not a token id");
    t.run(&[
        "token",
        "create",
        "--user",
        "nobody@example.com",
        "--name",
        "x",
    ])
    .await
    .fails(1, "nobody@example.com");
    t.run(&["token", "create", "--user", "alice@example.com"])
        .await
        .fails(2, "--name");
}

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

/// Polls `GET path` with `token` until it answers `want`, or panics after `within`.
async fn poll_status(
    server: &TestServer,
    path: &str,
    token: &str,
    want: u16,
    within: Duration,
    what: &str,
) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = server.get(path, Some(token)).await;
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what}: GET {path} still answers {status} ({body}) after {:?}; expected {want} within {within:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_reach_a_running_server() {
    let server = TestServer::start_on(support::test_db().await, TestServerOptions::default()).await;
    let t = Target {
        url: server.db.url.clone(),
        data_dir: server.settings.data_dir.clone(),
    };
    let (admin_token, admin) = server
        .register("admin@example.com", "admin password 1")
        .await;
    assert_eq!(admin["role"], "admin", "{admin}");

    t.run_stdin(
        &[
            "user",
            "add",
            "carol@example.com",
            "--role",
            "user",
            "--password-stdin",
        ],
        "carol password 1\n",
    )
    .await
    .ok();
    // The new account is usable over HTTP (the login path reloads on a miss or the poll).
    let start = Instant::now();
    let carol_token = loop {
        let (status, body) = server
            .post(
                "/api/auth/login",
                None,
                serde_json::json!({"email": "carol@example.com", "password": "carol password 1"}),
            )
            .await;
        if status == 200 {
            assert_eq!(body["user"]["role"], "user", "{body}");
            break body["token"].as_str().unwrap().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "login as the CLI-created user: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    // Creation by the CLI propagates too: within 2 s the token is accepted, as a plain user
    // (immediate acceptance is checked, and currently fails, in
    // `login_session_is_accepted_right_after_cli_user_add`).
    poll_status(
        &server,
        "/api/users",
        &carol_token,
        403,
        Duration::from_secs(2),
        "a plain user may not list users",
    )
    .await;

    t.run(&["user", "set-role", "carol@example.com", "admin"])
        .await
        .ok();
    let took = poll_status(
        &server,
        "/api/users",
        &carol_token,
        200,
        Duration::from_secs(2),
        "promotion by the CLI",
    )
    .await;
    eprintln!("promotion visible after {took:?}");
    let (status, users) = server.get("/api/users", Some(&carol_token)).await;
    assert_eq!(status, 200);
    assert!(users.to_string().contains("carol@example.com"), "{users}");

    // An API token created by the CLI (signed with the data dir's JWT secret) works on the
    // server, and revoking it by the CLI takes effect within 2 s.
    let created = t
        .run(&[
            "token",
            "create",
            "--user",
            "carol@example.com",
            "--name",
            "cli",
            "--json",
        ])
        .await
        .ok()
        .json();
    let api_token = created["token"].as_str().unwrap().to_string();
    let token_id = created["api_token"]["id"].as_str().unwrap().to_string();
    poll_status(
        &server,
        "/api/auth/me",
        &api_token,
        200,
        Duration::from_secs(2),
        "CLI-created token",
    )
    .await;
    let (_, me) = server.get("/api/auth/me", Some(&api_token)).await;
    assert_eq!(me["email"], "carol@example.com", "{me}");

    t.run(&["token", "revoke", &token_id]).await.ok();
    let took = poll_status(
        &server,
        "/api/auth/me",
        &api_token,
        401,
        Duration::from_secs(2),
        "revocation by the CLI",
    )
    .await;
    eprintln!("revocation visible after {took:?}");
    // The session token is unaffected by the token revocation; the admin still works.
    let (status, _) = server.get("/api/auth/me", Some(&carol_token)).await;
    assert_eq!(status, 200);
    let (status, _) = server.get("/api/users", Some(&admin_token)).await;
    assert_eq!(status, 200);

    // Demotion by the CLI also reaches the server.
    t.run(&["user", "set-role", "carol@example.com", "user"])
        .await
        .ok();
    poll_status(
        &server,
        "/api/users",
        &carol_token,
        403,
        Duration::from_secs(2),
        "demotion by the CLI",
    )
    .await;
    server.stop().await;
}

/// A session token returned by `/api/auth/login` must be accepted by the very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_session_is_accepted_right_after_cli_user_add() {
    let server = TestServer::start_on(support::test_db().await, TestServerOptions::default()).await;
    let t = Target {
        url: server.db.url.clone(),
        data_dir: server.settings.data_dir.clone(),
    };
    server
        .register("admin@example.com", "admin password 1")
        .await;
    t.run_stdin(
        &["user", "add", "carol@example.com", "--password-stdin"],
        "carol password 1\n",
    )
    .await
    .ok();
    let (status, body) = server
        .post(
            "/api/auth/login",
            None,
            serde_json::json!({"email": "carol@example.com", "password": "carol password 1"}),
        )
        .await;
    assert_eq!(
        status, 200,
        "login reads the database, so the CLI-created user can log in: {body}"
    );
    let token = body["token"].as_str().unwrap();
    let (status, body) = server.get("/api/users", Some(token)).await;
    assert_eq!(
        status, 403,
        "BUG (src/http/auth_api.rs `login` + src/auth/authenticator.rs `reload_after_miss`): login \
         issued a session token for a user the auth snapshot does not know yet, and the next \
         request is rejected with 401 {body} instead of 403. The miss-reload is skipped when the \
         snapshot was reloaded < 250 ms ago (here: by the admin's registration), so until the \
         500 ms revision poll the fresh token is refused. Fix: refresh the snapshot in `login` \
         when the user is missing from it (or let a miss on a token issued after the last \
         reload bypass the 250 ms limit)."
    );
    server.stop().await;
}
