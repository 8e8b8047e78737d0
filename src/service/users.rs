//! User accounts: registration, creation by admins, password checks, role and group changes.

use chrono::Utc;

use super::ServiceError;
use crate::crypto::{hash_password, verify_password};
use crate::domain::{Email, GroupName, Role, UserId};
use crate::store::{Store, UserPatch, UserRecord, UserRemoval};

pub const MIN_PASSWORD_LEN: usize = 8;
/// argon2 cost grows with input; a cap keeps a login request from becoming a CPU sink.
const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Clone, Debug)]
pub struct UserService {
    store: Store,
}

fn check_password(password: &str) -> Result<(), ServiceError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(ServiceError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters (got {n})"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(ServiceError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}

/// argon2 takes tens of milliseconds of CPU: keep it off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(|| {
        let out = f();
        // On the thread that freed argon2's 19 MiB buffer: mimalloc returns it to the OS now
        // rather than whenever this blocking thread next collects (RSS stayed +20 MB for 10 s).
        crate::heap::release_free_memory();
        out
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("password task failed: {e}")))
}

pub fn parse_groups<S: AsRef<str>>(groups: &[S]) -> Result<Vec<GroupName>, ServiceError> {
    let mut out = groups
        .iter()
        .map(|g| GroupName::parse(g.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    // Sorted and unique: credential resolution tries groups in name order.
    out.sort();
    out.dedup();
    Ok(out)
}

impl UserService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Self-service registration: the first account becomes `admin`, later ones `user`.
    pub async fn register(&self, email: &str, password: &str) -> Result<UserRecord, ServiceError> {
        self.insert(email, password, Role::user(), Vec::new(), true)
            .await
    }

    /// An account created by an admin (CLI or API) with an explicit role and groups.
    pub async fn create(
        &self,
        email: &str,
        password: &str,
        role: &str,
        groups: &[String],
    ) -> Result<UserRecord, ServiceError> {
        let role = Role::parse(role)?;
        let groups = parse_groups(groups)?;
        self.insert(email, password, role, groups, false).await
    }

    async fn insert(
        &self,
        email: &str,
        password: &str,
        role: Role,
        groups: Vec<GroupName>,
        first_is_admin: bool,
    ) -> Result<UserRecord, ServiceError> {
        let email = Email::parse_new(email)?;
        check_password(password)?;
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "a user with email {email} already exists"
            )));
        }
        let password = password.to_string();
        let password_hash = blocking(move || hash_password(&password))
            .await?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let now = Utc::now();
        let mut user = UserRecord {
            id: UserId::new(),
            email,
            password_hash,
            role,
            groups,
            created_at: now,
            updated_at: now,
            session_generation: 0,
        };
        user.role = self.store.insert_user(&user, first_is_admin).await?;
        Ok(user)
    }

    /// Checks an email and password. Unknown accounts cost the same time as wrong passwords.
    pub async fn check_login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<UserRecord, ServiceError> {
        let user = match Email::parse(email) {
            Ok(email) => self.store.user_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let password = password.to_string();
        let ok = blocking(move || verify_password(&password, hash.as_deref())).await?;
        match user {
            Some(user) if ok => Ok(user),
            _ => Err(ServiceError::BadCredentials),
        }
    }

    pub async fn get(&self, id: UserId) -> Result<UserRecord, ServiceError> {
        self.store
            .user(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))
    }

    pub async fn by_email(&self, email: &str) -> Result<UserRecord, ServiceError> {
        let email = Email::parse(email)?;
        self.store
            .user_by_email(&email)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {email}")))
    }

    /// Finds a user by id or by email, whichever `key` is.
    pub async fn find(&self, key: &str) -> Result<UserRecord, ServiceError> {
        match key.parse::<UserId>() {
            Ok(id) => self.get(id).await,
            Err(_) => self.by_email(key).await,
        }
    }

    pub async fn list(&self) -> Result<Vec<UserRecord>, ServiceError> {
        Ok(self.store.list_users().await?)
    }

    pub async fn update(
        &self,
        id: UserId,
        role: Option<&str>,
        groups: Option<&[String]>,
    ) -> Result<UserRecord, ServiceError> {
        let role = role.map(Role::parse).transpose()?;
        if role.as_ref().is_some_and(|r| !r.is_admin()) {
            self.ensure_not_last_admin(id).await?;
        }
        // Sessions stay: role and groups are read from the live snapshot on every request, never
        // from the token, so a change applies at once to tokens already issued.
        let patch = UserPatch {
            role,
            groups: groups.map(parse_groups).transpose()?,
            password_hash: None,
            end_sessions: false,
        };
        self.store
            .update_user(id, &patch)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))
    }

    /// Keeps the gateway administrable: the last admin can be neither demoted nor removed.
    async fn ensure_not_last_admin(&self, id: UserId) -> Result<(), ServiceError> {
        let users = self.store.list_users().await?;
        let mut admins = users.iter().filter(|u| u.role.is_admin());
        if let (Some(only), None) = (admins.next(), admins.next())
            && only.id == id
        {
            return Err(ServiceError::Conflict(format!(
                "{} is the last admin; make another user admin first",
                only.email
            )));
        }
        Ok(())
    }

    /// Ends every login session of the user (logout everywhere); API tokens stay.
    pub async fn end_sessions(&self, id: UserId) -> Result<(), ServiceError> {
        let patch = UserPatch {
            end_sessions: true,
            ..UserPatch::default()
        };
        self.patch_existing(id, &patch).await
    }

    async fn patch_existing(&self, id: UserId, patch: &UserPatch) -> Result<(), ServiceError> {
        self.store
            .update_user(id, patch)
            .await?
            .map(|_| ())
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))
    }

    pub async fn set_password(&self, id: UserId, password: &str) -> Result<(), ServiceError> {
        check_password(password)?;
        let password = password.to_string();
        let hash = blocking(move || hash_password(&password))
            .await?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        // Whoever knew the old password may hold a login token: those end now.
        let patch = UserPatch {
            password_hash: Some(hash),
            end_sessions: true,
            ..UserPatch::default()
        };
        self.patch_existing(id, &patch).await
    }

    /// Deletes the user with their user-scope credentials, tokens and sessions (one
    /// transaction); returns what went with them.
    pub async fn remove(&self, id: UserId) -> Result<UserRemoval, ServiceError> {
        self.ensure_not_last_admin(id).await?;
        self.store
            .delete_user(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("user {id}")))
    }
}

/// The public shape of a user (CONTRACT.md): never the password hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UserView {
    pub id: UserId,
    pub email: Email,
    pub role: Role,
    pub groups: Vec<GroupName>,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            role: u.role.clone(),
            groups: u.groups.clone(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}
