//! Tokens from an external OpenID Connect provider (`auth.oidc`): RS256/ES256 JWTs checked
//! against the issuer's JWKS, which is cached, refreshed after a TTL, and refetched when a token
//! names a key we do not know (rate limited, so a flood of made-up `kid`s cannot hammer the IdP).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::AuthError;
use super::authenticator::{AuthMethod, Principal};
use crate::config::OidcSettings;
use crate::domain::{Email, GroupName, Role, UserId};

/// How long fetched keys are trusted before the next token triggers a refresh.
const KEYS_TTL: Duration = Duration::from_secs(300);
/// At most one refetch per this interval for unknown `kid`s, and for retries after a failure.
const REFETCH_COOLDOWN: Duration = Duration::from_secs(10);
/// Clock skew tolerated between reflow and the IdP on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;
/// A JWKS or discovery document larger than this is refused (it is a few KiB in practice).
const MAX_DOCUMENT: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("fetching {url}: {source}")]
    Fetch { url: String, source: reqwest::Error },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {message}")]
    Document { url: String, message: String },
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct KeySet {
    keys: Vec<Key>,
    fetched_at: Option<Instant>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&DecodingKey> {
        self.keys
            .iter()
            .find(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .map(|k| &k.key)
    }
}

#[derive(Default)]
struct FetchState {
    /// Resolved from the discovery document when `jwks_url` is not configured.
    jwks_url: Option<String>,
    last_attempt: Option<Instant>,
    last_forced: Option<Instant>,
}

/// Verifies tokens of one configured issuer.
pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: ArcSwap<KeySet>,
    fetch: Mutex<FetchState>,
    /// How many JWKS fetches were made; tests and logs read it.
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    pub fn new(settings: OidcSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            fetch: Mutex::new(FetchState {
                jwks_url: settings.jwks_url.clone(),
                ..FetchState::default()
            }),
            settings,
            http,
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        // Asymmetric algorithms only: an HS256 token "signed" with a public key must not pass.
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Invalid);
        }
        let key = self.key(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?
            .claims;
        self.principal(&claims)
    }

    /// The key for `kid`: from the cache, after a TTL refresh, or after a forced refetch.
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let fresh = |set: &KeySet| set.fetched_at.is_some_and(|t| t.elapsed() < KEYS_TTL);
        if !fresh(&self.keys.load()) {
            self.refresh(false).await;
        }
        if let Some(key) = self.keys.load().find(kid, alg) {
            return Ok(key.clone());
        }
        // Unknown kid: perhaps the IdP rotated its keys.
        if self.refresh(true).await
            && let Some(key) = self.keys.load().find(kid, alg)
        {
            return Ok(key.clone());
        }
        Err(AuthError::Invalid)
    }

    /// Refetches the JWKS unless a concurrent caller just did, or the cooldown forbids it.
    /// `forced`: for an unknown kid, at most once per cooldown. True if new keys were loaded.
    async fn refresh(&self, forced: bool) -> bool {
        let mut state = self.fetch.lock().await;
        let now = Instant::now();
        let recent = |t: Option<Instant>| t.is_some_and(|t| now - t < REFETCH_COOLDOWN);
        if forced {
            if recent(state.last_forced) {
                return false;
            }
            state.last_forced = Some(now);
        } else {
            let keys = self.keys.load();
            let fresh = keys.fetched_at.is_some_and(|t| t.elapsed() < KEYS_TTL);
            // Fresh: another caller refreshed while we waited. A recent failed attempt: the
            // IdP is down; keep the stale keys rather than retrying on every request.
            if fresh || recent(state.last_attempt) {
                return false;
            }
        }
        state.last_attempt = Some(now);
        match self.fetch_keys(&mut state).await {
            Ok(keys) => {
                tracing::debug!(issuer = %self.settings.issuer, keys = keys.len(), "fetched the OIDC signing keys");
                self.keys.store(Arc::new(KeySet {
                    keys,
                    fetched_at: Some(Instant::now()),
                }));
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching the OIDC signing keys failed");
                false
            }
        }
    }

    async fn fetch_keys(&self, state: &mut FetchState) -> Result<Vec<Key>, OidcError> {
        let url = match &state.jwks_url {
            Some(u) => u.clone(),
            None => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                let doc = self.get_json(&discovery).await?;
                let url = doc["jwks_uri"]
                    .as_str()
                    .ok_or_else(|| OidcError::Document {
                        url: discovery.clone(),
                        message: "no jwks_uri".into(),
                    })?
                    .to_string();
                state.jwks_url = Some(url.clone());
                url
            }
        };
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let doc = self.get_json(&url).await?;
        let Some(entries) = doc["keys"].as_array() else {
            return Err(OidcError::Document {
                url,
                message: "no keys array".into(),
            });
        };
        // One odd entry (another key type, a typo) must not disable the others.
        Ok(entries
            .iter()
            .filter_map(|v| serde_json::from_value::<Jwk>(v.clone()).ok())
            .filter_map(|jwk| usable_key(&jwk))
            .collect())
    }

    async fn get_json(&self, url: &str) -> Result<Value, OidcError> {
        let fetch_err = |source| OidcError::Fetch {
            url: url.to_string(),
            source,
        };
        let res = self.http.get(url).send().await.map_err(fetch_err)?;
        if !res.status().is_success() {
            return Err(OidcError::Status {
                url: url.to_string(),
                status: res.status().as_u16(),
            });
        }
        if res
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT as u64)
        {
            return Err(OidcError::Document {
                url: url.to_string(),
                message: "document too large".into(),
            });
        }
        let body = res.bytes().await.map_err(fetch_err)?;
        if body.len() > MAX_DOCUMENT {
            return Err(OidcError::Document {
                url: url.to_string(),
                message: "document too large".into(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| OidcError::Document {
            url: url.to_string(),
            message: format!("not JSON: {e}"),
        })
    }

    /// Maps verified claims to a principal. External users have no row in the users table;
    /// their id is derived from issuer and subject so it is stable across logins and replicas.
    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, AuthError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::Invalid)?;
        let user_id = external_user_id(&self.settings.issuer, sub);
        let host = url::Url::parse(&self.settings.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "oidc.invalid".into());
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .and_then(|e| Email::parse(e).ok())
            .or_else(|| Email::parse(&format!("{sub}@{host}")).ok())
            .or_else(|| Email::parse(&format!("{user_id}@{host}")).ok())
            .ok_or(AuthError::Invalid)?;
        let role = match claim(claims, &self.settings.role_claim) {
            None | Some(Value::Null) => Role::user(),
            Some(Value::String(r)) => Role::parse(r).unwrap_or_else(|_| {
                tracing::debug!(role = %r, "OIDC role is not a valid role name; using user");
                Role::user()
            }),
            Some(_) => Role::user(),
        };
        let mut groups: Vec<GroupName> = match claim(claims, &self.settings.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|g| GroupName::parse(g).ok())
                .collect(),
            _ => Vec::new(),
        };
        // Sorted and unique like stored groups, so session binding hashes compare equal.
        groups.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        groups.dedup();
        Ok(Principal {
            user_id,
            email,
            role,
            groups,
            method: AuthMethod::Oidc,
        })
    }
}

/// The user id of `sub` at `issuer`: UUIDv5 over both, separated by a NUL (the issuer is fixed
/// configuration, so no two pairs collide).
pub fn external_user_id(issuer: &str, sub: &str) -> UserId {
    let name = format!("{issuer}\0{sub}");
    UserId::from_uuid(uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        name.as_bytes(),
    ))
}

/// A claim by name, or by a dotted path into nested objects (`realm_access.role`).
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

/// A signing key we can use: RSA for RS256, P-256 for ES256, and consistent with its own
/// `use` and `alg` if it states them.
fn usable_key(jwk: &Jwk) -> Option<Key> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    let stated_ok = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(_) => false,
    };
    if !stated_ok {
        return None;
    }
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verifier() -> OidcVerifier {
        OidcVerifier::new(OidcSettings {
            issuer: "https://idp.example.com/realms/x".into(),
            audience: "reflow".into(),
            jwks_url: None,
            role_claim: "realm_access.role".into(),
            groups_claim: "groups".into(),
        })
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn maps_claims_to_a_principal() {
        let v = verifier();
        let p = v
            .principal(&claims(json!({
                "sub": "abc",
                "email": "Ann@Example.com",
                "realm_access": {"role": "admin"},
                "groups": ["ops", "bad name!", 7, "dev", "ops"],
            })))
            .unwrap();
        assert_eq!(p.email.as_str(), "ann@example.com");
        assert!(p.is_admin());
        let groups: Vec<&str> = p.groups.iter().map(|g| g.as_str()).collect();
        assert_eq!(groups, ["dev", "ops"]);
        assert_eq!(
            p.user_id,
            external_user_id("https://idp.example.com/realms/x", "abc")
        );
        assert_ne!(
            p.user_id,
            external_user_id("https://other.example.com", "abc")
        );

        let p = v.principal(&claims(json!({"sub": "bob"}))).unwrap();
        assert_eq!(p.email.as_str(), "bob@idp.example.com");
        assert_eq!(p.role, Role::user());
        assert!(p.groups.is_empty());
        assert!(v.principal(&claims(json!({"email": "a@b.co"}))).is_err());
    }
}
