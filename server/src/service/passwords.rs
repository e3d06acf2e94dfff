//! Passwords and PINs: Argon2id hashing and checks, at most `2 × cores` at a time (each takes
//! 19 MiB), with the same work whether or not the user exists or has a password.

use tessera_core::secret::SecretString;

use super::{Service, ServiceError};
use crate::keys::{self, KeyError};
use crate::store::UserRow;

impl Service {
    /// Hashes a new password/PIN (Argon2id), at most `2 × cores` at a time.
    pub(super) async fn hash_password(&self, password: SecretString) -> Result<String, ServiceError> {
        let length = password.char_count();
        if !(4..=1024).contains(&length) {
            return Err(ServiceError::InvalidInput("a password/PIN has 4 to 1024 characters".into()));
        }
        let _permit = self.hashing.acquire().await.map_err(|e| KeyError::Hashing(e.to_string()))?;
        tokio::task::spawn_blocking(move || keys::hash_password(&password))
            .await
            .map_err(|e| KeyError::Hashing(e.to_string()))?
            .map_err(ServiceError::from)
    }

    /// Checks a password/PIN against a hash, or against a hash nothing matches when there is none,
    /// so the work (and the time) is the same whether or not the user exists or has a password.
    /// At most `2 × cores` checks run at once: each takes 19 MiB.
    pub(crate) async fn check_password(&self, password: &SecretString, hash: Option<&str>) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else { return false };
        let password = password.clone();
        let hash = hash.unwrap_or_else(|| keys::dummy_password_hash()).to_owned();
        tokio::task::spawn_blocking(move || keys::verify_password(password.expose(), &hash))
            .await
            .unwrap_or(false)
    }

    /// Whether the password is the user's (a user without one needs none).
    pub(crate) async fn password_matches(&self, user: &UserRow, password: Option<&SecretString>) -> bool {
        match (password, user.password_hash.as_deref()) {
            (Some(password), hash) => self.check_password(password, hash).await || hash.is_none(),
            (None, hash) => hash.is_none(),
        }
    }
}
