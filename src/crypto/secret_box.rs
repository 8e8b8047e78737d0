//! AES-256-GCM sealing of secrets at rest, with a key id stored beside every value for rotation.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

/// Identifies the key a value was sealed with: the first 16 hex digits of SHA-256 of the key,
/// so no registry of key ids is needed and a wrong key is detected before decryption.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub(super) fn of(key: &[u8; 32]) -> Self {
        Self(hex::encode(&Sha256::digest(key)[..8]))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("value was sealed with key {0}, which is not configured")]
    UnknownKey(KeyId),
    #[error("sealed value is corrupt or was moved to another record")]
    Corrupt,
}

/// Seals with the current key; opens with the current key or any retired one still configured.
pub struct SecretBox {
    current: KeyId,
    keys: HashMap<KeyId, Aes256Gcm>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("current", &self.current)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        let id = KeyId::of(key);
        let mut keys = HashMap::new();
        keys.insert(id.clone(), Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)));
        Self { current: id, keys }
    }

    /// Adds a retired key that can still open values (during and after `secret rotate-key`).
    pub fn with_retired(mut self, key: &[u8; 32]) -> Self {
        self.keys
            .entry(KeyId::of(key))
            .or_insert_with(|| Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)));
        self
    }

    /// Whether `key` is one of this box's keys.
    pub fn holds(&self, key: &[u8; 32]) -> bool {
        self.keys.contains_key(&KeyId::of(key))
    }

    /// A box sealing with `key` that still opens everything this one opens.
    pub fn rotated(&self, key: &[u8; 32]) -> Self {
        let mut keys = self.keys.clone();
        let id = KeyId::of(key);
        keys.entry(id.clone())
            .or_insert_with(|| Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)));
        Self { current: id, keys }
    }

    pub fn current_key_id(&self) -> &KeyId {
        &self.current
    }

    /// `context` is authenticated but not stored: a value only opens under the record it was
    /// sealed for, so a database writer cannot swap one user's token into another's row.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> (Vec<u8>, KeyId) {
        let cipher = &self.keys[&self.current];
        let nonce = Nonce::generate();
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        (out, self.current.clone())
    }

    pub fn open(
        &self,
        sealed: &[u8],
        key_id: &KeyId,
        context: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let cipher = self
            .keys
            .get(key_id)
            .ok_or_else(|| SealError::UnknownKey(key_id.clone()))?;
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| SealError::Corrupt)?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let sb = SecretBox::new(&[7u8; 32]);
        let (sealed, kid) = sb.seal(b"ghp_secret", b"target-1/user/alice");
        assert!(!sealed.windows(10).any(|w| w == b"ghp_secret"));
        assert_eq!(
            sb.open(&sealed, &kid, b"target-1/user/alice").unwrap(),
            b"ghp_secret"
        );
        assert_eq!(
            sb.open(&sealed, &kid, b"target-1/user/bob"),
            Err(SealError::Corrupt)
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            sb.open(&flipped, &kid, b"target-1/user/alice"),
            Err(SealError::Corrupt)
        );
        assert_eq!(
            sb.open(&sealed[..5], &kid, b"target-1/user/alice"),
            Err(SealError::Corrupt)
        );
    }

    #[test]
    fn nonces_differ_and_rotation_keeps_old_values_readable() {
        let old = SecretBox::new(&[1u8; 32]);
        let (a, kid_a) = old.seal(b"v", b"");
        let (b, _) = old.seal(b"v", b"");
        assert_ne!(a, b, "a fresh nonce per value");

        let new = SecretBox::new(&[2u8; 32]);
        assert!(matches!(
            new.open(&a, &kid_a, b""),
            Err(SealError::UnknownKey(_))
        ));
        let rotated = SecretBox::new(&[2u8; 32]).with_retired(&[1u8; 32]);
        assert_eq!(rotated.open(&a, &kid_a, b"").unwrap(), b"v");
        assert_ne!(rotated.current_key_id(), &kid_a);
    }
}
