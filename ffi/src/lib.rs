//! Tessera's mobile library: the vault, codes, QR decoding, push approval and One Swipe of
//! `tessera-core` and `tessera-client`, exported through uniffi to Kotlin (Android), Swift (iOS)
//! and Python. Every export parses what the app passes, calls the core or the client once, and
//! converts the result; the rules live in those crates, so the phones follow the same ones as the
//! CLI and the desktop app.
//!
//! - [`Vault`]: create, unlock and lock the vault; list, add, edit and remove tokens; codes;
//!   One Swipe; push enrollment, the challenge listener and answers.
//! - [`KeyStore`]: implemented by the app over the Android Keystore or the iOS Keychain.
//! - [`scan`]: QR codes from camera frames, what a scanned text is, QR images to show.
//! - [`TesseraError`]: the one error type the apps see.

uniffi::setup_scaffolding!();

mod error;
mod keystore;
mod push;
mod runtime;
pub mod scan;
mod vault;

pub use error::TesseraError;
pub use keystore::KeyStore;
pub use push::{NumberMatchingMode, PushListener, PushRequest, PushSubscription, Reply};
pub use vault::{Added, Code, ManualToken, OneSwipeCode, Token, TokenRow, Vault};
