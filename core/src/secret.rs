//! Containers for secret material (token seeds, keys, passphrases, codes).
//!
//! Every secret in Tessera lives in one of these types so that three rules hold everywhere:
//! the memory is wiped when the value is dropped, `Debug` never prints the content, and
//! equality is decided in constant time.

use std::fmt;
use std::sync::LazyLock;

use data_encoding::{Encoding, Specification};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Secret bytes (a token seed, a key): zeroized on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Box<[u8]>);

impl SecretBytes {
    /// Takes ownership of `bytes`; the caller's buffer is moved, not copied.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes.into_boxed_slice())
    }

    /// Copies `bytes` into a new secret. Prefer [`SecretBytes::new`] when the source can be moved.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(Box::from(bytes))
    }

    /// Fills a new secret of `len` bytes from the operating system's CSPRNG.
    pub fn random(len: usize) -> Result<Self, RandomError> {
        let mut bytes = vec![0u8; len].into_boxed_slice();
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The secret's bytes. Callers must not copy them into unprotected memory.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the secret holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of bits.
    pub fn bits(&self) -> usize {
        self.0.len() * 8
    }

    /// Decodes RFC 4648 base32 as people paste it: any case, with or without `=` padding,
    /// with spaces or dashes between groups.
    pub fn from_base32(text: &str) -> Result<Self, Base32Error> {
        let mut cleaned = Zeroizing::new(String::with_capacity(text.len()));
        for c in text.chars() {
            match c {
                ' ' | '-' | '\t' => {}
                _ => cleaned.push(c.to_ascii_uppercase()),
            }
        }
        let unpadded = cleaned.trim_end_matches('=');
        if unpadded.is_empty() {
            return Err(Base32Error::Empty);
        }
        if let Some(bad) = unpadded.chars().find(|c| !matches!(c, 'A'..='Z' | '2'..='7')) {
            return Err(if bad == '=' {
                Base32Error::MisplacedPadding
            } else if bad.is_ascii_graphic() {
                Base32Error::InvalidCharacter(bad)
            } else {
                Base32Error::InvalidCharacter('?')
            });
        }
        let input = unpadded.as_bytes();
        let len = BASE32_LENIENT.decode_len(input.len()).map_err(|_| Base32Error::InvalidLength)?;
        let mut out = Zeroizing::new(vec![0u8; len]);
        let written = BASE32_LENIENT.decode_mut(input, &mut out).map_err(|_| Base32Error::InvalidLength)?;
        Ok(Self::from_slice(out.get(..written).unwrap_or_default()))
    }

    /// Canonical base32 (upper case, no padding), as otpauth URIs carry it.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&self.0))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretBytes {}

/// Serialized as canonical base32 (inside the encrypted vault only).
impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base32())
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Base32Visitor;
        impl Visitor<'_> for Base32Visitor {
            type Value = SecretBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base32 secret")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretBytes, E> {
                SecretBytes::from_base32(value).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Base32Visitor)
    }
}

/// A secret text (passphrase, URI carrying a seed, one-time code): zeroized on drop, redacted in
/// `Debug`, compared in constant time. Serialized as the plain string: used only where a secret
/// is deliberately handed to its owner (an enrollment response carrying the new seed's URI).
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretString {}

impl SecretString {
    /// Takes ownership of `text`.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// A passphrase or PIN from a form field: an empty field means none was given.
    pub fn from_field(field: Option<String>) -> Option<Self> {
        field.filter(|text| !text.is_empty()).map(Self::new)
    }

    /// The text. Callers must not copy it into unprotected memory.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Number of characters (not bytes).
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl From<Zeroizing<String>> for SecretString {
    fn from(mut text: Zeroizing<String>) -> Self {
        Self(std::mem::take(&mut *text))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

/// Why a base32 seed could not be read. Messages never repeat the seed itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Base32Error {
    /// Nothing left once spaces and padding are removed.
    #[error("the secret is empty")]
    Empty,
    /// A character outside A–Z and 2–7.
    #[error("the secret contains '{0}', which is not a base32 character (A-Z, 2-7)")]
    InvalidCharacter(char),
    /// `=` somewhere other than the end.
    #[error("the secret has '=' padding in the middle")]
    MisplacedPadding,
    /// A length no base32 encoder produces (1, 3 or 6 characters past a multiple of 8).
    #[error("the secret has a length no base32 encoding can have")]
    InvalidLength,
}

/// The operating system's random number generator failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the system random number generator failed: {0}")]
pub struct RandomError(String);

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
}

/// Base32 without padding that tolerates non-zero trailing bits (some issuers emit them).
static BASE32_LENIENT: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    spec.check_trailing_bits = false;
    spec.encoding().unwrap_or_else(|_| data_encoding::BASE32_NOPAD.clone())
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_accepts_case_padding_and_spaces() {
        let canonical = SecretBytes::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        for variant in
            ["jbswy3dpehpk3pxp", "JBSW Y3DP EHPK 3PXP", "jbsw-y3dp-ehpk-3pxp", "JBSWY3DPEHPK3PXP===="]
        {
            assert_eq!(SecretBytes::from_base32(variant).unwrap(), canonical, "{variant}");
        }
        assert_eq!(canonical.expose(), b"Hello!\xde\xad\xbe\xef");
    }

    #[test]
    fn base32_round_trips_every_length() {
        for len in 1..=64 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let secret = SecretBytes::new(bytes.clone());
            let text = secret.to_base32();
            assert_eq!(SecretBytes::from_base32(&text).unwrap().expose(), &bytes[..]);
        }
    }

    #[test]
    fn base32_rejects_bad_input_with_reason() {
        assert_eq!(SecretBytes::from_base32("  ==").unwrap_err(), Base32Error::Empty);
        assert_eq!(SecretBytes::from_base32("JBSW1").unwrap_err(), Base32Error::InvalidCharacter('1'));
        assert_eq!(SecretBytes::from_base32("JB=SW").unwrap_err(), Base32Error::MisplacedPadding);
        assert_eq!(SecretBytes::from_base32("JBS").unwrap_err(), Base32Error::InvalidLength);
        assert_eq!(SecretBytes::from_base32("é").unwrap_err(), Base32Error::InvalidCharacter('?'));
    }

    #[test]
    fn debug_never_shows_content() {
        let secret = SecretBytes::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("JBSW") && !shown.contains("72"), "{shown}");
        let text = SecretString::new("hunter2-passphrase".into());
        assert!(!format!("{text:?}").contains("hunter2"));
    }

    #[test]
    fn equality_compares_content() {
        let a = SecretBytes::from_slice(b"abc");
        assert_eq!(a, SecretBytes::from_slice(b"abc"));
        assert_ne!(a, SecretBytes::from_slice(b"abd"));
        assert_ne!(a, SecretBytes::from_slice(b"ab"));
    }

    #[test]
    fn random_secrets_differ() {
        let a = SecretBytes::random(32).unwrap();
        let b = SecretBytes::random(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
