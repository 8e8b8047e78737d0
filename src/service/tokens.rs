//! API tokens: creation (the secret is shown once by the caller), listing and revocation.

use std::time::Duration;

use chrono::Utc;

use super::ServiceError;
use crate::domain::{ApiTokenId, TokenName, UserId};
use crate::store::{ApiTokenRecord, Store};

/// Ten years: long enough for "never" in practice, short enough for chrono arithmetic.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct TokenService {
    store: Store,
}

impl TokenService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Records a new token for `user`; the caller signs it with the record's jti.
    pub async fn create(
        &self,
        user: UserId,
        name: &str,
        expires_in: Option<Duration>,
    ) -> Result<ApiTokenRecord, ServiceError> {
        let name = TokenName::parse(name)?;
        let now = Utc::now();
        let expires_at = match expires_in {
            None => None,
            Some(d) if d.is_zero() || d > MAX_TOKEN_LIFETIME => {
                return Err(ServiceError::invalid(
                    "expires_in",
                    "must be between 1 second and 10 years",
                ));
            }
            Some(d) => Some(
                now + chrono::Duration::from_std(d)
                    .map_err(|e| ServiceError::invalid("expires_in", e.to_string()))?,
            ),
        };
        let record = ApiTokenRecord {
            id: ApiTokenId::new(),
            user_id: user,
            name,
            jti: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.store.insert_api_token(&record).await?;
        Ok(record)
    }

    pub async fn list(&self, user: Option<UserId>) -> Result<Vec<ApiTokenRecord>, ServiceError> {
        Ok(self.store.list_api_tokens(user).await?)
    }

    /// Revokes a token. `owner` restricts it to that user's tokens (a user revoking their own);
    /// another user's token then answers "not found", not "forbidden", to hide that it exists.
    pub async fn revoke(
        &self,
        id: ApiTokenId,
        owner: Option<UserId>,
    ) -> Result<ApiTokenRecord, ServiceError> {
        let not_found = || ServiceError::NotFound(format!("token {id}"));
        let token = self.store.api_token(id).await?.ok_or_else(not_found)?;
        if owner.is_some_and(|o| o != token.user_id) {
            return Err(not_found());
        }
        if token.revoked_at.is_some() {
            return Err(ServiceError::Conflict(format!(
                "token {id} is already revoked"
            )));
        }
        self.store.revoke_api_token(id).await?;
        self.store.api_token(id).await?.ok_or_else(not_found)
    }
}

/// The public shape of an API token: never the token or its jti.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenView {
    pub id: ApiTokenId,
    pub user_id: UserId,
    pub name: TokenName,
    pub created_at: chrono::DateTime<Utc>,
    pub expires_at: Option<chrono::DateTime<Utc>>,
    pub revoked_at: Option<chrono::DateTime<Utc>>,
}

impl From<&ApiTokenRecord> for TokenView {
    fn from(t: &ApiTokenRecord) -> Self {
        Self {
            id: t.id,
            user_id: t.user_id,
            name: t.name.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}
