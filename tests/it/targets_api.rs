//! `/api/targets` over real HTTP: shape, validation (422 naming the field), admin-only writes,
//! lookup by id and by name, patch semantics, deletion.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestServer;

const PW: &str = "correct horse battery";

/// A server with an admin (first user) and a plain user; returns (server, admin, user) tokens.
async fn setup() -> (TestServer, String, String) {
    let s = TestServer::start().await;
    let (admin, _) = s.register("admin@example.com", PW).await;
    let (user, _) = s.register("user@example.com", PW).await;
    (s, admin, user)
}

fn http_body(name: &str) -> Value {
    json!({"name": name, "url": format!("https://{name}.example.com/mcp")})
}

async fn create(s: &TestServer, token: &str, body: Value) -> (u16, Value) {
    s.post("/api/targets", Some(token), body).await
}

#[tokio::test]
async fn create_returns_201_with_the_contract_shape_and_defaults() {
    let (s, admin, _) = setup().await;
    let (status, t) = create(&s, &admin, http_body("github")).await;
    assert_eq!(status, 201, "{t}");
    let fields = [
        "id",
        "name",
        "url",
        "transport_type",
        "command",
        "args",
        "cwd",
        "image",
        "port",
        "health_path",
        "statefulness",
        "isolation_boundary",
        "auth_type",
        "auth_header_name",
        "enabled",
        "prefix",
        "timeout",
        "env",
        "tags",
        "user_env",
        "user_token",
        "resources",
        "created_at",
        "updated_at",
    ];
    let obj = t.as_object().unwrap();
    for f in fields {
        assert!(obj.contains_key(f), "missing {f}: {t}");
    }
    assert_eq!(obj.len(), fields.len(), "no extra fields: {t}");
    assert_eq!(t["transport_type"], "streamable-http");
    assert_eq!(t["statefulness"], "stateless");
    assert_eq!(t["isolation_boundary"], "shared");
    // Users may supply nothing until an admin says what.
    assert_eq!(t["user_env"], json!([]));
    assert_eq!(t["user_token"], false);
    assert_eq!(t["auth_type"], "none");
    assert_eq!(t["enabled"], true);
    assert_eq!(t["prefix"], Value::Null);
    assert_eq!(t["timeout"], Value::Null);
    assert_eq!(
        (t["args"].clone(), t["env"].clone()),
        (json!([]), json!({}))
    );
    assert!(t["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());

    let (status, full) = create(
        &s,
        &admin,
        json!({"name": "fs", "transport_type": "stdio", "command": "npx",
               "args": ["-y", "--x"], "cwd": "/tmp", "isolation_boundary": "per_user",
               "prefix": "", "timeout": "90s", "env": {"A_B": "1"}, "tags": ["b", "a"],
               "auth_type": "header", "auth_header_name": "X-Key", "enabled": false}),
    )
    .await;
    assert_eq!(status, 201, "{full}");
    assert_eq!(full["args"], json!(["-y", "--x"]));
    assert_eq!(full["prefix"], "");
    assert_eq!(full["timeout"], 90);
    assert_eq!(full["env"], json!({"A_B": "1"}));
    assert_eq!(full["tags"], json!(["a", "b"]));
    assert_eq!(full["isolation_boundary"], "per_user");
    assert_eq!(full["enabled"], false);
}

#[tokio::test]
async fn duplicate_names_conflict_and_bad_json_is_400() {
    let (s, admin, _) = setup().await;
    assert_eq!(create(&s, &admin, http_body("dup")).await.0, 201);
    let (status, body) = create(&s, &admin, http_body("dup")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("dup"), "{body}");

    let res = s
        .http
        .post(s.url("/api/targets"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let (status, body) = create(&s, &admin, json!({"name": "x", "bogus": 1})).await;
    assert_eq!(status, 400, "unknown field: {body}");
    let (status, body) = create(&s, &admin, json!({"name": 5})).await;
    assert_eq!(status, 400, "wrong type: {body}");
}

#[tokio::test]
async fn every_validation_rule_is_a_422_naming_its_field() {
    let (s, admin, _) = setup().await;
    let http = |extra: Value| {
        let mut b = http_body("v");
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let many_env: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("K{i}"), json!("v"))).collect();
    let cases: Vec<(&str, Value)> = vec![
        ("name", json!({"url": "https://x.example.com"})),
        ("name", http(json!({"name": "Bad_Name"}))),
        ("url", json!({"name": "v"})),
        ("url", json!({"name": "v", "transport_type": "sse"})),
        ("url", http(json!({"url": "not a url"}))),
        ("url", http(json!({"url": "ftp://x.example.com/"}))),
        ("url", http(json!({"url": "file:///etc/passwd"}))),
        ("transport_type", http(json!({"transport_type": "http"}))),
        ("command", json!({"name": "v", "transport_type": "stdio"})),
        (
            "image",
            json!({"name": "v", "transport_type": "kubernetes"}),
        ),
        ("prefix", http(json!({"prefix": "has space"}))),
        ("prefix", http(json!({"prefix": "x".repeat(33)}))),
        ("auth_header_name", http(json!({"auth_type": "header"}))),
        (
            "auth_header_name",
            http(json!({"auth_type": "header", "auth_header_name": "X Key"})),
        ),
        (
            "auth_header_name",
            http(json!({"auth_type": "header", "auth_header_name": "X:Y"})),
        ),
        ("auth_type", http(json!({"auth_type": "basic"}))),
        ("statefulness", http(json!({"statefulness": "sticky"}))),
        (
            "isolation_boundary",
            http(json!({"isolation_boundary": "per_team"})),
        ),
        ("env", http(json!({"env": {"1BAD": "x"}}))),
        ("env", http(json!({"env": {"A-B": "x"}}))),
        ("env", http(json!({"env": many_env}))),
        ("env", http(json!({"env": {"BIG": "x".repeat(4097)}}))),
        ("tags", http(json!({"tags": ["a b"]}))),
        ("tags", http(json!({"tags": [""]}))),
        ("tags", http(json!({"tags": ["t".repeat(65)]}))),
        ("timeout", http(json!({"timeout": 0}))),
        ("timeout", http(json!({"timeout": 3601}))),
        ("timeout", http(json!({"timeout": "500ms"}))),
        ("timeout", http(json!({"timeout": "soon"}))),
        ("timeout", http(json!({"timeout": -1}))),
        ("port", http(json!({"port": 0}))),
        ("port", http(json!({"port": 65536}))),
    ];
    for reserved in [
        "Host",
        "content-length",
        "Content-Type",
        "transfer-encoding",
        "connection",
        "Mcp-Session-Id",
        "MCP-PROTOCOL-VERSION",
    ] {
        let (status, body) = create(
            &s,
            &admin,
            http(json!({"auth_type": "header", "auth_header_name": reserved})),
        )
        .await;
        assert_eq!(status, 422, "{reserved}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("auth_header_name:"),
            "{body}"
        );
    }
    for (field, body) in cases {
        let (status, res) = create(&s, &admin, body.clone()).await;
        assert_eq!(status, 422, "{body} → {res}");
        let msg = res["error"].as_str().unwrap();
        assert!(
            msg.starts_with(&format!("{field}:")),
            "{body} should name {field}: {msg}"
        );
    }
    // Boundaries that are valid.
    let ok = [
        http(
            json!({"env": {"_A1": "x".repeat(4096)}, "timeout": 3600, "port": 65535,
                    "prefix": "A_b-9", "tags": ["a.b-c_d"]}),
        ),
        http(
            json!({"name": "v2", "auth_type": "header", "auth_header_name": "X-Api-Key",
                    "timeout": 1}),
        ),
    ];
    for body in ok {
        let (status, res) = create(&s, &admin, body.clone()).await;
        assert_eq!(status, 201, "{body} → {res}");
    }
    let (_, list) = s.get("/api/targets", Some(&admin)).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "no invalid target was stored: {list}"
    );
}

#[tokio::test]
async fn non_admins_see_nothing_and_cannot_write() {
    let (s, admin, user) = setup().await;
    let (_, t) = create(&s, &admin, http_body("secret")).await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(s.get("/api/targets", Some(&user)).await, (200, json!([])));
    assert_eq!(create(&s, &user, http_body("mine")).await.0, 403);
    for path in [format!("/api/targets/{id}"), "/api/targets/secret".into()] {
        assert_eq!(s.get(&path, Some(&user)).await.0, 404, "{path}");
        let put = s
            .send(
                Method::PUT,
                &path,
                Some(&user),
                Some(json!({"enabled": false})),
            )
            .await;
        assert_eq!(put.0, 403, "{path}");
        assert_eq!(
            s.send(Method::DELETE, &path, Some(&user), None).await.0,
            403
        );
    }
    assert_eq!(s.get("/api/targets", None).await.0, 401);
    let (_, after) = s.get(&format!("/api/targets/{id}"), Some(&admin)).await;
    assert_eq!(after["enabled"], true, "nothing changed: {after}");
}

#[tokio::test]
async fn get_by_id_or_name_put_patches_delete_removes() {
    let (s, admin, _) = setup().await;
    let (_, t) = create(
        &s,
        &admin,
        json!({"name": "api", "url": "https://api.example.com/mcp", "timeout": 30,
               "tags": ["x"], "env": {"A": "1"}, "prefix": "p"}),
    )
    .await;
    let id = t["id"].as_str().unwrap().to_string();
    let by_id = s.get(&format!("/api/targets/{id}"), Some(&admin)).await;
    let by_name = s.get("/api/targets/api", Some(&admin)).await;
    assert_eq!(by_id, (200, t.clone()));
    assert_eq!(by_name, (200, t.clone()));

    let (status, patched) = s
        .send(
            Method::PUT,
            "/api/targets/api",
            Some(&admin),
            Some(json!({"enabled": false, "timeout": "2m"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    for (k, v) in t.as_object().unwrap() {
        match k.as_str() {
            "enabled" => assert_eq!(patched[k], false),
            "timeout" => assert_eq!(patched[k], 120),
            "updated_at" => assert_ne!(&patched[k], v, "updated_at moves"),
            _ => assert_eq!(&patched[k], v, "{k} unchanged"),
        }
    }
    // null clears a nullable field; a fetched target can be sent back as is.
    let (status, cleared) = s
        .send(
            Method::PUT,
            &format!("/api/targets/{id}"),
            Some(&admin),
            Some(json!({"prefix": null, "timeout": null})),
        )
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(
        (cleared["prefix"].clone(), cleared["timeout"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(cleared["tags"], json!(["x"]));
    let (status, same) = s
        .send(
            Method::PUT,
            "/api/targets/api",
            Some(&admin),
            Some(cleared.clone()),
        )
        .await;
    assert_eq!(status, 200, "round trip: {same}");
    assert_eq!(same["name"], "api");

    // A patch that breaks a cross-field rule is refused and stores nothing.
    let (status, body) = s
        .send(
            Method::PUT,
            "/api/targets/api",
            Some(&admin),
            Some(json!({"transport_type": "stdio"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("command:"),
        "{body}"
    );
    assert_eq!(
        s.get("/api/targets/api", Some(&admin)).await.1["transport_type"],
        "streamable-http"
    );

    // Renaming onto an existing name conflicts.
    create(&s, &admin, http_body("other")).await;
    let (status, _) = s
        .send(
            Method::PUT,
            "/api/targets/api",
            Some(&admin),
            Some(json!({"name": "other"})),
        )
        .await;
    assert_eq!(status, 409);

    let (status, _) = s
        .send(Method::DELETE, "/api/targets/api", Some(&admin), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        s.get(&format!("/api/targets/{id}"), Some(&admin)).await.0,
        404
    );
    assert_eq!(s.get("/api/targets/api", Some(&admin)).await.0, 404);
    assert_eq!(
        s.send(
            Method::DELETE,
            &format!("/api/targets/{id}"),
            Some(&admin),
            None
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn unknown_targets_are_404() {
    let (s, admin, _) = setup().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/targets/{unknown}"),
        "/api/targets/nope".into(),
        "/api/targets/Not_A_Name".into(),
    ] {
        let (status, body) = s.get(&path, Some(&admin)).await;
        assert_eq!(status, 404, "{path}: {body}");
        let put = s
            .send(
                Method::PUT,
                &path,
                Some(&admin),
                Some(json!({"enabled": true})),
            )
            .await;
        assert_eq!(put.0, 404, "{path}");
        assert_eq!(
            s.send(Method::DELETE, &path, Some(&admin), None).await.0,
            404
        );
    }
}
