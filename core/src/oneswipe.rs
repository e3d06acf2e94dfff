//! One Swipe: the one-time QR a push device shows to a login screen's webcam instead of a typed
//! code. The device signs a short-lived payload with its Ed25519 key; the server it is bound to
//! checks signature, audience, expiry, the attached TOTP and single use, then logs its user in.
//!
//! The payload is binary and fixed-size ([`PAYLOAD_BYTES`] bytes), written as unpadded RFC 4648
//! base32 ([`TEXT_CHARS`] characters), because base32's alphabet is inside the QR alphanumeric
//! mode: the code fits version 6 at error correction M (41×41 modules), where base64url text would
//! need version 7 and smaller modules, which webcams read less reliably. Layout (big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version ([`VERSION`]) |
//! | 5 | the push token: the random part of its `PUSH-…` serial |
//! | 4 | issued at (Unix seconds) |
//! | 1 | lifetime in seconds (1 to [`MAX_LIFETIME_SECS`]) |
//! | 8 | random nonce: each payload is redeemable once |
//! | 4 | audience: the first bytes of SHA-256 of the server's public key |
//! | 4 | the token's TOTP code as a number |
//! | 64 | Ed25519 signature by the device key |
//!
//! The signature covers a domain label, the server's whole public key (so a payload made for one
//! server never verifies at another, even if the short audience tag collided) and the 27 bytes
//! before it.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::otp::OtpCode;
use crate::push::{KeyPair, PublicKey};
use crate::secret::{RandomError, SecretString, fill_random};

/// The payload format this build writes and reads.
pub const VERSION: u8 = 1;
/// How long a One Swipe code is valid unless asked otherwise.
pub const DEFAULT_LIFETIME_SECS: u8 = 30;
/// The longest validity a payload may claim.
pub const MAX_LIFETIME_SECS: u8 = 120;
/// Clock difference tolerated between the device and the server, both ways, unless the server
/// is configured otherwise.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 30;
/// Length of the binary payload.
pub const PAYLOAD_BYTES: usize = SIGNED_BYTES + SIGNATURE_BYTES;
/// Length of the payload's text (what the QR code holds).
pub const TEXT_CHARS: usize = (PAYLOAD_BYTES * 8).div_ceil(5);
/// Prefix of the serials of push tokens, whose random part a payload carries.
pub const PUSH_SERIAL_PREFIX: &str = "PUSH-";

const DOMAIN: &[u8] = b"tessera/oneswipe/v1";
const SERIAL_BYTES: usize = 5;
const SIGNED_BYTES: usize = 1 + SERIAL_BYTES + 4 + 1 + 8 + 4 + 4;
const SIGNATURE_BYTES: usize = 64;

/// Why a One Swipe payload could not be made, read or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OneSwipeError {
    /// The text is not base32: not a One Swipe code at all.
    #[error("not a One Swipe code (expected {TEXT_CHARS} base32 characters)")]
    NotOneSwipe,
    /// Base32 of the wrong length: cut short or something else.
    #[error("not a One Swipe code: {0} bytes instead of {PAYLOAD_BYTES}")]
    WrongLength(usize),
    /// A payload version this build does not know.
    #[error("One Swipe version {0} is not supported; update Tessera")]
    UnsupportedVersion(u8),
    /// A lifetime of zero or beyond the limit.
    #[error("a One Swipe code is valid for 1 to {MAX_LIFETIME_SECS} seconds, not {0}")]
    InvalidLifetime(u8),
    /// The serial is not a push token's.
    #[error("'{0}' is not a push token serial (PUSH-…)")]
    InvalidSerial(String),
    /// The token's code is not numeric (only TOTP push tokens make One Swipe codes).
    #[error("this token's codes are not numeric, so it cannot make One Swipe codes")]
    NonNumericCode,
    /// The device clock is outside what the format can express.
    #[error("the device clock is out of range")]
    ClockOutOfRange,
    /// Made for another server.
    #[error("this One Swipe code was made for another server")]
    WrongAudience,
    /// The signature does not verify.
    #[error("the One Swipe code's signature does not verify")]
    BadSignature,
    /// Past its lifetime.
    #[error("the One Swipe code has expired; show a fresh one")]
    Expired,
    /// Dated ahead of the server's clock.
    #[error("the One Swipe code is dated in the future (check the device's clock)")]
    NotYetValid,
    /// The random number generator failed.
    #[error("{0}")]
    Random(String),
}

impl crate::error::Classify for OneSwipeError {
    fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode;
        match self {
            Self::WrongAudience | Self::BadSignature => ErrorCode::Crypto,
            Self::Expired | Self::NotYetValid => ErrorCode::Expired,
            Self::Random(_) | Self::ClockOutOfRange => ErrorCode::Internal,
            _ => ErrorCode::InvalidInput,
        }
    }
}

impl From<RandomError> for OneSwipeError {
    fn from(error: RandomError) -> Self {
        Self::Random(error.to_string())
    }
}

/// The short tag naming the server a payload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audience([u8; 4]);

impl Audience {
    /// The tag of the server with this public key.
    pub fn of(server_key: &PublicKey) -> Self {
        let digest = Sha256::digest(server_key.as_bytes());
        let mut tag = [0u8; 4];
        tag.copy_from_slice(digest.get(..4).unwrap_or_default());
        Self(tag)
    }
}

/// What a device needs to make a payload; [`OneSwipe::sign`] adds the nonce and the signature.
pub struct Request<'a> {
    /// The push token's serial (`PUSH-…`).
    pub serial: &'a str,
    /// The key of the server the token is bound to.
    pub server_key: &'a PublicKey,
    /// The token's TOTP code to attach.
    pub otp: &'a OtpCode,
    /// Unix seconds now.
    pub issued_at: u64,
    /// Validity in seconds.
    pub lifetime_secs: u8,
}

/// A signed One Swipe payload, parsed or freshly made. Redacted in `Debug`: it logs its holder in.
#[derive(Clone, PartialEq, Eq)]
pub struct OneSwipe {
    bytes: [u8; PAYLOAD_BYTES],
}

impl OneSwipe {
    /// Makes and signs a payload with the device key.
    pub fn sign(request: &Request<'_>, device: &KeyPair) -> Result<Self, OneSwipeError> {
        let serial = serial_bytes(request.serial)?;
        let issued_at = u32::try_from(request.issued_at).map_err(|_| OneSwipeError::ClockOutOfRange)?;
        check_lifetime(request.lifetime_secs)?;
        let code = request.otp.expose();
        if code.is_empty() || code.len() > 9 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OneSwipeError::NonNumericCode);
        }
        let otp: u32 = code.parse().map_err(|_| OneSwipeError::NonNumericCode)?;
        let mut nonce = [0u8; 8];
        fill_random(&mut nonce)?;

        let mut bytes = [0u8; PAYLOAD_BYTES];
        let mut writer = Writer { bytes: &mut bytes, at: 0 };
        writer.put(&[VERSION]);
        writer.put(&serial);
        writer.put(&issued_at.to_be_bytes());
        writer.put(&[request.lifetime_secs]);
        writer.put(&nonce);
        writer.put(&Audience::of(request.server_key).0);
        writer.put(&otp.to_be_bytes());
        let signature = device.sign_raw(&signing_message(request.server_key, writer.written()));
        writer.put(&signature);
        Ok(Self { bytes })
    }

    /// Reads a payload from the text a QR code held. Checks the form only; [`OneSwipe::verify`]
    /// checks it is genuine and current.
    pub fn parse(text: &str) -> Result<Self, OneSwipeError> {
        let text = text.trim().to_ascii_uppercase();
        let decoded =
            data_encoding::BASE32_NOPAD.decode(text.as_bytes()).map_err(|_| OneSwipeError::NotOneSwipe)?;
        let bytes: [u8; PAYLOAD_BYTES] =
            decoded.as_slice().try_into().map_err(|_| OneSwipeError::WrongLength(decoded.len()))?;
        let parsed = Self { bytes };
        if parsed.version() != VERSION {
            return Err(OneSwipeError::UnsupportedVersion(parsed.version()));
        }
        check_lifetime(parsed.lifetime_secs())?;
        Ok(parsed)
    }

    /// The text to put in the QR code: uppercase base32, no padding.
    pub fn to_text(&self) -> SecretString {
        SecretString::new(data_encoding::BASE32_NOPAD.encode(&self.bytes))
    }

    /// The serial of the push token that made it.
    pub fn serial(&self) -> String {
        format!("{PUSH_SERIAL_PREFIX}{}", data_encoding::BASE32_NOPAD.encode(self.field(1, SERIAL_BYTES)))
    }

    /// When it was made (Unix seconds, by the device's clock).
    pub fn issued_at(&self) -> u64 {
        u64::from(self.u32_at(6))
    }

    /// Validity in seconds.
    pub fn lifetime_secs(&self) -> u8 {
        self.field(10, 1).first().copied().unwrap_or(0)
    }

    /// The last second it is valid by the device's clock.
    pub fn expires_at(&self) -> u64 {
        self.issued_at() + u64::from(self.lifetime_secs())
    }

    /// The nonce that makes it single-use.
    pub fn nonce(&self) -> [u8; 8] {
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(self.field(11, 8));
        nonce
    }

    /// The attached TOTP code, written with `digits` digits.
    pub fn otp(&self, digits: u8) -> SecretString {
        SecretString::new(format!("{:0width$}", self.u32_at(23), width = usize::from(digits)))
    }

    /// Checks that it names the server with `server_key` (before looking its device up).
    pub fn check_audience(&self, server_key: &PublicKey) -> Result<(), OneSwipeError> {
        if self.field(19, 4) == Audience::of(server_key).0 {
            Ok(())
        } else {
            Err(OneSwipeError::WrongAudience)
        }
    }

    /// Checks that it is for the server with `server_key`, signed by `device_key`, and valid at
    /// `now`. A device clock up to `skew_secs` ahead of the server's may date a code in the future,
    /// so the skew widens the start of the validity; it never extends the end, so a code lives at
    /// most its own lifetime (plus the network's delay) by the server's clock. Single use is the
    /// caller's to enforce, with [`OneSwipe::nonce`].
    pub fn verify(
        &self,
        device_key: &PublicKey,
        server_key: &PublicKey,
        now: u64,
        skew_secs: u64,
    ) -> Result<(), OneSwipeError> {
        self.check_audience(server_key)?;
        let (signed, signature) = self.bytes.split_at(SIGNED_BYTES);
        device_key
            .verify_raw(&signing_message(server_key, signed), signature)
            .map_err(|_| OneSwipeError::BadSignature)?;
        if self.issued_at() > now + skew_secs {
            return Err(OneSwipeError::NotYetValid);
        }
        if now > self.expires_at() {
            return Err(OneSwipeError::Expired);
        }
        Ok(())
    }

    fn version(&self) -> u8 {
        self.field(0, 1).first().copied().unwrap_or(0)
    }

    fn field(&self, start: usize, len: usize) -> &[u8] {
        self.bytes.get(start..start + len).unwrap_or_default()
    }

    fn u32_at(&self, start: usize) -> u32 {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.field(start, 4));
        u32::from_be_bytes(word)
    }
}

impl fmt::Debug for OneSwipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneSwipe")
            .field("serial", &self.serial())
            .field("issued_at", &self.issued_at())
            .field("lifetime_secs", &self.lifetime_secs())
            .finish_non_exhaustive()
    }
}

struct Writer<'a> {
    bytes: &'a mut [u8; PAYLOAD_BYTES],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, field: &[u8]) {
        if let Some(slot) = self.bytes.get_mut(self.at..self.at + field.len()) {
            slot.copy_from_slice(field);
            self.at += field.len();
        }
    }

    fn written(&self) -> &[u8] {
        self.bytes.get(..self.at).unwrap_or_default()
    }
}

fn signing_message(server_key: &PublicKey, signed: &[u8]) -> Vec<u8> {
    [DOMAIN, server_key.as_bytes(), signed].concat()
}

fn check_lifetime(lifetime_secs: u8) -> Result<(), OneSwipeError> {
    if (1..=MAX_LIFETIME_SECS).contains(&lifetime_secs) {
        Ok(())
    } else {
        Err(OneSwipeError::InvalidLifetime(lifetime_secs))
    }
}

fn serial_bytes(serial: &str) -> Result<[u8; SERIAL_BYTES], OneSwipeError> {
    let invalid = || OneSwipeError::InvalidSerial(serial.to_owned());
    let random = serial.strip_prefix(PUSH_SERIAL_PREFIX).ok_or_else(invalid)?;
    let decoded = data_encoding::BASE32_NOPAD.decode(random.as_bytes()).map_err(|_| invalid())?;
    decoded.as_slice().try_into().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::{Algorithm, Digits, Period, totp};
    use crate::secret::SecretBytes;
    use proptest::prelude::*;

    const NOW: u64 = 1_790_000_000;
    const SKEW: u64 = DEFAULT_CLOCK_SKEW_SECS;
    const SERIAL: &str = "PUSH-ABCDEFGH";

    struct Fixture {
        device: KeyPair,
        server: KeyPair,
        otp: OtpCode,
    }

    fn fixture() -> Fixture {
        let seed = SecretBytes::from_slice(b"12345678901234567890");
        let otp = totp(&seed, Algorithm::Sha1, Digits::new(6).unwrap(), Period::new(30).unwrap(), NOW);
        Fixture { device: KeyPair::generate().unwrap(), server: KeyPair::generate().unwrap(), otp }
    }

    fn make(f: &Fixture, issued_at: u64, lifetime_secs: u8) -> OneSwipe {
        let request =
            Request { serial: SERIAL, server_key: &f.server.public(), otp: &f.otp, issued_at, lifetime_secs };
        OneSwipe::sign(&request, &f.device).unwrap()
    }

    fn reencode(bytes: &[u8]) -> String {
        data_encoding::BASE32_NOPAD.encode(bytes)
    }

    #[test]
    fn round_trip_through_text() {
        let f = fixture();
        let made = make(&f, NOW, DEFAULT_LIFETIME_SECS);
        let text = made.to_text();
        assert_eq!(text.expose().len(), TEXT_CHARS);
        assert!(text.expose().bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        let parsed = OneSwipe::parse(text.expose()).unwrap();
        assert_eq!(parsed, made);
        assert_eq!(parsed.serial(), SERIAL);
        assert_eq!(parsed.issued_at(), NOW);
        assert_eq!(parsed.expires_at(), NOW + 30);
        assert_eq!(parsed.otp(6).expose(), f.otp.expose());
        parsed.verify(&f.device.public(), &f.server.public(), NOW, SKEW).unwrap();
        assert!(OneSwipe::parse(&format!("  {}\n", text.expose().to_lowercase())).is_ok());
    }

    #[test]
    fn every_payload_is_unique() {
        let f = fixture();
        assert_ne!(make(&f, NOW, 30).nonce(), make(&f, NOW, 30).nonce());
    }

    #[test]
    fn fits_a_version_6_qr_code_at_ecc_m_where_base64_would_not() {
        let made = make(&fixture(), NOW, 30);
        let version = |text: &str| {
            qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).unwrap().version()
        };
        assert_eq!(version(made.to_text().expose()), qrcode::Version::Normal(6));
        let base64 = data_encoding::BASE64URL_NOPAD.encode(&made.bytes);
        assert!(matches!(version(&base64), qrcode::Version::Normal(v) if v >= 7));
    }

    #[test]
    fn debug_output_hides_the_code() {
        let f = fixture();
        let made = make(&f, NOW, 30);
        let debug = format!("{made:?}");
        assert!(debug.contains(SERIAL) && !debug.contains(made.to_text().expose()));
        assert!(!debug.contains(f.otp.expose()));
    }

    #[test]
    fn text_that_is_not_base32_is_not_one_swipe() {
        assert_eq!(OneSwipe::parse("otpauth://totp/x?secret=AAAA"), Err(OneSwipeError::NotOneSwipe));
        assert_eq!(OneSwipe::parse(""), Err(OneSwipeError::WrongLength(0)));
    }

    #[test]
    fn truncated_payloads_are_the_wrong_length() {
        let text = make(&fixture(), NOW, 30).to_text();
        let bytes = data_encoding::BASE32_NOPAD.decode(text.expose().as_bytes()).unwrap();
        assert_eq!(OneSwipe::parse(&reencode(&bytes[..60])), Err(OneSwipeError::WrongLength(60)));
    }

    #[test]
    fn unknown_versions_are_refused() {
        let mut bytes = make(&fixture(), NOW, 30).bytes;
        bytes[0] = 2;
        assert_eq!(OneSwipe::parse(&reencode(&bytes)), Err(OneSwipeError::UnsupportedVersion(2)));
    }

    #[test]
    fn lifetimes_are_bounded() {
        let f = fixture();
        let server_key = f.server.public();
        let request = |lifetime_secs| Request {
            serial: SERIAL,
            server_key: &server_key,
            otp: &f.otp,
            issued_at: NOW,
            lifetime_secs,
        };
        for lifetime in [0, MAX_LIFETIME_SECS + 1] {
            assert_eq!(
                OneSwipe::sign(&request(lifetime), &f.device),
                Err(OneSwipeError::InvalidLifetime(lifetime))
            );
        }
        let mut bytes = make(&f, NOW, 30).bytes;
        bytes[10] = 200;
        assert_eq!(OneSwipe::parse(&reencode(&bytes)), Err(OneSwipeError::InvalidLifetime(200)));
    }

    #[test]
    fn only_push_serials_and_numeric_codes_can_sign() {
        let f = fixture();
        let server_key = f.server.public();
        for serial in ["TOTP-ABCDEFGH", "PUSH-ABC", "PUSH-abcdefgh!"] {
            let request =
                Request { serial, server_key: &server_key, otp: &f.otp, issued_at: NOW, lifetime_secs: 30 };
            assert_eq!(OneSwipe::sign(&request, &f.device), Err(OneSwipeError::InvalidSerial(serial.into())));
        }
        let steam = crate::otp::steam(&SecretBytes::from_slice(b"seed"), Period::new(30).unwrap(), NOW);
        let request = Request {
            serial: SERIAL,
            server_key: &server_key,
            otp: &steam,
            issued_at: NOW,
            lifetime_secs: 30,
        };
        assert_eq!(OneSwipe::sign(&request, &f.device), Err(OneSwipeError::NonNumericCode));
        let far = Request { issued_at: u64::from(u32::MAX) + 1, ..request };
        let far = Request { otp: &f.otp, ..far };
        assert_eq!(OneSwipe::sign(&far, &f.device), Err(OneSwipeError::ClockOutOfRange));
    }

    #[test]
    fn another_servers_payload_is_the_wrong_audience() {
        let f = fixture();
        let other = KeyPair::generate().unwrap().public();
        let made = make(&f, NOW, 30);
        assert_eq!(made.verify(&f.device.public(), &other, NOW, SKEW), Err(OneSwipeError::WrongAudience));
    }

    #[test]
    fn tampering_and_other_devices_break_the_signature() {
        let f = fixture();
        let made = make(&f, NOW, 30);
        let stranger = KeyPair::generate().unwrap().public();
        assert_eq!(made.verify(&stranger, &f.server.public(), NOW, SKEW), Err(OneSwipeError::BadSignature));
        let mut bytes = made.bytes;
        bytes[25] ^= 1;
        let tampered = OneSwipe::parse(&reencode(&bytes)).unwrap();
        assert_eq!(
            tampered.verify(&f.device.public(), &f.server.public(), NOW, SKEW),
            Err(OneSwipeError::BadSignature)
        );
    }

    #[test]
    fn clock_skew_widens_the_start_of_validity_never_its_end() {
        let f = fixture();
        let (device, server) = (f.device.public(), f.server.public());
        let made = make(&f, NOW, 30);
        assert_eq!(made.verify(&device, &server, NOW + 30, SKEW), Ok(()));
        assert_eq!(
            made.verify(&device, &server, NOW + 31, SKEW),
            Err(OneSwipeError::Expired),
            "a 30 s code is refused after 30 s whatever the skew"
        );
        assert_eq!(made.verify(&device, &server, NOW - SKEW, SKEW), Ok(()));
        assert_eq!(made.verify(&device, &server, NOW - SKEW - 1, SKEW), Err(OneSwipeError::NotYetValid));
        assert_eq!(made.verify(&device, &server, NOW + 31, 0), Err(OneSwipeError::Expired));
    }

    #[test]
    fn errors_are_classified() {
        use crate::error::{Classify, ErrorCode};
        assert_eq!(OneSwipeError::Expired.code(), ErrorCode::Expired);
        assert_eq!(OneSwipeError::WrongAudience.code(), ErrorCode::Crypto);
        assert_eq!(OneSwipeError::NotOneSwipe.code(), ErrorCode::InvalidInput);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_decoder_never_panics_on_any_text(text in ".{0,300}") {
            let _ = OneSwipe::parse(&text);
        }

        #[test]
        fn the_decoder_never_panics_on_base32_of_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = OneSwipe::parse(&reencode(&bytes));
        }

        #[test]
        fn no_single_byte_change_still_verifies(index in 0..PAYLOAD_BYTES, flip in 1u8..=255) {
            let f = fixture();
            let mut bytes = make(&f, NOW, 30).bytes;
            bytes[index] ^= flip;
            if let Ok(changed) = OneSwipe::parse(&reencode(&bytes)) {
                prop_assert!(changed.verify(&f.device.public(), &f.server.public(), NOW, SKEW).is_err());
            }
        }
    }
}
