//! Opaque, tamper-evident pagination cursors minted by the gateway (sealed with AES-GCM under a
//! key derived from the encryption key, so every replica accepts every other replica's cursors).

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::crypto::{KeyId, SecretBox};
use crate::mcp::RpcError;

pub struct Cursors {
    sealer: SecretBox,
    key_id: KeyId,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl Cursors {
    pub fn new(encryption_key: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"reflow pagination cursor v1");
        h.update(encryption_key);
        let key: [u8; 32] = h.finalize().into();
        let sealer = SecretBox::new(&key);
        let key_id = sealer.current_key_id().clone();
        Self { sealer, key_id }
    }

    /// A cursor for the page of `list` (e.g. "tools/list") starting at `offset`.
    pub fn encode(&self, list: &str, offset: usize) -> String {
        let (sealed, _) = self
            .sealer
            .seal(&(offset as u64).to_be_bytes(), list.as_bytes());
        B64.encode(sealed)
    }

    pub fn decode(&self, list: &str, cursor: &str) -> Result<usize, RpcError> {
        let invalid = || {
            RpcError::invalid_params(format!(
                "invalid cursor for {list}: list again from the start"
            ))
        };
        let sealed = B64.decode(cursor).map_err(|_| invalid())?;
        let plain = self
            .sealer
            .open(&sealed, &self.key_id, list.as_bytes())
            .map_err(|_| invalid())?;
        let bytes: [u8; 8] = plain.try_into().map_err(|_| invalid())?;
        usize::try_from(u64::from_be_bytes(bytes)).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let c = Cursors::new(&[3u8; 32]);
        let cur = c.encode("tools/list", 500);
        assert_eq!(c.decode("tools/list", &cur).unwrap(), 500);
        assert!(c.decode("prompts/list", &cur).is_err(), "bound to its list");
        let mut bad = cur.clone().into_bytes();
        bad[3] = if bad[3] == b'A' { b'B' } else { b'A' };
        assert!(
            c.decode("tools/list", std::str::from_utf8(&bad).unwrap())
                .is_err()
        );
        assert!(c.decode("tools/list", "garbage!").is_err());
        let other = Cursors::new(&[4u8; 32]);
        assert!(other.decode("tools/list", &cur).is_err());
        assert_eq!(
            Cursors::new(&[3u8; 32]).decode("tools/list", &cur).unwrap(),
            500,
            "another replica"
        );
    }
}
