//! Turns a bearer token into a `Principal` without touching the database: tokens are verified
//! against an immutable snapshot of users and active API tokens, swapped when the revision moves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use super::AuthError;
use super::jwt::{Claims, ISSUER, JwtKeys, TokenKind};
use super::oidc::OidcVerifier;
use crate::domain::{Email, GroupName, Role, UserId};
use crate::store::{AuthTokenRow, Store, StoreError, UserRecord};

#[derive(serde::Deserialize)]
struct IssuerOnly {
    iss: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Session,
    ApiToken,
    /// A token of the configured external OIDC issuer; the user has no row in the users table.
    Oidc,
}

/// The caller of a request. Role and groups come from the current user record, not from the
/// token, so an admin's change applies to tokens already handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub email: Email,
    pub role: Role,
    pub groups: Vec<GroupName>,
    pub method: AuthMethod,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }

    /// A new admin signed in with a login session, for unit tests.
    #[cfg(test)]
    pub fn test_admin() -> Self {
        Self {
            user_id: UserId::new(),
            email: Email::parse("a@b.co").unwrap(),
            role: Role::admin(),
            groups: vec![],
            method: AuthMethod::Session,
        }
    }
}

#[derive(Debug)]
struct UserView {
    email: Email,
    role: Role,
    groups: Vec<GroupName>,
    session_generation: i64,
}

#[derive(Debug, Default)]
struct Snapshot {
    revision: i64,
    users: HashMap<UserId, UserView>,
    api_tokens: HashMap<String, AuthTokenRow>,
}

/// Tokens of reflow's own whose signature checked out, kept so the next request with the same
/// token skips the HMAC and the JSON decoding. Bounded; expiry and revocation are still checked
/// on every request (`authenticate_claims`). Only the signing key makes an entry valid, and it
/// does not change while the process runs.
const VERIFIED_TOKENS: usize = 4096;

pub struct Authenticator {
    keys: JwtKeys,
    verified: quick_cache::sync::Cache<String, Arc<Claims>>,
    store: Store,
    token_ttl: Duration,
    snapshot: ArcSwap<Snapshot>,
    reload: Mutex<()>,
    oidc: Option<OidcVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("revision", &self.snapshot.load().revision)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub async fn new(keys: JwtKeys, store: Store, token_ttl: Duration) -> Result<Self, StoreError> {
        let this = Self {
            keys,
            verified: quick_cache::sync::Cache::new(VERIFIED_TOKENS),
            store,
            token_ttl,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            reload: Mutex::new(()),
            oidc: None,
        };
        this.reload().await?;
        Ok(this)
    }

    /// Also accepts tokens of an external OpenID Connect issuer.
    pub fn with_oidc(mut self, verifier: OidcVerifier) -> Self {
        self.oidc = Some(verifier);
        self
    }

    pub fn oidc(&self) -> Option<&OidcVerifier> {
        self.oidc.as_ref()
    }

    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    pub fn revision(&self) -> i64 {
        self.snapshot.load().revision
    }

    /// Rebuilds the snapshot from the database. The revision is read first, so a write that
    /// lands during the load is picked up by the next poll rather than lost.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _serialized = self.reload.lock().await;
        let revision = self.store.revision().await?;
        let users = self.store.list_users().await?;
        let tokens = self.store.active_api_tokens().await?;
        self.snapshot.store(Arc::new(Snapshot {
            revision,
            users: users
                .into_iter()
                .map(|u: UserRecord| {
                    (
                        u.id,
                        UserView {
                            email: u.email,
                            role: u.role,
                            groups: u.groups,
                            session_generation: u.session_generation,
                        },
                    )
                })
                .collect(),
            api_tokens: tokens.into_iter().map(|t| (t.jti.clone(), t)).collect(),
        }));
        Ok(())
    }

    /// Reloads when the database revision differs from the snapshot's; true if it did.
    pub async fn reload_if_changed(&self) -> Result<bool, StoreError> {
        if self.store.revision().await? == self.revision() {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// A miss (unknown user or jti) may mean the CLI or another replica just wrote it. Checking
    /// the revision first costs one indexed read, and a reload happens only if something changed.
    async fn reload_after_miss(&self) {
        if let Err(e) = self.reload_if_changed().await {
            tracing::warn!(error = %e, "reloading the auth snapshot failed");
        }
    }

    /// Routes by the (not yet verified) `iss` claim: reflow's own tokens, or the configured
    /// OIDC issuer's. Each path then verifies strictly, issuer included; any other → invalid.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(claims) = self.verified.get(token) {
            return self.authenticate_claims(&claims, Utc::now()).await;
        }
        let issuer = jsonwebtoken::dangerous::insecure_decode_claims::<IssuerOnly>(token)
            .map_err(|_| AuthError::Invalid)?
            .iss;
        match (issuer.as_deref(), &self.oidc) {
            (Some(ISSUER), _) => self.authenticate_own(token).await,
            (Some(iss), Some(oidc)) if iss == oidc.issuer() => oidc.authenticate(token).await,
            _ => Err(AuthError::Invalid),
        }
    }

    async fn authenticate_own(&self, token: &str) -> Result<Principal, AuthError> {
        let now = Utc::now();
        let claims = Arc::new(self.keys.verify(token, now)?);
        self.verified.insert(token.to_owned(), claims.clone());
        self.authenticate_claims(&claims, now).await
    }

    /// The principal of verified claims: not expired, and its user and token still current.
    async fn authenticate_claims(
        &self,
        claims: &Claims,
        now: DateTime<Utc>,
    ) -> Result<Principal, AuthError> {
        if claims.exp.is_some_and(|exp| exp <= now.timestamp()) {
            return Err(AuthError::Expired);
        }
        match self.resolve(claims) {
            Err(AuthError::UnknownUser | AuthError::Revoked) => {
                self.reload_after_miss().await;
                self.resolve(claims)
            }
            other => other,
        }
    }

    fn resolve(&self, claims: &Claims) -> Result<Principal, AuthError> {
        let user_id: UserId = claims.sub.parse().map_err(|_| AuthError::Invalid)?;
        let snap = self.snapshot.load();
        let method = match claims.typ {
            TokenKind::Session => AuthMethod::Session,
            TokenKind::Api => {
                let row = snap.api_tokens.get(&claims.jti).ok_or(AuthError::Revoked)?;
                if row.user_id != user_id {
                    return Err(AuthError::Invalid);
                }
                if row.expires_at.is_some_and(|e| e <= Utc::now()) {
                    return Err(AuthError::Expired);
                }
                AuthMethod::ApiToken
            }
        };
        let user = snap.users.get(&user_id).ok_or(AuthError::UnknownUser)?;
        // A password or role change, or a logout, ended the login sessions issued before it.
        if method == AuthMethod::Session && claims.generation != user.session_generation {
            return Err(AuthError::Revoked);
        }
        Ok(Principal {
            user_id,
            email: user.email.clone(),
            role: user.role.clone(),
            groups: user.groups.clone(),
            method,
        })
    }

    /// A login session token for `user`, valid for `auth.token_ttl`.
    pub fn issue_session(&self, user: &UserRecord) -> String {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.token_ttl).unwrap_or(chrono::Duration::days(1));
        self.keys.sign(&claims_for(
            user,
            uuid::Uuid::new_v4().to_string(),
            now,
            Some(now + ttl),
            TokenKind::Session,
        ))
    }
}

/// The claims of a token for `user`; role and groups are informational (see `Principal`).
pub fn claims_for(
    user: &UserRecord,
    jti: String,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    typ: TokenKind,
) -> Claims {
    Claims {
        iss: ISSUER.to_string(),
        sub: user.id.to_string(),
        email: user.email.to_string(),
        role: user.role.to_string(),
        groups: user.groups.iter().map(ToString::to_string).collect(),
        iat: now.timestamp(),
        exp: expires_at.map(|e| e.timestamp()),
        generation: if typ == TokenKind::Session {
            user.session_generation
        } else {
            0
        },
        jti,
        typ,
    }
}
