//! The one error vocabulary every edge maps to.
//!
//! Core modules keep precise error enums; each also says which [`ErrorCode`] it belongs to, so
//! the CLI's exit status, the FFI's exception, the desktop's `{kind, message}` and the server's
//! HTTP status are all decided in one place per error rather than once per edge.

use serde::{Deserialize, Serialize};

/// A coarse, stable classification of failures, shared by all edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Not `non_exhaustive`: the edges that map every code (the FFI's error enum) should stop
// compiling when one is added, until they map it too.
pub enum ErrorCode {
    /// The vault or account is locked: a credential is missing or wrong.
    Locked,
    /// The named thing does not exist.
    NotFound,
    /// The thing being created already exists, or a query matched several things.
    Conflict,
    /// The caller's input is malformed.
    InvalidInput,
    /// A one-time code did not verify.
    InvalidCode,
    /// Something expired.
    Expired,
    /// Something single-use was used already.
    AlreadyUsed,
    /// The request was refused.
    Denied,
    /// Too many attempts.
    RateLimited,
    /// Cryptographic verification failed (tampered or foreign data).
    Crypto,
    /// Reading or writing stored data failed.
    Storage,
    /// A network peer could not be reached.
    Network,
    /// A bug or an unexpected condition.
    Internal,
}

impl ErrorCode {
    /// The snake_case name used on the wire (`invalid_input`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Locked => "locked",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::InvalidInput => "invalid_input",
            Self::InvalidCode => "invalid_code",
            Self::Expired => "expired",
            Self::AlreadyUsed => "already_used",
            Self::Denied => "denied",
            Self::RateLimited => "rate_limited",
            Self::Crypto => "crypto",
            Self::Storage => "storage",
            Self::Network => "network",
            Self::Internal => "internal",
        }
    }
}

/// Errors that know their [`ErrorCode`].
pub trait Classify {
    /// The code edges report for this error.
    fn code(&self) -> ErrorCode;
}

impl Classify for crate::otpauth::UriError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidInput
    }
}

impl Classify for crate::otp::OtpError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidInput
    }
}
