//! Operations shared by the CLI and the admin API; all input validation lives here.

mod audit;
mod credential_audit;
mod credentials;
mod pod_targets;
mod policies;
mod policy_sync;
mod targets;
mod tokens;
mod users;

use crate::domain::NameError;
use crate::store::StoreError;

pub use audit::{AuditService, LogQuery, MAX_LOG_PAGE, parse_since};
pub use credential_audit::{CredentialFinding, FindingKind, audit as audit_credentials, findings};
pub use credentials::{
    CredentialEntry, CredentialService, EnvScopeView, MAX_VALUE_BYTES, ResolvedEntry, ScopeRef,
    Writer, check_env_write, validate_env_key,
};
pub use policies::{
    Evaluation, MAX_PRIORITY, MIN_PRIORITY, PolicyInput, PolicyService, PolicySubjectView,
    PolicyView, SubjectInput,
};
pub use policy_sync::{PolicyChange, PolicyDoc, PolicyFile};
pub(crate) use targets::RESERVED_HEADERS;
pub use targets::{
    MAX_TARGET_TIMEOUT, MIN_TARGET_TIMEOUT, TargetInput, TargetService, TargetView,
    validate as validate_target,
};
pub use tokens::{MAX_TOKEN_LIFETIME, TokenService, TokenView};
pub use users::{MIN_PASSWORD_LEN, UserService, UserView, parse_groups};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("invalid email or password")]
    BadCredentials,
    #[error("registration is disabled on this gateway; ask an admin to create your account")]
    RegistrationClosed,
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(StoreError),
}

impl ServiceError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<NameError> for ServiceError {
    fn from(e: NameError) -> Self {
        Self::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Store(other),
        }
    }
}
