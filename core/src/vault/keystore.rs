//! Where the vault's OS-key-store slot keeps its key.
//!
//! The core never talks to an operating system: desktop and CLI implement [`KeyStore`] with the
//! `keyring` crate (Secret Service, Keychain, Credential Manager), the mobile apps implement it in
//! Kotlin/Swift over the Android Keystore and iOS Keychain.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::secret::SecretBytes;

/// A store of small secrets addressed by an account name, provided by the platform.
pub trait KeyStore: Send + Sync {
    /// The secret stored under `account`, or `None` when there is none.
    fn load(&self, account: &str) -> Result<Option<SecretBytes>, KeyStoreError>;
    /// Stores (or replaces) the secret under `account`.
    fn store(&self, account: &str, secret: &SecretBytes) -> Result<(), KeyStoreError>;
    /// Deletes the secret under `account`; deleting a missing entry succeeds.
    fn delete(&self, account: &str) -> Result<(), KeyStoreError>;
}

/// A key store failure, as reported by the platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// No key store service is reachable (e.g. no Secret Service on a headless Linux).
    #[error("the OS key store is not available: {0}")]
    Unavailable(String),
    /// The key store refused access (locked keyring, denied prompt).
    #[error("the OS key store refused access: {0}")]
    AccessDenied(String),
    /// Any other platform failure.
    #[error("the OS key store failed: {0}")]
    Failed(String),
}

/// A key store in process memory. Nothing persists: for tests and as a stand-in where a caller
/// needs a [`KeyStore`] value but has no platform store.
#[derive(Default)]
pub struct MemoryKeyStore {
    entries: Mutex<HashMap<String, SecretBytes>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl KeyStore for MemoryKeyStore {
    fn load(&self, account: &str) -> Result<Option<SecretBytes>, KeyStoreError> {
        let entries = self.entries.lock().map_err(|_| KeyStoreError::Failed("poisoned".into()))?;
        Ok(entries.get(account).cloned())
    }

    fn store(&self, account: &str, secret: &SecretBytes) -> Result<(), KeyStoreError> {
        let mut entries = self.entries.lock().map_err(|_| KeyStoreError::Failed("poisoned".into()))?;
        entries.insert(account.to_owned(), secret.clone());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), KeyStoreError> {
        let mut entries = self.entries.lock().map_err(|_| KeyStoreError::Failed("poisoned".into()))?;
        entries.remove(account);
        Ok(())
    }
}
