//! Typed, layered settings: defaults < YAML file < REFLOW_* env < flags.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
});

section!(DatabaseSettings {
    url: Option<Secret> = None,
    sqlite_path: Option<PathBuf> = None,
    max_connections: u32 = 10,
});

section!(AuthSettings {
    jwt_secret: Option<Secret> = None,
    #[serde(with = "duration_str")] token_ttl: Duration = Duration::from_secs(24 * 3600),
    allow_registration: bool = true,
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

section!(KubernetesSettings {
    enabled: bool = false,
    namespace: String = "default".into(),
    kubeconfig: Option<PathBuf> = None,
    #[serde(with = "duration_str")] idle_ttl: Duration = Duration::from_secs(1800),
    #[serde(with = "duration_str")] max_lifetime: Duration = Duration::from_secs(24 * 3600),
    #[serde(with = "duration_str")] gc_interval: Duration = Duration::from_secs(60),
    max_instances: usize = 20,
});

section!(AuditSettings {
    log_arguments: bool = false,
    #[serde(with = "duration_str")]
    retention: Duration = Duration::from_secs(30 * 86400),
});

section!(TelemetrySettings {
    enabled: bool = false,
    endpoint: Option<String> = None,
    protocol: TelemetryProtocol = TelemetryProtocol::HttpProtobuf,
    service_name: String = "reflow".into(),
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TelemetryProtocol {
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "grpc")]
    Grpc,
}

section!(LoggingSettings {
    level: String = "info".into(),
    format: LogFormat = LogFormat::Text,
});

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

        let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            let layer = layer_of(&sources, &key).map(|l| l.to_string());
            ConfigError::Value {
                key,
                message: e.into_inner().to_string(),
                layer,
            }
        })?;
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

fn defaults_tree() -> Value {
    serde_json::to_value(Settings::default()).expect("default settings serialize")
}

/// The defaults tree plus the leaves of sections that default to absent, so
/// key checking and env mapping also cover `auth.oidc.*`.
fn schema_tree() -> Value {
    let mut tree = defaults_tree();
    let oidc = OidcSettings {
        issuer: String::new(),
        audience: String::new(),
        jwks_url: None,
        role_claim: default_role_claim(),
        groups_claim: default_groups_claim(),
    };
    tree["auth"]["oidc"] = serde_json::to_value(oidc).expect("oidc settings serialize");
    tree
}

fn parse_file(
    text: &str,
    path: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Value, ConfigError> {
    let expanded = expand_vars(text, env).map_err(|e| match e {
        ExpandError::Undefined(var) => ConfigError::UndefinedVariable(var),
        ExpandError::Unterminated(line) => ConfigError::Yaml {
            path: path.to_path_buf(),
            message: format!("line {line}: unterminated ${{ (write $$ for a literal $)"),
        },
    })?;
    let value: Value = serde_saphyr::from_str(&expanded).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(ConfigError::Yaml {
            path: path.to_path_buf(),
            message: "the top level must be a mapping of settings".into(),
        }),
    }
}

enum ExpandError {
    Undefined(String),
    Unterminated(usize),
}

/// Expands `${VAR}` / `${VAR:-default}` and turns `$$` into `$`. Whole-line
/// comments are left alone so commented-out examples need no variables set.
fn expand_vars(text: &str, env: &BTreeMap<String, String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = body.find('}').ok_or(ExpandError::Unterminated(n + 1))?;
                let (name, default) = match body[..end].split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (&body[..end], None),
                };
                match (env.get(name), default) {
                    (Some(v), _) => out.push_str(v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => return Err(ExpandError::Undefined(name.to_string())),
                }
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Rejects keys that are not settings, with the full dotted path, before
/// serde's message (which names only the last segment) would.
fn check_keys(
    schema: &Value,
    value: &Value,
    prefix: &str,
    layer: &Layer,
) -> Result<(), ConfigError> {
    let (Value::Object(known), Value::Object(given)) = (schema, value) else {
        return Ok(());
    };
    for (key, v) in given {
        let path = join(prefix, key);
        match known.get(key) {
            Some(s) => check_keys(s, v, &path, layer)?,
            None => {
                return Err(ConfigError::UnknownKey {
                    key: path,
                    layer: layer.to_string(),
                    expected: known.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    Ok(())
}

fn merge(
    base: &mut Value,
    overlay: Value,
    path: &str,
    layer: &Layer,
    sources: &mut BTreeMap<String, Layer>,
) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, v) in overlay {
                let child = join(path, &key);
                merge(
                    base.entry(key).or_insert(Value::Null),
                    v,
                    &child,
                    layer,
                    sources,
                );
            }
        }
        // An empty section (`server:` with everything commented out) means "no changes".
        (Value::Object(_), Value::Null) => {}
        (base, overlay) => {
            *base = overlay;
            sources.insert(path.to_string(), layer.clone());
        }
    }
}

fn collect_leaves<'a>(tree: &'a Value, prefix: &str, out: &mut Vec<(String, &'a Value)>) {
    match tree {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| collect_leaves(v, &join(prefix, k), out)),
        leaf => out.push((prefix.to_string(), leaf)),
    }
}

/// Interprets an env string by the type of the setting it targets, so a
/// numeric-looking secret or host stays a string.
fn env_value(raw: &str, template: &Value) -> Value {
    match template {
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Value::from)
                .collect(),
        ),
        Value::Number(_) | Value::Bool(_) => serde_saphyr::from_str::<Value>(raw)
            .ok()
            .filter(|v| v.is_number() || v.is_boolean())
            .unwrap_or_else(|| Value::from(raw)),
        // Optional settings: an empty variable means "unset", as shells often export empties.
        Value::Null if raw.is_empty() => Value::Null,
        _ => Value::from(raw),
    }
}

fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut segments = path.split('.').peekable();
    while let Some(seg) = segments.next() {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        // A non-object here came from the file; leave it so deserialization reports it.
        let Value::Object(map) = node else { return };
        if segments.peek().is_none() {
            map.insert(seg.to_string(), value);
            return;
        }
        node = map.entry(seg.to_string()).or_insert(Value::Null);
    }
}

fn layer_of<'a>(sources: &'a BTreeMap<String, Layer>, key: &str) -> Option<&'a Layer> {
    let key = key.split('[').next().unwrap_or(key);
    let mut prefix = key;
    loop {
        if let Some(layer) = sources.get(prefix) {
            return Some(layer);
        }
        match prefix.rsplit_once('.') {
            Some((parent, _)) => prefix = parent,
            None => break,
        }
    }
    // A missing-field error names the section; blame whichever layer created it.
    let nested = format!("{key}.");
    sources
        .iter()
        .find(|(k, _)| k.starts_with(&nested))
        .map(|(_, l)| l)
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
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn with_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(&Overrides::default(), &env(pairs))
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let file = format!("reflow-config-{}-{name}.yaml", std::process::id());
        let path = std::env::temp_dir().join(file);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn load_yaml(name: &str, yaml: &str) -> Result<Settings, ConfigError> {
        let config_file = Some(temp_file(name, yaml));
        let overrides = Overrides {
            config_file,
            ..Overrides::default()
        };
        Settings::load(&overrides, &env(&[("HOST", "0.0.0.0")]))
    }

    fn error_text<T: fmt::Debug>(result: Result<T, ConfigError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn defaults_without_any_layer() {
        let s = with_env(&[("REFLOW_TEST_X", "1"), ("REFLOW_LOG", "x")]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 8080));
        assert_eq!(s.server.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(s.auth.token_ttl, Duration::from_secs(86400));
        assert_eq!(s.audit.retention, Duration::from_secs(30 * 86400));
        assert_eq!(s.telemetry.protocol, TelemetryProtocol::HttpProtobuf);
        assert_eq!(s.to_redacted_json()["auth"]["token_ttl"], "24h");
    }

    #[test]
    fn file_overrides_defaults() {
        let yaml = "server: {port: 9000}\nauth:\n  token_ttl: 2h\n  oidc: {issuer: https://idp, audience: r}\nlogging: {format: json}\n";
        let s = load_yaml("file", yaml).unwrap();
        assert_eq!((s.server.host.as_str(), s.server.port), ("127.0.0.1", 9000));
        assert_eq!(s.auth.token_ttl, Duration::from_secs(7200));
        assert_eq!(s.logging.format, LogFormat::Json);
        let oidc = s.auth.oidc.unwrap();
        assert_eq!(
            (oidc.issuer.as_str(), oidc.role_claim.as_str()),
            ("https://idp", "role")
        );
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let path = temp_file("layers", "server:\n  port: 9000\n  host: 0.0.0.0\n");
        let vars = env(&[
            ("REFLOW_CONFIG", path.to_str().unwrap()),
            ("REFLOW_SERVER_PORT", "9100"),
            ("REFLOW_SERVER_HOST", "10.0.0.1"),
            ("REFLOW_AUTH_ALLOW_REGISTRATION", "false"),
            ("REFLOW_AUTH_OIDC_ISSUER", "https://idp"),
            ("REFLOW_AUTH_OIDC_AUDIENCE", "api"),
        ]);
        let s = Settings::load(&Overrides::default(), &vars).unwrap();
        assert_eq!((s.server.host.as_str(), s.server.port), ("10.0.0.1", 9100));
        assert!(!s.auth.allow_registration);
        assert_eq!(s.auth.oidc.unwrap().audience, "api");

        let data_dir = Some(PathBuf::from("/srv/r"));
        let flags = Overrides {
            port: Some(0),
            data_dir,
            ..Overrides::default()
        };
        let s = Settings::load(&flags, &vars).unwrap();
        assert_eq!((s.server.host.as_str(), s.server.port), ("10.0.0.1", 0));
        assert_eq!(s.data_dir, PathBuf::from("/srv/r"));
    }

    #[test]
    fn variables_expand_with_defaults_and_escapes() {
        let yaml = "# ${NOT_SET}\nserver:\n  host: ${HOST}\n  public_url: ${URL:-https://gw}/$$x\n";
        let s = load_yaml("expand", yaml).unwrap();
        assert_eq!(s.server.host, "0.0.0.0");
        assert_eq!(s.server.public_url.as_deref(), Some("https://gw/$x"));

        let err = load_yaml("undefined", "server:\n  host: ${MISSING_VAR}\n").unwrap_err();
        assert!(matches!(&err, ConfigError::UndefinedVariable(v) if v == "MISSING_VAR"));
        assert!(err.to_string().contains("${MISSING_VAR}"), "{err}");
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let err = error_text(load_yaml("unknown", "server:\n  prot: 1\n"));
        assert!(
            err.starts_with("unknown key \"server.prot\" in config file"),
            "{err}"
        );
        assert!(
            err.contains("(expected one of: host, port, public_url,"),
            "{err}"
        );

        let yaml = "auth:\n  oidc:\n    issuer: a\n    audience: b\n    foo: 1\n";
        let err = error_text(load_yaml("unknown-nested", yaml));
        assert!(err.starts_with("unknown key \"auth.oidc.foo\""), "{err}");
    }

    #[test]
    fn bad_values_name_path_and_layer() {
        let err = error_text(load_yaml("badtype", "server:\n  port: lots\n"));
        assert!(err.starts_with("server.port: invalid type"), "{err}");
        assert!(err.contains("(from config file "), "{err}");

        let err = error_text(with_env(&[("REFLOW_SESSION_TIMEOUT", "soon")]));
        assert!(
            err.starts_with("session.timeout: invalid duration \"soon\""),
            "{err}"
        );
        assert!(
            err.ends_with("(from environment variable REFLOW_SESSION_TIMEOUT)"),
            "{err}"
        );

        let err = error_text(load_yaml("no-issuer", "auth:\n  oidc:\n    audience: b\n"));
        assert!(
            err.starts_with("auth.oidc: missing field `issuer`"),
            "{err}"
        );
    }

    #[test]
    fn missing_explicit_file_names_path() {
        let config_file = Some(PathBuf::from("/nonexistent/reflow.yaml"));
        let overrides = Overrides {
            config_file,
            ..Overrides::default()
        };
        let err = error_text(Settings::load(&overrides, &env(&[])));
        assert!(err.contains("/nonexistent/reflow.yaml"), "{err}");
    }

    #[test]
    fn zero_stdio_max_processes_rejected() {
        let err = error_text(with_env(&[("REFLOW_STDIO_MAX_PROCESSES", "0")]));
        assert!(
            err.contains("stdio.max_processes must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn short_jwt_secret_rejected() {
        let err = error_text(with_env(&[("REFLOW_AUTH_JWT_SECRET", "short")]));
        assert!(
            err.contains("auth.jwt_secret is 5 bytes; it must be at least 32"),
            "{err}"
        );
        let long = "x".repeat(32);
        let s = with_env(&[("REFLOW_AUTH_JWT_SECRET", &long)]).unwrap();
        assert_eq!(s.auth.jwt_secret.unwrap().expose(), long);
    }

    #[test]
    fn encryption_key_must_be_32_bytes() {
        let err = error_text(with_env(&[(
            "REFLOW_ENCRYPTION_KEY",
            &B64.encode([7u8; 16]),
        )]));
        let expected = "encryption.key must be 32 bytes, base64 or hex encoded; got 16";
        assert!(err.contains(expected), "{err}");

        let s = with_env(&[("REFLOW_ENCRYPTION_KEY", &B64.encode([7u8; 32]))]).unwrap();
        assert_eq!(s.decoded_encryption_key().unwrap(), Some([7u8; 32]));

        let mut s = Settings::default();
        assert_eq!(s.decoded_encryption_key().unwrap(), None);
        s.encryption.key_file = Some(temp_file("keyfile", &format!("{}\n", "ab".repeat(32))));
        assert_eq!(s.decoded_encryption_key().unwrap(), Some([0xab; 32]));
    }

    #[test]
    fn env_lists_are_split_on_commas() {
        let origins = " https://a.example, https://b.example ,";
        let s = with_env(&[("REFLOW_SERVER_ALLOWED_ORIGINS", origins)]).unwrap();
        assert_eq!(
            s.server.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn secrets_never_appear_in_debug_or_json() {
        let jwt = "jwt-secret-value-that-is-long-enough-0123";
        let key = "cd".repeat(32);
        let database_url = Some("postgres://u:pg-password@db/r".to_string());
        let flags = Overrides {
            database_url,
            ..Overrides::default()
        };
        let vars = env(&[
            ("REFLOW_AUTH_JWT_SECRET", jwt),
            ("REFLOW_ENCRYPTION_KEY", &key),
        ]);
        let s = Settings::load(&flags, &vars).unwrap();
        assert_eq!(s.database_url(), "postgres://u:pg-password@db/r");
        for text in [format!("{s:?}"), s.to_redacted_json().to_string()] {
            let leaked = [jwt, &key, "pg-password"].iter().any(|v| text.contains(v));
            assert!(!leaked && text.contains("[redacted]"), "{text}");
        }
        assert_eq!(s.to_redacted_json()["auth"]["jwt_secret"], "[redacted]");
    }

    #[test]
    fn database_url_defaults_into_data_dir() {
        let s = with_env(&[("REFLOW_DATA_DIR", "/var/lib/reflow")]).unwrap();
        assert_eq!(
            s.database_url(),
            "sqlite:///var/lib/reflow/reflow.db?mode=rwc"
        );
        let default = Settings::default().database_url();
        assert_eq!(default, "sqlite://./reflow-data/reflow.db?mode=rwc");
    }

    #[test]
    fn example_file_matches_defaults() {
        let text = include_str!("../config.example.yaml");
        assert_eq!(load_yaml("example", text).unwrap(), Settings::default());
        // Equality alone passes if a key is left out; require every defaulted key to be spelled.
        let written = parse_file(text, Path::new("example"), &env(&[])).unwrap();
        let (defaults, mut leaves) = (defaults_tree(), Vec::new());
        collect_leaves(&defaults, "", &mut leaves);
        for (path, default) in leaves.into_iter().filter(|(_, v)| !v.is_null()) {
            let found = path
                .split('.')
                .try_fold(&written, |node, seg| node.get(seg));
            assert!(
                found.is_some(),
                "config.example.yaml lacks {path} (default {default})"
            );
        }
    }
}
