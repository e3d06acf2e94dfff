//! The encrypted token vault shared by the CLI, the desktop app and the mobile apps.
//!
//! - [`model`]: the tokens and the rules for using them (plain data, no I/O).
//! - [`envelope`]: the file format: AES-256-GCM under a random master key, wrapped in key slots.
//! - [`store`]: the file on disk: locking, atomic replacement, unlock and transactional updates.
//! - [`answer_pin`]: the optional PIN asked before answering push requests.
//! - [`listing`]: what the edges show of tokens (details and live codes, never seeds).
//! - [`keystore`]: the trait through which platforms keep the OS key store slot's key.

pub mod answer_pin;
pub mod envelope;
pub mod keystore;
pub mod listing;
pub mod model;
pub mod store;

use std::path::PathBuf;

pub use answer_pin::{MAX_CONSECUTIVE_FAILURES, MAX_PIN_CHARS, MIN_PIN_CHARS, PinError};
pub use envelope::{KdfParams, MIN_PASSPHRASE_CHARS};
pub use keystore::{KeyStore, KeyStoreError, MemoryKeyStore};
pub use listing::{CodeState, Listed, PushInfo, TokenInfo};
pub use model::{PushBinding, Token, TokenEdit, TokenError, TokenId, TokenSummary, Vault};
pub use store::{Credential, SlotInfo, SlotKindName, UnlockedVault, VaultStore, private_file_options};

use crate::error::{Classify, ErrorCode};
use crate::secret::RandomError;

/// What is wrong with the bytes of a vault file. The file is never modified when one occurs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file does not start with the vault magic bytes.
    #[error("the file is not a Tessera vault")]
    NotAVault,
    /// A format version this build does not know.
    #[error("the vault uses format version {0}, which this version of Tessera cannot read; upgrade Tessera")]
    UnsupportedVersion(u16),
    /// The file ends early.
    #[error("the vault file is truncated")]
    Truncated,
    /// The header cannot be read.
    #[error("the vault header is damaged: {0}")]
    CorruptHeader(String),
    /// Authentication failed with a key a slot vouched for.
    #[error("the vault file is damaged or was modified by someone else (authentication failed)")]
    Tampered,
    /// The contents decrypted but are not a vault.
    #[error("the vault contents are damaged: {0}")]
    CorruptContents(String),
    /// Larger than any vault this build writes.
    #[error("the file is too large to be a vault")]
    TooLarge,
}

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// There is no vault file at the path.
    #[error("no vault at {0}")]
    NotFound(PathBuf),
    /// A vault already exists at the path.
    #[error("a vault already exists at {0}")]
    AlreadyExists(PathBuf),
    /// The vault file is not readable as a vault; it was left untouched.
    #[error("{0}; the file was left untouched")]
    Format(#[from] FormatError),
    /// The file at the path now holds a different vault than the one unlocked.
    #[error("the vault file was replaced by a different vault; unlock it again")]
    Replaced,
    /// The passphrase opens none of the passphrase slots.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The vault has no slot of the kind needed.
    #[error("the vault has no {0} slot")]
    NoSlotOfKind(&'static str),
    /// The vault can only be opened with its passphrase, and none was given.
    #[error("the vault is locked: its passphrase is needed{}", keystore_error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    PassphraseRequired {
        /// Why the OS key store slot could not be used instead, if the vault has one.
        keystore_error: Option<Box<VaultError>>,
    },
    /// The OS key store has no key for this vault.
    #[error("the OS key store holds no key for this vault")]
    KeyStoreKeyMissing,
    /// The OS key store's key does not open this vault.
    #[error("the key in the OS key store does not open this vault")]
    KeyStoreKeyMismatch,
    /// The platform key store failed.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    /// A new passphrase is too short.
    #[error("the passphrase must be at least {min_chars} characters long")]
    WeakPassphrase {
        /// The minimum.
        min_chars: usize,
    },
    /// Creating a vault needs at least one way to unlock it.
    #[error("a vault needs at least one key slot (OS key store or passphrase)")]
    NoSlotRequested,
    /// Removing the slot would leave no way to unlock the vault.
    #[error("this is the vault's last key slot; add another before removing it")]
    LastSlot,
    /// The vault has the maximum number of slots.
    #[error("the vault already has {0} key slots")]
    TooManySlots(usize),
    /// A token operation was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The answer PIN refused an operation.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// Reading or writing a file failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The random number generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// An unexpected internal failure.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Classify for FormatError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Tampered => ErrorCode::Crypto,
            Self::NotAVault
            | Self::UnsupportedVersion(_)
            | Self::Truncated
            | Self::CorruptHeader(_)
            | Self::CorruptContents(_)
            | Self::TooLarge => ErrorCode::Storage,
        }
    }
}

impl Classify for TokenError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Ambiguous { .. } | Self::Duplicate(_) => ErrorCode::Conflict,
            Self::InvalidName(_) | Self::InvalidGroup | Self::CounterExhausted => ErrorCode::InvalidInput,
            Self::Random(_) => ErrorCode::Internal,
            Self::NotPush(_) => ErrorCode::InvalidInput,
            Self::NoPushDevice => ErrorCode::NotFound,
            Self::CodeNotReady { .. } => ErrorCode::RateLimited,
            Self::DamagedDeviceKey(_) => ErrorCode::Storage,
            Self::OneSwipe(error) => error.code(),
        }
    }
}

impl Classify for PinError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid => ErrorCode::InvalidInput,
            Self::Required | Self::Wrong { .. } => ErrorCode::Locked,
            Self::Wait { .. } => ErrorCode::RateLimited,
            Self::DevicesRemoved => ErrorCode::Denied,
            Self::NotSet => ErrorCode::NotFound,
            Self::Hashing(_) => ErrorCode::Internal,
        }
    }
}

impl Classify for VaultError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::AlreadyExists(_) | Self::Replaced => ErrorCode::Conflict,
            Self::Format(e) => e.code(),
            Self::WrongPassphrase
            | Self::PassphraseRequired { .. }
            | Self::NoSlotOfKind(_)
            | Self::KeyStoreKeyMissing
            | Self::KeyStoreKeyMismatch
            | Self::KeyStore(_) => ErrorCode::Locked,
            Self::WeakPassphrase { .. } | Self::NoSlotRequested | Self::LastSlot | Self::TooManySlots(_) => {
                ErrorCode::InvalidInput
            }
            Self::Token(e) => e.code(),
            Self::Pin(e) => e.code(),
            Self::Io { .. } => ErrorCode::Storage,
            Self::Random(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }
}
