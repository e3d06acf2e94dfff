//! The service's one error type. Every operation of `service` and `push` reports it; the HTTP edge
//! turns it into a status and an `ErrorCode` in one table (`api::ApiError`), and the admin CLI
//! prints it.

use tessera_core::error::{Classify, ErrorCode};

use crate::keys::KeyError;
use crate::store::StoreError;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such user or token.
    #[error("{0} '{1}' not found")]
    NotFound(&'static str, String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidInput(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key material failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The caller's credentials (device key, enrollment link) were refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The thing asked about has expired.
    #[error("{0}")]
    Gone(String),
    /// Too many attempts.
    #[error("{0}")]
    TooManyRequests(String),
    /// The server holds as much of this kind of work as it may.
    #[error("{0}")]
    Busy(String),
    /// Something the server depends on (a directory) cannot be reached.
    #[error("{0}")]
    Unavailable(String),
}

/// A store error, with a unique-name clash reported as what already exists.
pub(crate) fn conflict(error: StoreError) -> ServiceError {
    match error {
        StoreError::Conflict(what) => ServiceError::Conflict(format!("{what} already exists")),
        other => ServiceError::Store(other),
    }
}

impl Classify for ServiceError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(..) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
            Self::Unauthorized(_) => ErrorCode::Denied,
            Self::Gone(_) => ErrorCode::Expired,
            Self::TooManyRequests(_) | Self::Busy(_) => ErrorCode::RateLimited,
            Self::Store(_) => ErrorCode::Storage,
            Self::Unavailable(_) => ErrorCode::Network,
            Self::Key(_) => ErrorCode::Internal,
        }
    }
}
