//! The optional PIN a device asks before it answers a push login request (NIST SP 800-63B-4
//! activation factor; OWASP MASVS-AUTH-3).
//!
//! The PIN stops someone at an unlocked computer or phone from approving a login. It is checked
//! on the device: an Argon2id hash kept inside the encrypted vault, compared in constant time by
//! the Argon2 library. Wrong PINs are throttled and limited as 63B-4 asks for activation secrets:
//! from the fifth consecutive wrong PIN each attempt waits, doubling from 30 s, and the tenth
//! removes the vault's push devices, which then have to be enrolled again. The PIN does not
//! encrypt the device key: the background push channel authenticates with that key while no one
//! is at the device.

use std::fmt;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};

use super::envelope::normalized;
use crate::secret::{SecretString, fill_random};

/// Shortest answer PIN accepted, in characters.
pub const MIN_PIN_CHARS: usize = 4;
/// Longest answer PIN accepted, in characters.
pub const MAX_PIN_CHARS: usize = 64;
/// Consecutive wrong PINs after which the vault's push devices are removed.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 10;
/// Wrong PINs allowed before attempts have to wait.
const FAILURES_WITHOUT_DELAY: u32 = 4;
/// The first wait, doubled by each further wrong PIN.
const FIRST_DELAY_SECS: u64 = 30;

/// The stored PIN: its Argon2id hash and the count of consecutive wrong attempts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerPin {
    hash: String,
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    retry_at: u64,
}

impl fmt::Debug for AnswerPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerPin")
            .field("hash", &"<redacted>")
            .field("failures", &self.failures)
            .field("retry_at", &self.retry_at)
            .finish()
    }
}

/// What checking the PIN found, after the attempt was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinCheck {
    /// The PIN is right; the failure count is reset.
    Right,
    /// The PIN is wrong.
    Wrong {
        /// Attempts left before the push devices are removed.
        remaining: u32,
    },
    /// The tenth wrong PIN in a row.
    Exhausted,
}

impl AnswerPin {
    /// Hashes a new PIN (Argon2id, 19 MiB, 2 passes: OWASP's minimum, about 40 ms here, paid on
    /// every answer).
    pub(crate) fn new(pin: &SecretString) -> Result<Self, PinError> {
        let length = pin.char_count();
        if !(MIN_PIN_CHARS..=MAX_PIN_CHARS).contains(&length) || pin.expose().chars().any(char::is_control) {
            return Err(PinError::Invalid);
        }
        let mut salt = [0u8; 16];
        fill_random(&mut salt).map_err(|e| PinError::Hashing(e.to_string()))?;
        let hash = hasher()
            .hash_password_with_salt(normalized(pin).as_bytes(), &salt)
            .map_err(|e| PinError::Hashing(e.to_string()))?;
        Ok(Self { hash: hash.to_string(), failures: 0, retry_at: 0 })
    }

    /// Refuses an attempt made before the current wait is over.
    pub(crate) fn ready(&self, now: u64) -> Result<(), PinError> {
        match self.retry_at.checked_sub(now) {
            Some(seconds) if seconds > 0 => Err(PinError::Wait { seconds }),
            _ => Ok(()),
        }
    }

    /// Checks a PIN and counts the attempt; call [`AnswerPin::ready`] first.
    pub(crate) fn check(&mut self, pin: &SecretString, now: u64) -> PinCheck {
        let right = argon2::password_hash::phc::PasswordHash::new(&self.hash)
            .is_ok_and(|hash| hasher().verify_password(normalized(pin).as_bytes(), &hash).is_ok());
        if right {
            self.failures = 0;
            self.retry_at = 0;
            return PinCheck::Right;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures >= MAX_CONSECUTIVE_FAILURES {
            return PinCheck::Exhausted;
        }
        if let Some(doublings) = self.failures.checked_sub(FAILURES_WITHOUT_DELAY + 1) {
            self.retry_at = now.saturating_add(FIRST_DELAY_SECS << doublings);
        }
        PinCheck::Wrong { remaining: MAX_CONSECUTIVE_FAILURES - self.failures }
    }

    /// Consecutive wrong attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

fn hasher() -> Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Why the answer PIN refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// A new PIN is too short, too long, or holds control characters.
    #[error("the PIN must be {MIN_PIN_CHARS} to {MAX_PIN_CHARS} characters, without control characters")]
    Invalid,
    /// The vault asks for a PIN and none was given.
    #[error("this vault asks for its PIN before answering login requests")]
    Required,
    /// The PIN is wrong.
    #[error("wrong PIN; {remaining} attempts left before this vault's push devices are removed")]
    Wrong {
        /// Attempts left.
        remaining: u32,
    },
    /// Too many wrong PINs in a row: the next attempt has to wait.
    #[error("too many wrong PINs; try again in {seconds} s")]
    Wait {
        /// Seconds to wait.
        seconds: u64,
    },
    /// Ten wrong PINs in a row removed the vault's push devices.
    #[error(
        "{MAX_CONSECUTIVE_FAILURES} wrong PINs in a row: this vault's push devices were removed; ask for a new enrollment link"
    )]
    DevicesRemoved,
    /// There is no PIN to change or remove.
    #[error("this vault has no answer PIN")]
    NotSet,
    /// Hashing the PIN failed.
    #[error("could not hash the PIN: {0}")]
    Hashing(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(text: &str) -> SecretString {
        SecretString::new(text.into())
    }

    #[test]
    fn right_pin_passes_and_wrong_pin_is_counted() {
        let mut stored = AnswerPin::new(&pin("2468")).unwrap();
        assert_eq!(stored.check(&pin("2469"), 100), PinCheck::Wrong { remaining: 9 });
        assert_eq!(stored.failures(), 1);
        assert_eq!(stored.check(&pin("2468"), 100), PinCheck::Right);
        assert_eq!(stored.failures(), 0);
    }

    #[test]
    fn pins_are_compared_after_unicode_normalization() {
        let mut stored = AnswerPin::new(&pin("caf\u{e9}")).unwrap();
        assert_eq!(stored.check(&pin("cafe\u{301}"), 0), PinCheck::Right);
    }

    #[test]
    fn waits_start_at_the_fifth_failure_and_double() {
        let mut stored = AnswerPin::new(&pin("2468")).unwrap();
        for _ in 0..4 {
            stored.check(&pin("0000"), 1_000);
            assert_eq!(stored.ready(1_000), Ok(()));
        }
        assert_eq!(stored.check(&pin("0000"), 1_000), PinCheck::Wrong { remaining: 5 });
        assert_eq!(stored.ready(1_000), Err(PinError::Wait { seconds: 30 }));
        assert_eq!(stored.ready(1_030), Ok(()));
        stored.check(&pin("0000"), 1_030);
        assert_eq!(stored.ready(1_030), Err(PinError::Wait { seconds: 60 }));
    }

    #[test]
    fn the_tenth_failure_exhausts_the_pin() {
        let mut stored = AnswerPin::new(&pin("2468")).unwrap();
        for _ in 0..9 {
            assert!(matches!(stored.check(&pin("1111"), 0), PinCheck::Wrong { .. }));
        }
        assert_eq!(stored.check(&pin("2468x"), 0), PinCheck::Exhausted);
    }

    #[test]
    fn weak_pins_are_refused() {
        for bad in ["", "123", "12\n34", &"9".repeat(MAX_PIN_CHARS + 1)] {
            assert_eq!(AnswerPin::new(&pin(bad)), Err(PinError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_hash() {
        let stored = AnswerPin::new(&pin("2468")).unwrap();
        assert!(!format!("{stored:?}").contains("argon2id"));
    }
}
