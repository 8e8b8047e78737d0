//! `/api/targets/{id}/token(s)` and `/env…` over real HTTP: shapes, self vs admin, validation,
//! masked resolution, and no stored value in any response body.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, TestServerOptions};

const PW: &str = "correct horse battery";
const SHARED: &str = "ghp_SHAREDsecretTOKEN0042";
const MINE: &str = "user-own-secret-value-77";
const ENVVAL: &str = "env-secret-VALUE-9999";

pub(crate) struct Ctx {
    pub s: TestServer,
    pub admin: String,
    pub user: String,
    pub user_id: String,
    target: String,
    /// Every response body seen, to check for leaked values at the end.
    seen: std::sync::Mutex<String>,
}

impl Ctx {
    pub async fn start(opts: TestServerOptions) -> Self {
        let s = TestServer::start_with(opts).await;
        let (admin, _) = s.register("admin@example.com", PW).await;
        let (user, u) = s.register("user@example.com", PW).await;
        let (status, t) = s
            .post(
                "/api/targets",
                Some(&admin),
                json!({"name": "github", "url": "https://api.example.com/mcp", "auth_type": "bearer",
                       "user_token": true, "user_env": ["REGION"]}),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        // The user may use the target (default deny otherwise).
        let (status, p) = s
            .post(
                "/api/policies",
                Some(&admin),
                json!({"name": "user-github", "target": "github", "resource_type": "all",
                       "effect": "allow", "priority": 100,
                       "subjects": [{"subject_type": "user", "subject_value": "user@example.com"}]}),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        Self {
            admin,
            user,
            user_id: u["id"].as_str().unwrap().to_string(),
            target: t["id"].as_str().unwrap().to_string(),
            s,
            seen: Default::default(),
        }
    }

    /// The raw response text, so a test can grep it for values.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut req = self
            .s
            .http
            .request(
                method,
                self.s.url(&format!("/api/targets/{}{path}", self.target)),
            )
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        self.seen.lock().unwrap().push_str(&text);
        (status, text)
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call(method, path, token, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    #[track_caller]
    fn assert_no_values_seen(&self) {
        let seen = self.seen.lock().unwrap();
        for secret in [SHARED, MINE, ENVVAL] {
            assert!(!seen.contains(secret), "a response contained {secret}");
        }
    }
}

#[tokio::test]
async fn tokens_per_scope_with_self_and_admin_permissions() {
    let c = Ctx::start(TestServerOptions::default()).await;
    let (a, u) = (c.admin.clone(), c.user.clone());

    let (status, body) = c
        .json(
            Method::PUT,
            "/tokens/default",
            &a,
            Some(json!({"token": SHARED})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"scope": "default", "scope_value": null, "configured": true, "updated_at": body["updated_at"]})
    );
    let (status, body) = c
        .json(
            Method::PUT,
            "/tokens/role/dev",
            &a,
            Some(json!({"token": SHARED})),
        )
        .await;
    assert_eq!(
        (status, &body["scope_value"]),
        (200, &json!("dev")),
        "{body}"
    );
    // The original's form: the scope value in the body.
    let (status, body) = c
        .json(
            Method::PUT,
            "/tokens/group",
            &a,
            Some(json!({"group": "eng", "token": SHARED})),
        )
        .await;
    assert_eq!((status, &body["scope"]), (200, &json!("group")), "{body}");

    // Self: own token, never another scope.
    let (status, body) = c.json(Method::GET, "/token", &u, None).await;
    assert_eq!(
        (status, &body["configured"]),
        (200, &json!(false)),
        "{body}"
    );
    let (status, body) = c
        .json(Method::PUT, "/token", &u, Some(json!({"token": MINE})))
        .await;
    assert_eq!(
        (status, &body["scope"], &body["scope_value"]),
        (200, &json!("user"), &json!(c.user_id)),
        "{body}"
    );
    let (status, body) = c.json(Method::GET, "/token", &u, None).await;
    assert_eq!((status, &body["configured"]), (200, &json!(true)), "{body}");
    for (method, path) in [
        (Method::PUT, "/tokens/default"),
        (Method::DELETE, "/tokens/default"),
        (Method::PUT, "/tokens/role/dev"),
        (Method::GET, "/tokens"),
    ] {
        let body = (method == Method::PUT).then(|| json!({"token": "x-attempt"}));
        assert_eq!(c.call(method, path, &u, body).await.0, 403, "{path}");
    }

    // Admin listing: scopes only.
    let (status, list) = c.json(Method::GET, "/tokens", &a, None).await;
    assert_eq!(status, 200, "{list}");
    let scopes: Vec<(String, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["scope"].as_str().unwrap().to_string(),
                e["scope_value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            ("default".to_string(), Value::Null),
            ("group".to_string(), json!("eng")),
            ("role".to_string(), json!("dev")),
            ("user".to_string(), json!(c.user_id)),
        ]
    );
    let mut fields: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["created_at", "scope", "scope_value", "updated_at"]);

    // Resolution for the user: their own token wins; masked.
    let (status, r) = c.json(Method::GET, "/env/resolve", &u, None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["token"],
        json!({"scope": "user", "scope_value": c.user_id, "masked": "us…77"})
    );
    assert_eq!(c.call(Method::DELETE, "/token", &u, None).await.0, 204);
    assert_eq!(c.call(Method::DELETE, "/token", &u, None).await.0, 404);
    let (_, r) = c.json(Method::GET, "/env/resolve", &u, None).await;
    assert_eq!(
        r["token"],
        json!({"scope": "default", "scope_value": null, "masked": "gh…42"})
    );

    assert_eq!(
        c.call(Method::DELETE, "/tokens/role/dev", &a, None).await.0,
        204
    );
    assert_eq!(
        c.call(Method::DELETE, "/tokens/role/dev", &a, None).await.0,
        404
    );
    assert_eq!(
        c.call(Method::DELETE, "/tokens/default", &a, None).await.0,
        204
    );
    let (_, list) = c.json(Method::GET, "/tokens", &a, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // A target the caller may not use answers like an unknown one.
    let (_, other) =
        c.s.post(
            "/api/targets",
            Some(&a),
            json!({"name": "hidden", "url": "https://h.example.com/mcp"}),
        )
        .await;
    let path = format!("/api/targets/{}/token", other["id"].as_str().unwrap());
    assert_eq!(c.s.get(&path, Some(&u)).await.0, 404);
    c.assert_no_values_seen();
}

#[tokio::test]
async fn env_scopes_keys_and_masked_resolution() {
    let c = Ctx::start(TestServerOptions::default()).await;
    let (a, u) = (c.admin.clone(), c.user.clone());
    let uid = c.user_id.clone();

    let (status, body) = c
        .json(
            Method::PUT,
            "/env/default",
            &a,
            Some(json!({"REGION": ENVVAL, "SHORT": "abc", "BASE_URL": "https://x.example.com"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"scope": "default", "scope_value": null, "keys": ["BASE_URL", "REGION", "SHORT"]})
    );
    // POST adds/updates; PUT replaces the set.
    let (_, body) = c
        .json(Method::POST, "/env/role/user", &a, Some(json!({"A": "1"})))
        .await;
    assert_eq!(body["keys"], json!(["A"]));
    let (_, body) = c
        .json(Method::POST, "/env/role/user", &a, Some(json!({"B": "2"})))
        .await;
    assert_eq!(body["keys"], json!(["A", "B"]));
    let (_, body) = c
        .json(Method::PUT, "/env/role/user", &a, Some(json!({"C": "3"})))
        .await;
    assert_eq!(body["keys"], json!(["C"]));
    let (status, body) = c.json(Method::GET, "/env/role/user", &a, None).await;
    assert_eq!((status, &body["keys"]), (200, &json!(["C"])));
    c.json(Method::PUT, "/env/group/eng", &a, Some(json!({"G": "g"})))
        .await;

    // Self on own user scope, by id or email; refused elsewhere.
    let (status, body) = c
        .json(
            Method::POST,
            &format!("/env/user/{uid}"),
            &u,
            Some(json!({"REGION": MINE})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c
        .json(Method::GET, "/env/user/user@example.com", &u, None)
        .await;
    assert_eq!((status, &body["keys"]), (200, &json!(["REGION"])), "{body}");
    assert_eq!(
        c.call(Method::POST, "/env/default", &u, Some(json!({"X": "1"})))
            .await
            .0,
        403
    );
    assert_eq!(c.call(Method::GET, "/env/role/user", &u, None).await.0, 403);
    assert_eq!(
        c.call(Method::GET, "/env/user/admin@example.com", &u, None)
            .await
            .0,
        403
    );
    assert_eq!(c.call(Method::GET, "/env", &u, None).await.0, 403);

    // Admin overview: keys per scope.
    let (status, env) = c.json(Method::GET, "/env", &a, None).await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(
        env,
        json!({"default": ["BASE_URL", "REGION", "SHORT"], "role": {"user": ["C"]},
               "group": {"eng": ["G"]}, "user": {uid.clone(): ["REGION"]}})
    );

    // Resolution for the user: REGION from user scope, others from the role and default.
    let (status, r) = c.json(Method::GET, "/env/resolve", &u, None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["token"], Value::Null);
    assert_eq!(
        r["env"]["REGION"],
        json!({"scope": "user", "scope_value": uid, "masked": "us…77"})
    );
    assert_eq!(
        r["env"]["SHORT"],
        json!({"scope": "default", "scope_value": null, "masked": "****"})
    );
    assert_eq!(
        r["env"]["C"],
        json!({"scope": "role", "scope_value": "user", "masked": "****"})
    );
    assert_eq!(r["env"]["BASE_URL"]["scope"], "default");
    assert!(r["env"].get("G").is_none(), "not in group eng: {r}");
    // The admin resolves for themself.
    let (_, r) = c.json(Method::GET, "/env/resolve", &a, None).await;
    assert_eq!(r["env"]["REGION"]["masked"], "en…99");

    // Deleting one key.
    assert_eq!(
        c.call(Method::DELETE, &format!("/env/user/{uid}/REGION"), &u, None)
            .await
            .0,
        204
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("/env/user/{uid}/REGION"), &u, None)
            .await
            .0,
        404
    );
    assert_eq!(
        c.call(Method::DELETE, "/env/default/SHORT", &u, None)
            .await
            .0,
        403
    );
    assert_eq!(
        c.call(Method::DELETE, "/env/default/SHORT", &a, None)
            .await
            .0,
        204
    );
    let (_, r) = c.json(Method::GET, "/env/resolve", &u, None).await;
    assert_eq!(r["env"]["REGION"]["scope"], "default");
    assert!(r["env"].get("SHORT").is_none());
    assert_eq!(c.call(Method::GET, "/env/nope/x", &a, None).await.0, 404);
    c.assert_no_values_seen();
}
