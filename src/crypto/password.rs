//! argon2id password hashing with a constant-work failure path.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

/// Verifies `password` against `hash`. With no hash (unknown account) it verifies against a
/// fixed dummy hash, so "no such user" costs the same as "wrong password".
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hash_password("reflow-dummy-password").expect("hashing a constant cannot fail")
    });
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), hash.unwrap_or(dummy))
        .is_ok();
    ok && hash.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_reject() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("wrong horse", Some(&h)));
        assert!(!verify_password("reflow-dummy-password", None));
        assert!(!verify_password("x", Some("not a hash")));
    }
}
