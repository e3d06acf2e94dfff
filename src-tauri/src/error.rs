//! How failures cross IPC: every command error reaches the web view as `{kind, message}`, where
//! `kind` is the core's shared [`ErrorCode`] (`locked`, `not_found`, `invalid_input`, ...), so the
//! UI decides what to do from the kind and shows the message as written for people.

use std::fmt::Display;

use serde::Serialize;
use tessera_core::error::{Classify, ErrorCode};

/// A command's failure as the web view receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandError {
    /// What kind of failure, for the UI's logic.
    pub kind: ErrorCode,
    /// What happened, for people.
    pub message: String,
}

impl CommandError {
    /// A failure of the given kind.
    pub fn new(kind: ErrorCode, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The vault is locked (or was locked after being idle).
    pub fn locked() -> Self {
        Self::new(ErrorCode::Locked, "the vault is locked")
    }
}

impl<E: Classify + Display> From<E> for CommandError {
    fn from(error: E) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

/// What commands return.
pub type CommandResult<T> = Result<T, CommandError>;
