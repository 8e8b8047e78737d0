//! `reflow token` against a fresh database: create (JSON, expiring, the human snippet), list,
//! revoke, and their errors.

use serde_json::Value;

use crate::support;
use crate::support::cli::Target;

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
