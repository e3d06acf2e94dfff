//! Push approval: the enrollment link, device and server keys, signed challenges and answers, and
//! number matching. Shared by the server (which signs challenges and checks answers), the client
//! crate and every device (which check challenges and sign answers), so both ends agree byte for
//! byte.
//!
//! Signatures are Ed25519 over a canonical binary encoding of each message, prefixed by a domain
//! label (`tessera/push/challenge/v1`, ...), never over JSON text, so that field order, escaping or
//! a signature made for one message kind can never be reused for another. A challenge lives at
//! most [`MAX_CHALLENGE_LIFETIME_SECS`] (NIST SP 800-63B: out-of-band requests expire within 10
//! minutes); a device verifies the server's signature before it shows anything.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::otp::{Algorithm, Digits, OtpMethod, Period};
use crate::otpauth::OtpAuth;
use crate::secret::{RandomError, SecretBytes, SecretString, fill_random};

/// Scheme and path of enrollment links.
pub const ENROLL_PREFIX: &str = "tessera://enroll?";
/// Version of the enrollment link and of the challenge/answer messages.
pub const PROTOCOL_VERSION: u8 = 1;
/// Longest a challenge may live.
pub const MAX_CHALLENGE_LIFETIME_SECS: u64 = 600;
/// Clock difference tolerated between server and device.
pub const CLOCK_SKEW_SECS: u64 = 120;

const CHALLENGE_DOMAIN: &str = "tessera/push/challenge/v1";
const ANSWER_DOMAIN: &str = "tessera/push/answer/v1";
const DEVICE_AUTH_DOMAIN: &str = "tessera/push/device-auth/v1";

/// Why a push message or link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The text is not a `tessera://enroll?` link.
    #[error("not a Tessera enrollment link (expected tessera://enroll?...)")]
    NotAnEnrollmentLink,
    /// A link of a version this build does not know.
    #[error("the enrollment link has version {0}, which this version of Tessera cannot use; upgrade Tessera")]
    UnsupportedLinkVersion(String),
    /// A required part of the link is missing or malformed.
    #[error("the enrollment link's {0} is missing or malformed")]
    InvalidLink(&'static str),
    /// A message of an unknown version.
    #[error("unsupported push message version {0}")]
    UnsupportedVersion(u8),
    /// A key that is not a valid Ed25519 public key.
    #[error("invalid public key")]
    InvalidKey,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// The challenge has expired.
    #[error("the request has expired")]
    Expired,
    /// The challenge claims to be from the future.
    #[error("the request is dated in the future (check the device's clock)")]
    NotYetValid,
    /// The challenge claims a lifetime beyond the limit.
    #[error("the request's lifetime exceeds {MAX_CHALLENGE_LIFETIME_SECS} seconds")]
    LifetimeTooLong,
    /// Number matching needs a number and none was given.
    #[error("this request needs the number shown on the login screen")]
    NumberRequired,
    /// The number is not one the request offers.
    #[error("the number is not one of the choices offered")]
    NumberNotOffered,
    /// A wake-up address that FCM or APNs would refuse.
    #[error("invalid {0} wake-up token: {1}")]
    InvalidWakeAddress(&'static str, &'static str),
    /// The server's registration answer holds an unusable TOTP token.
    #[error("the server sent an invalid approve-with-OTP token ({0}); ask for a new enrollment link")]
    InvalidRegistration(String),
    /// The link's server is reached by plain HTTP on another computer and the person did not
    /// accept that risk.
    #[error(
        "{0} is not HTTPS: anyone on the network could read this enrollment and take over the push device. Ask for an https:// link, or confirm that you accept the risk"
    )]
    Cleartext(String),
}

impl crate::error::Classify for PushError {
    fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode;
        match self {
            Self::BadSignature | Self::InvalidKey => ErrorCode::Crypto,
            Self::Expired | Self::NotYetValid => ErrorCode::Expired,
            Self::Cleartext(_) => ErrorCode::Denied,
            _ => ErrorCode::InvalidInput,
        }
    }
}

/// An Ed25519 public key (32 bytes), written as unpadded base64url.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses a base64url key and checks it is a valid curve point.
    pub fn parse(text: &str) -> Result<Self, PushError> {
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(text.trim().as_bytes())
            .map_err(|_| PushError::InvalidKey)?;
        Self::from_bytes(&bytes)
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PushError> {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| PushError::InvalidKey)?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| PushError::InvalidKey)?;
        Ok(Self(bytes))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Base64url without padding.
    pub fn to_base64(&self) -> String {
        data_encoding::BASE64URL_NOPAD.encode(&self.0)
    }

    /// Verifies `signature` (base64url) over `message` (strict: no malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<(), PushError> {
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(signature.as_bytes())
            .map_err(|_| PushError::BadSignature)?;
        self.verify_raw(message, &bytes)
    }

    /// Verifies a 64-byte `signature` over `message` (strict: no malleable signatures).
    pub fn verify_raw(&self, message: &[u8], signature: &[u8]) -> Result<(), PushError> {
        let signature =
            ed25519_dalek::Signature::from_slice(signature).map_err(|_| PushError::BadSignature)?;
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| PushError::InvalidKey)?;
        key.verify_strict(message, &signature).map_err(|_| PushError::BadSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 signing key: a device's (kept in its vault) or the server's. Zeroized on drop.
#[derive(Clone)]
pub struct KeyPair(SigningKey);

impl KeyPair {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut())?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// The key from its 32-byte seed.
    pub fn from_seed(seed: &SecretBytes) -> Result<Self, PushError> {
        let bytes: [u8; 32] = seed.expose().try_into().map_err(|_| PushError::InvalidKey)?;
        let bytes = Zeroizing::new(bytes);
        Ok(Self(SigningKey::from_bytes(&bytes)))
    }

    /// The 32-byte seed (for storage in a vault).
    pub fn seed(&self) -> SecretBytes {
        SecretBytes::from_slice(self.0.as_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message`; base64url signature.
    pub fn sign(&self, message: &[u8]) -> String {
        data_encoding::BASE64URL_NOPAD.encode(&self.sign_raw(message))
    }

    /// Signs `message`; the 64 signature bytes.
    pub fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair(public {}, secret [REDACTED])", self.public().to_base64())
    }
}

/// What an enrollment QR code or link carries: where to register, and a one-time credential.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentLink {
    /// Base URL of the Tessera server (`https://auth.example.com`).
    pub server: String,
    /// The push token's serial.
    pub serial: String,
    /// Single-use, short-lived enrollment credential.
    pub code: SecretString,
    /// The organization (shown while enrolling).
    pub issuer: Option<String>,
    /// The user's account name.
    pub account: Option<String>,
}

impl fmt::Debug for EnrollmentLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentLink")
            .field("server", &self.server)
            .field("serial", &self.serial)
            .field("code", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// What a person confirms before a device enrolls: where it registers, for whom, and whether the
/// connection can be read by others. Apps show it and ask before sending anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrollmentPreview {
    /// The server's base URL.
    pub server: String,
    /// The server's host (and port), what the person should recognise.
    pub host: String,
    /// The organization, as the link names it.
    pub issuer: Option<String>,
    /// The account, as the link names it.
    pub account: Option<String>,
    /// Plain HTTP to another computer: enrolling needs a second, explicit confirmation.
    pub cleartext: bool,
}

/// Whether a device may enroll over plain HTTP with another computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleartext {
    /// Refused (the default for every app).
    Refuse,
    /// The person saw the warning and insisted (`--insecure-http`, a second confirmation).
    AcceptedByUser,
}

/// The host and port of a server's URL, without scheme, user info or path.
pub fn server_host(server: &str) -> &str {
    let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit('@').next().unwrap_or_default()
}

/// True when `server` is reached by plain HTTP on another computer: anyone on the network can
/// read what is sent. (Plain HTTP to this computer, as in a local demo, is not.)
pub fn is_cleartext_server(server: &str) -> bool {
    if !server.starts_with("http://") {
        return false;
    }
    let host_and_port = server_host(server);
    let host = match host_and_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_and_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// Refuses a cleartext server (see [`is_cleartext_server`]) unless the person accepted the risk:
/// the one rule for enrollment links and for signing in to an organisation.
pub fn check_server_transport(server: &str, cleartext: Cleartext) -> Result<(), PushError> {
    if is_cleartext_server(server) && cleartext == Cleartext::Refuse {
        return Err(PushError::Cleartext(server.to_owned()));
    }
    Ok(())
}

impl EnrollmentLink {
    /// What to show before enrolling.
    pub fn preview(&self) -> EnrollmentPreview {
        EnrollmentPreview {
            server: self.server.clone(),
            host: self.host().to_owned(),
            issuer: self.issuer.clone(),
            account: self.account.clone(),
            cleartext: self.is_cleartext(),
        }
    }

    /// The server's host and port, without scheme, user info or path.
    pub fn host(&self) -> &str {
        server_host(&self.server)
    }

    /// Refuses a cleartext link unless the person accepted the risk.
    pub fn check_transport(&self, cleartext: Cleartext) -> Result<(), PushError> {
        check_server_transport(&self.server, cleartext)
    }

    /// True when `text` is meant as an enrollment link (it starts with [`ENROLL_PREFIX`]), so an
    /// app that takes several kinds of link sends it here and reports this parser's errors.
    pub fn is_meant(text: &str) -> bool {
        let start = text.trim_start().as_bytes().get(..ENROLL_PREFIX.len());
        start.is_some_and(|start| start.eq_ignore_ascii_case(ENROLL_PREFIX.as_bytes()))
    }

    /// The first enrollment link among the texts of an image's QR codes.
    pub fn find_in(texts: &[SecretString]) -> Option<Self> {
        texts.iter().find_map(|text| Self::parse(text.expose()).ok())
    }

    /// True when the server is reached by plain HTTP on another computer: anyone on the network
    /// can read the enrollment and the device's later traffic. (Plain HTTP to this computer, as
    /// in a local demo, is not.)
    pub fn is_cleartext(&self) -> bool {
        is_cleartext_server(&self.server)
    }

    /// What to tell the user when [`EnrollmentLink::is_cleartext`] holds.
    pub fn cleartext_warning(&self) -> Option<String> {
        self.is_cleartext()
            .then(|| format!("{} is not HTTPS: anyone on the network can read this enrollment", self.server))
    }

    /// Parses `tessera://enroll?v=1&server=...&serial=...&code=...[&issuer=...][&account=...]`.
    pub fn parse(text: &str) -> Result<Self, PushError> {
        let text = text.trim();
        let query = match text.get(..ENROLL_PREFIX.len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case(ENROLL_PREFIX) => {
                text.get(ENROLL_PREFIX.len()..).unwrap_or("")
            }
            _ => return Err(PushError::NotAnEnrollmentLink),
        };
        let (mut version, mut server, mut serial, mut code, mut issuer, mut account) =
            (None, None, None, None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "v" => &mut version,
                "server" => &mut server,
                "serial" => &mut serial,
                "code" => &mut code,
                "issuer" => &mut issuer,
                "account" => &mut account,
                _ => continue,
            };
            let decoded =
                percent_decode_str(value).decode_utf8().map_err(|_| PushError::InvalidLink("encoding"))?;
            if decoded.chars().any(char::is_control) || decoded.len() > 512 {
                return Err(PushError::InvalidLink(match name {
                    "server" => "server",
                    "serial" => "serial",
                    "code" => "code",
                    _ => "text",
                }));
            }
            *slot = Some(decoded.into_owned());
        }
        match version.as_deref() {
            Some("1") => {}
            Some(other) => return Err(PushError::UnsupportedLinkVersion(other.chars().take(8).collect())),
            None => return Err(PushError::InvalidLink("version")),
        }
        let server = server
            .filter(|s| (s.starts_with("https://") || s.starts_with("http://")) && s.len() > "http://".len())
            .ok_or(PushError::InvalidLink("server"))?;
        let serial = serial
            .filter(|s| {
                !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .ok_or(PushError::InvalidLink("serial"))?;
        let code = code.filter(|c| (16..=128).contains(&c.len())).ok_or(PushError::InvalidLink("code"))?;
        Ok(Self {
            server: server.trim_end_matches('/').to_owned(),
            serial,
            code: SecretString::new(code),
            issuer: issuer.filter(|i| !i.is_empty()),
            account: account.filter(|a| !a.is_empty()),
        })
    }

    /// The link as text (carries the credential: treat it as a secret).
    pub fn to_uri(&self) -> SecretString {
        let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let mut uri = format!(
            "{ENROLL_PREFIX}v={PROTOCOL_VERSION}&server={}&serial={}&code={}",
            encode(&self.server),
            encode(&self.serial),
            encode(self.code.expose())
        );
        if let Some(issuer) = &self.issuer {
            uri.push_str(&format!("&issuer={}", encode(issuer)));
        }
        if let Some(account) = &self.account {
            uri.push_str(&format!("&account={}", encode(account)));
        }
        SecretString::new(uri)
    }
}

/// How the device must confirm the login screen's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NumberMatching {
    /// No number (not recommended: NIST SP 800-63B rev 4 wants a secret to cross).
    Off,
    /// The device offers the number among decoys; the user picks the one on the login screen (a
    /// user who taps at random gets through one time in three).
    Pick,
    /// The user types the number from the login screen (NIST SP 800-63B rev 4's preference).
    #[default]
    Type,
}

impl NumberMatching {
    /// `off`, `pick` or `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Pick => "pick",
            Self::Type => "type",
        }
    }

    /// The mode `as_str` names.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Off, Self::Pick, Self::Type].into_iter().find(|mode| mode.as_str() == name)
    }
}

/// The number a login screen shows, and the choices a device offers for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberChallenge {
    /// Shown on the login screen (10–99); `None` when matching is off.
    pub number: Option<u8>,
    /// Offered by the device in `pick` mode: the number and two decoys, shuffled.
    pub choices: Vec<u8>,
}

impl NumberChallenge {
    /// A fresh random number (and decoys, in `pick` mode).
    pub fn new(mode: NumberMatching) -> Result<Self, RandomError> {
        if mode == NumberMatching::Off {
            return Ok(Self { number: None, choices: Vec::new() });
        }
        let mut choices: Vec<u8> = Vec::with_capacity(3);
        let wanted = if mode == NumberMatching::Pick { 3 } else { 1 };
        while choices.len() < wanted {
            let candidate = random_below(90)? as u8 + 10;
            if !choices.contains(&candidate) {
                choices.push(candidate);
            }
        }
        let number = choices.first().copied();
        if mode == NumberMatching::Pick {
            for i in (1..choices.len()).rev() {
                let j = random_below(i as u32 + 1)? as usize;
                choices.swap(i, j);
            }
        } else {
            choices.clear();
        }
        Ok(Self { number, choices })
    }
}

/// A uniform random number below `bound` (rejection sampling; no modulo bias).
fn random_below(bound: u32) -> Result<u32, RandomError> {
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let mut bytes = [0u8; 4];
        fill_random(&mut bytes)?;
        let value = u32::from_le_bytes(bytes);
        if value < zone {
            return Ok(value % bound);
        }
    }
}

/// A login request as the server describes it to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Message version.
    pub v: u8,
    /// Transaction id (the login client waits on it).
    pub transaction_id: String,
    /// The user logging in.
    pub username: String,
    /// The push token addressed.
    pub serial: String,
    /// The application or service asking (e.g. "ACME VPN").
    pub service: String,
    /// The login client's address.
    pub client_ip: Option<String>,
    /// The login client's browser or program.
    pub user_agent: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds after which no answer is accepted.
    pub expires_at: u64,
    /// Number matching mode.
    pub number_matching: NumberMatching,
    /// Choices to offer (`pick` mode).
    #[serde(default)]
    pub number_choices: Vec<u8>,
}

/// A challenge and the server's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChallenge {
    /// The challenge.
    #[serde(flatten)]
    pub challenge: Challenge,
    /// Ed25519 signature (base64url) over the canonical encoding.
    pub signature: String,
}

impl Challenge {
    /// The bytes the server signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Canonical::new(CHALLENGE_DOMAIN);
        out.u64(u64::from(self.v))
            .text(&self.transaction_id)
            .text(&self.username)
            .text(&self.serial)
            .text(&self.service)
            .optional(self.client_ip.as_deref())
            .optional(self.user_agent.as_deref())
            .u64(self.created_at)
            .u64(self.expires_at)
            .text(self.number_matching.as_str())
            .bytes(&self.number_choices);
        out.0
    }

    /// Signs the challenge with the server's key.
    pub fn sign(self, server: &KeyPair) -> SignedChallenge {
        let signature = server.sign(&self.signing_bytes());
        SignedChallenge { challenge: self, signature }
    }

    /// Seconds left at `now`.
    pub fn seconds_left(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

impl SignedChallenge {
    /// Checks the server's signature and the challenge's validity at `now`: what a device does
    /// before it shows anything.
    pub fn verify(&self, server_key: &PublicKey, now: u64) -> Result<&Challenge, PushError> {
        let c = &self.challenge;
        if c.v != PROTOCOL_VERSION {
            return Err(PushError::UnsupportedVersion(c.v));
        }
        server_key.verify(&c.signing_bytes(), &self.signature)?;
        if c.expires_at.saturating_sub(c.created_at) > MAX_CHALLENGE_LIFETIME_SECS {
            return Err(PushError::LifetimeTooLong);
        }
        if c.created_at > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(PushError::NotYetValid);
        }
        if now > c.expires_at {
            return Err(PushError::Expired);
        }
        Ok(c)
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyReason {
    /// The user did not try to log in: possibly an attack. Mutes pushes and raises an alert.
    NotMe,
    /// The user changed their mind.
    Cancelled,
}

impl DenyReason {
    /// `not-me` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotMe => "not-me",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The device's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", content = "reason", rename_all = "lowercase")]
pub enum Decision {
    /// Let the login through.
    Approve,
    /// Refuse it.
    Deny(DenyReason),
}

/// A device's answer to a challenge.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Message version.
    pub v: u8,
    /// The transaction answered.
    pub transaction_id: String,
    /// The answering token.
    pub serial: String,
    /// Approve or deny.
    #[serde(flatten)]
    pub decision: Decision,
    /// The number the user picked or typed.
    pub number: Option<u8>,
    /// For approvals: the token's current TOTP, so a push approval is also an OTP.
    pub otp: Option<SecretString>,
    /// Unix seconds.
    pub answered_at: u64,
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("transaction_id", &self.transaction_id)
            .field("serial", &self.serial)
            .field("decision", &self.decision)
            .field("number", &self.number)
            .field("otp", &self.otp.as_ref().map(|_| "[REDACTED]"))
            .field("answered_at", &self.answered_at)
            .finish()
    }
}

/// An answer and the device's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAnswer {
    /// The answer.
    #[serde(flatten)]
    pub answer: Answer,
    /// Ed25519 signature (base64url) by the device key.
    pub signature: String,
}

impl Answer {
    /// The bytes the device signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Canonical::new(ANSWER_DOMAIN);
        let (decision, reason) = match self.decision {
            Decision::Approve => ("approve", ""),
            Decision::Deny(reason) => ("deny", reason.as_str()),
        };
        out.u64(u64::from(self.v))
            .text(&self.transaction_id)
            .text(&self.serial)
            .text(decision)
            .text(reason)
            .bytes(self.number.as_slice())
            .optional(self.otp.as_ref().map(SecretString::expose))
            .u64(self.answered_at);
        out.0
    }

    /// Signs the answer with the device key.
    pub fn sign(self, device: &KeyPair) -> SignedAnswer {
        let signature = device.sign(&self.signing_bytes());
        SignedAnswer { answer: self, signature }
    }

    /// An answer to `challenge` at `now`, checking the number the user gave against what the
    /// challenge asks for (a device refuses to send a number it did not offer).
    pub fn to(
        challenge: &Challenge,
        decision: Decision,
        number: Option<u8>,
        otp: Option<SecretString>,
        now: u64,
    ) -> Result<Self, PushError> {
        if decision == Decision::Approve {
            match challenge.number_matching {
                NumberMatching::Off => {}
                NumberMatching::Type if number.is_none() => return Err(PushError::NumberRequired),
                NumberMatching::Type => {}
                NumberMatching::Pick => match number {
                    None => return Err(PushError::NumberRequired),
                    Some(n) if !challenge.number_choices.contains(&n) => {
                        return Err(PushError::NumberNotOffered);
                    }
                    Some(_) => {}
                },
            }
        }
        Ok(Self {
            v: PROTOCOL_VERSION,
            transaction_id: challenge.transaction_id.clone(),
            serial: challenge.serial.clone(),
            decision,
            number: if decision == Decision::Approve { number } else { None },
            otp: if decision == Decision::Approve { otp } else { None },
            answered_at: now,
        })
    }
}

impl SignedAnswer {
    /// Checks the device's signature and version; the server then checks the transaction.
    pub fn verify(&self, device_key: &PublicKey) -> Result<&Answer, PushError> {
        if self.answer.v != PROTOCOL_VERSION {
            return Err(PushError::UnsupportedVersion(self.answer.v));
        }
        device_key.verify(&self.answer.signing_bytes(), &self.signature)?;
        Ok(&self.answer)
    }
}

/// The bytes a device signs to open its channel (or poll) at `timestamp`.
pub fn device_auth_message(serial: &str, timestamp: u64) -> Vec<u8> {
    let mut out = Canonical::new(DEVICE_AUTH_DOMAIN);
    out.text(serial).u64(timestamp);
    out.0
}

/// The device's registration request (after scanning the enrollment link).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The serial from the link.
    pub serial: String,
    /// The single-use credential from the link.
    pub code: SecretString,
    /// The device's new public key.
    pub device_public_key: PublicKey,
    /// A name for the device ("Pixel 8", "laptop").
    pub device_name: Option<String>,
    /// Optional wake-up address for FCM or APNs.
    pub wake: Option<WakeAddress>,
}

/// A device's new wake-up address (`POST /api/v1/push/wake`); `null` stops wake-ups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WakeUpdate {
    /// The new address, or none.
    pub wake: Option<WakeAddress>,
}

/// Where a platform push service can wake the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "service", content = "token", rename_all = "lowercase")]
pub enum WakeAddress {
    /// Firebase Cloud Messaging registration token.
    Fcm(String),
    /// Apple Push Notification service device token (hex).
    Apns(String),
}

impl WakeAddress {
    /// Builds an address from its stored parts (`fcm` or `apns`, and the token).
    pub fn from_parts(service: &str, token: &str) -> Option<Self> {
        match service {
            "fcm" => Some(Self::Fcm(token.to_owned())),
            "apns" => Some(Self::Apns(token.to_owned())),
            _ => None,
        }
    }

    /// The push service's name: `fcm` or `apns`.
    pub fn service(&self) -> &'static str {
        match self {
            Self::Fcm(_) => "fcm",
            Self::Apns(_) => "apns",
        }
    }

    /// The device's token at that service.
    pub fn token(&self) -> &str {
        match self {
            Self::Fcm(token) | Self::Apns(token) => token,
        }
    }

    /// Checks the token's shape, so a malformed one is refused at registration rather than
    /// failing every later wake-up. FCM registration tokens are URL-safe text (about 160
    /// characters); APNs device tokens are hex (32 bytes today, up to 100 allowed).
    pub fn validate(&self) -> Result<(), PushError> {
        let service = self.service();
        let token = self.token();
        let (max_len, valid_char): (usize, fn(char) -> bool) = match self {
            Self::Fcm(_) => (4096, |c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.')),
            Self::Apns(_) => (200, |c| c.is_ascii_hexdigit()),
        };
        if token.len() < 32 {
            return Err(PushError::InvalidWakeAddress(service, "too short"));
        }
        if token.len() > max_len {
            return Err(PushError::InvalidWakeAddress(service, "too long"));
        }
        if !token.chars().all(valid_char) {
            return Err(PushError::InvalidWakeAddress(service, "unexpected characters"));
        }
        if matches!(self, Self::Apns(_)) && !token.len().is_multiple_of(2) {
            return Err(PushError::InvalidWakeAddress(service, "odd number of hex digits"));
        }
        Ok(())
    }
}

/// A pending challenge as a device receives it: its position in the device's stream (the SSE
/// event id; resuming after `seq` repeats nothing) and the challenge signed for that device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Stream position.
    pub seq: u64,
    /// The signed challenge.
    pub challenge: SignedChallenge,
}

/// What the server returns to a registered device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The serial.
    pub serial: String,
    /// The user.
    pub username: String,
    /// The organization.
    pub issuer: String,
    /// The key that signs challenges.
    pub server_public_key: PublicKey,
    /// TOTP seed (base32) for approve-with-OTP, also usable as a typed code.
    pub totp_secret: SecretString,
    /// TOTP algorithm.
    pub algorithm: String,
    /// TOTP digits.
    pub digits: u8,
    /// TOTP period.
    pub period: u32,
}

impl RegisterResponse {
    /// The approve-with-OTP token the server issued, as a vault token (its parameters checked).
    pub fn totp(&self) -> Result<OtpAuth, PushError> {
        let invalid =
            |what: &str, error: &dyn fmt::Display| PushError::InvalidRegistration(format!("{what}: {error}"));
        let secret = SecretBytes::from_base32(self.totp_secret.expose()).map_err(|e| invalid("seed", &e))?;
        let method = OtpMethod::Totp {
            algorithm: Algorithm::parse(&self.algorithm).map_err(|e| invalid("algorithm", &e))?,
            digits: Digits::new(self.digits).map_err(|e| invalid("digits", &e))?,
            period: Period::new(self.period).map_err(|e| invalid("period", &e))?,
        };
        OtpAuth::new(Some(self.issuer.clone()), self.username.clone(), secret, method)
            .map_err(|e| invalid("names", &e))
    }
}

/// Writes fields unambiguously: a domain label, then each field length-prefixed.
struct Canonical(Vec<u8>);

impl Canonical {
    fn new(domain: &str) -> Self {
        let mut out = Self(Vec::with_capacity(256));
        out.text(domain);
        out
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    fn text(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    fn optional(&mut self, text: Option<&str>) -> &mut Self {
        match text {
            None => self.0.push(0),
            Some(text) => {
                self.0.push(1);
                self.text(text);
            }
        }
        self
    }

    fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrollment_links_are_recognised_found_and_judged_for_cleartext() {
        let link = |server: &str| {
            format!(
                "tessera://enroll?v=1&server={}&serial=P-1&code=AAAAAAAAAAAAAAAAAAAA",
                utf8_percent_encode(server, NON_ALPHANUMERIC)
            )
        };
        assert!(EnrollmentLink::is_meant(&format!("  {}", link("https://a"))));
        assert!(!EnrollmentLink::is_meant("otpauth://totp/A?secret=JBSWY3DPEHPK3PXP"));
        let texts = [
            SecretString::new("otpauth://totp/A?secret=JBSWY3DPEHPK3PXP".into()),
            SecretString::new(link("https://a")),
        ];
        assert_eq!(EnrollmentLink::find_in(&texts).map(|l| l.server), Some("https://a".to_owned()));
        assert_eq!(EnrollmentLink::find_in(&texts[..1]), None);
        let cleartext = |server: &str| EnrollmentLink::parse(&link(server)).unwrap().is_cleartext();
        assert!(cleartext("http://auth.example.com"));
        let plain = EnrollmentLink::parse(&link("http://auth.example.com")).unwrap();
        assert!(
            plain.cleartext_warning().is_some_and(|w| w.starts_with("http://auth.example.com is not HTTPS"))
        );
        assert_eq!(EnrollmentLink::parse(&link("https://a")).unwrap().cleartext_warning(), None);
        assert!(!cleartext("https://auth.example.com"));
        assert!(!cleartext("http://127.0.0.1:8080"));
        assert!(!cleartext("http://localhost:8080"));
        assert!(!cleartext("http://[::1]:8080/base"));
        assert!(!cleartext("http://127.0.0.2"));
        assert!(cleartext("http://localhost.evil.example"), "a look-alike host is not this computer");
        assert!(cleartext("http://127.0.0.1@evil.example"), "user info is not the host");
        assert!(cleartext("http://127.0.0.1.evil.example:80"));
        let link_to = |server: &str| EnrollmentLink::parse(&link(server)).unwrap();
        let preview = link_to("http://user@auth.example.com:8080/base").preview();
        assert_eq!((preview.host.as_str(), preview.cleartext), ("auth.example.com:8080", true));
        assert!(matches!(
            link_to("http://auth.example.com").check_transport(Cleartext::Refuse),
            Err(PushError::Cleartext(_))
        ));
        assert!(link_to("http://auth.example.com").check_transport(Cleartext::AcceptedByUser).is_ok());
        assert!(link_to("https://auth.example.com").check_transport(Cleartext::Refuse).is_ok());
        assert!(link_to("http://127.0.0.1:8480").check_transport(Cleartext::Refuse).is_ok());
        assert!(EnrollmentLink::is_meant("TESSERA://ENROLL?V=1"), "QR codes are often upper case");
    }

    const NOW: u64 = 1_800_000_000;

    fn registration() -> RegisterResponse {
        RegisterResponse {
            serial: "PUSH-1".into(),
            username: "alice".into(),
            issuer: "ACME".into(),
            server_public_key: KeyPair::generate().unwrap().public(),
            totp_secret: SecretString::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into()),
            algorithm: "SHA256".into(),
            digits: 8,
            period: 30,
        }
    }

    #[test]
    fn a_registration_becomes_the_approve_with_otp_token() {
        let otp = registration().totp().unwrap();
        assert_eq!((otp.issuer(), otp.account()), (Some("ACME"), "alice"));
        assert_eq!(otp.method().code_at(otp.secret(), NOW).expose().len(), 8);
        let broken: [(&str, Tamper<RegisterResponse>); 4] = [
            ("seed", Box::new(|r| r.totp_secret = SecretString::new("not base32!".into()))),
            ("algorithm", Box::new(|r| r.algorithm = "MD5".into())),
            ("digits", Box::new(|r| r.digits = 3)),
            ("period", Box::new(|r| r.period = 0)),
        ];
        for (what, tamper) in broken {
            let mut response = registration();
            tamper(&mut response);
            let error = response.totp().unwrap_err();
            assert!(
                matches!(&error, PushError::InvalidRegistration(m) if m.starts_with(what)),
                "{what}: {error}"
            );
            assert!(!error.to_string().contains("JBSWY3DP"), "the seed stays out of messages");
        }
    }

    /// A change to a signed message, to check the signature notices it.
    type Tamper<T> = Box<dyn Fn(&mut T)>;

    fn challenge(mode: NumberMatching, choices: Vec<u8>) -> Challenge {
        Challenge {
            v: 1,
            transaction_id: "TX1".into(),
            username: "alice".into(),
            serial: "PUSH-ABC".into(),
            service: "ACME VPN".into(),
            client_ip: Some("203.0.113.9".into()),
            user_agent: Some("Firefox".into()),
            created_at: NOW,
            expires_at: NOW + 120,
            number_matching: mode,
            number_choices: choices,
        }
    }

    #[test]
    fn signed_challenges_verify_and_any_change_breaks_them() {
        let server = KeyPair::generate().unwrap();
        let signed = challenge(NumberMatching::Pick, vec![12, 47, 83]).sign(&server);
        assert_eq!(signed.verify(&server.public(), NOW + 1).unwrap().username, "alice");
        let json = serde_json::to_string(&signed).unwrap();
        let parsed: SignedChallenge = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.verify(&server.public(), NOW).map(|c| c.serial.as_str()), Ok("PUSH-ABC"));

        let changes: Vec<Tamper<Challenge>> = vec![
            Box::new(|c| c.username = "mallory".into()),
            Box::new(|c| c.client_ip = None),
            Box::new(|c| c.user_agent = Some("Firefox ".into())),
            Box::new(|c| c.expires_at += 1),
            Box::new(|c| c.number_choices = vec![12, 47, 84]),
            Box::new(|c| c.number_matching = NumberMatching::Off),
            Box::new(|c| c.transaction_id.push('2')),
        ];
        for change in changes {
            let mut tampered = signed.clone();
            change(&mut tampered.challenge);
            assert_eq!(tampered.verify(&server.public(), NOW), Err(PushError::BadSignature));
        }
        let other = KeyPair::generate().unwrap();
        assert_eq!(signed.verify(&other.public(), NOW), Err(PushError::BadSignature));
    }

    #[test]
    fn challenges_outside_their_time_are_refused() {
        let server = KeyPair::generate().unwrap();
        let signed = challenge(NumberMatching::Off, vec![]).sign(&server);
        assert_eq!(signed.verify(&server.public(), NOW + 121), Err(PushError::Expired));
        assert_eq!(signed.verify(&server.public(), NOW - 200), Err(PushError::NotYetValid));
        let mut long = challenge(NumberMatching::Off, vec![]);
        long.expires_at = NOW + MAX_CHALLENGE_LIFETIME_SECS + 1;
        assert_eq!(long.sign(&server).verify(&server.public(), NOW), Err(PushError::LifetimeTooLong));
        let mut future = challenge(NumberMatching::Off, vec![]);
        future.v = 2;
        assert_eq!(future.sign(&server).verify(&server.public(), NOW), Err(PushError::UnsupportedVersion(2)));
    }

    #[test]
    fn answers_are_bound_to_everything_they_say() {
        let device = KeyPair::generate().unwrap();
        let c = challenge(NumberMatching::Type, vec![]);
        let signed =
            Answer::to(&c, Decision::Approve, Some(42), Some(SecretString::new("123456".into())), NOW)
                .unwrap()
                .sign(&device);
        assert!(signed.verify(&device.public()).is_ok());
        let json = serde_json::to_string(&signed).unwrap();
        assert!(json.contains("\"decision\":\"approve\""), "{json}");
        let parsed: SignedAnswer = serde_json::from_str(&json).unwrap();
        assert!(parsed.verify(&device.public()).is_ok());
        let changes: Vec<Tamper<Answer>> = vec![
            Box::new(|a| a.number = Some(43)),
            Box::new(|a| a.decision = Decision::Deny(DenyReason::Cancelled)),
            Box::new(|a| a.otp = Some(SecretString::new("123457".into()))),
            Box::new(|a| a.transaction_id = "TX2".into()),
            Box::new(|a| a.answered_at += 1),
        ];
        for change in changes {
            let mut tampered = signed.clone();
            change(&mut tampered.answer);
            assert_eq!(tampered.verify(&device.public()), Err(PushError::BadSignature));
        }
        let deny = Answer::to(&c, Decision::Deny(DenyReason::NotMe), Some(42), None, NOW).unwrap();
        assert_eq!((deny.number, deny.otp.is_none()), (None, true), "a denial carries no number or code");
        assert!(format!("{signed:?}").contains("[REDACTED]") && !format!("{signed:?}").contains("123456"));
    }

    #[test]
    fn a_challenge_signature_is_not_an_answer_signature() {
        let key = KeyPair::generate().unwrap();
        let signed_challenge = challenge(NumberMatching::Off, vec![]).sign(&key);
        let answer = Answer::to(&signed_challenge.challenge, Decision::Approve, None, None, NOW).unwrap();
        let forged = SignedAnswer { answer, signature: signed_challenge.signature };
        assert_eq!(forged.verify(&key.public()), Err(PushError::BadSignature));
    }

    #[test]
    fn number_matching_rules() {
        let pick = challenge(NumberMatching::Pick, vec![12, 47, 83]);
        assert_eq!(
            Answer::to(&pick, Decision::Approve, None, None, NOW).unwrap_err(),
            PushError::NumberRequired
        );
        assert_eq!(
            Answer::to(&pick, Decision::Approve, Some(13), None, NOW).unwrap_err(),
            PushError::NumberNotOffered
        );
        assert!(Answer::to(&pick, Decision::Approve, Some(47), None, NOW).is_ok());
        let typed = challenge(NumberMatching::Type, vec![]);
        assert_eq!(
            Answer::to(&typed, Decision::Approve, None, None, NOW).unwrap_err(),
            PushError::NumberRequired
        );
        assert!(
            Answer::to(&challenge(NumberMatching::Off, vec![]), Decision::Approve, None, None, NOW).is_ok()
        );
        assert!(Answer::to(&pick, Decision::Deny(DenyReason::Cancelled), None, None, NOW).is_ok());
    }

    #[test]
    fn number_challenges_are_two_digit_with_distinct_decoys() {
        for _ in 0..500 {
            let pick = NumberChallenge::new(NumberMatching::Pick).unwrap();
            let number = pick.number.unwrap();
            assert!((10..=99).contains(&number));
            assert_eq!(pick.choices.len(), 3);
            assert!(pick.choices.contains(&number));
            let mut unique = pick.choices.clone();
            unique.dedup();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), 3);
        }
        let positions: std::collections::HashSet<usize> = (0..200)
            .map(|_| {
                let pick = NumberChallenge::new(NumberMatching::Pick).unwrap();
                pick.choices.iter().position(|c| Some(*c) == pick.number).unwrap()
            })
            .collect();
        assert_eq!(positions.len(), 3, "the right number is not always in the same place");
        let typed = NumberChallenge::new(NumberMatching::Type).unwrap();
        assert!(typed.number.is_some() && typed.choices.is_empty());
        assert_eq!(
            NumberChallenge::new(NumberMatching::Off).unwrap(),
            NumberChallenge { number: None, choices: vec![] }
        );
    }

    #[test]
    fn enrollment_links_round_trip_and_refuse_bad_input() {
        let link = EnrollmentLink {
            server: "https://auth.example.com:8443".into(),
            serial: "PUSH-ABCD1234".into(),
            code: SecretString::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into()),
            issuer: Some("ACME Co".into()),
            account: Some("alice@example.com".into()),
        };
        let uri = link.to_uri();
        assert!(uri.expose().starts_with("tessera://enroll?v=1&server=https%3A%2F%2Fauth"));
        assert_eq!(EnrollmentLink::parse(uri.expose()).unwrap(), link);
        assert!(!format!("{link:?}").contains("GEZDGNBV"));

        let cases = [
            ("otpauth://totp/x?secret=AAAA", PushError::NotAnEnrollmentLink),
            (
                "tessera://enroll?v=2&server=https%3A%2F%2Fa&serial=P-1&code=AAAAAAAAAAAAAAAAAAAA",
                PushError::UnsupportedLinkVersion("2".into()),
            ),
            (
                "tessera://enroll?server=https%3A%2F%2Fa&serial=P-1&code=AAAAAAAAAAAAAAAAAAAA",
                PushError::InvalidLink("version"),
            ),
            (
                "tessera://enroll?v=1&server=ftp%3A%2F%2Fa&serial=P-1&code=AAAAAAAAAAAAAAAAAAAA",
                PushError::InvalidLink("server"),
            ),
            (
                "tessera://enroll?v=1&server=https%3A%2F%2Fa&serial=P%201&code=AAAAAAAAAAAAAAAAAAAA",
                PushError::InvalidLink("serial"),
            ),
            (
                "tessera://enroll?v=1&server=https%3A%2F%2Fa&serial=P-1&code=short",
                PushError::InvalidLink("code"),
            ),
            (
                "tessera://enroll?v=1&server=https%3A%2F%2Fa%0A&serial=P-1&code=AAAAAAAAAAAAAAAAAAAA",
                PushError::InvalidLink("server"),
            ),
            (
                "tessera://enroll?v=1&server=%FF&serial=P-1&code=AAAAAAAAAAAAAAAAAAAA",
                PushError::InvalidLink("encoding"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(EnrollmentLink::parse(text).unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn keys_round_trip_and_bad_keys_are_refused() {
        let pair = KeyPair::generate().unwrap();
        let again = KeyPair::from_seed(&pair.seed()).unwrap();
        assert_eq!(pair.public(), again.public());
        assert_eq!(PublicKey::parse(&pair.public().to_base64()).unwrap(), pair.public());
        assert_eq!(PublicKey::parse("AAAA").unwrap_err(), PushError::InvalidKey);
        assert_eq!(PublicKey::parse("not base64 !").unwrap_err(), PushError::InvalidKey);
        assert!(!format!("{pair:?}").contains(&data_encoding::HEXLOWER.encode(pair.seed().expose())));
        assert!(pair.public().verify(b"message", "AAAA").is_err());
    }

    #[test]
    fn wake_addresses_are_checked_before_they_are_stored() {
        let fcm = WakeAddress::Fcm("dGVzc2VyYQ:APA91bH-example_registration.token-0123456789".into());
        assert_eq!(fcm.validate(), Ok(()));
        assert_eq!(WakeAddress::from_parts(fcm.service(), fcm.token()), Some(fcm));
        assert_eq!(WakeAddress::Apns("ab".repeat(32)).validate(), Ok(()));
        let refused = [
            (WakeAddress::Fcm("short".into()), "too short"),
            (WakeAddress::Fcm(format!("{}\n{}", "a".repeat(40), "b")), "unexpected characters"),
            (WakeAddress::Fcm("a".repeat(4097)), "too long"),
            (WakeAddress::Apns("zz".repeat(32)), "unexpected characters"),
            (WakeAddress::Apns("a".repeat(65)), "odd number of hex digits"),
            (WakeAddress::Apns("ab".repeat(101)), "too long"),
        ];
        for (address, why) in refused {
            assert_eq!(address.validate(), Err(PushError::InvalidWakeAddress(address.service(), why)));
        }
        assert_eq!(WakeAddress::from_parts("sms", "x"), None);
    }
}
