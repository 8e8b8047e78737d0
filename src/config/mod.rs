//! Typed, layered settings: defaults < YAML file < REFLOW_* env < flags.

mod layers;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use layers::*;
pub use telemetry::{MetricsSettings, TelemetryProtocol, TelemetrySettings};

/// A value that must never reach logs or API responses.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

// Serializing is only ever done for display (effective config dumps), so the
// value is masked here rather than trusting every caller to remember.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Declares a settings section whose `Default` is spelled next to each field.
macro_rules! section {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }
        impl Default for $name {
            fn default() -> Self { Self { $($field: $default),* } }
        }
    };
}

mod kubernetes;
mod telemetry;
pub use kubernetes::{
    ConnectMode, KubernetesSettings, PodDefaults, PodResources, Quantities, TolerationSetting,
    is_dns_label,
};

section!(
    /// Everything reflow can be configured with; config.example.yaml documents each key.
    Settings {
    data_dir: PathBuf = "./reflow-data".into(),
    server: ServerSettings = ServerSettings::default(),
    database: DatabaseSettings = DatabaseSettings::default(),
    auth: AuthSettings = AuthSettings::default(),
    encryption: EncryptionSettings = EncryptionSettings::default(),
    session: SessionSettings = SessionSettings::default(),
    naming: NamingSettings = NamingSettings::default(),
    gateway: GatewaySettings = GatewaySettings::default(),
    stdio: StdioSettings = StdioSettings::default(),
    kubernetes: KubernetesSettings = KubernetesSettings::default(),
    audit: AuditSettings = AuditSettings::default(),
    telemetry: TelemetrySettings = TelemetrySettings::default(),
    metrics: MetricsSettings = MetricsSettings::default(),
    logging: LoggingSettings = LoggingSettings::default(),
});

section!(ServerSettings {
    host: String = "127.0.0.1".into(),
    port: u16 = 8080,
    public_url: Option<String> = None,
    allowed_origins: Vec<String> = Vec::new(),
    /// Empty means localhost, 127.0.0.1, ::1 and the public_url host; the server applies that.
    allowed_hosts: Vec<String> = Vec::new(),
    max_body_bytes: usize = 4 * 1024 * 1024,
    #[serde(with = "duration_str")] shutdown_grace: Duration = Duration::from_secs(10),
    /// Open connections at most; more wait in the kernel's accept backlog.
    max_connections: usize = 4096,
    /// Open connections from one client address at most (0: no limit); more are closed at once.
    /// Behind a load balancer every client has its address: raise it, or set 0.
    max_connections_per_ip: usize = 512,
    /// How long a client may take to send a request's headers before the connection is closed;
    /// also how long an idle keep-alive connection waits for its next request.
    #[serde(with = "duration_str")] header_read_timeout: Duration = Duration::from_secs(10),
});

section!(DatabaseSettings {
    url: Option<Secret> = None,
    sqlite_path: Option<PathBuf> = None,
    max_connections: u32 = 10,
});

section!(AuthSettings {
    jwt_secret: Option<Secret> = None,
    #[serde(with = "duration_str")] token_ttl: Duration = Duration::from_secs(24 * 3600),
    /// Who may create an account with `POST /api/auth/register`.
    registration: Option<Registration> = None,
    /// Before `registration`: true is `open`, false `closed`. Still read; not with it.
    allow_registration: Option<bool> = None,
    /// Applied separately per client IP and per account.
    login_attempts_per_minute: u32 = 10,
    oidc: Option<OidcSettings> = None,
});

/// No struct-level default: a present `oidc:` section without issuer and
/// audience is a mistake worth failing on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    pub issuer: String,
    pub audience: String,
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn default_role_claim() -> String {
    "role".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}

section!(EncryptionSettings {
    /// Base64 of 32 bytes, or 64 hex characters.
    key: Option<Secret> = None,
    key_file: Option<PathBuf> = None,
});

section!(SessionSettings {
    #[serde(with = "duration_str")]
    timeout: Duration = Duration::from_secs(3600),
    #[serde(with = "duration_str")]
    cleanup_interval: Duration = Duration::from_secs(300),
    /// Legacy sessions one user may hold at once; a new one ends their least recently used.
    max_per_user: usize = 100,
    /// `subscriptions/listen` streams (2026-07-28) one user may hold open at once on this
    /// replica; one more is refused with an error naming this setting.
    max_streams_per_user: usize = 32,
});

section!(NamingSettings {
    separator: String = "__".into(),
    max_length: usize = 64,
});

section!(GatewaySettings {
    /// Items per page of a merged list (tools, prompts, resources, templates).
    page_size: usize = 500,
    /// Upstream request timeout for targets that set none.
    #[serde(with = "duration_str")]
    request_timeout: Duration = Duration::from_secs(60),
    /// How long an upstream's list is served from cache without a list_changed notification.
    #[serde(with = "duration_str")]
    list_cache_ttl: Duration = Duration::from_secs(300),
    /// How long a 2026-07-28 client has to answer an `input_required` result (its sealed
    /// `requestState` expires, and the parked upstream request is cancelled).
    #[serde(with = "duration_str")]
    request_state_ttl: Duration = Duration::from_secs(300),
    /// The largest message taken from an upstream, in bytes: a JSON answer, an SSE event, a
    /// stdout line. A larger one fails its request with an error naming this setting.
    max_upstream_message: usize = 16 * 1024 * 1024,
});

section!(StdioSettings {
    #[serde(with = "duration_str")]
    idle_ttl: Duration = Duration::from_secs(600),
    #[serde(with = "duration_str")]
    max_lifetime: Duration = Duration::from_secs(24 * 3600),
    #[serde(with = "duration_str")]
    gc_interval: Duration = Duration::from_secs(30),
    max_processes: usize = 50,
});

section!(AuditSettings {
    log_arguments: bool = false,
    /// Rows held in memory for the writer: while the database refuses writes they wait here,
    /// and a row that finds the queue full is dropped and counted.
    queue_size: usize = 10_000,
    #[serde(with = "duration_str")]
    retention: Duration = Duration::from_secs(30 * 86400),
});

section!(LoggingSettings {
    level: String = "info".into(),
    format: LogFormat = LogFormat::Text,
});

/// Who may sign themselves up (`auth.registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Only the first account, which becomes admin; admins add the rest. Every later request
    /// gets the same refusal, so register tells nobody which emails have accounts.
    #[default]
    FirstAdmin,
    /// Anyone; a taken email is refused with 409, which tells that it is taken.
    Open,
    /// Nobody, not even the first account: create it with `reflow user add`.
    Closed,
}

impl AuthSettings {
    pub fn registration(&self) -> Registration {
        self.registration
            .or(self.allow_registration.map(|open| {
                if open {
                    Registration::Open
                } else {
                    Registration::Closed
                }
            }))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Values given on the command line; they win over every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    #[error(
        "config file refers to ${{{0}}} but {0} is not set (write ${{{0}:-default}} for a fallback)"
    )]
    UndefinedVariable(String),
    #[error("unknown key \"{key}\" in {layer} (expected one of: {expected})")]
    UnknownKey {
        key: String,
        layer: String,
        expected: String,
    },
    #[error("{key}: {message}{}", layer.as_ref().map(|l| format!(" (from {l})")).unwrap_or_default())]
    Value {
        key: String,
        message: String,
        layer: Option<String>,
    },
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Where a value came from, so errors can point at the thing to edit.
#[derive(Debug, Clone)]
enum Layer {
    File(PathBuf),
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::File(p) => write!(f, "config file {}", p.display()),
            Layer::Env(name) => write!(f, "environment variable {name}"),
            Layer::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

impl Settings {
    /// `env` is passed explicitly (main passes `std::env::vars()`) so tests
    /// never depend on, or mutate, the process environment.
    pub fn load(
        overrides: &Overrides,
        env: &BTreeMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let schema = schema_tree();
        let mut merged = defaults_tree();
        let mut sources: BTreeMap<String, Layer> = BTreeMap::new();

        let file = overrides.config_file.clone().or_else(|| {
            env.get("REFLOW_CONFIG")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        });
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
                path: path.clone(),
                source,
            })?;
            let value = parse_file(&text, &path, env)?;
            let layer = Layer::File(path);
            check_keys(&schema, &value, "", &layer)?;
            merge(&mut merged, value, "", &layer, &mut sources);
        }

        let mut leaves = Vec::new();
        collect_leaves(&schema, "", &mut leaves);
        for (path, template) in leaves {
            let name = format!("REFLOW_{}", path.replace('.', "_").to_uppercase());
            if let Some(raw) = env.get(&name) {
                set_path(&mut merged, &path, env_value(raw, template));
                sources.insert(path, Layer::Env(name));
            }
        }

        let host = overrides.host.clone().map(Value::from);
        let port = overrides.port.map(Value::from);
        let data_dir = overrides
            .data_dir
            .as_ref()
            .map(|p| p.to_string_lossy().into());
        let db = overrides.database_url.clone().map(Value::from);
        for (path, flag, value) in [
            ("server.host", "--host", host),
            ("server.port", "--port", port),
            ("data_dir", "--data-dir", data_dir),
            ("database.url", "--database-url", db),
        ] {
            if let Some(value) = value {
                set_path(&mut merged, path, value);
                sources.insert(path.to_string(), Layer::Flag(flag));
            }
        }

        let mut settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            let layer = layer_of(&sources, &key).map(|l| l.to_string());
            ConfigError::Value {
                key,
                message: e.into_inner().to_string(),
                layer,
            }
        })?;
        let mut problems = Vec::new();
        settings.telemetry.apply_otel_env(env, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        settings.validate()?;
        Ok(settings)
    }

    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_string(),
            None => {
                let path = self
                    .database
                    .sqlite_path
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("reflow.db"));
                format!("sqlite://{}?mode=rwc", path.display())
            }
        }
    }

    /// Reports every problem at once so a deploy needs one fix cycle, not many.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        // Sections for features not built yet: refused rather than accepted and ignored.
        self.telemetry.validate(&mut problems);
        self.metrics.validate(&mut problems);
        self.kubernetes.problems(&mut problems);
        if let Some(secret) = &self.auth.jwt_secret {
            let n = secret.expose().len();
            if n < 32 {
                problems.push(format!(
                    "auth.jwt_secret is {n} bytes; it must be at least 32"
                ));
            }
        }
        if let Some(key) = &self.encryption.key {
            if let Err(e) = decode_key(key.expose(), "encryption.key") {
                problems.push(e);
            }
            if self.encryption.key_file.is_some() {
                problems
                    .push("encryption.key and encryption.key_file are both set; choose one".into());
            }
        }
        if !(16..=128).contains(&self.naming.max_length) {
            problems.push(format!(
                "naming.max_length is {}; it must be between 16 and 128",
                self.naming.max_length
            ));
        }
        if self.session.max_per_user == 0 {
            problems.push("session.max_per_user must be at least 1".into());
        }
        if self.session.max_streams_per_user == 0 {
            problems.push("session.max_streams_per_user must be at least 1".into());
        }
        if self.auth.registration.is_some() && self.auth.allow_registration.is_some() {
            problems.push(
                "auth.allow_registration and auth.registration are both set; keep auth.registration (first_admin, open or closed)".into(),
            );
        }
        if self.gateway.max_upstream_message < 64 * 1024 {
            problems.push(format!(
                "gateway.max_upstream_message is {} bytes; it must be at least 65536",
                self.gateway.max_upstream_message
            ));
        }
        if self.audit.queue_size == 0 {
            problems.push("audit.queue_size must be at least 1".into());
        }
        if self.gateway.page_size == 0 {
            problems.push("gateway.page_size must be at least 1".into());
        }
        if self.gateway.request_timeout.is_zero() {
            problems.push("gateway.request_timeout must be greater than zero".into());
        }
        if self.stdio.max_processes == 0 {
            problems.push("stdio.max_processes must be at least 1".into());
        }
        if self.auth.login_attempts_per_minute == 0 {
            problems.push("auth.login_attempts_per_minute must be at least 1".into());
        }
        // A zero period would make the background sweepers spin (tokio's interval panics on zero).
        for (name, d) in [
            ("session.cleanup_interval", self.session.cleanup_interval),
            ("stdio.gc_interval", self.stdio.gc_interval),
            ("kubernetes.gc_interval", self.kubernetes.gc_interval),
        ] {
            if d.is_zero() {
                problems.push(format!("{name} must be greater than zero"));
            }
        }
        if !is_valid_log_filter(&self.logging.level) {
            problems.push(format!(
                "logging.level \"{}\" is not a level (error, warn, info, debug, trace, off) or a target=level list",
                self.logging.level
            ));
        }
        if let Some(oidc) = &self.auth.oidc {
            for (name, v) in [("issuer", &oidc.issuer), ("audience", &oidc.audience)] {
                if v.trim().is_empty() {
                    problems.push(format!("auth.oidc.{name} must not be empty"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    pub fn to_redacted_json(&self) -> Value {
        serde_json::to_value(self).expect("settings always serialize to JSON")
    }

    pub fn decoded_encryption_key(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        if let Some(key) = &self.encryption.key {
            return decode_key(key.expose(), "encryption.key")
                .map(Some)
                .map_err(|e| ConfigError::Invalid(vec![e]));
        }
        let Some(path) = &self.encryption.key_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let what = format!("encryption.key_file {}", path.display());
        decode_key(text.trim(), &what)
            .map(Some)
            .map_err(|e| ConfigError::Invalid(vec![e]))
    }
}

pub(crate) fn decode_key(text: &str, what: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    // 64 hex digits is also valid base64 (of 48 bytes); hex is the intent.
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|e| e.to_string())
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| e.to_string())
    };
    match bytes {
        Ok(b) => <[u8; 32]>::try_from(b.as_slice()).map_err(|_| {
            format!(
                "{what} must be 32 bytes, base64 or hex encoded; got {}",
                b.len()
            )
        }),
        Err(e) => Err(format!(
            "{what} must be 32 bytes, base64 or hex encoded; got undecodable text ({e})"
        )),
    }
}

fn is_valid_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let is_level = |s: &str| LEVELS.contains(&s.trim().to_ascii_lowercase().as_str());
    !filter.trim().is_empty()
        && filter.split(',').all(|d| match d.split_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(d),
        })
}

mod duration_str {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::Duration;

    /// Writes the largest whole unit, as people write them ("24h", "30d";
    /// humantime would say "1day"), so dumped config reads like the example.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let secs = d.as_secs();
        // A single day reads better as "24h"; days are for multi-day spans.
        let unit = [(86400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|&(u, _)| secs.is_multiple_of(u) && secs > 0 && (u != 86400 || secs > u));
        let text = match unit {
            _ if d.subsec_nanos() != 0 => humantime::format_duration(*d).to_string(),
            Some((u, suffix)) => format!("{}{suffix}", secs / u),
            None => format!("{secs}s"),
        };
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            D::Error::custom(format!(
                "invalid duration \"{text}\" ({e}); use e.g. \"30s\", \"10m\", \"24h\""
            ))
        })
    }
}

#[cfg(test)]
mod tests;
