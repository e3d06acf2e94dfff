//! What the edges show of tokens: their public details and their live codes, never the seed.
//!
//! The CLI's `list --json`, the desktop app and the mobile bindings all list tokens through
//! [`Vault::listing`], so a token looks the same everywhere and the rule "a PIN-guarded push token's
//! code is not shown" is applied in one place.

use serde::Serialize;

use crate::otp::{OtpCode, OtpMethod, Period};

use super::model::{Token, Vault};

/// A token's public details: everything but the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The token id (16 hex digits).
    pub id: String,
    /// The issuer, if any.
    pub issuer: Option<String>,
    /// The account name.
    pub label: String,
    /// `totp`, `hotp` or `steam`.
    pub kind: &'static str,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: &'static str,
    /// Code length in characters.
    pub digits: u8,
    /// The time step in seconds, for time-based tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u32>,
    /// The counter of the next code, for HOTP tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<u64>,
    /// The group (folder), if any.
    pub group: Option<String>,
    /// The icon URL from the enrollment URI, if any.
    pub icon: Option<String>,
    /// When the token was added (Unix seconds).
    pub created_at: u64,
    /// When a code was last taken (Unix seconds).
    pub last_used_at: Option<u64>,
    /// The push device this token is, if it answers push requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushInfo>,
}

/// Where a push token answers login requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushInfo {
    /// The server's base URL.
    pub server: String,
    /// The push token's serial at that server.
    pub serial: String,
}

impl TokenInfo {
    /// `issuer:label`, or the label alone, as [`Token::display_name`] names it.
    pub fn display_name(&self) -> String {
        crate::otpauth::display_name(self.issuer.as_deref(), &self.label)
    }

    /// The public details of `token`.
    pub fn of(token: &Token) -> Self {
        let method = token.method();
        Self {
            id: token.id().as_str().to_owned(),
            issuer: token.issuer().map(str::to_owned),
            label: token.label().to_owned(),
            kind: method.kind_name(),
            algorithm: method.algorithm().as_str(),
            digits: method.code_length(),
            period: method.period().map(Period::get),
            counter: match method {
                OtpMethod::Hotp { counter, .. } => Some(*counter),
                _ => None,
            },
            group: token.group().map(str::to_owned),
            icon: token.icon().map(str::to_owned),
            created_at: token.created_at(),
            last_used_at: token.last_used_at(),
            push: token.push().map(|p| PushInfo { server: p.server.clone(), serial: p.serial.clone() }),
        }
    }
}

/// What a list may show of a token's code at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeState {
    /// A time-based token's current code, the next one, and when the current one ends.
    Live {
        /// The current code.
        code: OtpCode,
        /// The code of the next time step (shown on hover or long press, to avoid waiting).
        next: OtpCode,
        /// The time step in seconds.
        period: u32,
        /// Seconds until `next` replaces `code` (1..=period).
        seconds_left: u32,
    },
    /// An HOTP token: each code is taken on request ([`Vault::take_code`]), never shown unasked.
    OnRequest,
    /// A push token of a vault with an answer PIN: its code approves logins, so it is shown only
    /// after the PIN.
    PinRequired,
}

/// One row of a token list: the token's details and what may be shown of its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The public details.
    pub info: TokenInfo,
    /// The code, when it may be shown now.
    pub code: CodeState,
}

impl Vault {
    /// Every token with what may be shown of its code at `unix_time`, in vault order.
    pub fn listing(&self, unix_time: u64) -> Vec<Listed> {
        self.tokens()
            .iter()
            .map(|token| Listed { info: TokenInfo::of(token), code: self.code_state(token, unix_time) })
            .collect()
    }

    fn code_state(&self, token: &Token, unix_time: u64) -> CodeState {
        if self.pin_guards(token) {
            return CodeState::PinRequired;
        }
        let Some(period) = token.method().period() else {
            return CodeState::OnRequest;
        };
        let seconds_left = period.seconds_remaining(unix_time);
        CodeState::Live {
            code: token.peek_code(unix_time),
            next: token.peek_code(unix_time.saturating_add(u64::from(seconds_left))),
            period: period.get(),
            seconds_left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otpauth::OtpAuth;
    use crate::secret::SecretString;

    /// RFC 6238 Appendix B's SHA-1 seed.
    const RFC_URI: &str =
        "otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example&digits=8";

    fn vault_with(uris: &[&str]) -> Vault {
        let mut vault = Vault::new();
        for uri in uris {
            vault.add(OtpAuth::parse(uri).unwrap().otp, Some("Work".into()), 100).unwrap();
        }
        vault
    }

    #[test]
    fn a_totp_row_has_the_rfc_code_the_next_code_and_the_time_left() {
        let listing = vault_with(&[RFC_URI]).listing(59);
        let [row] = listing.as_slice() else { panic!("one row expected") };
        let CodeState::Live { code, next, period, seconds_left } = &row.code else {
            panic!("live code expected")
        };
        assert_eq!(code.expose(), "94287082");
        assert_eq!(next.expose(), vault_with(&[RFC_URI]).tokens()[0].peek_code(60).expose());
        assert_ne!(code, next);
        assert_eq!((*period, *seconds_left), (30, 1));
        assert_eq!(row.info.issuer.as_deref(), Some("Example"));
        assert_eq!(row.info.group.as_deref(), Some("Work"));
        assert_eq!((row.info.kind, row.info.digits, row.info.period), ("totp", 8, Some(30)));
    }

    #[test]
    fn an_hotp_row_shows_no_code_until_one_is_taken() {
        let listing =
            vault_with(&["otpauth://hotp/Bank:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=7"])
                .listing(0);
        assert_eq!(listing[0].code, CodeState::OnRequest);
        assert_eq!(listing[0].info.counter, Some(7));
        assert_eq!(listing[0].info.period, None);
    }

    #[test]
    fn the_details_never_carry_the_seed() {
        let listing = vault_with(&[RFC_URI]).listing(0);
        let json = serde_json::to_string(&listing[0].info).unwrap();
        assert!(!json.contains("GEZDGNBV"), "{json}");
        assert!(!format!("{:?}", listing[0]).contains("94287082"));
    }

    #[test]
    fn a_pin_guarded_push_token_shows_no_code() {
        let mut vault = vault_with(&[]);
        let key = crate::push::KeyPair::generate().unwrap();
        let binding =
            crate::vault::PushBinding::new("https://mfa.example".into(), "PUSH-1".into(), &key, key.public());
        vault.add_push(OtpAuth::parse(RFC_URI).unwrap().otp, binding, 0).unwrap();
        assert!(matches!(vault.listing(0)[0].code, CodeState::Live { .. }));
        vault.set_answer_pin(None, &SecretString::new("2468".into()), 0).unwrap();
        let listing = vault.listing(0);
        assert_eq!(listing[0].code, CodeState::PinRequired);
        assert_eq!(listing[0].info.push.as_ref().map(|p| p.serial.as_str()), Some("PUSH-1"));
    }
}
