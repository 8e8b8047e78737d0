//! Cryptographic building blocks: the secret box for values at rest, the keyring that lets a
//! running server change keys, and password hashing.

mod keyring;
mod password;
mod secret_box;

pub use keyring::{KeySource, Keyring};
pub use password::{PasswordError, hash_password, verify_password};
pub use secret_box::{KeyId, SealError, SecretBox};

/// Random bytes from the OS-seeded thread RNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::fill(&mut out[..]);
    out
}
