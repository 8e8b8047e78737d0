//! Who is calling: reflow's own JWTs (login sessions and revocable API tokens) checked against an
//! in-memory snapshot of users and tokens, tokens of an external OIDC issuer, and rate limits
//! for the login path; the web UI's session cookie.

mod authenticator;
pub mod cookie;
mod jwt;
mod oidc;
mod rate_limit;

pub use authenticator::{AuthMethod, Authenticator, Principal, claims_for};
pub use jwt::{Claims, JwtKeys, TokenKind};
pub use oidc::{OidcError, OidcVerifier, external_user_id};
pub use rate_limit::{LoginLimiter, RateLimited};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token: send 'Authorization: Bearer <token>'")]
    Missing,
    #[error("malformed Authorization header: expected 'Bearer <token>'")]
    Malformed,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token revoked or unknown")]
    Revoked,
    #[error("the token's user no longer exists")]
    UnknownUser,
}

/// Extracts the token from an `Authorization` header value.
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// Signs the API token described by `record` for `user`. The string is shown once, never stored.
pub fn sign_api_token(
    keys: &JwtKeys,
    user: &crate::store::UserRecord,
    record: &crate::store::ApiTokenRecord,
) -> String {
    keys.sign(&claims_for(
        user,
        record.jti.clone(),
        record.created_at,
        record.expires_at,
        TokenKind::Api,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_headers() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::Missing));
        assert_eq!(bearer_token(Some("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(bearer_token(Some("Bearer")), Err(AuthError::Malformed));
    }
}
