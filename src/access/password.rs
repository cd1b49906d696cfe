//! Password hashing with Argon2id, run off the async runtime.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The shortest password accepted.
pub const MIN_LEN: usize = 10;
/// The longest password accepted (hashing cost grows with length).
pub const MAX_LEN: usize = 1024;

/// Checks the password policy, naming what is wrong (never echoing the password).
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        Err(format!(
            "the password is too short: at least {MIN_LEN} characters are required"
        ))
    } else if password.len() > MAX_LEN {
        Err(format!("the password is too long: at most {MAX_LEN} bytes"))
    } else {
        Ok(())
    }
}

/// Hashes a password (Argon2id, OWASP parameters) on a blocking thread.
pub async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| format!("hashing failed: {e}"))
    })
    .await
    .map_err(|e| format!("hashing task failed: {e}"))?
}

/// Verifies a password against a stored hash on a blocking thread; false on any error.
pub async fn verify(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the user does not exist, so an unknown
/// user name costs as much time as a wrong password.
pub async fn decoy() -> String {
    use std::sync::OnceLock;
    static DECOY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DECOY.get() {
        return h.clone();
    }
    let h = hash("decoy-password-never-used".to_owned())
        .await
        .unwrap_or_default();
    DECOY.get_or_init(|| h).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse battery".into(), h.clone()).await);
        assert!(!verify("wrong horse battery".into(), h).await);
        assert!(!verify("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn policy_names_the_rule() {
        assert_eq!(
            check_policy("short").unwrap_err(),
            "the password is too short: at least 10 characters are required"
        );
        assert!(check_policy("long enough pass").is_ok());
    }
}
