//! The API tokens aggregate: named, optionally expiring, revocable bearer tokens of a user.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{BUMP_REVISION, Store, StoreError, on_pool};
use crate::domain::{ApiTokenId, TokenName, UserId};

#[derive(Clone, Debug, PartialEq)]
pub struct ApiTokenRecord {
    pub id: ApiTokenId,
    pub user_id: UserId,
    pub name: TokenName,
    /// The JWT id of the token; the token itself is never stored.
    pub jti: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What the authenticator needs to accept a token without reading the database per request.
#[derive(Clone, Debug)]
pub struct AuthTokenRow {
    pub jti: String,
    pub user_id: UserId,
    pub expires_at: Option<DateTime<Utc>>,
}

const TOKEN_COLUMNS: &str = "id, user_id, name, jti, created_at, expires_at, revoked_at";

macro_rules! token_from_row {
    ($row:expr) => {{
        let row = $row;
        let name: String = row.try_get("name")?;
        ApiTokenRecord {
            id: ApiTokenId::from_uuid(row.try_get("id")?),
            user_id: UserId::from_uuid(row.try_get("user_id")?),
            name: TokenName::parse(&name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            jti: row.try_get("jti")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
        }
    }};
}

impl Store {
    pub async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO api_tokens (id, user_id, name, jti, created_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(token.id.as_uuid())
            .bind(token.user_id.as_uuid())
            .bind(token.name.as_str())
            .bind(&token.jti)
            .bind(token.created_at)
            .bind(token.expires_at)
            .bind(token.revoked_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::conflict_or(e, "a token with this id"))?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn api_token(&self, id: ApiTokenId) -> Result<Option<ApiTokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        ));
        Ok(on_pool!(self, |pool| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(token_from_row!(&row)),
                None => None,
            }
        }))
    }

    /// A user's tokens (all users' with None), newest first, revoked ones included.
    pub async fn list_api_tokens(
        &self,
        user: Option<UserId>,
    ) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at DESC, name"
        ));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(user.map(|u| u.as_uuid()))
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(token_from_row!(row));
            }
            out
        }))
    }

    /// Marks the token revoked (kept for the record). False when absent or already revoked.
    pub async fn revoke_api_token(&self, id: ApiTokenId) -> Result<bool, StoreError> {
        let now = Utc::now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        }))
    }

    /// Tokens that are neither revoked nor expired: the authenticator's allow-list.
    pub async fn active_api_tokens(&self) -> Result<Vec<AuthTokenRow>, StoreError> {
        let now = Utc::now();
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT jti, user_id, expires_at FROM api_tokens \
                 WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(now)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(AuthTokenRow {
                    jti: row.try_get("jti")?,
                    user_id: UserId::from_uuid(row.try_get("user_id")?),
                    expires_at: row.try_get("expires_at")?,
                });
            }
            out
        }))
    }
}
