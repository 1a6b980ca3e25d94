//! Password hashing (argon2id with the crate's defaults, which follow OWASP's recommendation) and
//! one-time password generation. Hashing is CPU-heavy: call these on a blocking thread.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

use super::Error;

pub fn hash(password: &str) -> Result<String, Error> {
    let salt = SaltString::from_b64(&random_salt()).map_err(|e| Error::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

fn random_salt() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::rng().random();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Checks a password against a stored hash; a malformed hash counts as a mismatch.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the same time as a real check when the account does not exist, so response times do
/// not reveal which user names exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("agora-dummy-password-for-timing").unwrap_or_default());
    let _ = verify(password, &DUMMY);
}

/// A one-time password: 16 characters without look-alikes (0/O, 1/l/I), about 90 bits.
pub fn one_time() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterx", &h));
        assert!(!verify("anything", "not a hash"));
        assert_ne!(hash("same").unwrap(), hash("same").unwrap(), "salted");
    }

    #[test]
    fn one_time_passwords_are_long_and_distinct() {
        let a = one_time();
        assert_eq!(a.chars().count(), 16);
        assert_ne!(a, one_time());
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c))
        );
    }
}
