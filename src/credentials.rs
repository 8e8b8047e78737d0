//! Upstream credentials in memory: a snapshot of every decrypted value, per-key resolution for a
//! caller (user > group > role > default), and the HTTP headers a resolved set turns into.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use sha2::{Digest, Sha256};

mod env_rules;

pub use crate::config::Secret;
use crate::crypto::{KeyId, SealError, SecretBox};
use crate::domain::{AuthType, CredentialKind, CredentialScope, GroupName, Role, TargetId, UserId};
use crate::store::{CredentialRecord, Store, StoreError};
pub use env_rules::{DeniedKey, denied_env_key};

/// Env key that replaces the token.
pub const AUTH_TOKEN: &str = "AUTH_TOKEN";
/// Env key that replaces the target's `auth_header_name` (auth type `header`).
pub const AUTH_HEADER: &str = "AUTH_HEADER";
/// Env key read by the upstream client as a request timeout, not sent as a header.
pub const TIMEOUT: &str = "TIMEOUT";
/// Env key that redirects an HTTP target; a user must not redirect traffic, so it is never
/// taken from user scope.
pub const BASE_URL: &str = "BASE_URL";
/// Keys that configure the HTTP connection instead of becoming `X-Env-*` headers.
pub const RESERVED_HTTP_KEYS: &[&str] = &[AUTH_TOKEN, AUTH_HEADER, TIMEOUT, BASE_URL];

/// The authenticated context a value is sealed under: a value only opens in the row it was
/// written for, so a database writer cannot move one user's token into another's slot.
/// NUL separators keep ("a", "b\0c") and ("a\0b", "c") apart; none of the parts may hold NUL.
pub fn seal_context(
    target: TargetId,
    kind: CredentialKind,
    scope: CredentialScope,
    scope_value: &str,
    key: &str,
) -> Vec<u8> {
    format!(
        "reflow-credential\0{target}\0{}\0{}\0{scope_value}\0{key}",
        kind.as_str(),
        scope.as_str()
    )
    .into_bytes()
}

/// Where a resolved value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub scope: CredentialScope,
    /// "" for the default scope; the role, group or user id otherwise.
    pub value: String,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            CredentialScope::Default => f.write_str("default"),
            scope => write!(f, "{scope}:{}", self.value),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Names the row, never the value.
    #[error(
        "cannot open the {kind} {key:?} of target {target} at {scope} scope {scope_value:?}: {source}"
    )]
    Open {
        target: TargetId,
        kind: CredentialKind,
        scope: CredentialScope,
        scope_value: String,
        key: String,
        source: SealError,
    },
}

/// The values of one (kind, key) of one target, by scope.
#[derive(Debug, Default)]
struct Scoped {
    default: Option<Secret>,
    roles: HashMap<String, Secret>,
    groups: HashMap<String, Secret>,
    users: HashMap<String, Secret>,
}

impl Scoped {
    fn insert(&mut self, scope: CredentialScope, value: String, secret: Secret) {
        match scope {
            CredentialScope::Default => self.default = Some(secret),
            CredentialScope::Role => _ = self.roles.insert(value, secret),
            CredentialScope::Group => _ = self.groups.insert(value, secret),
            CredentialScope::User => _ = self.users.insert(value, secret),
        }
    }

    /// The most specific value for the caller. `groups` must already be in name order.
    fn pick(&self, caller: &CallerKey<'_>, allow_user: bool) -> Option<(Secret, Source)> {
        let found = |scope, value: &str, s: &Secret| {
            Some((
                s.clone(),
                Source {
                    scope,
                    value: value.to_string(),
                },
            ))
        };
        if allow_user && let Some(s) = self.users.get(&caller.user) {
            return found(CredentialScope::User, &caller.user, s);
        }
        for g in &caller.groups {
            if let Some(s) = self.groups.get(*g) {
                return found(CredentialScope::Group, g, s);
            }
        }
        if let Some(s) = self.roles.get(caller.role) {
            return found(CredentialScope::Role, caller.role, s);
        }
        self.default
            .as_ref()
            .and_then(|s| found(CredentialScope::Default, "", s))
    }
}

struct CallerKey<'a> {
    user: String,
    role: &'a str,
    groups: Vec<&'a str>,
}

/// Every stored credential, decrypted, as of one revision. Held behind an `ArcSwap` and
/// replaced whole on reload; values only leave it through `resolve`.
#[derive(Debug, Default)]
pub struct CredentialSnapshot {
    targets: HashMap<TargetId, TargetValues>,
    count: usize,
    /// Stored rows left out because their key is on the deny-list.
    ignored: usize,
}

#[derive(Debug, Default)]
struct TargetValues {
    token: Scoped,
    env: BTreeMap<String, Scoped>,
}

impl CredentialSnapshot {
    /// Reads and opens every credential. Any value that does not open fails the whole load,
    /// so a wrong key is noticed at start instead of as missing credentials later.
    pub async fn load(store: &Store, sealer: &SecretBox) -> Result<Self, CredentialError> {
        Self::from_records(&store.all_credentials().await?, sealer)
    }

    pub fn from_records(
        records: &[CredentialRecord],
        sealer: &SecretBox,
    ) -> Result<Self, CredentialError> {
        let mut snap = Self::default();
        for r in records {
            let context = seal_context(r.target_id, r.kind, r.scope, &r.scope_value, &r.key);
            let key_id = KeyId::from_stored(r.key_id.clone());
            let open_err = |source| CredentialError::Open {
                target: r.target_id,
                kind: r.kind,
                scope: r.scope,
                scope_value: r.scope_value.clone(),
                key: r.key.clone(),
                source,
            };
            let plain = sealer
                .open(&r.ciphertext, &key_id, &context)
                .map_err(open_err)?;
            let text = String::from_utf8(plain).map_err(|_| open_err(SealError::Corrupt))?;
            // Rows written before the deny-list existed: never resolved, never reach a child.
            if r.kind == CredentialKind::Env
                && let Some(denied) = denied_env_key(&r.key)
            {
                tracing::warn!(
                    target_id = %r.target_id,
                    scope = %r.scope,
                    "ignoring a stored env entry: {} (remove it with `reflow secret unset`; \
                     `reflow secret audit` lists every such row)",
                    denied.explain(&r.key)
                );
                snap.ignored += 1;
                continue;
            }
            let values = snap.targets.entry(r.target_id).or_default();
            let scoped = match r.kind {
                CredentialKind::Token => &mut values.token,
                CredentialKind::Env => values.env.entry(r.key.clone()).or_default(),
            };
            scoped.insert(r.scope, r.scope_value.clone(), Secret::new(text));
            snap.count += 1;
        }
        Ok(snap)
    }

    /// How many values the snapshot holds.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many stored rows were left out (deny-listed keys).
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// The caller's credentials for `target`, each key resolved on its own: user > group >
    /// role > default, groups tried in name order. BASE_URL is never taken from user scope.
    pub fn resolve(
        &self,
        target: TargetId,
        user: UserId,
        role: &Role,
        groups: &[GroupName],
    ) -> Resolved {
        let mut sorted: Vec<&str> = groups.iter().map(GroupName::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let caller = CallerKey {
            user: user.to_string(),
            role: role.as_str(),
            groups: sorted,
        };
        self.resolve_for(target, &caller)
    }

    /// What the default scope alone gives for `target` (`reflow target test`): no user, role
    /// or group matches the empty caller.
    pub fn resolve_default(&self, target: TargetId) -> Resolved {
        let caller = CallerKey {
            user: String::new(),
            role: "",
            groups: Vec::new(),
        };
        self.resolve_for(target, &caller)
    }

    fn resolve_for(&self, target: TargetId, caller: &CallerKey<'_>) -> Resolved {
        let mut token = None;
        let mut env = BTreeMap::new();
        if let Some(values) = self.targets.get(&target) {
            token = values.token.pick(caller, true);
            for (key, scoped) in &values.env {
                if let Some(found) = scoped.pick(caller, key != BASE_URL) {
                    env.insert(key.clone(), found);
                }
            }
        }
        let fingerprint = fingerprint(token.as_ref().map(|(s, _)| s), &env);
        Resolved {
            target,
            token,
            env,
            fingerprint,
        }
    }
}

/// What one caller gets for one target. Debug shows sources, never values.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub target: TargetId,
    pub token: Option<(Secret, Source)>,
    pub env: BTreeMap<String, (Secret, Source)>,
    /// A short keyed hash of the values (not of where they came from): connection pools key
    /// on it, so callers with equal credentials share a connection and a change opens a new
    /// one, without the pool holding the values.
    pub fingerprint: String,
}

impl Resolved {
    /// BASE_URL, which resolution only takes from default, role or group scope.
    pub fn base_url(&self) -> Option<&str> {
        self.env.get(BASE_URL).map(|(s, _)| s.expose())
    }

    /// The environment for a stdio child: every resolved entry, plus the token as AUTH_TOKEN
    /// unless an AUTH_TOKEN entry is set.
    pub fn process_env(&self) -> BTreeMap<String, Secret> {
        let mut out: BTreeMap<String, Secret> = self
            .env
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        if let Some((t, _)) = &self.token {
            out.entry(AUTH_TOKEN.to_string())
                .or_insert_with(|| t.clone());
        }
        out
    }
}

/// A per-process random key, so a fingerprint (which may show up in pool diagnostics) cannot
/// be used to test guesses of a low-entropy token offline.
fn fingerprint_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(crate::crypto::random_bytes::<32>)
}

fn fingerprint(token: Option<&Secret>, env: &BTreeMap<String, (Secret, Source)>) -> String {
    // Most calls go to targets without credentials: that digest is the same every time.
    if token.is_none() && env.is_empty() {
        static NONE: OnceLock<String> = OnceLock::new();
        return NONE.get_or_init(|| digest(None, env)).clone();
    }
    digest(token, env)
}

fn digest(token: Option<&Secret>, env: &BTreeMap<String, (Secret, Source)>) -> String {
    let mut h = Sha256::new();
    h.update(fingerprint_key());
    // Length-prefixed fields, so no two different sets hash the same input.
    let mut field = |tag: u8, bytes: &[u8]| {
        h.update([tag]);
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    if let Some(t) = token {
        field(b't', t.expose().as_bytes());
    }
    for (k, (v, _)) in env {
        field(b'k', k.as_bytes());
        field(b'v', v.expose().as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// A credential an upstream connection needs but the caller does not have (or has in a form
/// HTTP cannot carry). Names what is missing, never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("target {target}: no {what} is configured for this caller")]
pub struct MissingCredential {
    pub target: TargetId,
    pub what: String,
}

/// The headers an HTTP upstream request carries for `resolved`: the token as
/// `Authorization: Bearer <t>` (auth type bearer) or `<name>: <t>` (header; AUTH_HEADER
/// overrides the name), AUTH_TOKEN overriding the token; every non-reserved env key as
/// `X-Env-<KEY>`. Values are marked sensitive so HTTP libraries keep them out of their logs.
pub fn http_headers(
    resolved: &Resolved,
    auth_type: AuthType,
    auth_header_name: Option<&str>,
) -> Result<HeaderMap, MissingCredential> {
    let missing = |what: &str| MissingCredential {
        target: resolved.target,
        what: what.to_string(),
    };
    let mut headers = HeaderMap::new();
    let token = resolved
        .env
        .get(AUTH_TOKEN)
        .map(|(s, _)| s)
        .or(resolved.token.as_ref().map(|(s, _)| s));
    match auth_type {
        AuthType::None => {}
        AuthType::Bearer => {
            let t = token.ok_or_else(|| missing("token"))?;
            let value = sensitive(&format!("Bearer {}", t.expose()))
                .ok_or_else(|| missing("token usable in an HTTP header"))?;
            headers.insert(header::AUTHORIZATION, value);
        }
        AuthType::Header => {
            let name = resolved
                .env
                .get(AUTH_HEADER)
                .map(|(s, _)| s.expose())
                .or(auth_header_name)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| missing("auth header name"))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .ok()
                .filter(|n| !crate::service::RESERVED_HEADERS.contains(&n.as_str()))
                .ok_or_else(|| missing("usable auth header name"))?;
            let t = token.ok_or_else(|| missing("token"))?;
            let value =
                sensitive(t.expose()).ok_or_else(|| missing("token usable in an HTTP header"))?;
            headers.insert(name, value);
        }
    }
    for (key, (value, _)) in &resolved.env {
        if RESERVED_HTTP_KEYS.contains(&key.as_str()) {
            continue;
        }
        let name = HeaderName::from_bytes(format!("X-Env-{key}").as_bytes())
            .map_err(|_| missing(&format!("header name for env key {key}")))?;
        let value = sensitive(value.expose())
            .ok_or_else(|| missing(&format!("value of env key {key} usable in an HTTP header")))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn sensitive(text: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(text).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// How a value is shown to a caller: the first and last two characters of a value of at
/// least 12 characters (enough to tell two tokens apart), `****` for anything shorter.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "****".to_string();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests;
