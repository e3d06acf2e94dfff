//! `otpauth://` URIs, Google's Key Uri Format, as found in enrollment QR codes and exports.
//!
//! Parsing is strict about what would make codes wrong (bad base32, unknown algorithms, digits
//! outside 6–10) and lenient about what people meet in the wild (lower-case or padded base32,
//! a missing HOTP counter, `+` for spaces, Steam tokens written either as `otpauth://steam/` or
//! with `encoder=steam`). Every refusal is a typed [`UriError`] naming the part that is wrong;
//! messages never repeat the secret.
//!
//! When the label's issuer prefix and the `issuer` parameter disagree, the parameter wins (it is
//! the unambiguous one, and what Google's spec recommends relying on) and a
//! [`UriWarning::IssuerMismatch`] reports the conflict. Unknown parameters are kept, in order,
//! and written back when the URI is rebuilt, so an import/export round trip loses nothing.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::otp::{Algorithm, Digits, OtpError, OtpMethod, Period, truncate_for_message};
use crate::secret::{Base32Error, SecretBytes, SecretString};

/// Longest URI accepted, in bytes.
pub const MAX_URI_LENGTH: usize = 8 * 1024;
/// Longest issuer or account name, in characters.
pub const MAX_NAME_LENGTH: usize = 256;
/// Longest seed, in bytes.
pub const MAX_SECRET_BYTES: usize = 1024;
/// Most unknown parameters kept.
pub const MAX_EXTRA_PARAMETERS: usize = 32;
/// Seeds below this many bits are accepted with a [`UriWarning::ShortSecret`] (RFC 4226 §4 asks for 128).
pub const RECOMMENDED_SECRET_BITS: usize = 128;

/// Everything an otpauth URI says about one token. Construct it with [`OtpAuth::new`] or
/// [`OtpAuth::parse`], which enforce that it can always be written back as a URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpAuth {
    issuer: Option<String>,
    account: String,
    secret: SecretBytes,
    method: OtpMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    extra: Vec<(String, String)>,
}

/// A parsed URI and what the parser noticed but accepted.
#[derive(Debug)]
pub struct ParsedUri {
    /// The token.
    pub otp: OtpAuth,
    /// Accepted oddities worth telling the user about.
    pub warnings: Vec<UriWarning>,
}

/// Something odd but acceptable in a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriWarning {
    /// The label said one issuer and the `issuer` parameter another; the parameter was used.
    IssuerMismatch {
        /// Issuer from the label (`Prefix:account`).
        label_prefix: String,
        /// Issuer from the `issuer` parameter (the one kept).
        parameter: String,
    },
    /// An HOTP URI without `counter`; 0 was assumed.
    MissingCounter,
    /// The seed is shorter than [`RECOMMENDED_SECRET_BITS`].
    ShortSecret {
        /// Seed length in bits.
        bits: usize,
    },
    /// A known parameter that does not apply to this kind of token (e.g. `counter` on TOTP) was dropped.
    IgnoredParameter(String),
}

impl std::fmt::Display for UriWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IssuerMismatch { label_prefix, parameter } => write!(
                f,
                "the label says issuer '{label_prefix}' but the issuer parameter says '{parameter}'; using '{parameter}'"
            ),
            Self::MissingCounter => f.write_str("the HOTP URI has no counter; starting at 0"),
            Self::ShortSecret { bits } => write!(
                f,
                "the secret is only {bits} bits long ({RECOMMENDED_SECRET_BITS} or more is recommended)"
            ),
            Self::IgnoredParameter(name) => {
                write!(f, "the '{name}' parameter does not apply to this kind of token and was ignored")
            }
        }
    }
}

/// Why a URI (or the fields of a token) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The text is a URI of another well-known scheme (others are not named, so that a pasted
    /// secret is never repeated).
    #[error("not an otpauth URI: it is a '{0}:' URI")]
    OtherScheme(String),
    /// The text is not a URI at all.
    #[error("not an otpauth URI (expected otpauth://TYPE/LABEL?secret=...)")]
    NotAUri,
    /// The text looks like a bare base32 secret rather than a URI.
    #[error(
        "not an otpauth URI: this looks like a bare secret key; add it with its issuer and label instead"
    )]
    BareSecret,
    /// A Google Authenticator export (`otpauth-migration://`).
    #[error(
        "Google Authenticator export codes (otpauth-migration://) are not supported; export each account as an otpauth:// URI"
    )]
    MigrationUnsupported,
    /// The type is not `totp`, `hotp` or `steam`.
    #[error("unknown token type '{0}' (expected totp, hotp or steam)")]
    UnknownType(String),
    /// No `/label` after the type.
    #[error("the URI has no label (expected otpauth://TYPE/LABEL?secret=...)")]
    MissingLabel,
    /// Neither an account name nor an issuer.
    #[error("the URI names no account and no issuer")]
    EmptyName,
    /// Percent-encoding that does not decode to UTF-8.
    #[error("the {0} is not valid percent-encoded UTF-8")]
    InvalidEncoding(&'static str),
    /// A field holds control characters.
    #[error("the {0} contains control characters")]
    ControlCharacter(&'static str),
    /// A field or the URI is too long.
    #[error("the {field} is too long (at most {max})")]
    TooLong {
        /// Which part.
        field: &'static str,
        /// Its limit.
        max: usize,
    },
    /// The issuer contains `:`, which the label uses as a separator.
    #[error("the issuer cannot contain ':'")]
    ColonInIssuer,
    /// An account name with `:` but no issuer would be read back as `issuer:account`.
    #[error("an account name containing ':' needs an issuer")]
    ColonInAccountWithoutIssuer,
    /// No `secret` parameter.
    #[error("the URI has no secret parameter")]
    MissingSecret,
    /// The secret is not base32.
    #[error("invalid secret: {0}")]
    InvalidSecret(#[source] Base32Error),
    /// The secret is longer than [`MAX_SECRET_BYTES`].
    #[error("the secret is longer than {MAX_SECRET_BYTES} bytes")]
    SecretTooLong,
    /// `algorithm`, `digits`, `period` or `counter` has a bad value.
    #[error("invalid {name} parameter: {source}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        #[source]
        source: OtpError,
    },
    /// `counter` is not a whole number.
    #[error("invalid counter parameter '{0}' (expected a whole number)")]
    InvalidCounter(String),
    /// A known parameter given twice.
    #[error("the {0} parameter appears more than once")]
    DuplicateParameter(String),
    /// More than [`MAX_EXTRA_PARAMETERS`] unknown parameters.
    #[error("the URI has too many unknown parameters (at most {MAX_EXTRA_PARAMETERS})")]
    TooManyParameters,
    /// A Steam token with a digit count or algorithm Steam does not use.
    #[error("Steam tokens always use 5 characters and SHA1")]
    InvalidSteamParameters,
    /// A picture held no QR code at all.
    #[error("no QR code found in the picture")]
    NoQrCode,
}

impl OtpAuth {
    /// A token from its parts, checked so that it can always be written as a URI and read back.
    pub fn new(
        issuer: Option<String>,
        account: String,
        secret: SecretBytes,
        method: OtpMethod,
    ) -> Result<Self, UriError> {
        let issuer = issuer.map(|i| i.trim().to_owned()).filter(|i| !i.is_empty());
        let otp = Self {
            issuer,
            account: account.trim().to_owned(),
            secret,
            method,
            image: None,
            extra: Vec::new(),
        };
        otp.validate()?;
        Ok(otp)
    }

    /// Parses an otpauth URI.
    pub fn parse(text: &str) -> Result<ParsedUri, UriError> {
        parse(text)
    }

    /// The issuer (service name), if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The account name (e.g. the user's email at the issuer).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// `issuer:label`, the issuer alone when the label is empty, or the label alone: how lists
    /// and error messages name a token.
    pub fn display_name(&self) -> String {
        display_name(self.issuer(), &self.account)
    }

    /// The seed.
    pub fn secret(&self) -> &SecretBytes {
        &self.secret
    }

    /// How codes are made.
    pub fn method(&self) -> &OtpMethod {
        &self.method
    }

    /// The `image` parameter (an icon URL), if any.
    pub fn image(&self) -> Option<&str> {
        self.image.as_deref()
    }

    /// Unknown parameters, kept in their original order.
    pub fn extra_parameters(&self) -> &[(String, String)] {
        &self.extra
    }

    /// Replaces the issuer and/or account name, keeping the token valid.
    pub fn rename(
        &mut self,
        issuer: Option<Option<String>>,
        account: Option<String>,
    ) -> Result<(), UriError> {
        let mut renamed = self.clone();
        if let Some(issuer) = issuer {
            renamed.issuer = issuer.map(|i| i.trim().to_owned()).filter(|i| !i.is_empty());
        }
        if let Some(account) = account {
            renamed.account = account.trim().to_owned();
        }
        renamed.validate()?;
        *self = renamed;
        Ok(())
    }

    /// Sets the icon URL.
    pub fn set_image(&mut self, image: Option<String>) -> Result<(), UriError> {
        if let Some(image) = &image {
            check_text("image", image, MAX_URI_LENGTH / 2)?;
        }
        self.image = image;
        Ok(())
    }

    /// For HOTP, sets the counter of the next code; other methods are left unchanged.
    pub fn set_counter(&mut self, next: u64) {
        if let OtpMethod::Hotp { counter, .. } = &mut self.method {
            *counter = next;
        }
    }

    /// Writes the token as an otpauth URI. The result carries the seed: treat it as a secret.
    pub fn to_uri(&self) -> SecretString {
        let mut uri = Zeroizing::new(String::with_capacity(self.uri_capacity()));
        let kind = match self.method {
            OtpMethod::Totp { .. } => "totp",
            OtpMethod::Hotp { .. } => "hotp",
            OtpMethod::Steam { .. } => "steam",
        };
        let _ = write!(uri, "otpauth://{kind}/");
        if let Some(issuer) = &self.issuer {
            let _ = write!(uri, "{}:", utf8_percent_encode(issuer, COMPONENT));
        }
        let _ = write!(
            uri,
            "{}?secret={}",
            utf8_percent_encode(&self.account, COMPONENT),
            &*self.secret.to_base32()
        );
        if let Some(issuer) = &self.issuer {
            let _ = write!(uri, "&issuer={}", utf8_percent_encode(issuer, COMPONENT));
        }
        match self.method {
            OtpMethod::Totp { algorithm, digits, period } => {
                let _ = write!(uri, "&algorithm={algorithm}&digits={}&period={}", digits.get(), period.get());
            }
            OtpMethod::Hotp { algorithm, digits, counter } => {
                let _ = write!(uri, "&algorithm={algorithm}&digits={}&counter={counter}", digits.get());
            }
            OtpMethod::Steam { period } => {
                let _ = write!(uri, "&algorithm=SHA1&digits=5&period={}", period.get());
            }
        }
        if let Some(image) = &self.image {
            let _ = write!(uri, "&image={}", utf8_percent_encode(image, COMPONENT));
        }
        for (name, value) in &self.extra {
            let _ = write!(
                uri,
                "&{}={}",
                utf8_percent_encode(name, COMPONENT),
                utf8_percent_encode(value, COMPONENT)
            );
        }
        SecretString::from(uri)
    }

    /// An upper bound of [`OtpAuth::to_uri`]'s length (percent-encoding at most triples a byte),
    /// so the buffer holding the seed never reallocates and leaves an unwiped copy behind.
    fn uri_capacity(&self) -> usize {
        let issuer = self.issuer.as_ref().map_or(0, String::len);
        let image = self.image.as_ref().map_or(0, String::len);
        let extra: usize = self.extra.iter().map(|(k, v)| 2 + 3 * (k.len() + v.len())).sum();
        160 + 6 * issuer + 3 * (self.account.len() + image) + self.secret.len() * 8 / 5 + 8 + extra
    }

    /// Checks the invariants `new` and `rename` promise.
    fn validate(&self) -> Result<(), UriError> {
        if let Some(issuer) = &self.issuer {
            check_text("issuer", issuer, MAX_NAME_LENGTH)?;
            if issuer.contains(':') {
                return Err(UriError::ColonInIssuer);
            }
        }
        check_text("account name", &self.account, MAX_NAME_LENGTH)?;
        if self.issuer.is_none() && self.account.contains(':') {
            return Err(UriError::ColonInAccountWithoutIssuer);
        }
        if self.issuer.is_none() && self.account.is_empty() {
            return Err(UriError::EmptyName);
        }
        if self.secret.is_empty() {
            return Err(UriError::InvalidSecret(Base32Error::Empty));
        }
        if self.secret.len() > MAX_SECRET_BYTES {
            return Err(UriError::SecretTooLong);
        }
        Ok(())
    }
}

/// Characters written as-is in labels and parameter values: RFC 3986 unreserved, plus `@`
/// which is common in account names and legal in both places.
const COMPONENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'@');

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), UriError> {
    if text.chars().count() > max {
        return Err(UriError::TooLong { field, max });
    }
    if text.chars().any(char::is_control) {
        return Err(UriError::ControlCharacter(field));
    }
    Ok(())
}

/// Percent-decodes one part of the URI. The intermediate copy is wiped, since the part may be the secret.
fn decode_component(raw: &str, part: &'static str, plus_is_space: bool) -> Result<String, UriError> {
    let spaced;
    let raw = if plus_is_space {
        spaced = Zeroizing::new(raw.replace('+', " "));
        spaced.as_str()
    } else {
        raw
    };
    percent_decode_str(raw).decode_utf8().map(|s| s.into_owned()).map_err(|_| UriError::InvalidEncoding(part))
}

/// The error for text that is not an otpauth URI. It names the text's scheme only when it is one
/// of the well-known schemes QR codes carry, so that a secret pasted by mistake is never echoed.
fn not_a_uri(text: &str) -> UriError {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let base32 = compact.trim_end_matches('=');
    if base32.len() >= 16 && base32.chars().all(|c| c.is_ascii_alphanumeric()) {
        let upper = base32.to_ascii_uppercase();
        if upper.chars().all(|c| matches!(c, 'A'..='Z' | '2'..='7')) {
            return UriError::BareSecret;
        }
    }
    let scheme = text.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some(
            known @ ("http" | "https" | "mailto" | "tel" | "sms" | "smsto" | "wifi" | "geo" | "market"
            | "bitcoin" | "ftp" | "file" | "data" | "mecard" | "matmsg" | "steam" | "tessera"),
        ) => UriError::OtherScheme(known.to_owned()),
        _ => UriError::NotAUri,
    }
}

#[derive(Default)]
struct KnownParameters {
    secret: Option<SecretString>,
    issuer: Option<String>,
    algorithm: Option<String>,
    digits: Option<String>,
    period: Option<String>,
    counter: Option<String>,
    image: Option<String>,
    encoder: Option<String>,
}

fn parse(text: &str) -> Result<ParsedUri, UriError> {
    let text = text.trim();
    if text.len() > MAX_URI_LENGTH {
        return Err(UriError::TooLong { field: "URI", max: MAX_URI_LENGTH });
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(not_a_uri(text));
    };
    if scheme.eq_ignore_ascii_case("otpauth-migration") {
        return Err(UriError::MigrationUnsupported);
    }
    if !scheme.eq_ignore_ascii_case("otpauth") {
        return Err(not_a_uri(text));
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let Some((kind, raw_label)) = path.split_once('/') else {
        return Err(if path.is_empty() {
            UriError::UnknownType(String::new())
        } else {
            UriError::MissingLabel
        });
    };
    let kind = kind.to_ascii_lowercase();
    if !matches!(kind.as_str(), "totp" | "hotp" | "steam") {
        return Err(UriError::UnknownType(truncate_for_message(&kind)));
    }
    let label = decode_component(raw_label, "label", false)?;

    let mut warnings = Vec::new();
    let mut known = KnownParameters::default();
    let mut extra = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode_component(raw_name, "parameter name", true)?;
        let lower = name.to_ascii_lowercase();
        if lower == "secret" {
            let value = Zeroizing::new(decode_component(raw_value, "secret", true)?);
            if known.secret.replace(SecretString::from(value)).is_some() {
                return Err(UriError::DuplicateParameter(lower));
            }
            continue;
        }
        let value = decode_component(raw_value, "parameter value", true)?;
        let slot = match lower.as_str() {
            "issuer" => &mut known.issuer,
            "algorithm" => &mut known.algorithm,
            "digits" => &mut known.digits,
            "period" => &mut known.period,
            "counter" => &mut known.counter,
            "image" => &mut known.image,
            "encoder" => &mut known.encoder,
            _ => {
                if extra.len() == MAX_EXTRA_PARAMETERS {
                    return Err(UriError::TooManyParameters);
                }
                check_text("parameter", &name, 64)?;
                check_text("parameter value", &value, 1024)?;
                extra.push((name, value));
                continue;
            }
        };
        if slot.replace(value).is_some() {
            return Err(UriError::DuplicateParameter(lower));
        }
    }

    let secret_text = known.secret.ok_or(UriError::MissingSecret)?;
    let secret = SecretBytes::from_base32(secret_text.expose()).map_err(|e| match e {
        Base32Error::Empty => UriError::MissingSecret,
        other => UriError::InvalidSecret(other),
    })?;
    if secret.len() > MAX_SECRET_BYTES {
        return Err(UriError::SecretTooLong);
    }
    if secret.bits() < RECOMMENDED_SECRET_BITS {
        warnings.push(UriWarning::ShortSecret { bits: secret.bits() });
    }

    let steam_encoder = known.encoder.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("steam"));
    if steam_encoder && kind == "hotp" {
        return Err(UriError::InvalidSteamParameters);
    }
    let is_steam = kind == "steam" || steam_encoder;
    let algorithm = known
        .algorithm
        .as_deref()
        .map(Algorithm::parse)
        .transpose()
        .map_err(|source| UriError::InvalidParameter { name: "algorithm", source })?
        .unwrap_or_default();
    let period = known
        .period
        .as_deref()
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| OtpError::InvalidPeriod(truncate_for_message(p)))
                .and_then(Period::new)
        })
        .transpose()
        .map_err(|source| UriError::InvalidParameter { name: "period", source })?
        .unwrap_or_default();
    let method = if is_steam {
        let digits_ok = known.digits.as_deref().is_none_or(|d| d.trim() == "5");
        if !digits_ok || algorithm != Algorithm::Sha1 {
            return Err(UriError::InvalidSteamParameters);
        }
        OtpMethod::Steam { period }
    } else {
        let digits = known
            .digits
            .as_deref()
            .map(|d| {
                d.trim()
                    .parse::<u8>()
                    .map_err(|_| OtpError::InvalidDigits(truncate_for_message(d)))
                    .and_then(Digits::new)
            })
            .transpose()
            .map_err(|source| UriError::InvalidParameter { name: "digits", source })?
            .unwrap_or_default();
        if kind == "hotp" {
            let counter = match known.counter.as_deref() {
                Some(c) => {
                    c.trim().parse::<u64>().map_err(|_| UriError::InvalidCounter(truncate_for_message(c)))?
                }
                None => {
                    warnings.push(UriWarning::MissingCounter);
                    0
                }
            };
            OtpMethod::Hotp { algorithm, digits, counter }
        } else {
            OtpMethod::Totp { algorithm, digits, period }
        }
    };
    let ignored = match method {
        OtpMethod::Hotp { .. } => known.period.as_ref().map(|_| "period"),
        OtpMethod::Totp { .. } | OtpMethod::Steam { .. } => known.counter.as_ref().map(|_| "counter"),
    };
    warnings.extend(ignored.map(|name| UriWarning::IgnoredParameter(name.to_owned())));

    let parameter_issuer = known.issuer.map(|i| i.trim().to_owned()).filter(|i| !i.is_empty());
    let (label_prefix, account) = match label.split_once(':') {
        Some((prefix, account)) => (Some(prefix.trim().to_owned()).filter(|p| !p.is_empty()), account.trim()),
        None => (None, label.trim()),
    };
    let issuer = match (label_prefix, parameter_issuer) {
        (Some(prefix), Some(parameter)) => {
            if prefix != parameter {
                warnings
                    .push(UriWarning::IssuerMismatch { label_prefix: prefix, parameter: parameter.clone() });
            }
            Some(parameter)
        }
        (prefix, parameter) => parameter.or(prefix),
    };
    if let Some(issuer) = &issuer {
        check_text("issuer", issuer, MAX_NAME_LENGTH)?;
        if issuer.contains(':') {
            return Err(UriError::ColonInIssuer);
        }
    }

    let mut otp = OtpAuth::new(issuer, account.to_owned(), secret, method)?;
    if let Some(image) = known.image.filter(|i| !i.is_empty()) {
        otp.set_image(Some(image))?;
    }
    otp.extra = extra;
    Ok(ParsedUri { otp, warnings })
}

/// A token typed in by hand: what an "enter a key" form asks for.
#[derive(Debug, Clone)]
pub struct ManualEntry {
    /// The issuer (service name), if any.
    pub issuer: Option<String>,
    /// The account name.
    pub label: String,
    /// The base32 secret key as the service showed it (spaces and case do not matter).
    pub secret: SecretString,
    /// `totp`, `hotp` or `steam`.
    pub kind: String,
    /// `SHA1`, `SHA256` or `SHA512` (ignored for Steam).
    pub algorithm: String,
    /// Code length (ignored for Steam).
    pub digits: u8,
    /// Time step in seconds (time-based kinds).
    pub period: u32,
    /// The counter of the first code (HOTP).
    pub counter: u64,
}

impl ManualEntry {
    /// The token, checked as strictly as a URI, with a warning for a seed shorter than RFC 4226 asks.
    pub fn into_token(self) -> Result<ParsedUri, UriError> {
        let secret = SecretBytes::from_base32(self.secret.expose()).map_err(UriError::InvalidSecret)?;
        let invalid = |name, source| UriError::InvalidParameter { name, source };
        let period = || Period::new(self.period).map_err(|e| invalid("period", e));
        let algorithm = || Algorithm::parse(&self.algorithm).map_err(|e| invalid("algorithm", e));
        let digits = || Digits::new(self.digits).map_err(|e| invalid("digits", e));
        let method = match self.kind.to_ascii_lowercase().as_str() {
            "totp" => OtpMethod::Totp { algorithm: algorithm()?, digits: digits()?, period: period()? },
            "hotp" => OtpMethod::Hotp { algorithm: algorithm()?, digits: digits()?, counter: self.counter },
            "steam" => OtpMethod::Steam { period: period()? },
            other => return Err(UriError::UnknownType(truncate_for_message(other))),
        };
        let mut warnings = Vec::new();
        if secret.bits() < RECOMMENDED_SECRET_BITS {
            warnings.push(UriWarning::ShortSecret { bits: secret.bits() });
        }
        Ok(ParsedUri { otp: OtpAuth::new(self.issuer, self.label, secret, method)?, warnings })
    }
}

/// The tokens in the texts of the QR codes found in one picture: every text that is an otpauth
/// URI. When none is, the error says why the last one was refused ([`UriError::NoQrCode`] when
/// the picture held no code).
pub fn tokens_from_qr_texts(texts: &[SecretString]) -> Result<Vec<ParsedUri>, UriError> {
    let mut tokens = Vec::new();
    let mut last_error = UriError::NoQrCode;
    for text in texts {
        match OtpAuth::parse(text.expose()) {
            Ok(parsed) => tokens.push(parsed),
            Err(error) => last_error = error,
        }
    }
    if tokens.is_empty() { Err(last_error) } else { Ok(tokens) }
}

/// `issuer:label`, the issuer alone when the label is empty, or the label alone.
pub(crate) fn display_name(issuer: Option<&str>, label: &str) -> String {
    match issuer {
        Some(issuer) if label.is_empty() => issuer.to_owned(),
        Some(issuer) => format!("{issuer}:{label}"),
        None => label.to_owned(),
    }
}

/// True for a QR code's text that adds to a vault: an `otpauth://` token or a Tessera push
/// enrollment link. Camera scans stop at the first such code and pass over any other.
pub fn adds_to_vault(text: &str) -> bool {
    OtpAuth::parse(text).is_ok() || crate::push::EnrollmentLink::parse(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_ok(uri: &str) -> ParsedUri {
        OtpAuth::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
    }

    #[test]
    fn google_example() {
        let parsed =
            parse_ok("otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example");
        let otp = parsed.otp;
        assert_eq!(otp.issuer(), Some("Example"));
        assert_eq!(otp.account(), "alice@google.com");
        assert_eq!(otp.secret(), &SecretBytes::from_base32("JBSWY3DPEHPK3PXP").unwrap());
        assert_eq!(otp.method(), &OtpMethod::default_totp());
        assert_eq!(parsed.warnings, vec![UriWarning::ShortSecret { bits: 80 }]);
    }

    #[test]
    fn all_parameters() {
        let otp = parse_ok(
            "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60",
        )
        .otp;
        assert_eq!(otp.issuer(), Some("ACME Co"));
        assert_eq!(
            otp.method(),
            &OtpMethod::Totp {
                algorithm: Algorithm::Sha256,
                digits: Digits::new(8).unwrap(),
                period: Period::new(60).unwrap()
            }
        );
    }

    #[test]
    fn hotp_with_counter() {
        let otp =
            parse_ok("otpauth://hotp/Bank:me?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=42&digits=7")
                .otp;
        assert_eq!(
            otp.method(),
            &OtpMethod::Hotp { algorithm: Algorithm::Sha1, digits: Digits::new(7).unwrap(), counter: 42 }
        );
    }

    #[test]
    fn hotp_without_counter_starts_at_zero_with_a_warning() {
        let parsed = parse_ok("otpauth://hotp/me?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(matches!(parsed.otp.method(), OtpMethod::Hotp { counter: 0, .. }));
        assert_eq!(parsed.warnings, vec![UriWarning::MissingCounter]);
    }

    #[test]
    fn issuer_from_prefix_or_parameter() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let prefix_only = parse_ok(&format!("otpauth://totp/GitHub:octocat?secret={secret}")).otp;
        assert_eq!((prefix_only.issuer(), prefix_only.account()), (Some("GitHub"), "octocat"));
        let param_only = parse_ok(&format!("otpauth://totp/octocat?secret={secret}&issuer=GitHub")).otp;
        assert_eq!((param_only.issuer(), param_only.account()), (Some("GitHub"), "octocat"));
        let encoded_colon = parse_ok(&format!("otpauth://totp/GitHub%3A%20octocat?secret={secret}")).otp;
        assert_eq!((encoded_colon.issuer(), encoded_colon.account()), (Some("GitHub"), "octocat"));
        let neither = parse_ok(&format!("otpauth://totp/octocat?secret={secret}")).otp;
        assert_eq!((neither.issuer(), neither.account()), (None, "octocat"));
        let issuer_only = parse_ok(&format!("otpauth://totp/?secret={secret}&issuer=GitHub")).otp;
        assert_eq!((issuer_only.issuer(), issuer_only.account()), (Some("GitHub"), ""));
    }

    #[test]
    fn issuer_conflict_prefers_the_parameter_and_warns() {
        let parsed =
            parse_ok("otpauth://totp/Old%20Name:me?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=New+Name");
        assert_eq!(parsed.otp.issuer(), Some("New Name"));
        assert_eq!(parsed.otp.account(), "me");
        assert_eq!(
            parsed.warnings,
            vec![UriWarning::IssuerMismatch {
                label_prefix: "Old Name".into(),
                parameter: "New Name".into()
            }]
        );
    }

    #[test]
    fn lenient_secret_and_names() {
        let otp = parse_ok("OTPAUTH://TOTP/x?SECRET=jbsw%20y3dp%20ehpk%203pxp%3D%3D%3D%3D&Digits=6").otp;
        assert_eq!(otp.secret(), &SecretBytes::from_base32("JBSWY3DPEHPK3PXP").unwrap());
    }

    #[test]
    fn steam_in_both_spellings() {
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        for uri in [
            format!("otpauth://steam/Steam:gaben?secret={secret}&issuer=Steam"),
            format!("otpauth://totp/Steam:gaben?secret={secret}&encoder=steam&digits=5"),
        ] {
            let otp = parse_ok(&uri).otp;
            assert_eq!(otp.method(), &OtpMethod::Steam { period: Period::THIRTY_SECONDS }, "{uri}");
        }
        assert_eq!(
            OtpAuth::parse(&format!("otpauth://steam/x?secret={secret}&digits=6")).unwrap_err(),
            UriError::InvalidSteamParameters
        );
    }

    #[test]
    fn unknown_parameters_are_kept_and_written_back() {
        let parsed = parse_ok(
            "otpauth://totp/A:b?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=A&color=%23ff0000&lock=true&image=https%3A%2F%2Fa.example%2Fi.png",
        );
        assert_eq!(
            parsed.otp.extra_parameters(),
            &[("color".to_string(), "#ff0000".to_string()), ("lock".to_string(), "true".to_string())]
        );
        assert_eq!(parsed.otp.image(), Some("https://a.example/i.png"));
        let rebuilt = parsed.otp.to_uri();
        assert!(
            rebuilt.expose().ends_with("&image=https%3A%2F%2Fa.example%2Fi.png&color=%23ff0000&lock=true")
        );
        assert_eq!(parse_ok(rebuilt.expose()).otp, parsed.otp);
    }

    #[test]
    fn inapplicable_parameters_are_dropped_with_a_warning() {
        let parsed = parse_ok("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=5");
        assert_eq!(parsed.warnings, vec![UriWarning::IgnoredParameter("counter".into())]);
    }

    #[test]
    fn every_malformed_uri_gets_a_typed_error() {
        let s = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let long = "a".repeat(MAX_NAME_LENGTH + 1);
        let cases: Vec<(String, UriError)> = vec![
            ("https://example.com".into(), UriError::OtherScheme("https".into())),
            ("MAILTO:someone@example.com".into(), UriError::OtherScheme("mailto".into())),
            ("JBSWY3DPEHPK3PXP".into(), UriError::BareSecret),
            ("jbsw y3dp ehpk 3pxp ====".into(), UriError::BareSecret),
            ("hello world".into(), UriError::NotAUri),
            ("".into(), UriError::NotAUri),
            ("otpauth//totp/x?secret=JBSWY3DPEHPK3PXP".into(), UriError::NotAUri),
            (format!("otpauth://hotp/x?secret={s}&encoder=steam"), UriError::InvalidSteamParameters),
            ("otpauth-migration://offline?data=abc".into(), UriError::MigrationUnsupported),
            (format!("otpauth://motp/x?secret={s}"), UriError::UnknownType("motp".into())),
            (format!("otpauth://?secret={s}"), UriError::UnknownType(String::new())),
            (format!("otpauth://totp?secret={s}"), UriError::MissingLabel),
            (format!("otpauth://totp/?secret={s}"), UriError::EmptyName),
            (format!("otpauth://totp/%FF?secret={s}"), UriError::InvalidEncoding("label")),
            (format!("otpauth://totp/x?secret={s}&issuer=%C3"), UriError::InvalidEncoding("parameter value")),
            (format!("otpauth://totp/a%0Ab?secret={s}"), UriError::ControlCharacter("account name")),
            (
                format!("otpauth://totp/{long}?secret={s}"),
                UriError::TooLong { field: "account name", max: MAX_NAME_LENGTH },
            ),
            ("otpauth://totp/x?issuer=A".into(), UriError::MissingSecret),
            ("otpauth://totp/x?secret=".into(), UriError::MissingSecret),
            (
                "otpauth://totp/x?secret=ABC1".into(),
                UriError::InvalidSecret(Base32Error::InvalidCharacter('1')),
            ),
            ("otpauth://totp/x?secret=ABC".into(), UriError::InvalidSecret(Base32Error::InvalidLength)),
            (format!("otpauth://totp/x?secret={}", "A".repeat(1700)), UriError::SecretTooLong),
            (
                format!("otpauth://totp/x?secret={s}&algorithm=MD5"),
                UriError::InvalidParameter {
                    name: "algorithm",
                    source: OtpError::UnsupportedAlgorithm("MD5".into()),
                },
            ),
            (
                format!("otpauth://totp/x?secret={s}&digits=4"),
                UriError::InvalidParameter { name: "digits", source: OtpError::InvalidDigits("4".into()) },
            ),
            (
                format!("otpauth://totp/x?secret={s}&digits=six"),
                UriError::InvalidParameter { name: "digits", source: OtpError::InvalidDigits("six".into()) },
            ),
            (
                format!("otpauth://totp/x?secret={s}&period=0"),
                UriError::InvalidParameter { name: "period", source: OtpError::InvalidPeriod("0".into()) },
            ),
            (
                format!("otpauth://totp/x?secret={s}&period=-30"),
                UriError::InvalidParameter { name: "period", source: OtpError::InvalidPeriod("-30".into()) },
            ),
            (format!("otpauth://hotp/x?secret={s}&counter=-1"), UriError::InvalidCounter("-1".into())),
            (
                format!("otpauth://totp/x?secret={s}&secret={s}"),
                UriError::DuplicateParameter("secret".into()),
            ),
            (
                format!("otpauth://totp/x?secret={s}&digits=6&DIGITS=8"),
                UriError::DuplicateParameter("digits".into()),
            ),
            (
                format!(
                    "otpauth://totp/x?secret={s}{}",
                    (0..40).map(|i| format!("&p{i}=v")).collect::<String>()
                ),
                UriError::TooManyParameters,
            ),
            (format!("otpauth://totp/a:b?secret={s}&issuer=x%3Ay"), UriError::ColonInIssuer),
            (
                format!("otpauth://totp/x?secret={s}&{}", "a".repeat(MAX_URI_LENGTH)),
                UriError::TooLong { field: "URI", max: MAX_URI_LENGTH },
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(OtpAuth::parse(&uri).map(|p| p.otp).unwrap_err(), expected, "{uri}");
        }
    }

    #[test]
    fn errors_never_contain_the_secret() {
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX1";
        for uri in [
            format!("otpauth://totp/x?secret={secret}"),
            format!("otpauth://totp/x?secret={secret}&digits=99"),
            format!("otpauth://bogus/x?secret={secret}"),
            format!("nope://x?secret={secret}"),
            secret.to_owned(),
            secret.to_lowercase(),
            format!("{secret}:123"),
            format!("otpauth//totp/x?secret={secret}"),
            format!("{}://x", &secret[..12]),
        ] {
            let message = OtpAuth::parse(&uri).unwrap_err().to_string();
            assert!(!message.to_uppercase().contains("JBSWY3DP"), "{message}");
        }
    }

    #[test]
    fn building_refuses_names_that_would_not_read_back() {
        let secret = SecretBytes::from_slice(b"12345678901234567890");
        let m = OtpMethod::default_totp();
        assert_eq!(
            OtpAuth::new(Some("a:b".into()), "c".into(), secret.clone(), m).unwrap_err(),
            UriError::ColonInIssuer
        );
        assert_eq!(
            OtpAuth::new(None, "a:b".into(), secret.clone(), m).unwrap_err(),
            UriError::ColonInAccountWithoutIssuer
        );
        assert_eq!(
            OtpAuth::new(Some(" ".into()), "".into(), secret.clone(), m).unwrap_err(),
            UriError::EmptyName
        );
        assert_eq!(
            OtpAuth::new(None, "x".into(), SecretBytes::new(vec![]), m).unwrap_err(),
            UriError::InvalidSecret(Base32Error::Empty)
        );
        let mut otp = OtpAuth::new(Some("A".into()), "b:c".into(), secret, m).unwrap();
        assert_eq!(otp.rename(Some(None), None).unwrap_err(), UriError::ColonInAccountWithoutIssuer);
        assert_eq!(otp.issuer(), Some("A"), "a failed rename changes nothing");
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        // Printable text including spaces, %, +, &, =, ?, #, /, @, unicode; no control characters.
        proptest::string::string_regex("[a-zA-Z0-9 %+&=?#/@.éü漢-]{1,40}")
            .unwrap()
            .prop_filter("names are trimmed", |s| s.trim() == s)
    }

    fn method_strategy() -> impl Strategy<Value = OtpMethod> {
        let algorithm = prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)];
        let digits = (6u8..=10).prop_map(|d| Digits::new(d).unwrap());
        let period = (1u32..=u32::MAX).prop_map(|p| Period::new(p).unwrap());
        prop_oneof![
            (algorithm.clone(), digits.clone(), period.clone())
                .prop_map(|(algorithm, digits, period)| { OtpMethod::Totp { algorithm, digits, period } }),
            (algorithm, digits, any::<u64>()).prop_map(|(algorithm, digits, counter)| OtpMethod::Hotp {
                algorithm,
                digits,
                counter
            }),
            period.prop_map(|period| OtpMethod::Steam { period }),
        ]
    }

    fn manual(kind: &str, secret: &str) -> ManualEntry {
        ManualEntry {
            issuer: Some("Bank".into()),
            label: "bob".into(),
            secret: SecretString::new(secret.into()),
            kind: kind.into(),
            algorithm: "SHA256".into(),
            digits: 8,
            period: 60,
            counter: 5,
        }
    }

    #[test]
    fn a_manual_entry_becomes_the_token_its_uri_would() {
        let parsed = manual("totp", "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp").into_token().unwrap();
        let uri = "otpauth://totp/Bank:bob?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Bank&algorithm=SHA256&digits=8&period=60";
        assert_eq!(parsed.otp, OtpAuth::parse(uri).unwrap().otp);
        assert!(parsed.warnings.is_empty());
        let hotp = manual("HOTP", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").into_token().unwrap();
        assert!(matches!(hotp.otp.method(), OtpMethod::Hotp { counter: 5, .. }));
        let steam = manual("steam", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").into_token().unwrap();
        assert_eq!(steam.otp.method().code_length(), 5);
    }

    #[test]
    fn a_manual_entry_is_refused_with_the_reason() {
        assert!(matches!(manual("totp", "not base32!").into_token(), Err(UriError::InvalidSecret(_))));
        assert!(matches!(manual("motp", "JBSWY3DP").into_token(), Err(UriError::UnknownType(_))));
        let mut bad_digits = manual("totp", "JBSWY3DP");
        bad_digits.digits = 3;
        assert!(matches!(bad_digits.into_token(), Err(UriError::InvalidParameter { name: "digits", .. })));
        let mut no_name = manual("totp", "JBSWY3DP");
        (no_name.issuer, no_name.label) = (None, " ".into());
        assert_eq!(no_name.into_token().unwrap_err(), UriError::EmptyName);
        let short = manual("totp", "JBSWY3DP").into_token().unwrap();
        assert_eq!(short.warnings, vec![UriWarning::ShortSecret { bits: 40 }]);
    }

    #[test]
    fn qr_texts_give_every_token_among_them_or_the_reason_there_is_none() {
        let texts = |list: &[&str]| list.iter().map(|t| SecretString::new((*t).into())).collect::<Vec<_>>();
        let uri = "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP";
        let found = tokens_from_qr_texts(&texts(&["https://example.com", uri, uri])).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(tokens_from_qr_texts(&[]).unwrap_err(), UriError::NoQrCode);
        assert!(matches!(tokens_from_qr_texts(&texts(&["mailto:x@y.z"])), Err(UriError::OtherScheme(_))));
    }

    proptest! {
        #[test]
        fn build_then_parse_round_trips(
            issuer in proptest::option::of(name_strategy().prop_filter("no colon", |s| !s.contains(':'))),
            account in name_strategy().prop_filter("no colon", |s| !s.contains(':')),
            secret in proptest::collection::vec(any::<u8>(), 1..=128),
            method in method_strategy(),
            image in proptest::option::of("https://[a-z]{1,10}\\.example/[a-z&=?+ ]{0,10}"),
            extra in proptest::collection::vec(("x-[a-z]{1,8}", "[a-zA-Z0-9 &=+%#]{0,20}"), 0..4),
        ) {
            let mut otp = OtpAuth::new(issuer, account, SecretBytes::new(secret), method).unwrap();
            otp.set_image(image).unwrap();
            otp.extra = extra;
            let uri = otp.to_uri();
            prop_assert!(uri.expose().len() <= otp.uri_capacity(), "the URI buffer never reallocates");
            let parsed = OtpAuth::parse(uri.expose()).unwrap();
            prop_assert_eq!(&parsed.otp, &otp);
            let mismatch = parsed.warnings.iter().any(|w| matches!(w, UriWarning::IssuerMismatch { .. }));
            prop_assert!(!mismatch);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = OtpAuth::parse(&text);
        }

        #[test]
        fn parsing_mutated_uris_never_panics(
            cut in 0usize..120,
            insert in "[%:/?&=#+a-zA-Z0-9\u{0}-\u{1f}]{0,6}",
        ) {
            let base = "otpauth://hotp/ACME%20Co:john@x.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME&counter=7&digits=8";
            let cut = base.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(base.len());
            let mutated = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
            let _ = OtpAuth::parse(&mutated);
        }
    }
}
