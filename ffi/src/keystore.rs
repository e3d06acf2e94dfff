//! The key store the app provides: the Android Keystore or the iOS Keychain behind a foreign
//! trait, adapted to the core's [`tessera_core::vault::KeyStore`]. Secrets cross the boundary as
//! byte arrays and are wrapped in zeroizing containers on the Rust side at once.

use std::sync::Arc;

use tessera_core::secret::SecretBytes;
use tessera_core::vault::KeyStoreError;

use crate::TesseraError;

/// A store of small secrets (the vault's key-store slot key) that the app implements over the
/// platform's key store. A method that fails should throw `TesseraException.KeyStore`; the vault
/// call that used it then fails with `TesseraException.KeyStore` too.
#[uniffi::export(with_foreign)]
pub trait KeyStore: Send + Sync {
    /// The secret stored under `account`, or null when there is none.
    fn load(&self, account: String) -> Result<Option<Vec<u8>>, TesseraError>;
    /// Stores (or replaces) the secret under `account`.
    fn store(&self, account: String, secret: Vec<u8>) -> Result<(), TesseraError>;
    /// Deletes the secret under `account`; deleting a missing entry succeeds.
    fn delete(&self, account: String) -> Result<(), TesseraError>;
}

/// The app's key store as the vault uses it.
pub(crate) struct PlatformKeyStore(pub Arc<dyn KeyStore>);

/// The app's exception, as the core's key store error.
fn failed(error: TesseraError) -> KeyStoreError {
    KeyStoreError::Failed(error.to_string())
}

impl tessera_core::vault::KeyStore for PlatformKeyStore {
    fn load(&self, account: &str) -> Result<Option<SecretBytes>, KeyStoreError> {
        Ok(self.0.load(account.to_owned()).map_err(failed)?.map(SecretBytes::new))
    }

    fn store(&self, account: &str, secret: &SecretBytes) -> Result<(), KeyStoreError> {
        self.0.store(account.to_owned(), secret.expose().to_vec()).map_err(failed)
    }

    fn delete(&self, account: &str) -> Result<(), KeyStoreError> {
        self.0.delete(account.to_owned()).map_err(failed)
    }
}
