//! One-time passwords: HOTP (RFC 4226), TOTP (RFC 6238) and Steam Guard codes.
//!
//! HMAC and the time-step arithmetic come from `totp-rs`; this module adds what it lacks
//! (HOTP, 10-digit codes, seeds under 128 bits) and the verification helpers a server needs:
//! every step of the window is evaluated and compared in constant time, and the matching step
//! or counter is reported so that the caller can store it for replay protection.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::secret::{SecretBytes, SecretString};

/// The HMAC hash function of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Algorithm {
    /// HMAC-SHA-1, the default of RFC 4226 and of nearly every issuer.
    #[default]
    #[serde(rename = "SHA1")]
    Sha1,
    /// HMAC-SHA-256 (RFC 6238).
    #[serde(rename = "SHA256")]
    Sha256,
    /// HMAC-SHA-512 (RFC 6238).
    #[serde(rename = "SHA512")]
    Sha512,
}

impl Algorithm {
    /// The name used in otpauth URIs: `SHA1`, `SHA256`, `SHA512`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses a name in any case, with or without a dash (`sha-256`).
    pub fn parse(name: &str) -> Result<Self, OtpError> {
        match name.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(OtpError::UnsupportedAlgorithm(truncate_for_message(name))),
        }
    }

    fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Self::Sha1 => totp_rs::Algorithm::SHA1,
            Self::Sha256 => totp_rs::Algorithm::SHA256,
            Self::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Number of decimal digits of a code: 6 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Digits(u8);

impl Digits {
    /// The usual six digits.
    pub const SIX: Self = Self(6);
    /// Fewest digits accepted (RFC 4226 §5.3).
    pub const MIN: u8 = 6;
    /// Most digits accepted: a 31-bit truncated HMAC has at most 10 decimal digits.
    pub const MAX: u8 = 10;

    /// Validates a digit count.
    pub fn new(digits: u8) -> Result<Self, OtpError> {
        if (Self::MIN..=Self::MAX).contains(&digits) {
            Ok(Self(digits))
        } else {
            Err(OtpError::InvalidDigits(digits.to_string()))
        }
    }

    /// The count.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Digits {
    fn default() -> Self {
        Self::SIX
    }
}

impl TryFrom<u8> for Digits {
    type Error = OtpError;
    fn try_from(value: u8) -> Result<Self, OtpError> {
        Self::new(value)
    }
}

impl From<Digits> for u8 {
    fn from(value: Digits) -> u8 {
        value.0
    }
}

/// Length of a TOTP time step in seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Period(u32);

impl Period {
    /// The usual 30 seconds.
    pub const THIRTY_SECONDS: Self = Self(30);

    /// Validates a period.
    pub fn new(seconds: u32) -> Result<Self, OtpError> {
        if seconds == 0 { Err(OtpError::InvalidPeriod("0".into())) } else { Ok(Self(seconds)) }
    }

    /// Seconds.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The time step that contains `unix_time`.
    pub fn step_at(self, unix_time: u64) -> u64 {
        unix_time / u64::from(self.0)
    }

    /// Seconds until the step containing `unix_time` ends (1..=period).
    pub fn seconds_remaining(self, unix_time: u64) -> u32 {
        let elapsed = unix_time % u64::from(self.0);
        self.0 - u32::try_from(elapsed).unwrap_or(0)
    }
}

impl Default for Period {
    fn default() -> Self {
        Self::THIRTY_SECONDS
    }
}

impl TryFrom<u32> for Period {
    type Error = OtpError;
    fn try_from(value: u32) -> Result<Self, OtpError> {
        Self::new(value)
    }
}

impl From<Period> for u32 {
    fn from(value: Period) -> u32 {
        value.0
    }
}

/// How a token turns its seed into codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OtpMethod {
    /// Time-based codes (RFC 6238).
    Totp {
        /// HMAC hash.
        algorithm: Algorithm,
        /// Decimal digits.
        digits: Digits,
        /// Time step.
        period: Period,
    },
    /// Counter-based codes (RFC 4226).
    Hotp {
        /// HMAC hash.
        algorithm: Algorithm,
        /// Decimal digits.
        digits: Digits,
        /// The counter of the next code to show.
        counter: u64,
    },
    /// Steam Guard: TOTP with HMAC-SHA-1 written as five characters of Steam's alphabet.
    Steam {
        /// Time step (Steam uses 30 s).
        period: Period,
    },
}

impl OtpMethod {
    /// The default TOTP: SHA-1, 6 digits, 30 seconds.
    pub fn default_totp() -> Self {
        Self::Totp { algorithm: Algorithm::Sha1, digits: Digits::SIX, period: Period::THIRTY_SECONDS }
    }

    /// The short name: `totp`, `hotp` or `steam`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Totp { .. } => "totp",
            Self::Hotp { .. } => "hotp",
            Self::Steam { .. } => "steam",
        }
    }

    /// The HMAC hash (always SHA-1 for Steam).
    pub fn algorithm(&self) -> Algorithm {
        match *self {
            Self::Totp { algorithm, .. } | Self::Hotp { algorithm, .. } => algorithm,
            Self::Steam { .. } => Algorithm::Sha1,
        }
    }

    /// The code length in characters.
    pub fn code_length(&self) -> u8 {
        match *self {
            Self::Totp { digits, .. } | Self::Hotp { digits, .. } => digits.get(),
            Self::Steam { .. } => STEAM_CODE_LENGTH,
        }
    }

    /// The time step, for time-based methods.
    pub fn period(&self) -> Option<Period> {
        match *self {
            Self::Totp { period, .. } | Self::Steam { period } => Some(period),
            Self::Hotp { .. } => None,
        }
    }

    /// The code this method shows at `unix_time`: the current time step's code for time-based
    /// methods, the code for the stored counter for HOTP (the caller then advances the counter).
    pub fn code_at(&self, secret: &SecretBytes, unix_time: u64) -> OtpCode {
        match *self {
            Self::Totp { algorithm, digits, period } => totp(secret, algorithm, digits, period, unix_time),
            Self::Hotp { algorithm, digits, counter } => hotp(secret, algorithm, digits, counter),
            Self::Steam { period } => steam(secret, period, unix_time),
        }
    }
}

/// A one-time code. Redacted in `Debug`; print it with [`OtpCode::expose`] where showing it is the point.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(SecretString);

impl OtpCode {
    /// The code's characters.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode([REDACTED])")
    }
}

/// Unix seconds now, the clock codes are made and checked against (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// HOTP (RFC 4226 §5.3): HMAC of the counter, dynamic truncation, `digits` decimal digits.
pub fn hotp(secret: &SecretBytes, algorithm: Algorithm, digits: Digits, counter: u64) -> OtpCode {
    Hmac::new(secret, algorithm, 1).decimal_code(counter, digits)
}

/// TOTP (RFC 6238 §4): HOTP of the number of `period`s since the Unix epoch.
pub fn totp(
    secret: &SecretBytes,
    algorithm: Algorithm,
    digits: Digits,
    period: Period,
    unix_time: u64,
) -> OtpCode {
    Hmac::new(secret, algorithm, period.get()).decimal_code(unix_time, digits)
}

/// Steam Guard code: five characters from `23456789BCDFGHJKMNPQRTVWXY`.
pub fn steam(secret: &SecretBytes, period: Period, unix_time: u64) -> OtpCode {
    let generator = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::Steam)
        .with_digits(STEAM_CODE_LENGTH)
        .with_step_duration(u64::from(period.get()))
        .with_secret(secret.expose())
        .build_noncompliant();
    let mut text = Zeroizing::new(String::with_capacity(usize::from(STEAM_CODE_LENGTH)));
    let _ = write!(text, "{}", generator.generate(unix_time));
    OtpCode(SecretString::from(text))
}

/// How far around the current time step a TOTP verifier looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpWindow {
    /// Steps before the current one (clock behind or network delay).
    pub behind: u32,
    /// Steps after the current one (clock ahead).
    pub ahead: u32,
}

impl TotpWindow {
    /// ±1 step, RFC 6238 §5.2's recommendation.
    pub const RFC_DEFAULT: Self = Self { behind: 1, ahead: 1 };
}

/// The step a TOTP code matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpMatch {
    /// The absolute time step (unix_time / period) whose code matched. Store it: any code at or
    /// before this step must be refused from now on.
    pub step: u64,
    /// Matched step minus current step: negative when the token's clock is behind.
    pub drift: i64,
}

/// Checks a TOTP code against every step of `window` around `unix_time`.
///
/// All steps are computed and compared in constant time whatever matches, so timing does not
/// reveal which step (or whether any) matched. A candidate of the wrong length or with
/// non-digits never matches.
pub fn verify_totp(
    secret: &SecretBytes,
    algorithm: Algorithm,
    digits: Digits,
    period: Period,
    candidate: &str,
    unix_time: u64,
    window: TotpWindow,
) -> Option<TotpMatch> {
    let candidate = parse_decimal(candidate, digits)?;
    let hmac = Hmac::new(secret, algorithm, period.get());
    let current = period.step_at(unix_time);
    let first = current.saturating_sub(u64::from(window.behind));
    let last = current.saturating_add(u64::from(window.ahead));
    let period_secs = u64::from(period.get());
    let step = constant_time_search(first..=last, |step| {
        hmac.decimal_value(step.saturating_mul(period_secs), digits).ct_eq(&candidate)
    })?;
    let drift = i64::try_from(step).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(i64::MAX);
    Some(TotpMatch { step, drift })
}

/// Checks an HOTP code against counters `counter ..= counter + look_ahead` (RFC 4226 §7.2).
///
/// Returns the matching counter; the caller stores `matched + 1` as the next counter.
pub fn verify_hotp(
    secret: &SecretBytes,
    algorithm: Algorithm,
    digits: Digits,
    candidate: &str,
    counter: u64,
    look_ahead: u32,
) -> Option<u64> {
    let candidate = parse_decimal(candidate, digits)?;
    let hmac = Hmac::new(secret, algorithm, 1);
    let last = counter.saturating_add(u64::from(look_ahead));
    constant_time_search(counter..=last, |c| hmac.decimal_value(c, digits).ct_eq(&candidate))
}

/// Checks a Steam Guard code against every step of `window` around `unix_time`.
pub fn verify_steam(
    secret: &SecretBytes,
    period: Period,
    candidate: &str,
    unix_time: u64,
    window: TotpWindow,
) -> Option<TotpMatch> {
    let current = period.step_at(unix_time);
    let first = current.saturating_sub(u64::from(window.behind));
    let last = current.saturating_add(u64::from(window.ahead));
    let period_secs = u64::from(period.get());
    let candidate = candidate.to_ascii_uppercase();
    let step = constant_time_search(first..=last, |step| {
        steam(secret, period, step.saturating_mul(period_secs))
            .expose()
            .as_bytes()
            .ct_eq(candidate.as_bytes())
    })?;
    let drift = i64::try_from(step).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(i64::MAX);
    Some(TotpMatch { step, drift })
}

/// Removes the spaces and dashes people type inside codes (`123 456`, `123-456`).
pub fn normalize_code_input(input: &str) -> SecretString {
    SecretString::new(input.chars().filter(|c| !matches!(c, ' ' | '-' | '\t')).collect())
}

/// Why OTP parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtpError {
    /// Not SHA1, SHA256 or SHA512.
    #[error("unsupported algorithm '{0}' (expected SHA1, SHA256 or SHA512)")]
    UnsupportedAlgorithm(String),
    /// Outside 6..=10.
    #[error("invalid number of digits '{0}' (expected 6 to 10)")]
    InvalidDigits(String),
    /// Zero or not a number.
    #[error("invalid period '{0}' (expected a whole number of seconds, at least 1)")]
    InvalidPeriod(String),
}

const STEAM_CODE_LENGTH: u8 = 5;

/// Keeps user-supplied text in error messages short and printable.
pub(crate) fn truncate_for_message(text: &str) -> String {
    text.chars().take(32).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Evaluates `matches` at every point of `range`, whatever it returns, and returns the first
/// matching point without branching on any comparison. The first, because codes collide by chance
/// (a 6-digit code repeats within 11 counters about once in 100,000): taking a later one would
/// move an HOTP counter past codes the device has not shown yet.
fn constant_time_search(
    range: std::ops::RangeInclusive<u64>,
    matches: impl Fn(u64) -> subtle::Choice,
) -> Option<u64> {
    let mut found = subtle::Choice::from(0);
    let mut matched = 0u64;
    for point in range {
        let equal = matches(point);
        matched.conditional_assign(&point, equal & !found);
        found |= equal;
    }
    bool::from(found).then_some(matched)
}

/// A candidate code of exactly `digits` ASCII digits, as a number; anything else can never match.
fn parse_decimal(candidate: &str, digits: Digits) -> Option<u64> {
    let bytes = candidate.as_bytes();
    if bytes.len() != usize::from(digits.get()) || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0')))
}

/// A keyed HMAC over a counter, through `totp-rs`. `step` 1 makes totp-rs's "time" the counter itself.
struct Hmac(totp_rs::Totp);

impl Hmac {
    fn new(secret: &SecretBytes, algorithm: Algorithm, step: u32) -> Self {
        Self(
            totp_rs::Builder::new()
                .with_algorithm(algorithm.to_totp_rs())
                .with_step_duration(u64::from(step))
                .with_secret(secret.expose())
                .build_noncompliant(),
        )
    }

    /// RFC 4226 §5.3 dynamic truncation of the HMAC at `time` (a counter when step is 1),
    /// reduced to `digits` decimal digits. totp-rs panics above 9 digits, so the truncation is
    /// done here for all lengths.
    fn decimal_value(&self, time: u64, digits: Digits) -> u64 {
        let mac = self.0.sign(time);
        let mac = mac.as_ref();
        let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
        let mut word = [0u8; 4];
        if let Some(bytes) = mac.get(offset..offset + 4) {
            word.copy_from_slice(bytes);
        }
        u64::from(u32::from_be_bytes(word) & 0x7fff_ffff) % 10u64.pow(u32::from(digits.get()))
    }

    /// [`Hmac::decimal_value`] written as `digits` zero-padded digits.
    fn decimal_code(&self, time: u64, digits: Digits) -> OtpCode {
        let width = usize::from(digits.get());
        let mut text = Zeroizing::new(String::with_capacity(width));
        let _ = write!(text, "{:0width$}", self.decimal_value(time, digits));
        OtpCode(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC4226_KEY: &[u8] = b"12345678901234567890";

    fn secret(bytes: &[u8]) -> SecretBytes {
        SecretBytes::from_slice(bytes)
    }

    fn digits(n: u8) -> Digits {
        Digits::new(n).unwrap()
    }

    /// RFC 4226 Appendix D: HOTP values and the truncated 31-bit decimals behind them.
    const RFC4226_VECTORS: [(u64, &str, u32); 10] = [
        (0, "755224", 1_284_755_224),
        (1, "287082", 1_094_287_082),
        (2, "359152", 137_359_152),
        (3, "969429", 1_726_969_429),
        (4, "338314", 1_640_338_314),
        (5, "254676", 868_254_676),
        (6, "287922", 1_918_287_922),
        (7, "162583", 82_162_583),
        (8, "399871", 673_399_871),
        (9, "520489", 645_520_489),
    ];

    #[test]
    fn rfc4226_appendix_d() {
        for (counter, expected, _) in RFC4226_VECTORS {
            let code = hotp(&secret(RFC4226_KEY), Algorithm::Sha1, Digits::SIX, counter);
            assert_eq!(code.expose(), expected, "counter {counter}");
        }
    }

    #[test]
    fn ten_digit_codes_are_the_whole_truncated_value() {
        for (counter, _, truncated) in RFC4226_VECTORS {
            let code = hotp(&secret(RFC4226_KEY), Algorithm::Sha1, digits(10), counter);
            assert_eq!(code.expose(), format!("{truncated:010}"), "counter {counter}");
            let nine = hotp(&secret(RFC4226_KEY), Algorithm::Sha1, digits(9), counter);
            assert_eq!(nine.expose(), format!("{:09}", truncated % 1_000_000_000));
        }
    }

    /// RFC 6238 Appendix B, with erratum 2866's 32- and 64-byte seeds for SHA-256 and SHA-512.
    #[test]
    fn rfc6238_appendix_b() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, want1, want256, want512) in vectors {
            for (key, algorithm, want) in [
                (&sha1, Algorithm::Sha1, want1),
                (&sha256, Algorithm::Sha256, want256),
                (&sha512, Algorithm::Sha512, want512),
            ] {
                let code = totp(&secret(key), algorithm, digits(8), Period::THIRTY_SECONDS, time);
                assert_eq!(code.expose(), want, "{algorithm} at {time}");
            }
        }
    }

    #[test]
    fn seeds_shorter_than_128_bits_work() {
        let eighty_bits = SecretBytes::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(eighty_bits.bits(), 80);
        let code = totp(&eighty_bits, Algorithm::Sha1, Digits::SIX, Period::THIRTY_SECONDS, 1_700_000_000);
        // `oathtool --totp -b JBSWY3DPEHPK3PXP -N @1700000000`
        assert_eq!(code.expose(), "324550");
    }

    /// Computed with ValvePython `steam` 1.4.4, `steam.guard.generate_twofactor_code_for_time`.
    #[test]
    fn steam_codes_match_an_independent_implementation() {
        let seed = secret(b"12345678901234567890");
        for (time, expected) in
            [(0, "GG5F5"), (1_234_567_890, "VHHQY"), (1_700_000_000, "R87JJ"), (2_000_000_000, "9N776")]
        {
            assert_eq!(steam(&seed, Period::THIRTY_SECONDS, time).expose(), expected, "at {time}");
        }
    }

    #[test]
    fn steam_codes_use_the_steam_alphabet() {
        let seed = secret(b"12345678901234567890");
        let mut seen = std::collections::HashSet::new();
        for i in 0..200u64 {
            let code = steam(&seed, Period::THIRTY_SECONDS, i * 30);
            assert_eq!(code.expose().len(), 5);
            assert!(code.expose().chars().all(|c| "23456789BCDFGHJKMNPQRTVWXY".contains(c)));
            seen.insert(code.expose().to_string());
        }
        assert!(seen.len() > 190, "codes should vary between steps");
        // Steam codes are derived from the same truncated value as a TOTP at that step.
        let at = 1_234_567_890;
        let code = steam(&seed, Period::THIRTY_SECONDS, at);
        let decimal = totp(&seed, Algorithm::Sha1, digits(10), Period::THIRTY_SECONDS, at);
        let mut value: u32 = decimal.expose().parse().unwrap();
        let alphabet = b"23456789BCDFGHJKMNPQRTVWXY";
        let expected: String = (0..5)
            .map(|_| {
                let c = alphabet[(value % 26) as usize] as char;
                value /= 26;
                c
            })
            .collect();
        assert_eq!(code.expose(), expected);
    }

    #[test]
    fn totp_verification_reports_the_matching_step() {
        let seed = secret(RFC4226_KEY);
        let period = Period::THIRTY_SECONDS;
        let now = 1_700_000_015;
        let current = period.step_at(now);
        for offset in [-1i64, 0, 1] {
            let at = (current as i64 + offset) as u64 * 30;
            let code = totp(&seed, Algorithm::Sha1, Digits::SIX, period, at);
            let matched = verify_totp(
                &seed,
                Algorithm::Sha1,
                Digits::SIX,
                period,
                code.expose(),
                now,
                TotpWindow::RFC_DEFAULT,
            )
            .unwrap();
            assert_eq!(matched, TotpMatch { step: (current as i64 + offset) as u64, drift: offset });
        }
        let too_old = totp(&seed, Algorithm::Sha1, Digits::SIX, period, (current - 2) * 30);
        assert_eq!(
            verify_totp(
                &seed,
                Algorithm::Sha1,
                Digits::SIX,
                period,
                too_old.expose(),
                now,
                TotpWindow::RFC_DEFAULT
            ),
            None
        );
        let wide = TotpWindow { behind: 2, ahead: 0 };
        assert_eq!(
            verify_totp(&seed, Algorithm::Sha1, Digits::SIX, period, too_old.expose(), now, wide)
                .map(|m| m.drift),
            Some(-2)
        );
    }

    #[test]
    fn verification_rejects_malformed_candidates() {
        let seed = secret(RFC4226_KEY);
        for candidate in ["", "75522", "7552240", "75522a", "+55224", " 755224"] {
            assert_eq!(
                verify_hotp(&seed, Algorithm::Sha1, Digits::SIX, candidate, 0, 3),
                None,
                "{candidate:?}"
            );
        }
    }

    #[test]
    fn hotp_verification_looks_ahead_only() {
        let seed = secret(RFC4226_KEY);
        assert_eq!(verify_hotp(&seed, Algorithm::Sha1, Digits::SIX, "969429", 0, 3), Some(3));
        assert_eq!(verify_hotp(&seed, Algorithm::Sha1, Digits::SIX, "969429", 0, 2), None);
        assert_eq!(verify_hotp(&seed, Algorithm::Sha1, Digits::SIX, "287082", 2, 5), None);
        assert_eq!(verify_hotp(&seed, Algorithm::Sha1, Digits::SIX, "287082", u64::MAX, 5), None);
    }

    /// A seed whose HOTP codes for counters 0 and 1 are the same (found by search).
    #[test]
    fn colliding_codes_match_the_earliest_counter() {
        let seed = SecretBytes::from_slice(b"tessera-collision-0099340");
        assert_eq!(
            hotp(&seed, Algorithm::Sha1, Digits::SIX, 0),
            hotp(&seed, Algorithm::Sha1, Digits::SIX, 1)
        );
        assert_eq!(verify_hotp(&seed, Algorithm::Sha1, Digits::SIX, "953511", 0, 5), Some(0));
        assert_eq!(verify_hotp(&seed, Algorithm::Sha1, Digits::SIX, "953511", 1, 5), Some(1));
    }

    #[test]
    fn steam_verification_is_case_insensitive() {
        let seed = secret(RFC4226_KEY);
        let now = 1_700_000_000;
        let code = steam(&seed, Period::THIRTY_SECONDS, now);
        let lower = code.expose().to_ascii_lowercase();
        let matched =
            verify_steam(&seed, Period::THIRTY_SECONDS, &lower, now, TotpWindow::RFC_DEFAULT).unwrap();
        assert_eq!(matched.drift, 0);
    }

    #[test]
    fn window_at_the_epoch_does_not_underflow() {
        let seed = secret(RFC4226_KEY);
        let code = totp(&seed, Algorithm::Sha1, Digits::SIX, Period::THIRTY_SECONDS, 0);
        let matched = verify_totp(
            &seed,
            Algorithm::Sha1,
            Digits::SIX,
            Period::THIRTY_SECONDS,
            code.expose(),
            5,
            TotpWindow::RFC_DEFAULT,
        );
        assert_eq!(matched, Some(TotpMatch { step: 0, drift: 0 }));
    }

    #[test]
    fn parameters_are_validated() {
        assert!(Digits::new(5).is_err());
        assert!(Digits::new(11).is_err());
        assert!(Period::new(0).is_err());
        assert_eq!(Algorithm::parse("sha-256").unwrap(), Algorithm::Sha256);
        assert_eq!(
            Algorithm::parse("md5").unwrap_err().to_string(),
            "unsupported algorithm 'md5' (expected SHA1, SHA256 or SHA512)"
        );
    }

    #[test]
    fn seconds_remaining_counts_down() {
        let period = Period::new(30).unwrap();
        assert_eq!(period.seconds_remaining(60), 30);
        assert_eq!(period.seconds_remaining(89), 1);
        assert_eq!(Period::new(1).unwrap().seconds_remaining(12345), 1);
    }

    #[test]
    fn normalize_strips_separators() {
        assert_eq!(normalize_code_input(" 123 456 ").expose(), "123456");
        assert_eq!(normalize_code_input("123-456").expose(), "123456");
    }

    #[test]
    fn code_debug_is_redacted() {
        let code = hotp(&secret(RFC4226_KEY), Algorithm::Sha1, Digits::SIX, 0);
        assert!(!format!("{code:?}").contains("755224"));
    }
}
