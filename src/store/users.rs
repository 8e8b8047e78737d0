//! The users aggregate: accounts, their role and groups, password hashes.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::types::Json;

use super::{BUMP_REVISION, Db, Store, StoreError, Table, on_pool};
use crate::domain::{Email, GroupName, Role, UserId};

/// What went with a deleted user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UserRemoval {
    /// User-scope upstream credentials.
    pub credentials: u64,
    /// API tokens.
    pub tokens: u64,
    /// Sessions that were still open, now ended.
    pub sessions: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub id: UserId,
    pub email: Email,
    pub password_hash: String,
    pub role: Role,
    pub groups: Vec<GroupName>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Carried by the user's login JWTs; one that differs is no longer accepted.
    pub session_generation: i64,
}

#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub groups: Option<Vec<GroupName>>,
    pub password_hash: Option<String>,
    /// End every login session of the user (a new session generation).
    pub end_sessions: bool,
}

const USER_COLUMNS: &str = "id, email, password_hash, role, groups, created_at, updated_at, \
                            CAST(session_generation AS BIGINT) AS session_generation";

macro_rules! user_from_row {
    ($row:expr) => {{
        let row = $row;
        let email: String = row.try_get("email")?;
        let role: String = row.try_get("role")?;
        let Json(groups): Json<Vec<String>> = row.try_get("groups")?;
        UserRecord {
            id: UserId::from_uuid(row.try_get("id")?),
            email: Email::parse(&email).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            password_hash: row.try_get("password_hash")?,
            role: Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            groups: groups
                .iter()
                .map(|g| GroupName::parse(g))
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            session_generation: row.try_get("session_generation")?,
        }
    }};
}

fn group_strings(groups: &[GroupName]) -> Json<Vec<&str>> {
    Json(groups.iter().map(GroupName::as_str).collect())
}

impl Store {
    /// Inserts a user. With `first_is_admin`, the role becomes `admin` when the table is empty
    /// (decided inside the insert's transaction, so two racing registrations cannot both win).
    /// Returns the role actually stored.
    pub async fn insert_user(
        &self,
        user: &UserRecord,
        first_is_admin: bool,
    ) -> Result<Role, StoreError> {
        let conflict = |e| StoreError::conflict_or(e, format!("a user with email {}", user.email));
        let role: String = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            if matches!(self.db, Db::Postgres(_)) {
                // READ COMMITTED lets two empty-table checks pass at once; serialize them.
                sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
            }
            // One statement, so SQLite takes the write lock up front: a read-then-write
            // transaction would fail with SQLITE_BUSY under concurrent registrations.
            let role: String = sqlx::query_scalar(
                "INSERT INTO users (id, email, password_hash, role, groups, created_at, updated_at) \
                 SELECT $1, $2, $3, CASE WHEN $8 AND NOT EXISTS (SELECT 1 FROM users) THEN 'admin' ELSE $4 END, $5, $6, $7 \
                 RETURNING role",
            )
            .bind(user.id.as_uuid())
            .bind(user.email.as_str())
            .bind(&user.password_hash)
            .bind(user.role.as_str())
            .bind(group_strings(&user.groups))
            .bind(user.created_at)
            .bind(user.updated_at)
            .bind(first_is_admin)
            .fetch_one(&mut *tx)
            .await
            .map_err(conflict)?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
            role
        });
        Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub async fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"));
        Ok(on_pool!(self, |pool| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(user_from_row!(&row)),
                None => None,
            }
        }))
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"));
        Ok(on_pool!(self, |pool| {
            match sqlx::query(sql)
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(user_from_row!(&row)),
                None => None,
            }
        }))
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, email"
        ));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(user_from_row!(row));
            }
            out
        }))
    }

    /// Applies the patch; None when the user does not exist.
    pub async fn update_user(
        &self,
        id: UserId,
        patch: &UserPatch,
    ) -> Result<Option<UserRecord>, StoreError> {
        let now = Utc::now();
        let updated = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE users SET role = COALESCE($2, role), groups = COALESCE($3, groups), \
                 password_hash = COALESCE($4, password_hash), updated_at = $5, \
                 session_generation = session_generation + CASE WHEN $6 THEN 1 ELSE 0 END \
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(patch.role.as_ref().map(Role::as_str))
            .bind(patch.groups.as_deref().map(group_strings))
            .bind(patch.password_hash.as_deref())
            .bind(now)
            .bind(patch.end_sessions)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            n > 0
        });
        if updated {
            self.user(id).await
        } else {
            Ok(None)
        }
    }

    /// Deletes the user and (by cascade) their API tokens. False when absent.
    /// Deletes the user and, in the same transaction, what belongs only to them: their
    /// user-scope credentials (keyed by id, not by a foreign key), their API tokens and task
    /// ownerships (cascaded), and their sessions (marked ended, so every replica ends them
    /// within seconds; ended rows are pruned a day later). None when there is no such user.
    pub async fn delete_user(&self, id: UserId) -> Result<Option<UserRemoval>, StoreError> {
        let now = Utc::now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let tokens: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE user_id = $1")
                    .bind(id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await?;
            let credentials = sqlx::query(
                "DELETE FROM target_credentials WHERE scope = 'user' AND scope_value = $1",
            )
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let sessions = sqlx::query(
                "UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL",
            )
            .bind(id.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let n = sqlx::query(Table::Users.delete_sql())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                None
            } else {
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
                tx.commit().await?;
                Some(UserRemoval {
                    credentials,
                    tokens: u64::try_from(tokens).unwrap_or(0),
                    sessions,
                })
            }
        }))
    }
}
