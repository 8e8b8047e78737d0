//! Targets: creation, patching and removal of upstream MCP servers, and every rule a target's
//! configuration must satisfy before it is stored.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::ServiceError;
use super::credentials::validate_env_key;
use super::pod_targets::{check_pod_target, check_resources};
use crate::credentials::{AUTH_HEADER, BASE_URL, denied_env_key};
use crate::domain::{
    AuthType, IsolationBoundary, Statefulness, TargetId, TargetName, TargetResources, Transport,
};
use crate::store::{Store, TargetRecord};

pub const MIN_TARGET_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_TARGET_TIMEOUT: Duration = Duration::from_secs(3600);
const MAX_PREFIX_LEN: usize = 32;
const MAX_ENV_KEYS: usize = 64;
const MAX_ENV_VALUE_BYTES: usize = 4096;
/// Headers reflow itself sets or that frame the request: a token in one of them would break
/// the upstream exchange or smuggle a second value past it.
pub(crate) const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "mcp-session-id",
    "mcp-protocol-version",
];

/// Raw input for create (absent = default) and update (absent = unchanged). Enums and names
/// stay text here so that a bad value becomes a 422 naming its field, not a parse failure.
/// For nullable fields, `Some(None)` clears the value.
#[derive(Clone, Debug, Default)]
pub struct TargetInput {
    pub name: Option<String>,
    pub url: Option<Option<String>>,
    pub transport_type: Option<String>,
    pub command: Option<Option<String>>,
    pub args: Option<Vec<String>>,
    pub cwd: Option<Option<String>>,
    pub image: Option<Option<String>>,
    /// Wider than u16 so an out-of-range port is reported, not truncated.
    pub port: Option<Option<i64>>,
    pub health_path: Option<Option<String>>,
    pub statefulness: Option<String>,
    pub isolation_boundary: Option<String>,
    pub auth_type: Option<String>,
    pub auth_header_name: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// `Some(None)` resets to the target name; `Some(Some(""))` exposes tools unprefixed.
    pub prefix: Option<Option<String>>,
    pub timeout: Option<Option<Duration>>,
    pub env: Option<BTreeMap<String, String>>,
    pub tags: Option<Vec<String>>,
    pub user_env: Option<Vec<String>>,
    pub user_token: Option<bool>,
    pub resources: Option<TargetResources>,
}

#[derive(Clone, Debug)]
pub struct TargetService {
    store: Store,
}

impl TargetService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn create(&self, input: TargetInput) -> Result<TargetRecord, ServiceError> {
        let name = input
            .name
            .as_deref()
            .ok_or_else(|| ServiceError::invalid("name", "is required"))?;
        let now = now_micros();
        let mut record = TargetRecord {
            id: TargetId::new(),
            name: TargetName::parse(name)?,
            url: None,
            transport: Transport::StreamableHttp,
            command: None,
            args: Vec::new(),
            cwd: None,
            image: None,
            port: None,
            health_path: None,
            statefulness: Statefulness::Stateless,
            isolation_boundary: IsolationBoundary::Shared,
            auth_type: AuthType::None,
            auth_header_name: None,
            enabled: true,
            prefix: None,
            timeout: None,
            env: BTreeMap::new(),
            tags: Vec::new(),
            user_env: Vec::new(),
            user_token: false,
            resources: TargetResources::default(),
            created_at: now,
            updated_at: now,
            restarts: 0,
        };
        apply(&mut record, input)?;
        validate(&record)?;
        self.store.insert_target(&record).await?;
        Ok(record)
    }

    pub async fn get(&self, id: TargetId) -> Result<TargetRecord, ServiceError> {
        self.store
            .target(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("target {id}")))
    }

    /// Finds a target by id or by name, whichever `key` is. A key that is neither is simply
    /// not found: it names nothing that could exist.
    pub async fn find(&self, key: &str) -> Result<TargetRecord, ServiceError> {
        if let Ok(id) = key.parse::<TargetId>() {
            return self.get(id).await;
        }
        let found = match TargetName::parse(key) {
            Ok(name) => self.store.target_by_name(&name).await?,
            Err(_) => None,
        };
        found.ok_or_else(|| ServiceError::NotFound(format!("target {key:?}")))
    }

    pub async fn list(&self) -> Result<Vec<TargetRecord>, ServiceError> {
        Ok(self.store.list_targets().await?)
    }

    /// Applies the given fields onto the stored target and validates the result as a whole
    /// (a transport change must come with what the new transport needs).
    pub async fn update(
        &self,
        id: TargetId,
        patch: TargetInput,
    ) -> Result<TargetRecord, ServiceError> {
        let mut record = self.get(id).await?;
        apply(&mut record, patch)?;
        validate(&record)?;
        record.updated_at = now_micros();
        if self.store.update_target(&record).await? {
            Ok(record)
        } else {
            Err(ServiceError::NotFound(format!("target {id}")))
        }
    }

    pub async fn set_enabled(
        &self,
        id: TargetId,
        enabled: bool,
    ) -> Result<TargetRecord, ServiceError> {
        let patch = TargetInput {
            enabled: Some(enabled),
            ..TargetInput::default()
        };
        self.update(id, patch).await
    }

    pub async fn remove(&self, id: TargetId) -> Result<(), ServiceError> {
        if self.store.delete_target(id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("target {id}")))
        }
    }
}

/// Now at the precision both backends store (Postgres keeps microseconds), so what a write
/// returns equals what a later read returns.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// An empty string means "none" for optional text, so `--url ''` or `"cwd": ""` clears it.
fn text(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn apply(r: &mut TargetRecord, p: TargetInput) -> Result<(), ServiceError> {
    if let Some(name) = p.name {
        r.name = TargetName::parse(&name)?;
    }
    if let Some(t) = p.transport_type {
        r.transport = Transport::parse(&t)?;
    }
    if let Some(v) = p.statefulness {
        r.statefulness = Statefulness::parse(&v)?;
    }
    if let Some(v) = p.isolation_boundary {
        r.isolation_boundary = IsolationBoundary::parse(&v)?;
    }
    if let Some(v) = p.auth_type {
        r.auth_type = AuthType::parse(&v)?;
    }
    if let Some(port) = p.port {
        r.port = port
            .map(|n| {
                u16::try_from(n)
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| ServiceError::invalid("port", format!("{n} is not in 1-65535")))
            })
            .transpose()?;
    }
    if let Some(v) = p.url {
        r.url = text(v).map(|s| s.trim().to_string());
    }
    if let Some(v) = p.command {
        r.command = text(v);
    }
    if let Some(v) = p.cwd {
        r.cwd = text(v);
    }
    if let Some(v) = p.image {
        r.image = text(v);
    }
    if let Some(v) = p.health_path {
        r.health_path = text(v);
    }
    if let Some(v) = p.auth_header_name {
        r.auth_header_name = text(v);
    }
    if let Some(v) = p.args {
        r.args = v;
    }
    if let Some(v) = p.enabled {
        r.enabled = v;
    }
    if let Some(v) = p.prefix {
        r.prefix = v;
    }
    if let Some(v) = p.timeout {
        r.timeout = v;
    }
    if let Some(v) = p.env {
        r.env = v;
    }
    if let Some(mut tags) = p.tags {
        tags.sort();
        tags.dedup();
        r.tags = tags;
    }
    if let Some(mut keys) = p.user_env {
        keys.sort();
        keys.dedup();
        r.user_env = keys;
    }
    if let Some(v) = p.resources {
        r.resources = v;
    }
    if let Some(v) = p.user_token {
        r.user_token = v;
    }
    Ok(())
}

/// Every rule on a complete target; the first broken one is reported with its field.
pub fn validate(r: &TargetRecord) -> Result<(), ServiceError> {
    if r.transport.is_http() {
        let url = r.url.as_deref().ok_or_else(|| {
            ServiceError::invalid("url", format!("is required for {} targets", r.transport))
        })?;
        check_url(url)?;
    } else if let Some(url) = &r.url {
        check_url(url)?;
    }
    match r.transport {
        Transport::Stdio if r.command.is_none() => {
            return Err(ServiceError::invalid(
                "command",
                "is required for stdio targets",
            ));
        }
        Transport::Kubernetes if r.image.is_none() => {
            return Err(ServiceError::invalid(
                "image",
                "is required for kubernetes targets",
            ));
        }
        // Refused rather than stored and ignored: this build has no pod runner.
        Transport::Kubernetes if !cfg!(feature = "kubernetes") => {
            return Err(ServiceError::invalid(
                "transport_type",
                "kubernetes targets need a reflow built with the `kubernetes` feature (on by default); run the server as a stdio target or reach it over HTTP",
            ));
        }
        Transport::Kubernetes => check_pod_target(r)?,
        _ => {}
    }
    // A NUL cannot pass through execve: reject it here rather than at first spawn.
    let no_nul = |field: &'static str, s: &str| {
        if s.contains('\0') {
            Err(ServiceError::invalid(field, "must not contain NUL bytes"))
        } else {
            Ok(())
        }
    };
    if let Some(c) = &r.command {
        no_nul("command", c)?;
        if c.trim().is_empty() {
            return Err(ServiceError::invalid("command", "must not be empty"));
        }
        // A bare name is looked up on the target's or the gateway's PATH at spawn; a relative
        // path needs a directory to be relative to, and the gateway's own is not one.
        if c.contains('/') && !c.starts_with('/') && r.cwd.is_none() {
            return Err(ServiceError::invalid(
                "command",
                format!(
                    "{c:?} is a relative path: give an absolute path, a bare name found on PATH, or set cwd"
                ),
            ));
        }
    }
    for a in &r.args {
        no_nul("args", a)?;
    }
    if let Some(c) = &r.cwd {
        no_nul("cwd", c)?;
        // Relative to what? The gateway's own directory is an accident of how it was started.
        if !c.starts_with('/') {
            return Err(ServiceError::invalid(
                "cwd",
                format!("{c:?} must be an absolute path"),
            ));
        }
    }
    if let Some(h) = &r.health_path
        && !h.starts_with('/')
    {
        return Err(ServiceError::invalid(
            "health_path",
            format!("{h:?} must start with '/'"),
        ));
    }
    if let Some(p) = &r.prefix
        && (p.len() > MAX_PREFIX_LEN
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        return Err(ServiceError::invalid(
            "prefix",
            format!(
                "{p:?} must be at most {MAX_PREFIX_LEN} of A-Z, a-z, 0-9, '_' and '-' (empty: no prefix)"
            ),
        ));
    }
    check_auth_header(r)?;
    check_env(&r.env)?;
    check_user_env(&r.user_env)?;
    check_resources(r)?;
    for tag in &r.tags {
        let ok = !tag.is_empty()
            && tag.len() <= 64
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(ServiceError::invalid(
                "tags",
                format!("{tag:?} must be 1 to 64 of letters, digits, '-', '_' and '.'"),
            ));
        }
    }
    if let Some(t) = r.timeout
        && !(MIN_TARGET_TIMEOUT..=MAX_TARGET_TIMEOUT).contains(&t)
    {
        return Err(ServiceError::invalid(
            "timeout",
            format!("{t:?} is not between 1 second and 1 hour"),
        ));
    }
    Ok(())
}

fn check_url(raw: &str) -> Result<(), ServiceError> {
    let url = url::Url::parse(raw)
        .map_err(|e| ServiceError::invalid("url", format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ServiceError::invalid(
            "url",
            format!("{raw:?} must use http or https"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ServiceError::invalid("url", format!("{raw:?} has no host")));
    }
    Ok(())
}

fn check_auth_header(r: &TargetRecord) -> Result<(), ServiceError> {
    let name = match (&r.auth_type, &r.auth_header_name) {
        (AuthType::Header, None) => {
            return Err(ServiceError::invalid(
                "auth_header_name",
                "is required when auth_type is header",
            ));
        }
        (_, None) => return Ok(()),
        (_, Some(name)) => name,
    };
    // RFC 9110 field-name = token: visible ASCII except delimiters.
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(is_tchar) {
        return Err(ServiceError::invalid(
            "auth_header_name",
            format!("{name:?} is not a valid HTTP header name"),
        ));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
    {
        return Err(ServiceError::invalid(
            "auth_header_name",
            format!("{name:?} is reserved; reflow sets it itself"),
        ));
    }
    Ok(())
}

fn check_env(env: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    if env.len() > MAX_ENV_KEYS {
        return Err(ServiceError::invalid(
            "env",
            format!("has {} keys; at most {MAX_ENV_KEYS} are allowed", env.len()),
        ));
    }
    for (key, value) in env {
        let mut bytes = key.bytes();
        let ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(ServiceError::invalid(
                "env",
                format!("key {key:?} must match [A-Za-z_][A-Za-z0-9_]*"),
            ));
        }
        // The gateway's own settings never reach a child (stdio processes drop them too).
        if key.starts_with("REFLOW_") {
            return Err(ServiceError::invalid(
                "env",
                format!("key {key:?}: REFLOW_* names are reserved for the gateway"),
            ));
        }
        if value.len() > MAX_ENV_VALUE_BYTES {
            return Err(ServiceError::invalid(
                "env",
                format!("value of {key} is longer than {MAX_ENV_VALUE_BYTES} bytes"),
            ));
        }
        if value.contains('\0') {
            return Err(ServiceError::invalid(
                "env",
                format!("value of {key} contains a NUL byte"),
            ));
        }
    }
    Ok(())
}

/// The keys users may supply: each a valid env name that no deny-list rule forbids and that
/// does not redirect the target's traffic or re-frame its requests.
fn check_user_env(keys: &[String]) -> Result<(), ServiceError> {
    if keys.len() > MAX_ENV_KEYS {
        return Err(ServiceError::invalid(
            "user_env",
            format!(
                "has {} keys; at most {MAX_ENV_KEYS} are allowed",
                keys.len()
            ),
        ));
    }
    for key in keys {
        validate_env_key(key).map_err(|e| match e {
            ServiceError::Invalid { message, .. } => ServiceError::invalid("user_env", message),
            other => other,
        })?;
        if let Some(denied) = denied_env_key(key) {
            return Err(ServiceError::invalid("user_env", denied.explain(key)));
        }
        if key == BASE_URL || key == AUTH_HEADER {
            return Err(ServiceError::invalid(
                "user_env",
                format!(
                    "{key:?} cannot be left to users: it decides where or how the target's requests go"
                ),
            ));
        }
    }
    Ok(())
}

/// The public shape of a target (CONTRACT.md).
#[derive(Clone, Debug, Serialize)]
pub struct TargetView {
    pub id: TargetId,
    pub name: TargetName,
    pub url: Option<String>,
    pub transport_type: Transport,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub image: Option<String>,
    pub port: Option<u16>,
    pub health_path: Option<String>,
    pub statefulness: Statefulness,
    pub isolation_boundary: IsolationBoundary,
    pub auth_type: AuthType,
    pub auth_header_name: Option<String>,
    pub enabled: bool,
    pub prefix: Option<String>,
    /// Seconds: an integer when whole, else fractional; null when unset.
    #[serde(serialize_with = "seconds")]
    pub timeout: Option<Duration>,
    pub env: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub user_env: Vec<String>,
    pub user_token: bool,
    pub resources: TargetResources,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn seconds<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        None => s.serialize_none(),
        Some(d) if d.subsec_nanos() == 0 => s.serialize_u64(d.as_secs()),
        Some(d) => s.serialize_f64(d.as_secs_f64()),
    }
}

impl From<&TargetRecord> for TargetView {
    fn from(t: &TargetRecord) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            url: t.url.clone(),
            transport_type: t.transport,
            command: t.command.clone(),
            args: t.args.clone(),
            cwd: t.cwd.clone(),
            image: t.image.clone(),
            port: t.port,
            health_path: t.health_path.clone(),
            statefulness: t.statefulness,
            isolation_boundary: t.isolation_boundary,
            auth_type: t.auth_type,
            auth_header_name: t.auth_header_name.clone(),
            enabled: t.enabled,
            prefix: t.prefix.clone(),
            timeout: t.timeout,
            env: t.env.clone(),
            tags: t.tags.clone(),
            user_env: t.user_env.clone(),
            user_token: t.user_token,
            resources: t.resources.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}
