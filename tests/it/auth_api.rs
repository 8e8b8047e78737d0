//! The authentication surface over real HTTP: registration, login, API tokens, users, bad input.

use std::time::{Duration, Instant};

use reflow::auth::{Claims, JwtKeys};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::server::session_claims;
use crate::support::{TestServer, TestServerOptions};

const PW: &str = "correct horse battery";

/// A registration attempt, whatever its outcome (`TestServer::register` wants success).
async fn try_register(s: &TestServer, email: &str, password: &str) -> (u16, Value) {
    let body = json!({"email": email, "password": password});
    s.post("/api/auth/register", None, body).await
}

async fn login(s: &TestServer, email: &str, password: &str) -> (u16, Value) {
    let body = json!({"email": email, "password": password});
    s.post("/api/auth/login", None, body).await
}

/// `PUT /api/users/{id}` as `token`.
async fn put_user(s: &TestServer, token: &str, id: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/users/{id}");
    s.send(Method::PUT, &path, Some(token), Some(body)).await
}

/// `DELETE path` as `token`; the status.
async fn delete(s: &TestServer, path: &str, token: &str) -> u16 {
    s.send(Method::DELETE, path, Some(token), None).await.0
}

#[tokio::test]
async fn first_user_is_admin_later_users_are_users() {
    let s = TestServer::start().await;
    let (_, admin) = s.register("Root@Example.com", PW).await;
    assert_eq!(admin["role"], "admin");
    assert_eq!(admin["email"], "root@example.com");
    let (_, user) = s.register("second@example.com", PW).await;
    assert_eq!(user["role"], "user");
    assert_eq!(user["groups"], json!([]));
    for field in ["id", "email", "role", "groups", "created_at", "updated_at"] {
        assert!(user.get(field).is_some(), "user has {field}: {user}");
    }
    assert!(
        user.get("password_hash").is_none(),
        "no password hash in responses: {user}"
    );
}

#[tokio::test]
async fn login_returns_a_working_token_and_rejects_bad_credentials_alike() {
    let s = TestServer::start().await;
    s.register("a@example.com", PW).await;
    let (status, body) = login(&s, "A@example.com", PW).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let (status, me) = s.get("/api/auth/me", Some(token)).await;
    assert_eq!((status, me["email"].as_str()), (200, Some("a@example.com")));

    let wrong = json!({"email": "a@example.com", "password": "wrong password"});
    let unknown = json!({"email": "nobody@example.com", "password": "wrong password"});
    let (s1, b1) = s.post("/api/auth/login", None, wrong.clone()).await;
    let (s2, b2) = s.post("/api/auth/login", None, unknown.clone()).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(
        b1, b2,
        "wrong password and unknown account answer identically"
    );
    assert_eq!(b1["error"], "invalid email or password");

    // Same timing path: an unknown account also pays for an argon2 verification.
    let time = async |body: &serde_json::Value| {
        let mut samples = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            assert_eq!(s.post("/api/auth/login", None, body.clone()).await.0, 401);
            samples.push(t.elapsed());
        }
        samples.sort();
        samples[3]
    };
    let t_wrong = time(&wrong).await;
    let t_unknown = time(&unknown).await;
    let ratio = t_unknown.as_secs_f64() / t_wrong.as_secs_f64();
    assert!(
        // An unknown account that skipped argon2 would be ~100x faster; load noise is < 3x.
        (0.33..3.0).contains(&ratio),
        "median wrong-password {t_wrong:?} vs unknown-account {t_unknown:?} (ratio {ratio:.2})"
    );
    assert!(
        t_unknown > Duration::from_millis(2),
        "an argon2 verification ran: {t_unknown:?}"
    );
}

#[tokio::test]
async fn brute_force_is_rate_limited_with_429() {
    let s = TestServer::start_with(TestServerOptions {
        login_attempts_per_minute: 5,
        ..TestServerOptions::default()
    })
    .await;
    s.register("victim@example.com", PW).await; // counts one attempt for the IP
    let bad = json!({"email": "victim@example.com", "password": "guess guess"});
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(s.post("/api/auth/login", None, bad.clone()).await.0);
    }
    assert_eq!(&statuses[..4], &[401, 401, 401, 401], "{statuses:?}");
    assert!(statuses[4..].iter().all(|&c| c == 429), "{statuses:?}");
    let res = s
        .http
        .post(s.url("/api/auth/login"))
        .json(&json!({"email": "victim@example.com", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "even the right password waits");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many attempts"),
        "{body}"
    );
}

#[tokio::test]
async fn api_tokens_work_as_bearer_and_revocation_is_immediate() {
    let s = TestServer::start().await;
    let (admin, _) = s.register("admin@example.com", PW).await;
    let (alice, _) = s.register("alice@example.com", PW).await;

    let (status, created) = s
        .post(
            "/api/auth/tokens",
            Some(&alice),
            json!({"name": "claude desktop", "expires_in": "30d"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["api_token"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["api_token"]["name"], "claude desktop");
    assert!(created["api_token"]["expires_at"].is_string());
    assert!(created["api_token"].get("jti").is_none());

    let (status, me) = s.get("/api/auth/me", Some(&token)).await;
    assert_eq!(
        (status, me["email"].as_str()),
        (200, Some("alice@example.com"))
    );
    let (_, list) = s.get("/api/auth/tokens", Some(&alice)).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (_, admin_list) = s.get("/api/auth/tokens", Some(&admin)).await;
    assert_eq!(admin_list, json!([]), "the list is the caller's own tokens");

    // Another user cannot revoke it, and cannot learn that it exists.
    let (bob, _) = s.register("bob@example.com", PW).await;
    let path = format!("/api/auth/tokens/{id}");
    assert_eq!(delete(&s, &path, &bob).await, 404);
    assert_eq!(s.get("/api/auth/me", Some(&token)).await.0, 200);

    assert_eq!(delete(&s, &path, &alice).await, 204);
    let (status, body) = s.get("/api/auth/me", Some(&token)).await;
    assert_eq!(status, 401, "revoked at once: {body}");
    assert!(body["error"].is_string());
    let (_, list) = s.get("/api/auth/tokens", Some(&alice)).await;
    assert!(list[0]["revoked_at"].is_string(), "{list}");

    // An admin may revoke anyone's token.
    let (_, second) = s
        .post("/api/auth/tokens", Some(&alice), json!({"name": "cursor"}))
        .await;
    let id2 = second["api_token"]["id"].as_str().unwrap();
    assert!(second["api_token"]["expires_at"].is_null());
    let path = format!("/api/auth/tokens/{id2}");
    assert_eq!(delete(&s, &path, &admin).await, 204);
    assert_eq!(
        s.get("/api/auth/me", Some(second["token"].as_str().unwrap()))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn forged_expired_and_garbage_tokens_are_401_with_json() {
    let s = TestServer::start().await;
    let (token, user) = s.register("a@example.com", PW).await;
    let now = chrono::Utc::now().timestamp();
    let claims = session_claims(&user, now - 100, now - 10, "x");
    let keys = s.jwt_keys();
    let expired = keys.sign(&claims);
    let valid_forever = keys.sign(&Claims {
        exp: Some(now + 600),
        ..claims.clone()
    });
    assert_eq!(
        s.get("/api/auth/me", Some(&valid_forever)).await.0,
        200,
        "control: same key, valid exp"
    );

    let wrong_key = JwtKeys::new(&[9u8; 32]).sign(&Claims {
        exp: Some(now + 600),
        ..claims.clone()
    });
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = b64.encode(
        serde_json::to_vec(&Claims {
            exp: Some(now + 600),
            ..claims.clone()
        })
        .unwrap(),
    );
    let alg_none = format!(
        "{}.{payload}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let mut tampered = token.clone();
    tampered.insert(
        tampered.len() - 5,
        if tampered.ends_with('A') { 'B' } else { 'A' },
    );

    for (label, bad) in [
        ("expired", expired.as_str()),
        ("wrong signature", wrong_key.as_str()),
        ("alg none", alg_none.as_str()),
        ("garbage", "not-a-jwt"),
        ("tampered", tampered.as_str()),
    ] {
        let res = s
            .http
            .get(s.url("/api/auth/me"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{label}");
        assert!(res.headers().contains_key("www-authenticate"), "{label}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["error"].is_string(), "{label}: {body}");
        if label == "expired" {
            assert_eq!(body["error"], "token expired");
        }
    }
    let res = s
        .http
        .get(s.url("/api/auth/me"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn data_and_tokens_survive_a_restart() {
    let s = TestServer::start().await;
    let (admin, _) = s.register("admin@example.com", PW).await;
    let (_, created) = s
        .post("/api/auth/tokens", Some(&admin), json!({"name": "ci"}))
        .await;
    let api_token = created["token"].as_str().unwrap().to_string();
    let db = s.stop().await;

    let s = TestServer::start_on(db, TestServerOptions::default()).await;
    assert_eq!(
        s.get("/api/auth/me", Some(&admin)).await.0,
        200,
        "session token still valid"
    );
    assert_eq!(
        s.get("/api/auth/me", Some(&api_token)).await.0,
        200,
        "API token still valid"
    );
    assert_eq!(login(&s, "admin@example.com", PW).await.0, 200);
    let (_, second) = s.register("late@example.com", PW).await;
    assert_eq!(
        second["role"], "user",
        "the first-user rule saw the persisted admin"
    );
}

#[tokio::test]
async fn bad_input_is_named_and_writes_nothing() {
    let s = TestServer::start_with(TestServerOptions {
        max_body_bytes: 4096,
        ..TestServerOptions::default()
    })
    .await;
    let (admin, _) = s.register("admin@example.com", PW).await;
    let raw = |body: &'static str| {
        s.http
            .post(s.url("/api/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let res = raw("{\"email\": \"x@example.com\",").await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("malformed JSON"));
    let res = raw("{\"email\": \"x@example.com\"}").await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text().await.unwrap().contains("`password`"),
        "names the missing field"
    );
    let res = raw("{\"email\": 5, \"password\": \"xxxxxxxxxx\"}")
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let res = s
        .http
        .post(s.url("/api/auth/register"))
        .body("email=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    let huge = json!({"email": "big@example.com", "password": "y".repeat(10_000)});
    let (status, body) = s.post("/api/auth/register", None, huge).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("too large"));

    for (email, password, field) in [
        ("not-an-email", PW, "email"),
        ("", PW, "email"),
        ("ok@example.com", "short", "password"),
    ] {
        let (status, body) = try_register(&s, email, password).await;
        assert_eq!(status, 422, "{email}/{password}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with(field), "{body}");
    }
    let (status, body) = try_register(&s, "ADMIN@example.com", PW).await;
    assert_eq!(status, 409, "{body}");
    // A fullwidth twin is the same address (NFKC); a Cyrillic look-alike is refused by name.
    let (status, body) = try_register(&s, "\u{ff41}dmin@example.com", PW).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = try_register(&s, "\u{430}dmin@example.com", PW).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("U+0430"), "{body}");

    let (status, body) = s
        .post("/api/auth/tokens", Some(&admin), json!({"name": ""}))
        .await;
    assert_eq!(
        (
            status,
            body["error"].as_str().map(|e| e.starts_with("name"))
        ),
        (422, Some(true))
    );
    let (status, _) = s
        .post(
            "/api/auth/tokens",
            Some(&admin),
            json!({"name": "x", "expires_in": "soon"}),
        )
        .await;
    assert_eq!(status, 422);

    let (_, users) = s.get("/api/users", Some(&admin)).await;
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "nothing half-written: {users}"
    );
    let (_, tokens) = s.get("/api/auth/tokens", Some(&admin)).await;
    assert_eq!(tokens, json!([]));
}

#[tokio::test]
async fn users_api_is_admin_only_and_changes_apply_at_once() {
    let s = TestServer::start().await;
    let (admin, admin_user) = s.register("admin@example.com", PW).await;
    let (alice, alice_user) = s.register("alice@example.com", PW).await;
    let alice_id = alice_user["id"].as_str().unwrap();

    assert_eq!(s.get("/api/users", Some(&alice)).await.0, 403);
    let (status, list) = s.get("/api/users", Some(&admin)).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 2));

    let (status, updated) = put_user(
        &s,
        &admin,
        alice_id,
        json!({"role": "dev", "groups": ["ops", "eng", "ops"]}),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["groups"], json!(["eng", "ops"]));
    let (_, me) = s.get("/api/auth/me", Some(&alice)).await;
    assert_eq!(me["role"], "dev", "the existing token sees the new role");

    let (status, _) = put_user(&s, &admin, alice_id, json!({"role": "admin"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        s.get("/api/users", Some(&alice)).await.0,
        200,
        "promotion applies to the live token"
    );

    let (status, body) = put_user(&s, &admin, alice_id, json!({"role": "bad role!"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("role"));
    let (status, _) = put_user(&s, &admin, "nope", json!({})).await;
    assert_eq!(status, 400);
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, _) = put_user(&s, &admin, &unknown, json!({"role": "x"})).await;
    assert_eq!(status, 404);

    // Demote alice again, then the last admin cannot demote or delete itself.
    put_user(&s, &admin, alice_id, json!({"role": "user"})).await;
    let admin_id = admin_user["id"].as_str().unwrap();
    let (status, body) = put_user(&s, &admin, admin_id, json!({"role": "user"})).await;
    assert_eq!(status, 409, "{body}");
    let path = format!("/api/users/{admin_id}");
    assert_eq!(delete(&s, &path, &admin).await, 409);

    // Deleting a user invalidates their tokens at once (and says what went with them).
    let path = format!("/api/users/{alice_id}");
    assert_eq!(delete(&s, &path, &admin).await, 200);
    assert_eq!(s.get("/api/auth/me", Some(&alice)).await.0, 401);
}

#[tokio::test]
async fn registration_can_be_disabled_and_probes_answer() {
    let s = TestServer::start_with(TestServerOptions {
        allow_registration: false,
        ..TestServerOptions::default()
    })
    .await;
    let (status, body) = try_register(&s, "a@example.com", PW).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("registration is disabled")
    );
    // The sign-in page shows "run reflow user add" instead of a setup form nobody may submit.
    let (_, ui) = s.get("/api/ui/status", None).await;
    assert_eq!(
        (&ui["needs_setup"], &ui["setup_allowed"]),
        (&json!(true), &json!(false)),
        "{ui}"
    );
    assert_eq!(s.get("/health", None).await, (200, json!({"status": "ok"})));
    let (status, ready) = s.get("/ready", None).await;
    assert_eq!((status, &ready["database"]), (200, &json!("ok")));
    let (status, body) = s.get("/api/nope", None).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("/api/nope"));
    let (status, _) = s.send(Method::DELETE, "/api/auth/login", None, None).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn logout_and_password_changes_end_earlier_login_sessions() {
    let s = TestServer::start().await;
    let (admin, _) = s.register("root@example.com", PW).await;
    let (first, user) = s.register("a@example.com", PW).await;
    let login = |password| login(&s, "a@example.com", password);
    let (_, second) = login(PW).await;
    let second = second["token"].as_str().unwrap().to_string();
    let (status, api) = s
        .post("/api/auth/tokens", Some(&second), json!({"name": "ci"}))
        .await;
    assert_eq!(status, 201, "{api}");
    let api = api["token"].as_str().unwrap().to_string();

    // Logout ends every login session of the caller, at once; the API token stays.
    let (status, _) = s.post("/api/auth/logout", Some(&second), json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(s.get("/api/auth/me", Some(&second)).await.0, 401);
    assert_eq!(
        s.get("/api/auth/me", Some(&first)).await.0,
        401,
        "every session, not one"
    );
    assert_eq!(s.get("/api/auth/me", Some(&api)).await.0, 200);
    assert_eq!(
        s.get("/api/auth/me", Some(&admin)).await.0,
        200,
        "other users keep theirs"
    );
    let (status, third) = login(PW).await;
    assert_eq!(status, 200);
    let third = third["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.get("/api/auth/me", Some(&third)).await.0,
        200,
        "a new login works"
    );

    // `reflow user passwd` on the same database: the running server refuses the old session.
    let cli = crate::support::cli::Target::of(&s.db);
    cli.run_stdin(
        &["user", "passwd", "a@example.com", "--password-stdin"],
        "a new long password\n",
    )
    .await
    .ok();
    let ended = crate::support::gw::eventually(Duration::from_secs(3), || async {
        (s.get("/api/auth/me", Some(&third)).await.0 == 401).then_some(())
    })
    .await;
    assert!(
        ended.is_some(),
        "the old login still works after a password change"
    );
    assert_eq!(s.get("/api/auth/me", Some(&api)).await.0, 200);
    assert_eq!(login(PW).await.0, 401);
    let (status, fourth) = login("a new long password").await;
    assert_eq!(status, 200);
    let fourth = fourth["token"].as_str().unwrap().to_string();

    // A role change does not end them: it applies to them at once (roles are read per request).
    let id = user["id"].as_str().unwrap();
    let (status, body) = put_user(&s, &admin, id, json!({"role": "ops"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, me) = s.get("/api/auth/me", Some(&fourth)).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("ops")), "{me}");
    // Logging out needs a caller.
    assert_eq!(s.post("/api/auth/logout", None, json!({})).await.0, 401);
}

#[tokio::test]
async fn by_default_only_the_first_account_signs_itself_up_and_later_attempts_look_alike() {
    let s = TestServer::start_with(TestServerOptions {
        registration: Some(reflow::config::Registration::FirstAdmin),
        ..TestServerOptions::default()
    })
    .await;
    // The default closes self-registration yet lets the first admin in: the sign-in page must
    // offer the setup form (the browser test drives it on the default config).
    let (_, ui) = s.get("/api/ui/status", None).await;
    assert_eq!(
        (
            &ui["needs_setup"],
            &ui["setup_allowed"],
            &ui["registration_open"]
        ),
        (&json!(true), &json!(true), &json!(false)),
        "{ui}"
    );
    let (admin, first) = s.register("admin@example.com", PW).await;
    assert_eq!(first["role"], "admin", "{first}");
    // A taken email and a free one get the very same answer: register tells nobody who has
    // an account.
    let taken = try_register(&s, "admin@example.com", PW).await;
    let free = try_register(&s, "new@example.com", PW).await;
    assert_eq!(taken.0, 403, "{}", taken.1);
    assert_eq!(taken, free);
    let (_, status) = s.get("/api/ui/status", None).await;
    assert_eq!(status["registration_open"], false, "{status}");
    // Admins add the others.
    let (code, user) = s
        .post(
            "/api/users",
            Some(&admin),
            json!({"email": "new@example.com", "password": PW}),
        )
        .await;
    assert_eq!(code, 201, "{user}");
    assert_eq!(user["role"], "user");
}
