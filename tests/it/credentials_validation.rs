//! Credential writes refused with 422 naming the field (and never echoing the value), and the
//! body limit answering 413 for a 1 MB value.

use reqwest::Method;
use serde_json::{Value, json};

use crate::credentials_api::Ctx;
use crate::support::TestServerOptions;

#[tokio::test]
async fn invalid_input_is_refused_naming_the_field() {
    let c = Ctx::start(TestServerOptions {
        max_body_bytes: 2 * 1024 * 1024,
        ..TestServerOptions::default()
    })
    .await;
    let (a, u) = (c.admin.clone(), c.user.clone());
    let uid = c.user_id.clone();
    let big = "v".repeat(64 * 1024 + 1);
    let cases: Vec<(Method, String, &str, Value, &str)> = vec![
        (
            Method::POST,
            "/env/default".into(),
            &a,
            json!({"": "x"}),
            "key",
        ),
        (
            Method::POST,
            "/env/default".into(),
            &a,
            json!({"1ABC": "x"}),
            "key",
        ),
        (
            Method::POST,
            "/env/default".into(),
            &a,
            json!({"A-B": "x"}),
            "key",
        ),
        (
            Method::POST,
            "/env/default".into(),
            &a,
            json!({"A": 5}),
            "value",
        ),
        (
            Method::POST,
            "/env/default".into(),
            &a,
            json!({"A": big}),
            "value",
        ),
        (Method::POST, "/env/default".into(), &a, json!({}), "env"),
        (
            Method::POST,
            format!("/env/user/{uid}"),
            &u,
            json!({"BASE_URL": "https://evil.example"}),
            "key",
        ),
        (
            Method::POST,
            format!("/env/user/{uid}"),
            &a,
            json!({"BASE_URL": "https://evil.example"}),
            "key",
        ),
        (
            Method::POST,
            "/env/role/bad role!".into(),
            &a,
            json!({"A": "x"}),
            "role",
        ),
        (
            Method::POST,
            "/env/group/%20".into(),
            &a,
            json!({"A": "x"}),
            "group",
        ),
        (
            Method::POST,
            "/env/user/nobody@example.com".into(),
            &a,
            json!({"A": "x"}),
            "user",
        ),
        (
            Method::PUT,
            "/token".into(),
            &u,
            json!({"token": ""}),
            "token",
        ),
        (
            Method::PUT,
            "/token".into(),
            &u,
            json!({"token": 12345}),
            "token",
        ),
        (
            Method::PUT,
            "/token".into(),
            &u,
            json!({"token": "a\r\nX-Injected: 1"}),
            "token",
        ),
        (
            Method::PUT,
            "/tokens/default".into(),
            &a,
            json!({"token": big}),
            "token",
        ),
        (
            Method::PUT,
            "/tokens/role".into(),
            &a,
            json!({"token": "x-valid-token"}),
            "role",
        ),
    ];
    for (method, path, token, body, field) in cases {
        let (status, text) = c.call(method.clone(), &path, token, Some(body)).await;
        assert_eq!(status, 422, "{method} {path}: {text}");
        let msg = serde_json::from_str::<Value>(&text).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.starts_with(&format!("{field}:")),
            "{method} {path}: {msg}"
        );
        assert!(
            !msg.contains("vvvv") && !msg.contains("evil") && !msg.contains("12345"),
            "{msg}"
        );
    }
    // A 1 MB value is refused cleanly (422 here; 413 where the body limit is lower).
    let huge = "h".repeat(1024 * 1024);
    let (status, text) = c
        .call(Method::POST, "/env/default", &a, Some(json!({"A": huge})))
        .await;
    assert_eq!(status, 422, "{text}");
    assert!(text.len() < 1000, "the value is not echoed");
    let (_, env) = c.json(Method::GET, "/env", &a, None).await;
    assert_eq!(env["default"], json!([]), "nothing was stored: {env}");
}

#[tokio::test]
async fn a_one_megabyte_value_hits_the_body_limit_cleanly() {
    let c = Ctx::start(TestServerOptions::default()).await;
    let huge = "h".repeat(1024 * 1024);
    let (status, text) = c
        .call(
            Method::POST,
            "/env/default",
            &c.admin,
            Some(json!({"A": huge})),
        )
        .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.len() < 1000, "the value is not echoed");
    let (status, text) = c
        .call(
            Method::PUT,
            "/token",
            &c.user,
            Some(json!({"token": "h".repeat(1024 * 1024)})),
        )
        .await;
    assert_eq!(status, 413, "{text}");
}
