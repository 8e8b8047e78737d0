//! A real reflow server on 127.0.0.1:0, stopped gracefully by the test.

use std::net::SocketAddr;

use reflow::app::App;
use reflow::auth::{Claims, JwtKeys, TokenKind};
use reflow::config::{Secret, Settings};
use serde_json::Value;
use tokio::sync::oneshot;

use super::db::{TestDb, test_db};

pub struct TestServerOptions {
    pub login_attempts_per_minute: u32,
    /// `auth.registration` open (true) or closed (false), unless `registration` says otherwise.
    pub allow_registration: bool,
    pub registration: Option<reflow::config::Registration>,
    pub max_body_bytes: usize,
    pub token_ttl: std::time::Duration,
    /// `gateway.page_size`: items per page of a merged MCP list.
    pub page_size: usize,
    /// `server.public_url`.
    pub public_url: Option<String>,
    /// `auth.oidc`: an external issuer whose tokens are accepted too.
    pub oidc: Option<reflow::config::OidcSettings>,
    /// `gateway.request_state_ttl`: how long a 2026-07-28 `requestState` stays valid.
    pub request_state_ttl: std::time::Duration,
    /// `stdio`: process lifecycle (idle TTL, GC interval, max processes).
    pub stdio: Option<reflow::config::StdioSettings>,
    /// `session.timeout` (None: the default).
    pub session_timeout: Option<std::time::Duration>,
    /// `gateway.max_upstream_message` (None: the default, 16 MiB).
    pub max_upstream_message: Option<usize>,
    /// `session.cleanup_interval` (None: the default).
    pub session_cleanup_interval: Option<std::time::Duration>,
    /// `metrics` (None: the default: admins only).
    pub metrics: Option<reflow::config::MetricsSettings>,
    /// `session.max_per_user` (None: the default).
    pub sessions_per_user: Option<usize>,
    /// `server.header_read_timeout` and `server.max_connections_per_ip` (None: the defaults).
    pub connection_limits: Option<(std::time::Duration, usize)>,
    /// `kubernetes` (None: the default, pods off).
    pub kubernetes: Option<reflow::config::KubernetesSettings>,
    /// `audit.queue_size` (None: the default).
    pub audit_queue_size: Option<usize>,
}

impl Default for TestServerOptions {
    fn default() -> Self {
        Self {
            login_attempts_per_minute: 1000,
            allow_registration: true,
            registration: None,
            max_body_bytes: 64 * 1024,
            token_ttl: std::time::Duration::from_secs(3600),
            page_size: 500,
            public_url: None,
            oidc: None,
            request_state_ttl: std::time::Duration::from_secs(300),
            stdio: None,
            session_timeout: None,
            session_cleanup_interval: None,
            max_upstream_message: None,
            metrics: None,
            connection_limits: None,
            sessions_per_user: None,
            kubernetes: None,
            audit_queue_size: None,
        }
    }
}

pub struct TestServer {
    /// The running app's state, for tests that look inside (footprint, sweeps).
    pub state: std::sync::Arc<reflow::http::AppState>,
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The claims of a login session of `user` (as `TestServer::register` returns it), an admin.
pub fn session_claims(user: &Value, iat: i64, exp: i64, jti: &str) -> Claims {
    Claims {
        iss: "reflow".into(),
        sub: user["id"].as_str().unwrap().into(),
        email: user["email"].as_str().unwrap().into(),
        role: "admin".into(),
        groups: vec![],
        iat,
        exp: Some(exp),
        jti: jti.into(),
        typ: TokenKind::Session,
        generation: 0,
    }
}

impl TestServer {
    /// The keys the server signs its tokens with, read from its data directory.
    pub fn jwt_keys(&self) -> JwtKeys {
        let secret = std::fs::read_to_string(self.settings.data_dir.join("jwt_secret")).unwrap();
        JwtKeys::new(secret.trim().as_bytes())
    }

    pub async fn start() -> Self {
        Self::start_with(TestServerOptions::default()).await
    }

    pub async fn start_with(opts: TestServerOptions) -> Self {
        Self::start_on(test_db().await, opts).await
    }

    /// Starts a server on an existing database and data dir (restarts, CLI + server tests).
    pub async fn start_on(db: TestDb, opts: TestServerOptions) -> Self {
        let mut settings = Settings {
            data_dir: db.dir.path().join("data"),
            ..Settings::default()
        };
        settings.database.url = Some(Secret::new(db.url.clone()));
        settings.server.port = 0;
        settings.server.max_body_bytes = opts.max_body_bytes;
        settings.auth.login_attempts_per_minute = opts.login_attempts_per_minute;
        settings.auth.registration =
            Some(opts.registration.unwrap_or(if opts.allow_registration {
                reflow::config::Registration::Open
            } else {
                reflow::config::Registration::Closed
            }));
        settings.auth.token_ttl = opts.token_ttl;
        settings.gateway.page_size = opts.page_size;
        settings.server.public_url = opts.public_url;
        settings.auth.oidc = opts.oidc;
        settings.gateway.request_state_ttl = opts.request_state_ttl;
        if let Some(stdio) = opts.stdio {
            settings.stdio = stdio;
        }
        if let Some(n) = opts.sessions_per_user {
            settings.session.max_per_user = n;
        }
        if let Some((headers, per_ip)) = opts.connection_limits {
            settings.server.header_read_timeout = headers;
            settings.server.max_connections_per_ip = per_ip;
        }
        if let Some(m) = opts.metrics {
            settings.metrics = m;
        }
        if let Some(t) = opts.session_timeout {
            settings.session.timeout = t;
        }
        if let Some(n) = opts.audit_queue_size {
            settings.audit.queue_size = n;
        }
        if let Some(n) = opts.max_upstream_message {
            settings.gateway.max_upstream_message = n;
        }
        if let Some(t) = opts.session_cleanup_interval {
            settings.session.cleanup_interval = t;
        }
        if let Some(k) = opts.kubernetes {
            settings.kubernetes = k;
        }
        Self::run(db, settings).await
    }

    /// A second replica: another server on the same database and data dir (so the same keys).
    pub async fn replica(&self) -> Self {
        let db = TestDb {
            url: self.db.url.clone(),
            label: self.db.label,
            dir: tempfile::tempdir().unwrap(),
        };
        Self::run(db, self.settings.clone()).await
    }

    async fn run(db: TestDb, settings: Settings) -> Self {
        let app = App::build(settings.clone()).await.expect("app builds");
        let state = app.state().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async {
            let _ = rx.await;
        }));
        Self {
            state,
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            db,
            settings,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Graceful stop; returns the database so the test can start again on it.
    pub async fn stop(mut self) -> TestDb {
        self.shutdown.take().unwrap().send(()).ok();
        self.task
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("server exits cleanly");
        // Moving the db out of a Drop type: swap a placeholder in.
        std::mem::replace(
            &mut self.db,
            TestDb {
                url: String::new(),
                label: "",
                dir: tempfile::tempdir().unwrap(),
            },
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        into_parts(req.send().await.unwrap()).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_parts(req.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// Registers an account and returns (session token, user JSON).
    pub async fn register(&self, email: &str, password: &str) -> (String, Value) {
        let (status, body) = self
            .post(
                "/api/auth/register",
                None,
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 201, "register {email}: {body}");
        (
            body["token"].as_str().unwrap().to_string(),
            body["user"].clone(),
        )
    }

    /// Logs an account in and returns its session token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/auth/login",
                None,
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        body["token"].as_str().unwrap().to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
    }
}

async fn into_parts(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}
