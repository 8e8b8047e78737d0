//! `/api/policies` over real HTTP: the contract shape, lookup by id and name, subjects,
//! validation (422 naming the field), admin-only access, and evaluation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestServer;

const PW: &str = "correct horse battery";

/// A server with an admin, a plain user and a target `github`; returns (server, admin, user).
async fn setup() -> (TestServer, String, String) {
    let s = TestServer::start().await;
    let (admin, _) = s.register("admin@example.com", PW).await;
    let (user, _) = s.register("user@example.com", PW).await;
    let (status, body) = s
        .post(
            "/api/targets",
            Some(&admin),
            json!({"name": "github", "url": "https://gh.example.com/mcp"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (s, admin, user)
}

fn no_delete() -> Value {
    json!({
        "name": "no-delete",
        "description": "nobody deletes repos",
        "target": "github",
        "resource_type": "tool",
        "resource_pattern": "delete_.*",
        "effect": "deny",
        "priority": 500,
        "subjects": [{"subject_type": "everyone"}],
    })
}

const POLICY_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "target_id",
    "target_name",
    "resource_type",
    "resource_pattern",
    "effect",
    "priority",
    "enabled",
    "subjects",
    "created_at",
    "updated_at",
];

#[tokio::test]
async fn crud_in_the_contract_shape() {
    let (s, admin, _) = setup().await;
    let (status, list) = s.get("/api/policies", Some(&admin)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the default policy: {list}"
    );
    assert_eq!(list[0]["name"], "admin-all");
    assert_eq!(list[0]["subjects"][0]["subject_type"], "role");
    assert_eq!(list[0]["subjects"][0]["subject_value"], "admin");
    assert_eq!(list[0]["target_id"], Value::Null);

    let (status, p) = s.post("/api/policies", Some(&admin), no_delete()).await;
    assert_eq!(status, 201, "{p}");
    let obj = p.as_object().unwrap();
    for f in POLICY_FIELDS {
        assert!(obj.contains_key(*f), "missing {f}: {p}");
    }
    assert_eq!(obj.len(), POLICY_FIELDS.len(), "no extra fields: {p}");
    assert_eq!(p["target_name"], "github");
    assert!(
        p["target_id"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );
    assert_eq!(p["enabled"], true);
    let subject = &p["subjects"][0];
    assert_eq!(subject["subject_type"], "everyone");
    assert_eq!(subject["subject_value"], Value::Null);
    assert_eq!(subject["policy_id"], p["id"]);
    let id = p["id"].as_str().unwrap().to_string();

    // By id and by name.
    let (_, by_id) = s.get(&format!("/api/policies/{id}"), Some(&admin)).await;
    let (_, by_name) = s.get("/api/policies/no-delete", Some(&admin)).await;
    assert_eq!(by_id, p);
    assert_eq!(by_name, p);

    // PUT: absent fields stay, null clears; a fetched policy can be sent back as is.
    let (status, up) = s
        .send(
            Method::PUT,
            "/api/policies/no-delete",
            Some(&admin),
            Some(json!({"priority": -5, "target_id": null, "resource_pattern": null})),
        )
        .await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["priority"], -5);
    assert_eq!(up["target_id"], Value::Null);
    assert_eq!(up["resource_pattern"], Value::Null);
    assert_eq!(up["effect"], "deny");
    let (status, same) = s
        .send(
            Method::PUT,
            &format!("/api/policies/{id}"),
            Some(&admin),
            Some(up.clone()),
        )
        .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["subjects"], up["subjects"], "subject ids are kept");

    // Subjects.
    let (status, sub) = s
        .post(
            &format!("/api/policies/{id}/subjects"),
            Some(&admin),
            json!({"subject_type": "user", "subject_value": "user@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    assert_eq!(sub["subject_type"], "user");
    let (status, _) = s
        .post(
            &format!("/api/policies/{id}/subjects"),
            Some(&admin),
            json!({"subject_type": "user", "subject_value": "user@example.com"}),
        )
        .await;
    assert_eq!(status, 409, "the same subject twice");
    let (_, p) = s.get(&format!("/api/policies/{id}"), Some(&admin)).await;
    assert_eq!(p["subjects"].as_array().unwrap().len(), 2, "{p}");
    let sub_path = format!(
        "/api/policies/{id}/subjects/{}",
        sub["id"].as_str().unwrap()
    );
    assert_eq!(
        s.send(Method::DELETE, &sub_path, Some(&admin), None)
            .await
            .0,
        204
    );
    assert_eq!(
        s.send(Method::DELETE, &sub_path, Some(&admin), None)
            .await
            .0,
        404
    );
    let (status, _) = s
        .send(
            Method::DELETE,
            &format!("/api/policies/{id}/subjects/nope"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 400, "a malformed subject id");

    // Duplicate names conflict; delete; then 404.
    let (status, body) = s.post("/api/policies", Some(&admin), no_delete()).await;
    assert_eq!(status, 409, "{body}");
    let path = format!("/api/policies/{id}");
    assert_eq!(
        s.send(Method::DELETE, &path, Some(&admin), None).await.0,
        204
    );
    assert_eq!(s.get(&path, Some(&admin)).await.0, 404);
    assert_eq!(s.get("/api/policies/no-delete", Some(&admin)).await.0, 404);
}

#[tokio::test]
async fn every_validation_rule_is_a_422_naming_its_field() {
    let (s, admin, _) = setup().await;
    let with = |extra: Value| {
        let mut b = no_delete();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases = [
        (json!({"name": "Bad Name"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"effect": "maybe"}), "effect"),
        (json!({"effect": null}), "effect"),
        (json!({"resource_type": "tools"}), "resource_type"),
        (
            json!({"resource_pattern": "delete_(.*"}),
            "resource_pattern",
        ),
        (json!({"priority": 10001}), "priority"),
        (json!({"priority": -10001}), "priority"),
        (json!({"target": "missing"}), "target"),
        (
            json!({"target": uuid::Uuid::new_v4().to_string()}),
            "target",
        ),
        (
            json!({"subjects": [{"subject_type": "team", "subject_value": "x"}]}),
            "subject_type",
        ),
        (
            json!({"subjects": [{"subject_type": "role"}]}),
            "subject_value",
        ),
        (
            json!({"subjects": [{"subject_type": "group", "subject_value": "a b"}]}),
            "subject_value",
        ),
        (
            json!({"subjects": [{"subject_type": "everyone", "subject_value": "x"}]}),
            "subject_value",
        ),
        (
            json!({"subjects": [{"subject_type": "user", "subject_value": "ghost@example.com"}]}),
            "subject_value",
        ),
        (
            json!({"subjects": [{"subject_type": "user", "subject_value": uuid::Uuid::new_v4().to_string()}]}),
            "subject_value",
        ),
    ];
    for (extra, field) in cases {
        let body = with(extra.clone());
        let (status, res) = s.post("/api/policies", Some(&admin), body).await;
        assert_eq!(status, 422, "{extra} → {res}");
        let msg = res["error"].as_str().unwrap();
        assert!(msg.starts_with(&format!("{field}: ")), "{extra}: {msg}");
    }
    let (_, res) = s
        .post(
            "/api/policies",
            Some(&admin),
            with(json!({"resource_pattern": "delete_(.*"})),
        )
        .await;
    assert!(
        res["error"].as_str().unwrap().contains("unclosed group"),
        "the regex error: {res}"
    );
    // Nothing was stored by any of them.
    let (_, list) = s.get("/api/policies", Some(&admin)).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // The same rules on update and on adding a subject.
    let (status, _) = s.post("/api/policies", Some(&admin), no_delete()).await;
    assert_eq!(status, 201);
    let (status, res) = s
        .send(
            Method::PUT,
            "/api/policies/no-delete",
            Some(&admin),
            Some(json!({"resource_pattern": "("})),
        )
        .await;
    assert_eq!(status, 422, "{res}");
    let (status, res) = s
        .post(
            "/api/policies/no-delete/subjects",
            Some(&admin),
            json!({"subject_type": "user", "subject_value": "ghost@example.com"}),
        )
        .await;
    assert_eq!(
        (
            status,
            res["error"].as_str().unwrap().starts_with("subject_value")
        ),
        (422, true),
        "{res}"
    );
    // Unknown JSON fields are a 400, like elsewhere.
    let (status, _) = s
        .post("/api/policies", Some(&admin), with(json!({"bogus": 1})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn every_route_is_admin_only() {
    let (s, admin, user) = setup().await;
    let (_, p) = s.post("/api/policies", Some(&admin), no_delete()).await;
    let id = p["id"].as_str().unwrap();
    let sid = p["subjects"][0]["id"].as_str().unwrap();
    let routes = [
        (Method::GET, "/api/policies".to_string(), None),
        (Method::POST, "/api/policies".to_string(), Some(no_delete())),
        (Method::GET, format!("/api/policies/{id}"), None),
        (
            Method::PUT,
            format!("/api/policies/{id}"),
            Some(json!({"priority": 1})),
        ),
        (Method::DELETE, format!("/api/policies/{id}"), None),
        (
            Method::POST,
            format!("/api/policies/{id}/subjects"),
            Some(json!({"subject_type": "everyone"})),
        ),
        (
            Method::DELETE,
            format!("/api/policies/{id}/subjects/{sid}"),
            None,
        ),
        (
            Method::POST,
            "/api/policies/evaluate".to_string(),
            Some(json!({"email": "user@example.com", "target": "github"})),
        ),
    ];
    for (method, path, body) in routes {
        let (status, res) = s
            .send(method.clone(), &path, Some(&user), body.clone())
            .await;
        assert_eq!(status, 403, "{method} {path}: {res}");
        let (status, _) = s.send(method.clone(), &path, None, body).await;
        assert_eq!(status, 401, "{method} {path} without a token");
    }
    // And nothing changed.
    let (_, again) = s.get(&format!("/api/policies/{id}"), Some(&admin)).await;
    assert_eq!(again, p);
}

#[tokio::test]
async fn evaluate_reports_the_decision_the_policy_and_the_trace() {
    let (s, admin, _) = setup().await;
    assert_eq!(
        s.post("/api/policies", Some(&admin), no_delete()).await.0,
        201
    );
    let (status, _) = s
        .post(
            "/api/policies",
            Some(&admin),
            json!({"name": "users-read", "effect": "allow", "resource_type": "tool",
                   "subjects": [{"subject_type": "role", "subject_value": "user"}]}),
        )
        .await;
    assert_eq!(status, 201);
    let eval = |body: Value| {
        let s = &s;
        let admin = &admin;
        async move { s.post("/api/policies/evaluate", Some(admin), body).await }
    };

    let (status, r) = eval(json!({"email": "user@example.com", "target": "github",
                                  "resource_type": "tool", "name": "delete_repo"}))
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["policy"]["name"], "no-delete");
    let trace = r["trace"].as_array().unwrap();
    assert_eq!(trace.len(), 2, "admin-all, then the match: {r}");
    assert_eq!(trace[0]["policy"]["name"], "admin-all");
    assert_eq!(trace[0]["reason"], "subject");
    assert_eq!(trace[1]["matched"], true);

    // Anchored: undelete_repo passes the deny and reaches the allow.
    let (_, r) = eval(json!({"email": "user@example.com", "target": "github",
                             "resource_type": "tool", "name": "undelete_repo"}))
    .await;
    assert_eq!(
        (r["decision"].clone(), r["policy"]["name"].clone()),
        (json!("allow"), json!("users-read")),
        "{r}"
    );
    assert_eq!(r["trace"][1]["reason"], "pattern");

    // A prompt is covered by no policy for users: default deny, no policy.
    let (_, r) = eval(json!({"email": "user@example.com", "target": "github",
                             "resource_type": "prompt", "name": "p"}))
    .await;
    assert_eq!(
        (r["decision"].clone(), r["policy"].clone()),
        (json!("deny"), Value::Null),
        "{r}"
    );

    // The admin by id; without an item: visibility.
    let (_, me) = s.get("/api/auth/me", Some(&admin)).await;
    let (_, r) = eval(json!({"user_id": me["id"], "target": "github"})).await;
    assert_eq!(
        (r["decision"].clone(), r["policy"]["name"].clone()),
        (json!("allow"), json!("admin-all")),
        "{r}"
    );

    // Unknown user or target, and a bad type, name their field.
    for (body, field) in [
        (
            json!({"email": "ghost@example.com", "target": "github"}),
            "user",
        ),
        (
            json!({"email": "user@example.com", "target": "nope"}),
            "target",
        ),
        (
            json!({"email": "user@example.com", "target": "github", "resource_type": "all"}),
            "resource_type",
        ),
        (json!({"target": "github"}), "user_id"),
    ] {
        let (status, r) = eval(body.clone()).await;
        assert_eq!(status, 422, "{body}: {r}");
        assert!(
            r["error"].as_str().unwrap().starts_with(field),
            "{body}: {r}"
        );
    }
}
