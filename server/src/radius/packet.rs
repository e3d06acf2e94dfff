//! RADIUS packets on the wire: RFC 2865 (packet and attributes, the `User-Password` hiding of
//! §5.2, the Response Authenticator), RFC 3579 §3.2 (Message-Authenticator, HMAC-MD5) as the
//! BlastRADIUS fixes use it (CVE-2024-3596: checked on requests, first attribute of every reply).
//! Written here because no crate computes and verifies Message-Authenticator (the research for
//! this issue checked `radius`, `radius-rust` and `radius-server`). Decoding checks every length
//! and never panics; what does not parse is an error the listener drops and audits.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use tessera_core::secret::SecretString;
use zeroize::Zeroizing;

/// The shortest packet: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// The longest packet RFC 2865 allows.
pub const MAX_PACKET_LEN: usize = 4096;
/// The longest attribute value (an attribute's length octet counts its two header octets).
pub const MAX_VALUE_LEN: usize = 253;
/// The longest hidden `User-Password` (RFC 2865 §5.2).
const MAX_PASSWORD_LEN: usize = 128;

/// A packet's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A client asks to sign a user in.
    AccessRequest,
    /// Signed in.
    AccessAccept,
    /// Refused.
    AccessReject,
    /// A client reports a session's start or end (RFC 2866).
    AccountingRequest,
    /// Accounting answer.
    AccountingResponse,
    /// More is needed from the user (RFC 2865 §4.4).
    AccessChallenge,
    /// A client asks whether the server is up (RFC 5997).
    StatusServer,
}

impl Code {
    /// The code's octet.
    pub fn octet(self) -> u8 {
        match self {
            Self::AccessRequest => 1,
            Self::AccessAccept => 2,
            Self::AccessReject => 3,
            Self::AccountingRequest => 4,
            Self::AccountingResponse => 5,
            Self::AccessChallenge => 11,
            Self::StatusServer => 12,
        }
    }

    fn from_octet(octet: u8) -> Option<Self> {
        [
            Self::AccessRequest,
            Self::AccessAccept,
            Self::AccessReject,
            Self::AccountingRequest,
            Self::AccountingResponse,
            Self::AccessChallenge,
            Self::StatusServer,
        ]
        .into_iter()
        .find(|code| code.octet() == octet)
    }
}

/// Attribute types this server reads or writes (RFC 2865 §5, RFC 3579).
pub mod attribute {
    /// The user's name.
    pub const USER_NAME: u8 = 1;
    /// The password, hidden with the shared secret.
    pub const USER_PASSWORD: u8 = 2;
    /// CHAP (refused: the server needs the password itself).
    pub const CHAP_PASSWORD: u8 = 3;
    /// The client's address.
    pub const NAS_IP_ADDRESS: u8 = 4;
    /// The address the user is given.
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    /// A filter the client applies (a group, for a VPN).
    pub const FILTER_ID: u8 = 11;
    /// Text for the user.
    pub const REPLY_MESSAGE: u8 = 18;
    /// Opaque state that carries a challenge to the next request.
    pub const STATE: u8 = 24;
    /// Opaque class the client echoes in accounting.
    pub const CLASS: u8 = 25;
    /// A vendor's own attribute.
    pub const VENDOR_SPECIFIC: u8 = 26;
    /// Seconds the answer (or a challenge) is good for.
    pub const SESSION_TIMEOUT: u8 = 27;
    /// Seconds a session may stay idle.
    pub const IDLE_TIMEOUT: u8 = 28;
    /// The address the user connects from.
    pub const CALLING_STATION_ID: u8 = 31;
    /// The client's name.
    pub const NAS_IDENTIFIER: u8 = 32;
    /// What an Accounting-Request reports (RFC 2866 §5.1).
    pub const ACCT_STATUS_TYPE: u8 = 40;
    /// The session an Accounting-Request reports on.
    pub const ACCT_SESSION_ID: u8 = 44;
    /// Seconds the session lasted.
    pub const ACCT_SESSION_TIME: u8 = 46;
    /// A proxy's own state, echoed in order.
    pub const PROXY_STATE: u8 = 33;
    /// EAP (refused).
    pub const EAP_MESSAGE: u8 = 79;
    /// The address pool the user's address comes from.
    pub const FRAMED_POOL: u8 = 88;
    /// HMAC-MD5 over the packet (RFC 3579 §3.2).
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
}

/// A packet that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer octets than a header, or than the length field says.
    #[error("the packet is shorter than its length")]
    Truncated,
    /// A length field below 20 or above 4096.
    #[error("the packet's length is out of range")]
    BadLength,
    /// A code RADIUS does not define.
    #[error("unknown packet code {0}")]
    UnknownCode(u8),
    /// An attribute whose length is below 2 or runs past the packet.
    #[error("an attribute's length is wrong")]
    BadAttribute,
    /// A Message-Authenticator that is not 16 octets, or more than one.
    #[error("a malformed Message-Authenticator")]
    BadMessageAuthenticator,
}

/// One attribute.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Its type.
    pub kind: u8,
    /// Its value, 0 to 253 octets.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = self.kind == attribute::USER_PASSWORD;
        f.debug_struct("Attribute")
            .field("kind", &self.kind)
            .field("len", &self.value.len())
            .field("value", &if hidden { None } else { Some(&self.value) })
            .finish()
    }
}

/// A decoded packet, with the octets it was read from (a Message-Authenticator is checked over
/// them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// What it is.
    pub code: Code,
    /// Pairs a reply with its request.
    pub identifier: u8,
    /// The Request Authenticator (random, from the client).
    pub authenticator: [u8; 16],
    /// In order.
    pub attributes: Vec<Attribute>,
    /// The packet's octets, without padding past its length.
    raw: Vec<u8>,
    /// Where the Message-Authenticator's value starts in `raw`, if there is one.
    message_authenticator_at: Option<usize>,
}

/// What a request's Message-Authenticator says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAuthenticator {
    /// None was sent.
    Missing,
    /// Right for the shared secret.
    Valid,
    /// Wrong: a forged or damaged packet, or another secret.
    Invalid,
}

impl Packet {
    /// Reads a packet (octets past its length field are padding and ignored, RFC 2865 §3).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header: &[u8; HEADER_LEN] =
            bytes.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(DecodeError::Truncated)?;
        let [code, identifier, high, low, authenticator @ ..] = *header;
        let length = usize::from(u16::from_be_bytes([high, low]));
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) {
            return Err(DecodeError::BadLength);
        }
        let raw = bytes.get(..length).ok_or(DecodeError::Truncated)?.to_vec();
        let code = Code::from_octet(code).ok_or(DecodeError::UnknownCode(code))?;
        let mut attributes = Vec::new();
        let mut message_authenticator_at = None;
        let mut at = HEADER_LEN;
        while at < length {
            let (Some(&kind), Some(&len)) = (raw.get(at), raw.get(at + 1)) else {
                return Err(DecodeError::BadAttribute);
            };
            let len = usize::from(len);
            let value = raw.get(at + 2..at + len).filter(|_| len >= 2).ok_or(DecodeError::BadAttribute)?;
            if kind == attribute::MESSAGE_AUTHENTICATOR {
                if value.len() != 16 || message_authenticator_at.is_some() {
                    return Err(DecodeError::BadMessageAuthenticator);
                }
                message_authenticator_at = Some(at + 2);
            }
            attributes.push(Attribute { kind, value: value.to_vec() });
            at += len;
        }
        Ok(Self { code, identifier, authenticator, attributes, raw, message_authenticator_at })
    }

    /// The first attribute of `kind`.
    pub fn attribute(&self, kind: u8) -> Option<&[u8]> {
        self.attributes.iter().find(|a| a.kind == kind).map(|a| a.value.as_slice())
    }

    /// Every attribute of `kind`, in order.
    pub fn all(&self, kind: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes.iter().filter(move |a| a.kind == kind).map(|a| a.value.as_slice())
    }

    /// The first attribute of `kind` as text (none when absent or not UTF-8).
    pub fn text(&self, kind: u8) -> Option<&str> {
        self.attribute(kind).and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Checks a request's Message-Authenticator: HMAC-MD5 keyed with `secret` over the packet
    /// with the attribute's value zeroed (RFC 3579 §3.2), compared in constant time.
    pub fn message_authenticator(&self, secret: &[u8]) -> MessageAuthenticator {
        let Some(at) = self.message_authenticator_at else { return MessageAuthenticator::Missing };
        let mut zeroed = self.raw.clone();
        let Some(field) = zeroed.get_mut(at..at + 16) else { return MessageAuthenticator::Invalid };
        let sent: [u8; 16] = match (*field).try_into() {
            Ok(sent) => sent,
            Err(_) => return MessageAuthenticator::Invalid,
        };
        field.fill(0);
        let expected = hmac_md5(secret, &zeroed);
        if bool::from(expected.ct_eq(&sent)) {
            MessageAuthenticator::Valid
        } else {
            MessageAuthenticator::Invalid
        }
    }

    /// Whether an Accounting-Request's Request Authenticator is right for `secret` (RFC 2866 §3:
    /// `MD5(code + id + length + 16 zero octets + attributes + secret)`), in constant time. It
    /// covers the whole packet, so it stands in for a Message-Authenticator.
    pub fn accounting_request_authentic(&self, secret: &[u8]) -> bool {
        let mut zeroed = self.raw.clone();
        let Some(field) = zeroed.get_mut(4..HEADER_LEN) else { return false };
        field.fill(0);
        let expected = md5_of(&[&zeroed, secret]);
        bool::from(expected.ct_eq(&self.authenticator))
    }

    /// The first attribute of `kind` as a 32-bit integer (none when absent or not four octets).
    pub fn integer(&self, kind: u8) -> Option<u32> {
        self.attribute(kind).and_then(|value| value.try_into().ok()).map(u32::from_be_bytes)
    }

    /// The `User-Password` revealed with `secret` (RFC 2865 §5.2): none when absent; an error
    /// when its length is wrong or it is not UTF-8 (a wrong secret usually gives that).
    pub fn password(&self, secret: &[u8]) -> Option<Result<SecretString, PasswordError>> {
        self.attribute(attribute::USER_PASSWORD)
            .map(|hidden| reveal_password(hidden, &self.authenticator, secret))
    }
}

/// A `User-Password` that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Not a multiple of 16 octets between 16 and 128.
    #[error("the hidden password's length is not a multiple of 16 from 16 to 128")]
    Length,
    /// Not text: most likely hidden with another secret.
    #[error("the password is not text (is the shared secret right?)")]
    NotText,
}

/// Reveals a hidden `User-Password`: `p(i) = c(i) xor MD5(secret + c(i-1))`, `c(0)` the Request
/// Authenticator; trailing NULs are padding.
pub fn reveal_password(
    hidden: &[u8],
    authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<SecretString, PasswordError> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::Length);
    }
    let mut plain = Zeroizing::new(Vec::with_capacity(hidden.len()));
    let mut previous: &[u8] = authenticator;
    for block in hidden.chunks(16) {
        let mask = md5_of(&[secret, previous]);
        plain.extend(block.iter().zip(mask.iter()).map(|(c, m)| c ^ m));
        previous = block;
    }
    let end = plain.iter().rposition(|b| *b != 0).map_or(0, |last| last + 1);
    let text =
        std::str::from_utf8(plain.get(..end).unwrap_or_default()).map_err(|_| PasswordError::NotText)?;
    Ok(SecretString::new(text.to_owned()))
}

/// Hides `password` as a client does (for tests and the benchmark's client).
pub fn hide_password(password: &str, authenticator: &[u8; 16], secret: &[u8]) -> Vec<u8> {
    let mut padded = Zeroizing::new(password.as_bytes().to_vec());
    let blocks = padded.len().div_ceil(16).clamp(1, MAX_PASSWORD_LEN / 16);
    padded.resize(blocks * 16, 0);
    let mut hidden = Vec::with_capacity(padded.len());
    for block in padded.chunks(16) {
        let previous: &[u8] =
            hidden.len().checked_sub(16).and_then(|at| hidden.get(at..)).unwrap_or(authenticator);
        let mask = md5_of(&[secret, previous]);
        let cipher: Vec<u8> = block.iter().zip(mask.iter()).map(|(p, m)| p ^ m).collect();
        hidden.extend(cipher);
    }
    hidden
}

/// Encodes a reply to `request`: `attributes` after a Message-Authenticator (first, as the
/// BlastRADIUS fixes advise; not in an Accounting-Response, which RFC 2866 signs by its Response
/// Authenticator alone and clients check so), the request's `Proxy-State`s copied in order (RFC 2865 §5.33),
/// values longer than 253 octets split over several attributes of their type, and the Response
/// Authenticator `MD5(code + id + length + request authenticator + attributes + secret)`.
/// Attributes that would not fit in 4096 octets are left out.
pub fn encode_reply(code: Code, request: &Packet, attributes: &[Attribute], secret: &[u8]) -> Vec<u8> {
    let signed = code != Code::AccountingResponse;
    let mut out = Vec::with_capacity(256);
    out.push(code.octet());
    out.push(request.identifier);
    out.extend([0, 0]);
    out.extend(request.authenticator);
    if signed {
        out.extend([attribute::MESSAGE_AUTHENTICATOR, 18]);
        out.extend([0; 16]);
    }
    let proxy_states = request.all(attribute::PROXY_STATE).map(|value| (attribute::PROXY_STATE, value));
    let ours = attributes.iter().map(|a| (a.kind, a.value.as_slice()));
    for (kind, value) in ours.chain(proxy_states) {
        let pieces: Vec<&[u8]> =
            if value.is_empty() { vec![value] } else { value.chunks(MAX_VALUE_LEN).collect() };
        for piece in pieces {
            if out.len() + 2 + piece.len() > MAX_PACKET_LEN {
                break;
            }
            out.push(kind);
            out.push(u8::try_from(piece.len() + 2).unwrap_or(u8::MAX));
            out.extend(piece);
        }
    }
    let length = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(field) = out.get_mut(2..4) {
        field.copy_from_slice(&length);
    }
    if signed {
        let mac = hmac_md5(secret, &out);
        if let Some(field) = out.get_mut(HEADER_LEN + 2..HEADER_LEN + 18) {
            field.copy_from_slice(&mac);
        }
    }
    let response = md5_of(&[&out, secret]);
    if let Some(field) = out.get_mut(4..HEADER_LEN) {
        field.copy_from_slice(&response);
    }
    out
}

/// Encodes a request as a client does (for tests and the benchmark's client): the attributes,
/// then a Message-Authenticator when `sign`.
pub fn encode_request(
    identifier: u8,
    authenticator: [u8; 16],
    attributes: &[Attribute],
    secret: &[u8],
    sign: bool,
) -> Vec<u8> {
    let mut out = vec![Code::AccessRequest.octet(), identifier, 0, 0];
    out.extend(authenticator);
    for a in attributes {
        out.push(a.kind);
        out.push(u8::try_from(a.value.len() + 2).unwrap_or(u8::MAX));
        out.extend(&a.value);
    }
    let mac_at = out.len() + 2;
    if sign {
        out.extend([attribute::MESSAGE_AUTHENTICATOR, 18]);
        out.extend([0; 16]);
    }
    let length = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(field) = out.get_mut(2..4) {
        field.copy_from_slice(&length);
    }
    if sign {
        let mac = hmac_md5(secret, &out);
        if let Some(field) = out.get_mut(mac_at..mac_at + 16) {
            field.copy_from_slice(&mac);
        }
    }
    out
}

/// Encodes an Accounting-Request as a client does (for tests): its Request Authenticator is the
/// MD5 over the packet with 16 zero octets in its place, and the secret.
pub fn encode_accounting_request(identifier: u8, attributes: &[Attribute], secret: &[u8]) -> Vec<u8> {
    let mut out = encode_request(identifier, [0; 16], attributes, secret, false);
    if let Some(code) = out.first_mut() {
        *code = Code::AccountingRequest.octet();
    }
    let authenticator = md5_of(&[&out, secret]);
    if let Some(field) = out.get_mut(4..HEADER_LEN) {
        field.copy_from_slice(&authenticator);
    }
    out
}

/// Whether `reply` is a genuine answer to the request whose authenticator is `request_authenticator`:
/// its Response Authenticator and its Message-Authenticator (for tests and the benchmark's client).
pub fn reply_is_genuine(reply: &[u8], request_authenticator: &[u8; 16], secret: &[u8]) -> bool {
    let Ok(packet) = Packet::decode(reply) else { return false };
    let mut with_request = packet.raw.clone();
    let Some(field) = with_request.get_mut(4..HEADER_LEN) else { return false };
    field.copy_from_slice(request_authenticator);
    let expected = md5_of(&[&with_request, secret]);
    let authentic = bool::from(expected.ct_eq(&packet.authenticator));
    let signed =
        Packet { raw: with_request, ..packet }.message_authenticator(secret) == MessageAuthenticator::Valid;
    authentic && signed
}

fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
    }
    md5.finalize().into()
}

fn hmac_md5(secret: &[u8], message: &[u8]) -> [u8; 16] {
    let Ok(mut mac) = <Hmac<Md5> as KeyInit>::new_from_slice(secret) else { return [0; 16] };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SECRET: &[u8] = b"xyzzy5461";

    fn hex(text: &str) -> Vec<u8> {
        data_encoding::HEXLOWER.decode(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_rfc_2865_example_password_is_revealed_and_hidden_alike() {
        // RFC 2865 §7.1: "nemo" with password "arctangent", secret "xyzzy5461".
        let authenticator: [u8; 16] = hex("0f403f9473978057bd83d5cb98f4227a").try_into().unwrap();
        let hidden = hex("0dbe708d93d413ce3196e43f782a0aee");
        assert_eq!(reveal_password(&hidden, &authenticator, SECRET).unwrap().expose(), "arctangent");
        assert_eq!(hide_password("arctangent", &authenticator, SECRET), hidden);
        let mut accept = hex("02000026");
        accept.extend(authenticator);
        accept.extend(hex("0606000000010f06000000000e06c0a80103"));
        let response = md5_of(&[&accept, SECRET]);
        assert_eq!(
            response.to_vec(),
            hex("86fe220e7624ba2a1005f6bf9b55e0b2"),
            "the example's Response Authenticator"
        );
    }

    #[test]
    fn a_signed_request_checks_and_any_change_breaks_it() {
        let attributes = [
            Attribute { kind: attribute::USER_NAME, value: b"ann".to_vec() },
            Attribute { kind: attribute::USER_PASSWORD, value: hide_password("2580", &[7; 16], SECRET) },
        ];
        let bytes = encode_request(42, [7; 16], &attributes, SECRET, true);
        let packet = Packet::decode(&bytes).unwrap();
        assert_eq!(packet.message_authenticator(SECRET), MessageAuthenticator::Valid);
        assert_eq!(packet.message_authenticator(b"another secret"), MessageAuthenticator::Invalid);
        assert_eq!(packet.password(SECRET).unwrap().unwrap().expose(), "2580");
        assert_eq!(packet.text(attribute::USER_NAME), Some("ann"));
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x01;
            if let Ok(packet) = Packet::decode(&changed) {
                assert_ne!(packet.message_authenticator(SECRET), MessageAuthenticator::Valid, "octet {at}");
            }
        }
        let unsigned = Packet::decode(&encode_request(1, [7; 16], &attributes, SECRET, false)).unwrap();
        assert_eq!(unsigned.message_authenticator(SECRET), MessageAuthenticator::Missing);
        assert!(!format!("{packet:?}").contains("2580"), "no password in Debug");
    }

    #[test]
    fn an_accounting_request_is_authentic_for_its_secret_and_any_change_breaks_it() {
        let attributes = [
            Attribute { kind: attribute::ACCT_STATUS_TYPE, value: 2u32.to_be_bytes().to_vec() },
            Attribute { kind: attribute::USER_NAME, value: b"ann".to_vec() },
            Attribute { kind: attribute::ACCT_SESSION_TIME, value: 3600u32.to_be_bytes().to_vec() },
        ];
        let bytes = encode_accounting_request(5, &attributes, SECRET);
        let packet = Packet::decode(&bytes).unwrap();
        assert_eq!(packet.code, Code::AccountingRequest);
        assert!(packet.accounting_request_authentic(SECRET));
        assert!(!packet.accounting_request_authentic(b"another secret"));
        assert_eq!(
            (packet.integer(attribute::ACCT_STATUS_TYPE), packet.integer(attribute::ACCT_SESSION_TIME)),
            (Some(2), Some(3600))
        );
        assert_eq!(packet.integer(attribute::USER_NAME), None, "three octets are not an integer");
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x01;
            if let Ok(packet) = Packet::decode(&changed) {
                assert!(!packet.accounting_request_authentic(SECRET), "octet {at}");
            }
        }
    }

    #[test]
    fn a_reply_is_signed_first_carries_proxy_state_and_splits_long_text() {
        let mut attributes = vec![Attribute { kind: attribute::USER_NAME, value: b"ann".to_vec() }];
        attributes.push(Attribute { kind: attribute::PROXY_STATE, value: b"hop-1".to_vec() });
        attributes.push(Attribute { kind: attribute::PROXY_STATE, value: b"hop-2".to_vec() });
        let request = Packet::decode(&encode_request(9, [3; 16], &attributes, SECRET, true)).unwrap();
        let long = "x".repeat(600);
        let reply = encode_reply(
            Code::AccessChallenge,
            &request,
            &[Attribute { kind: attribute::REPLY_MESSAGE, value: long.clone().into_bytes() }],
            SECRET,
        );
        assert!(reply_is_genuine(&reply, &[3; 16], SECRET));
        assert!(!reply_is_genuine(&reply, &[4; 16], SECRET), "bound to its request");
        assert!(!reply_is_genuine(&reply, &[3; 16], b"another secret"));
        let answer = Packet::decode(&reply).unwrap();
        assert_eq!((answer.code, answer.identifier), (Code::AccessChallenge, 9));
        assert_eq!(
            answer.attributes[0].kind,
            attribute::MESSAGE_AUTHENTICATOR,
            "first, as BlastRADIUS advises"
        );
        let text: Vec<u8> = answer.all(attribute::REPLY_MESSAGE).flatten().copied().collect();
        assert_eq!(text, long.as_bytes(), "split over three attributes and joined again");
        let proxied: Vec<&[u8]> = answer.all(attribute::PROXY_STATE).collect();
        assert_eq!(proxied, [b"hop-1".as_slice(), b"hop-2"], "Proxy-State copied in order");
    }

    #[test]
    fn malformed_packets_are_errors() {
        let good = encode_request(1, [0; 16], &[Attribute { kind: 1, value: b"a".to_vec() }], SECRET, true);
        assert_eq!(Packet::decode(&good[..19]), Err(DecodeError::Truncated));
        let mut short_length = good.clone();
        short_length[3] = 19;
        short_length[2] = 0;
        assert_eq!(Packet::decode(&short_length), Err(DecodeError::BadLength));
        let mut long_length = good.clone();
        long_length[2] = 0xff;
        assert_eq!(Packet::decode(&long_length), Err(DecodeError::BadLength));
        let mut past_end = good.clone();
        past_end[3] += 1;
        assert_eq!(Packet::decode(&past_end), Err(DecodeError::Truncated));
        let mut zero_attribute = good.clone();
        zero_attribute[21] = 0;
        assert_eq!(Packet::decode(&zero_attribute), Err(DecodeError::BadAttribute));
        let mut code = good.clone();
        code[0] = 99;
        assert_eq!(Packet::decode(&code), Err(DecodeError::UnknownCode(99)));
        let mut padded = good.clone();
        padded.extend([0xee; 9]);
        assert_eq!(Packet::decode(&padded).unwrap().raw, good, "octets past the length are padding");
        for length in [0, 15, 17, 144] {
            assert_eq!(reveal_password(&vec![1; length], &[0; 16], SECRET), Err(PasswordError::Length));
        }
    }

    #[test]
    fn a_million_mutated_packets_never_panic() {
        let attributes = [
            Attribute { kind: attribute::USER_NAME, value: b"ann".to_vec() },
            Attribute { kind: attribute::USER_PASSWORD, value: hide_password("2580", &[5; 16], SECRET) },
            Attribute { kind: attribute::STATE, value: vec![9; 16] },
        ];
        let seed = encode_request(7, [5; 16], &attributes, SECRET, true);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut decoded, mut valid) = (0u32, 0u32);
        for case in 0..1_000_000u32 {
            let mut bytes = seed.clone();
            let roll = next();
            match roll % 4 {
                0 => bytes.truncate(usize::try_from(next() % 64).unwrap()),
                1 => bytes.extend((0..next() % 40).map(|_| next().to_le_bytes()[0])),
                _ => {}
            }
            for _ in 0..=(roll >> 8) % 4 {
                if bytes.is_empty() {
                    break;
                }
                let at = usize::try_from(next()).unwrap() % bytes.len();
                bytes[at] = next().to_le_bytes()[0];
            }
            if let Ok(packet) = Packet::decode(&bytes) {
                decoded += 1;
                if case % 16 == 0 && packet.message_authenticator(SECRET) == MessageAuthenticator::Valid {
                    valid += 1;
                }
                let _ = packet.password(SECRET);
                let _ = packet.text(attribute::USER_NAME);
            }
        }
        assert!(decoded > 10_000, "the mutations reach the attribute parser: {decoded}");
        assert!(valid > 0, "and some survive unchanged: {valid}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn any_password_survives_hiding(password in "[^\u{0}]{0,40}", authenticator in any::<[u8; 16]>()) {
            prop_assume!(password.len() <= MAX_PASSWORD_LEN);
            let hidden = hide_password(&password, &authenticator, SECRET);
            let revealed = reveal_password(&hidden, &authenticator, SECRET).unwrap();
            prop_assert_eq!(revealed.expose(), password.as_str());
        }

        #[test]
        fn any_reply_is_genuine(identifier in any::<u8>(), authenticator in any::<[u8; 16]>(), text in ".{0,300}") {
            let request = Packet::decode(&encode_request(identifier, authenticator, &[], SECRET, true)).unwrap();
            let attributes = [Attribute { kind: attribute::REPLY_MESSAGE, value: text.into_bytes() }];
            let reply = encode_reply(Code::AccessReject, &request, &attributes, SECRET);
            prop_assert!(reply_is_genuine(&reply, &authenticator, SECRET));
        }
    }
}
