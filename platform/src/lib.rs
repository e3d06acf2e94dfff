//! Operating-system services for Tessera's desktop and terminal edges (the CLI and the Tauri app):
//! the OS key store behind the core's [`KeyStore`] trait, and where the vault lives by default.
//!
//! The key store is the `keyring` crate: the Secret Service (GNOME Keyring, KWallet) on Linux,
//! the Keychain on macOS, the Credential Manager on Windows. On any other system it reports itself
//! unavailable rather than falling back to keyring's in-memory mock, which would silently lose keys.

use std::path::PathBuf;

use tessera_core::secret::SecretBytes;
use tessera_core::vault::{KeyStore, KeyStoreError};

/// Service name under which vault keys are stored in the OS key store.
pub const KEYRING_SERVICE: &str = "dev.tessera.vault";
/// File name of the default vault.
pub const VAULT_FILE_NAME: &str = "vault.tessera";
/// Environment variable naming the vault file instead of the default.
pub const VAULT_ENV: &str = "TESSERA_VAULT";
/// Environment variable naming another key store service (tests and side-by-side profiles).
pub const KEYRING_SERVICE_ENV: &str = "TESSERA_KEYRING_SERVICE";

/// The OS key store, through `keyring`.
#[derive(Debug, Clone)]
pub struct OsKeyStore {
    service: String,
}

impl OsKeyStore {
    /// The key store under Tessera's service name.
    pub fn new() -> Self {
        Self { service: KEYRING_SERVICE.to_owned() }
    }

    /// The key store under another service name (tests use their own to stay out of the user's way).
    pub fn with_service(service: impl Into<String>) -> Self {
        Self { service: service.into() }
    }

    /// The key store under [`KEYRING_SERVICE_ENV`] when set, else under Tessera's service name.
    pub fn from_environment() -> Self {
        match std::env::var(KEYRING_SERVICE_ENV) {
            Ok(service) if !service.is_empty() => Self::with_service(service),
            _ => Self::new(),
        }
    }

    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
    fn entry(&self, account: &str) -> Result<keyring::Entry, KeyStoreError> {
        keyring::Entry::new(&self.service, account).map_err(map_error)
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    fn entry(&self, _account: &str) -> Result<keyring::Entry, KeyStoreError> {
        Err(KeyStoreError::Unavailable("no supported key store on this operating system".into()))
    }
}

impl Default for OsKeyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyStore for OsKeyStore {
    fn load(&self, account: &str) -> Result<Option<SecretBytes>, KeyStoreError> {
        match self.entry(account)?.get_secret() {
            Ok(secret) => Ok(Some(SecretBytes::new(secret))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(other) => Err(map_error(other)),
        }
    }

    fn store(&self, account: &str, secret: &SecretBytes) -> Result<(), KeyStoreError> {
        self.entry(account)?.set_secret(secret.expose()).map_err(map_error)
    }

    fn delete(&self, account: &str) -> Result<(), KeyStoreError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(other) => Err(map_error(other)),
        }
    }
}

fn map_error(error: keyring::Error) -> KeyStoreError {
    match error {
        keyring::Error::NoStorageAccess(e) => KeyStoreError::AccessDenied(e.to_string()),
        keyring::Error::PlatformFailure(e) => KeyStoreError::Unavailable(e.to_string()),
        other => KeyStoreError::Failed(other.to_string()),
    }
}

/// The default vault path: `vault.tessera` in the platform's data directory
/// (`~/.local/share/tessera` on Linux, `~/Library/Application Support/dev.Tessera.tessera` on
/// macOS, `%APPDATA%\Tessera\tessera\data` on Windows).
pub fn default_vault_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "Tessera", "tessera")
        .map(|dirs| dirs.data_dir().join(VAULT_FILE_NAME))
}

/// The vault path [`VAULT_ENV`] names, else the default one.
pub fn vault_path_from_environment() -> Option<PathBuf> {
    std::env::var_os(VAULT_ENV).filter(|path| !path.is_empty()).map(PathBuf::from).or_else(default_vault_path)
}
