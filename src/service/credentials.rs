//! Upstream credentials: validation, sealing and storage of tokens and env entries per scope,
//! and metadata views that never carry a value. Shared by the admin API and `reflow secret`.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;

use super::ServiceError;
use crate::credentials::{BASE_URL, Resolved, Source, denied_env_key, mask, seal_context};
use crate::crypto::Keyring;
use crate::domain::{
    CredentialId, CredentialKind, CredentialScope, Email, GroupName, Role, TargetId, UserId,
};
use crate::store::{CredentialRecord, CredentialSlot, Store, TargetRecord};

/// The largest value stored: far above any real token, far below what would bloat every
/// snapshot (each replica holds every value in memory).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_KEY_LEN: usize = 128;
const MAX_KEYS_PER_WRITE: usize = 256;

static ENV_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("valid regex"));

/// A validated scope and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeRef {
    Default,
    Role(Role),
    Group(GroupName),
    User(UserId),
}

impl ScopeRef {
    pub fn scope(&self) -> CredentialScope {
        match self {
            Self::Default => CredentialScope::Default,
            Self::Role(_) => CredentialScope::Role,
            Self::Group(_) => CredentialScope::Group,
            Self::User(_) => CredentialScope::User,
        }
    }

    /// What is stored in `scope_value`: "" for default.
    pub fn value(&self) -> String {
        match self {
            Self::Default => String::new(),
            Self::Role(r) => r.as_str().to_string(),
            Self::Group(g) => g.as_str().to_string(),
            Self::User(u) => u.to_string(),
        }
    }
}

/// Who writes a value. An admin (the admin API or the CLI, which acts on the database
/// directly) may write any scope; a user only their own user scope, and only what the target
/// lets users supply (`user_env`, `user_token`). Nobody writes a deny-listed key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    Admin,
    User,
}

/// Refuses what no writer may store at `scope`, then what this writer may not (the key's
/// shape is `validate_env_key`'s).
pub fn check_env_write(
    target: &TargetRecord,
    scope: &ScopeRef,
    writer: Writer,
    key: &str,
) -> Result<(), ServiceError> {
    if let Some(denied) = denied_env_key(key) {
        return Err(ServiceError::invalid("key", denied.explain(key)));
    }
    if key == BASE_URL && scope.scope() == CredentialScope::User {
        return Err(ServiceError::invalid(
            "key",
            "BASE_URL cannot be set at user scope: a user must not redirect a target's traffic",
        ));
    }
    if writer == Writer::User && !target.user_env.iter().any(|k| k == key) {
        let allowed = if target.user_env.is_empty() {
            "it lets users supply no env keys".to_string()
        } else {
            format!("it lets users supply only {}", target.user_env.join(", "))
        };
        return Err(ServiceError::Forbidden(format!(
            "target {} does not let users set env key {key:?}: {allowed} (an admin adds keys \
             with `reflow target update {} --user-env KEY`)",
            target.name, target.name
        )));
    }
    Ok(())
}

/// Metadata of one stored value.
#[derive(Clone, Debug, Serialize)]
pub struct CredentialEntry {
    pub kind: CredentialKind,
    pub scope: CredentialScope,
    /// Absent for the default scope.
    pub scope_value: Option<String>,
    /// Absent for the token.
    pub key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&CredentialRecord> for CredentialEntry {
    fn from(r: &CredentialRecord) -> Self {
        Self {
            kind: r.kind,
            scope: r.scope,
            scope_value: Some(r.scope_value.clone()).filter(|v| !v.is_empty()),
            key: Some(r.key.clone()).filter(|k| !k.is_empty()),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `GET /api/targets/{id}/env`: the keys set at each scope.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct EnvScopeView {
    pub default: Vec<String>,
    pub role: BTreeMap<String, Vec<String>>,
    pub group: BTreeMap<String, Vec<String>>,
    pub user: BTreeMap<String, Vec<String>>,
}

impl EnvScopeView {
    pub fn from_entries(entries: &[CredentialEntry]) -> Self {
        let mut view = Self::default();
        for e in entries.iter().filter(|e| e.kind == CredentialKind::Env) {
            let key = e.key.clone().unwrap_or_default();
            let value = e.scope_value.clone().unwrap_or_default();
            match e.scope {
                CredentialScope::Default => view.default.push(key),
                CredentialScope::Role => view.role.entry(value).or_default().push(key),
                CredentialScope::Group => view.group.entry(value).or_default().push(key),
                CredentialScope::User => view.user.entry(value).or_default().push(key),
            }
        }
        view
    }
}

/// Where one resolved value comes from for the caller, and the value masked.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ResolvedEntry {
    pub scope: CredentialScope,
    pub scope_value: Option<String>,
    pub masked: String,
}

impl ResolvedEntry {
    fn new(value: &crate::credentials::Secret, source: &Source) -> Self {
        Self {
            scope: source.scope,
            scope_value: Some(source.value.clone()).filter(|v| !v.is_empty()),
            masked: mask(value.expose()),
        }
    }

    /// The token entry and one entry per env key of `resolved`.
    pub fn of(resolved: &Resolved) -> (Option<Self>, BTreeMap<String, Self>) {
        let token = resolved.token.as_ref().map(|(v, s)| Self::new(v, s));
        let env = resolved
            .env
            .iter()
            .map(|(k, (v, s))| (k.clone(), Self::new(v, s)))
            .collect();
        (token, env)
    }
}

/// Checks an env key's shape; the message names the key (keys are not secret).
pub fn validate_env_key(key: &str) -> Result<(), ServiceError> {
    if key.is_empty() {
        return Err(ServiceError::invalid(
            "key",
            "is required (got an empty key)",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ServiceError::invalid(
            "key",
            format!("{key:?} is longer than {MAX_KEY_LEN} characters"),
        ));
    }
    if !ENV_KEY.is_match(key) {
        return Err(ServiceError::invalid(
            "key",
            format!("{key:?} must match ^[A-Za-z_][A-Za-z0-9_]*$"),
        ));
    }
    Ok(())
}

fn validate_value(field: &'static str, what: &str, value: &str) -> Result<(), ServiceError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(ServiceError::invalid(
            field,
            format!(
                "the value of {what} is {} bytes; at most {MAX_VALUE_BYTES} are allowed",
                value.len()
            ),
        ));
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct CredentialService {
    store: Store,
    sealer: Arc<Keyring>,
}

impl CredentialService {
    pub fn new(store: Store, sealer: Arc<Keyring>) -> Self {
        Self { store, sealer }
    }

    /// Parses a scope name and its value (a role, a group, or a user by id or email; the
    /// user must exist). Invalid names are 422s naming the field.
    pub async fn scope_ref(
        &self,
        scope: CredentialScope,
        value: Option<&str>,
    ) -> Result<ScopeRef, ServiceError> {
        let required = |field: &'static str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ServiceError::invalid(field, "is required for this scope"))
        };
        Ok(match scope {
            CredentialScope::Default => ScopeRef::Default,
            CredentialScope::Role => ScopeRef::Role(Role::parse(required("role")?)?),
            // GroupName reports itself as "groups" (the user field); here it is one group.
            CredentialScope::Group => ScopeRef::Group(
                GroupName::parse(required("group")?)
                    .map_err(|e| ServiceError::invalid("group", e.message))?,
            ),
            CredentialScope::User => {
                let raw = required("user")?;
                let user = match raw.parse::<UserId>() {
                    Ok(id) => self.store.user(id).await?,
                    Err(_) => match Email::parse(raw) {
                        Ok(email) => self.store.user_by_email(&email).await?,
                        Err(_) => None,
                    },
                };
                let user =
                    user.ok_or_else(|| ServiceError::invalid("user", format!("no user {raw:?}")))?;
                ScopeRef::User(user.id)
            }
        })
    }

    fn slot(target: TargetId, kind: CredentialKind, scope: &ScopeRef) -> CredentialSlot {
        CredentialSlot {
            target_id: target,
            kind,
            scope: scope.scope(),
            scope_value: scope.value(),
        }
    }

    fn seal(&self, slot: &CredentialSlot, key: &str, value: &str) -> CredentialRecord {
        let context = seal_context(
            slot.target_id,
            slot.kind,
            slot.scope,
            &slot.scope_value,
            key,
        );
        let (ciphertext, key_id) = self.sealer.current().seal(value.as_bytes(), &context);
        let now = now_micros();
        CredentialRecord {
            id: CredentialId::new(),
            target_id: slot.target_id,
            kind: slot.kind,
            scope: slot.scope,
            scope_value: slot.scope_value.clone(),
            key: key.to_string(),
            ciphertext,
            key_id: key_id.as_str().to_string(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Sets the token of `scope`. Control characters are refused: the token travels in an
    /// HTTP header, where a line break would end it.
    pub async fn set_token(
        &self,
        target: &TargetRecord,
        scope: &ScopeRef,
        token: &str,
        writer: Writer,
    ) -> Result<(), ServiceError> {
        if writer == Writer::User && !target.user_token {
            return Err(ServiceError::Forbidden(format!(
                "target {} does not let users set their own token (an admin allows it with \
                 `reflow target update {} --user-token true`)",
                target.name, target.name
            )));
        }
        if token.is_empty() {
            return Err(ServiceError::invalid("token", "is required"));
        }
        validate_value("token", "the token", token)?;
        if token.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                "token",
                "contains control characters (line breaks cannot travel in an HTTP header)",
            ));
        }
        let slot = Self::slot(target.id, CredentialKind::Token, scope);
        let record = self.seal(&slot, "", token);
        Ok(self.store.upsert_credentials(&[record]).await?)
    }

    /// Adds or updates env entries of `scope` (`replace`: they become the scope's whole set).
    /// Returns the scope's keys afterwards.
    pub async fn write_env(
        &self,
        target: &TargetRecord,
        scope: &ScopeRef,
        entries: &BTreeMap<String, String>,
        replace: bool,
        writer: Writer,
    ) -> Result<Vec<String>, ServiceError> {
        if entries.is_empty() && !replace {
            return Err(ServiceError::invalid("env", "no entries given"));
        }
        if entries.len() > MAX_KEYS_PER_WRITE {
            return Err(ServiceError::invalid(
                "env",
                format!("at most {MAX_KEYS_PER_WRITE} keys per write"),
            ));
        }
        for (key, value) in entries {
            validate_env_key(key)?;
            validate_value("value", key, value)?;
            check_env_write(target, scope, writer, key)?;
        }
        let slot = Self::slot(target.id, CredentialKind::Env, scope);
        let records: Vec<CredentialRecord> = entries
            .iter()
            .map(|(k, v)| self.seal(&slot, k, v))
            .collect();
        if replace {
            self.store.replace_credentials(&slot, &records).await?;
        } else {
            self.store.upsert_credentials(&records).await?;
        }
        self.env_keys(target.id, scope).await
    }

    /// The env keys set at one scope, by name.
    pub async fn env_keys(
        &self,
        target: TargetId,
        scope: &ScopeRef,
    ) -> Result<Vec<String>, ServiceError> {
        let (s, v) = (scope.scope(), scope.value());
        Ok(self
            .store
            .target_credentials(target)
            .await?
            .into_iter()
            .filter(|r| r.kind == CredentialKind::Env && r.scope == s && r.scope_value == v)
            .map(|r| r.key)
            .collect())
    }

    /// Removes a token (`key` "") or one env entry; NotFound when it was not set.
    pub async fn delete(
        &self,
        target: TargetId,
        kind: CredentialKind,
        scope: &ScopeRef,
        key: &str,
    ) -> Result<(), ServiceError> {
        let slot = Self::slot(target, kind, scope);
        if self.store.delete_credential(&slot, key).await? {
            return Ok(());
        }
        Err(ServiceError::NotFound(match kind {
            CredentialKind::Token => format!("{} token", scope.scope()),
            CredentialKind::Env => format!("{} env key {key:?}", scope.scope()),
        }))
    }

    /// Metadata of every value stored for `target`, never the values.
    pub async fn entries(&self, target: TargetId) -> Result<Vec<CredentialEntry>, ServiceError> {
        Ok(self
            .store
            .target_credentials(target)
            .await?
            .iter()
            .map(CredentialEntry::from)
            .collect())
    }
}

fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
