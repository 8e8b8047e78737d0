//! The built `reflow` binary against a fresh database: `reflow user` (add, list, show, roles,
//! groups, passwd, remove, the last admin) with its exit codes and JSON output. Tokens are in
//! `tokens`, db/config/completions in `config`, CLI writes reaching a running server in `live`.

use serde_json::Value;

use crate::support;
use crate::support::cli::Target;

mod config;
mod live;
mod tokens;

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
