//! The web UI's shell over real HTTP: the embedded page and assets (security headers, ETag,
//! immutable caching, gzip), first-run setup, the cookie session (HttpOnly, SameSite=Strict,
//! Secure behind https), sign-out, the same-origin rule for cookie writes, and 403 for
//! non-admins on admin endpoints whether they use a cookie or a token.

use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, COOKIE, ETAG,
    IF_NONE_MATCH, ORIGIN, SET_COOKIE,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::requests::json_of;
use crate::support::{TestServer, TestServerOptions};

const PW: &str = "correct horse battery";

/// The `reflow_session=…` pair of a Set-Cookie header, and the whole header.
fn session_cookie(res: &reqwest::Response) -> (String, String) {
    let header = res
        .headers()
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_string();
    let pair = header.split(';').next().unwrap().to_string();
    (pair, header)
}

/// A request with the session cookie and, for writes, this server's Origin.
fn with_cookie(
    s: &TestServer,
    method: Method,
    path: &str,
    cookie: &str,
) -> reqwest::RequestBuilder {
    let req = s
        .http
        .request(method.clone(), s.url(path))
        .header(COOKIE, cookie);
    if method == Method::GET {
        req
    } else {
        req.header(ORIGIN, &s.base)
    }
}

fn account(email: &str) -> Value {
    json!({"email": email, "password": PW})
}

/// A JSON POST to one of the UI's own endpoints (setup, sign-in) sent with `origin`.
async fn ui_post(s: &TestServer, path: &str, origin: &str, body: Value) -> reqwest::Response {
    s.http
        .post(s.url(path))
        .header(ORIGIN, origin)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn ui_login(s: &TestServer, email: &str) -> String {
    let res = ui_post(s, "/api/ui/login", &s.base, account(email)).await;
    assert_eq!(res.status(), 200);
    let (pair, _) = session_cookie(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email);
    assert!(body.get("token").is_none(), "no token in the body: {body}");
    pair
}

#[tokio::test]
async fn page_and_assets_carry_security_headers_caching_and_compression() {
    let s = TestServer::start().await;
    let res = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.contains_key("referrer-policy"));
    assert_eq!(h[CACHE_CONTROL], "no-cache");
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("{{ASSETS}}") && !html.contains("http"),
        "{html}"
    );
    let app = html
        .split('"')
        .find(|p| p.starts_with("/assets/") && p.ends_with("/app.js"))
        .expect("the page loads app.js")
        .to_string();

    let res = s
        .http
        .get(s.url(&app))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CONTENT_ENCODING], "gzip");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert!(
        res.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = res.headers()[ETAG].clone();
    let res = s
        .http
        .get(s.url(&app))
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let missing = s.http.get(s.url("/assets/x/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn first_run_setup_makes_an_admin_once_and_sets_a_strict_cookie() {
    let s = TestServer::start().await;
    let (_, status) = s.get("/api/ui/status", None).await;
    assert_eq!(status["needs_setup"], true, "{status}");
    // Without this server's Origin the setup is refused (a cross-site page cannot claim it).
    let res = ui_post(
        &s,
        "/api/ui/setup",
        "http://evil.example",
        account("root@example.com"),
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = ui_post(&s, "/api/ui/setup", &s.base, account("root@example.com")).await;
    assert_eq!(res.status(), 200);
    let (pair, header) = session_cookie(&res);
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    assert!(
        !header.contains("Secure"),
        "plain http: no Secure ({header})"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["role"], "admin");
    let me = json_of(with_cookie(&s, Method::GET, "/api/auth/me", &pair)).await;
    assert_eq!(me["email"], "root@example.com");
    let (_, status) = s.get("/api/ui/status", None).await;
    assert_eq!(status["needs_setup"], false);
    let again = ui_post(&s, "/api/ui/setup", &s.base, account("second@example.com")).await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn cookie_is_secure_behind_https() {
    let s = TestServer::start_with(TestServerOptions {
        public_url: Some("https://gw.example.com".into()),
        ..TestServerOptions::default()
    })
    .await;
    s.register("admin@example.com", PW).await;
    let res = ui_post(&s, "/api/ui/login", &s.base, account("admin@example.com")).await;
    assert_eq!(res.status(), 200);
    let (_, header) = session_cookie(&res);
    assert!(header.contains("; Secure"), "{header}");
}

#[tokio::test]
async fn cookie_writes_must_be_same_origin_and_sign_out_ends_the_session() {
    let s = TestServer::start().await;
    s.register("admin@example.com", PW).await;
    let cookie = ui_login(&s, "admin@example.com").await;
    for (origin, site, status) in [
        (Some("http://evil.example"), None, 403),
        (None, None, 403),
        (Some("null"), None, 403),
        (Some(s.base.as_str()), Some("cross-site"), 403),
        (Some(s.base.as_str()), Some("same-origin"), 201),
    ] {
        let mut req = s
            .http
            .post(s.url("/api/auth/tokens"))
            .header(COOKIE, &cookie)
            .json(&json!({"name": "t"}));
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        if let Some(v) = site {
            req = req.header("sec-fetch-site", v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(
            res.status(),
            status,
            "Origin {origin:?}, Sec-Fetch-Site {site:?}"
        );
    }
    // Reads need no Origin.
    let res = with_cookie(&s, Method::GET, "/api/auth/tokens", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = with_cookie(&s, Method::POST, "/api/ui/logout", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (_, cleared) = session_cookie(&res);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let res = with_cookie(&s, Method::GET, "/api/auth/me", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a signed-out cookie must not work");
}

#[tokio::test]
async fn non_admins_get_403_on_admin_endpoints_with_cookie_or_token() {
    let s = TestServer::start().await;
    let (admin, _) = s.register("admin@example.com", PW).await;
    let (user, _) = s.register("user@example.com", PW).await;
    let cookie = ui_login(&s, "user@example.com").await;
    for (method, path, body) in [
        (Method::GET, "/api/users", None),
        (Method::POST, "/api/users", Some(account("x@example.com"))),
        (Method::GET, "/api/policies", None),
        (
            Method::POST,
            "/api/policies/explain",
            Some(json!({"role": "dev"})),
        ),
        (
            Method::POST,
            "/api/targets",
            Some(json!({"name": "t", "url": "http://127.0.0.1:9/mcp"})),
        ),
    ] {
        let (status, _) = s
            .send(method.clone(), path, Some(&user), body.clone())
            .await;
        assert_eq!(status, 403, "token: {method} {path}");
        let mut req = with_cookie(&s, method.clone(), path, &cookie);
        if let Some(b) = &body {
            req = req.json(b);
        }
        assert_eq!(
            req.send().await.unwrap().status(),
            403,
            "cookie: {method} {path}"
        );
    }
    // The admin may create users through the API the UI uses.
    let (status, created) = s
        .post(
            "/api/users",
            Some(&admin),
            json!({"email": "dev@example.com", "password": PW, "role": "dev", "groups": ["eng"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["role"], "dev");
    assert_eq!(created["groups"], json!(["eng"]));
}

#[tokio::test]
async fn an_oidc_token_signs_in_to_the_ui_and_a_reflow_token_is_not_taken_there() {
    use crate::oidc::{Idp, es256_key, reflow_for, sign};
    let key = es256_key("k1");
    let idp = Idp::start(&[&key]).await;
    let s = reflow_for(&idp).await;
    let (_, status) = s.get("/api/ui/status", None).await;
    assert_eq!(status["oidc_issuer"], json!(idp.issuer));
    let id_token = sign(&key, "k1", &idp.claims("carol"));
    let res = ui_post(
        &s,
        "/api/ui/login",
        &s.base,
        json!({ "id_token": id_token }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (pair, header) = session_cookie(&res);
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"));
    let me = json_of(with_cookie(&s, Method::GET, "/api/auth/me", &pair)).await;
    assert_eq!(me["email"], "carol@corp.example.com");
    assert_eq!(me["external"], true);
    // A forged token is refused; reflow's own tokens sign in with a password, not here.
    let mut forged = id_token.clone();
    forged.pop();
    let res = ui_post(&s, "/api/ui/login", &s.base, json!({ "id_token": forged })).await;
    assert_eq!(res.status(), 401);
    let (own, _) = s.register("admin@example.com", PW).await;
    let res = ui_post(&s, "/api/ui/login", &s.base, json!({ "id_token": own })).await;
    assert_eq!(res.status(), 400);
}
