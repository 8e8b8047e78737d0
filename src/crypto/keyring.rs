//! The keys a running server seals and opens credentials with, replaceable while it runs: after
//! `reflow secret rotate-key`, a server that meets a value sealed with a key it does not hold
//! reads its key source again; the key found there becomes current and every key held so far
//! still opens what it sealed.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{KeyId, SecretBox};

/// Reads the configured key again (the key file, or the data directory's generated one).
pub type KeySource = Box<dyn Fn() -> Result<[u8; 32], String> + Send + Sync>;

pub struct Keyring {
    current: ArcSwap<SecretBox>,
    source: KeySource,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.load().current_key_id())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(key: &[u8; 32], source: KeySource) -> Self {
        Self {
            current: ArcSwap::from_pointee(SecretBox::new(key)),
            source,
        }
    }

    /// A keyring whose key never changes (a CLI command that runs once).
    pub fn fixed(key: &[u8; 32]) -> Self {
        let key = *key;
        Self::new(&key, Box::new(move || Ok(key)))
    }

    /// The box to seal and open with now.
    pub fn current(&self) -> Arc<SecretBox> {
        self.current.load_full()
    }

    /// Reads the key source; a key other than the current one becomes current, keeping every
    /// key held so far for opening. Returns the new key's id, or None when it is unchanged.
    pub fn refresh(&self) -> Result<Option<KeyId>, String> {
        let key = (self.source)()?;
        let old = self.current.load();
        if old.holds(&key) && old.current_key_id() == &KeyId::of(&key) {
            return Ok(None);
        }
        let next = old.rotated(&key);
        let id = next.current_key_id().clone();
        self.current.store(Arc::new(next));
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn a_new_key_from_the_source_becomes_current_and_old_values_still_open() {
        let source = Arc::new(Mutex::new([1u8; 32]));
        let reader = source.clone();
        let ring = Keyring::new(&[1u8; 32], Box::new(move || Ok(*reader.lock().unwrap())));
        let (old_sealed, old_id) = ring.current().seal(b"before", b"ctx");
        assert_eq!(ring.refresh().unwrap(), None, "same key: nothing changes");

        *source.lock().unwrap() = [2u8; 32];
        let new_id = ring.refresh().unwrap().expect("a new key");
        assert_ne!(new_id, old_id);
        let boxed = ring.current();
        assert_eq!(boxed.current_key_id(), &new_id);
        let (sealed, id) = boxed.seal(b"after", b"ctx");
        assert_eq!(id, new_id, "new values are sealed with the new key");
        assert_eq!(boxed.open(&sealed, &id, b"ctx").unwrap(), b"after");
        assert_eq!(boxed.open(&old_sealed, &old_id, b"ctx").unwrap(), b"before");
    }

    #[test]
    fn a_source_that_fails_changes_nothing() {
        let ring = Keyring::new(&[1u8; 32], Box::new(|| Err("gone".into())));
        let before = ring.current().current_key_id().clone();
        assert!(ring.refresh().is_err());
        assert_eq!(ring.current().current_key_id(), &before);
    }
}
