//! The one error type the apps see. Each core and client error lands in the variant of its
//! [`ErrorCode`], with its message; the match is exhaustive, so a new code cannot be forgotten
//! here. The app's key store failing (an exception its `KeyStore` threw) has its own variant, so
//! an app can tell "the phone's key store failed" from "the passphrase is wrong".

use std::fmt::Display;

use tessera_client::ClientError;
use tessera_core::error::{Classify, ErrorCode};
use tessera_core::vault::VaultError;

/// Why a call failed. Kotlin sees `TesseraException.Locked(reason)` and so on.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TesseraError {
    /// The vault is locked, or a passphrase or PIN is missing or wrong.
    #[error("{reason}")]
    Locked {
        /// What happened, for the user.
        reason: String,
    },
    /// The named token, device or request does not exist.
    #[error("{reason}")]
    NotFound {
        /// What happened, for the user.
        reason: String,
    },
    /// It exists already, or a name matched several tokens.
    #[error("{reason}")]
    Conflict {
        /// What happened, for the user.
        reason: String,
    },
    /// What the app passed is malformed (a URI, a frame, a field).
    #[error("{reason}")]
    InvalidInput {
        /// What happened, for the user.
        reason: String,
    },
    /// A one-time code did not verify.
    #[error("{reason}")]
    InvalidCode {
        /// What happened, for the user.
        reason: String,
    },
    /// A login request, enrollment link or One Swipe code expired.
    #[error("{reason}")]
    Expired {
        /// What happened, for the user.
        reason: String,
    },
    /// Something single-use was used already.
    #[error("{reason}")]
    AlreadyUsed {
        /// What happened, for the user.
        reason: String,
    },
    /// The server or the vault refused.
    #[error("{reason}")]
    Denied {
        /// What happened, for the user.
        reason: String,
    },
    /// Too many attempts: wait.
    #[error("{reason}")]
    RateLimited {
        /// What happened, for the user.
        reason: String,
    },
    /// A signature or integrity check failed (tampered or foreign data).
    #[error("{reason}")]
    Crypto {
        /// What happened, for the user.
        reason: String,
    },
    /// The vault file could not be read or written.
    #[error("{reason}")]
    Storage {
        /// What happened, for the user.
        reason: String,
    },
    /// The server could not be reached.
    #[error("{reason}")]
    Network {
        /// What happened, for the user.
        reason: String,
    },
    /// The app's key store failed (the exception it threw, as text).
    #[error("{reason}")]
    KeyStore {
        /// What happened, for the user.
        reason: String,
    },
    /// A bug, or a callback of the app that threw something unexpected.
    #[error("{reason}")]
    Internal {
        /// What happened, for the user.
        reason: String,
    },
}

impl TesseraError {
    /// The variant of `code`, with `reason`.
    fn of(code: ErrorCode, reason: String) -> Self {
        match code {
            ErrorCode::Locked => Self::Locked { reason },
            ErrorCode::NotFound => Self::NotFound { reason },
            ErrorCode::Conflict => Self::Conflict { reason },
            ErrorCode::InvalidInput => Self::InvalidInput { reason },
            ErrorCode::InvalidCode => Self::InvalidCode { reason },
            ErrorCode::Expired => Self::Expired { reason },
            ErrorCode::AlreadyUsed => Self::AlreadyUsed { reason },
            ErrorCode::Denied => Self::Denied { reason },
            ErrorCode::RateLimited => Self::RateLimited { reason },
            ErrorCode::Crypto => Self::Crypto { reason },
            ErrorCode::Storage => Self::Storage { reason },
            ErrorCode::Network => Self::Network { reason },
            ErrorCode::Internal => Self::Internal { reason },
        }
    }

    /// Any classified core error.
    pub(crate) fn classified(error: &(impl Classify + Display)) -> Self {
        Self::of(error.code(), error.to_string())
    }

    /// A failure of this library's own machinery (its runtime, a task that died).
    pub(crate) fn internal(reason: impl Display) -> Self {
        Self::Internal { reason: reason.to_string() }
    }
}

impl From<VaultError> for TesseraError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::KeyStore(_) => Self::KeyStore { reason: error.to_string() },
            other => Self::classified(&other),
        }
    }
}

impl From<ClientError> for TesseraError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Vault(vault) => Self::from(*vault),
            other => Self::classified(&other),
        }
    }
}

/// Errors of the core that carry their classification.
macro_rules! classified_errors {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for TesseraError {
            fn from(error: $error) -> Self {
                Self::classified(&error)
            }
        })*
    };
}

classified_errors!(
    tessera_core::otpauth::UriError,
    tessera_core::push::PushError,
    tessera_core::qr::QrError,
    tessera_core::vault::TokenError,
    tessera_core::vault::PinError,
);

/// An app callback threw something other than a `TesseraException`.
impl From<uniffi::UnexpectedUniFFICallbackError> for TesseraError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Internal { reason: format!("the app's callback failed: {}", error.reason) }
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::vault::{KeyStoreError, TokenError};

    use super::*;

    #[test]
    fn key_store_failures_keep_their_own_variant_and_the_rest_follow_their_code() {
        let keystore = VaultError::KeyStore(KeyStoreError::Failed("the Keystore is locked".into()));
        assert!(
            matches!(TesseraError::from(keystore), TesseraError::KeyStore { reason } if reason.contains("Keystore is locked"))
        );
        assert!(matches!(TesseraError::from(VaultError::WrongPassphrase), TesseraError::Locked { .. }));
        let missing = ClientError::from(VaultError::Token(TokenError::NotFound("x".into())));
        assert!(matches!(TesseraError::from(missing), TesseraError::NotFound { .. }));
        let gone =
            ClientError::Refused { status: 410, code: Some(ErrorCode::Expired), message: "expired".into() };
        assert!(matches!(TesseraError::from(gone), TesseraError::Expired { .. }));
    }
}
