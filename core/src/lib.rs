//! Tessera's domain core: everything the soft token and the verification server agree on, without
//! network, UI or operating-system services.
//!
//! - [`otp`]: HOTP, TOTP and Steam codes, and windowed verification that reports the matching step.
//! - [`verifier`]: the server's per-token rules: replay, lockout, drift, resync.
//! - [`otpauth`]: `otpauth://` URIs (Google's Key Uri Format), parsed and built.
//! - [`vault`]: the encrypted token vault: model, AES-256-GCM envelope, key slots, atomic file store.
//! - [`delivery`]: passcodes sent by SMS or email: modes, which codes a token accepts and sends
//!   next, message templates, phone numbers and email addresses.
//! - [`pskc`]: PSKC (RFC 6030) hardware-token seed files, in the clear or password- or key-protected.
//! - [`push`]: push approval: enrollment links, Ed25519 keys, signed challenges and answers, number matching.
//! - [`oneswipe`]: One Swipe: the signed, single-use QR payload a push device shows to a webcam.
//! - [`qr`]: QR codes rendered to PNG, SVG and terminals, and decoded from images and camera frames.
//! - [`transfer`]: import and export of token lists (one otpauth URI per line).
//! - [`secret`]: the zeroizing, redacting containers every secret lives in.
//! - [`error`]: the error codes every edge (CLI, FFI, IPC, HTTP) maps errors to.
//! - [`wire`]: what the server and its clients both speak over HTTP: headers, paths, receipts, the
//!   error body.

pub mod delivery;
pub mod error;
pub mod oneswipe;
pub mod otp;
pub mod otpauth;
pub mod pskc;
pub mod push;
pub mod qr;
pub mod secret;
pub mod transfer;
pub mod vault;
pub mod verifier;
pub mod wire;
