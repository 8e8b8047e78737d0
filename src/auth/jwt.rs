//! HS256 JWTs issued by reflow: claims, signing, and strict verification (one algorithm, issuer set).

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use super::AuthError;

pub const ISSUER: &str = "reflow";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Issued by login and registration; expires after `auth.token_ttl`.
    Session,
    /// Issued by `POST /api/auth/tokens` or `reflow token create`; valid while its row is active.
    Api,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub email: String,
    pub role: String,
    pub groups: Vec<String>,
    pub iat: i64,
    /// Absent for API tokens that never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub jti: String,
    pub typ: TokenKind,
    /// Login sessions: the user's session generation when issued (see `users.session_generation`).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[serde(rename = "gen")]
    pub generation: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([redacted])")
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        // Only HS256: a token whose header names another algorithm (or `none`) is rejected.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["iss", "sub"]);
        // Expiry is optional (non-expiring API tokens) and checked by `verify` itself.
        validation.validate_exp = false;
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail")
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?;
        let claims = data.claims;
        if claims.exp.is_some_and(|exp| exp <= now.timestamp()) {
            return Err(AuthError::Expired);
        }
        if claims.typ == TokenKind::Session && claims.exp.is_none() {
            return Err(AuthError::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<i64>, typ: TokenKind) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "u".into(),
            email: "a@b.co".into(),
            role: "user".into(),
            groups: vec![],
            iat: 0,
            exp,
            jti: "j".into(),
            typ,
            generation: 0,
        }
    }

    #[test]
    fn verifies_signature_expiry_and_algorithm() {
        let keys = JwtKeys::new(&[1u8; 32]);
        let now = Utc::now();
        let future = now.timestamp() + 60;
        let good = keys.sign(&claims(Some(future), TokenKind::Session));
        assert_eq!(keys.verify(&good, now).unwrap().sub, "u");
        let expired = keys.sign(&claims(Some(now.timestamp() - 1), TokenKind::Session));
        assert_eq!(keys.verify(&expired, now), Err(AuthError::Expired));
        let forever = keys.sign(&claims(None, TokenKind::Api));
        assert!(keys.verify(&forever, now).is_ok());
        let session_forever = keys.sign(&claims(None, TokenKind::Session));
        assert_eq!(keys.verify(&session_forever, now), Err(AuthError::Invalid));

        let other = JwtKeys::new(&[2u8; 32]);
        assert_eq!(other.verify(&good, now), Err(AuthError::Invalid));
        assert_eq!(keys.verify("garbage", now), Err(AuthError::Invalid));

        // alg: none with the same claims
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body =
            b64.encode(serde_json::to_vec(&claims(Some(future), TokenKind::Session)).unwrap());
        let none = format!("{}.{}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#), body);
        assert_eq!(keys.verify(&none, now), Err(AuthError::Invalid));
    }
}
