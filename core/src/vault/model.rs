//! The vault's contents: tokens and the rules for adding, finding, renaming, removing and using them.
//!
//! This is plain data plus rules; encryption and files are the envelope's and the store's business.
//! Every field here is encrypted at rest, names and metadata included.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::oneswipe::{self, OneSwipe, OneSwipeError};
use crate::otp::{OtpCode, OtpMethod, truncate_for_message};
use crate::otpauth::{OtpAuth, UriError};
use crate::push::{KeyPair, PublicKey, PushError};
use crate::secret::{SecretBytes, SecretString, fill_random};

use super::VaultError;
use super::answer_pin::{AnswerPin, PinCheck, PinError};

/// Shortest id prefix a query may use to pick a token.
pub const MIN_ID_PREFIX: usize = 4;
/// Longest group name.
pub const MAX_GROUP_LENGTH: usize = 64;

/// A token's stable identifier: 64 random bits, shown as 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenId(String);

impl TokenId {
    /// A fresh random id.
    pub fn random() -> Result<Self, crate::secret::RandomError> {
        let mut bytes = [0u8; 8];
        fill_random(&mut bytes)?;
        Ok(Self(data_encoding::HEXLOWER.encode(&bytes)))
    }

    /// The id an edge received as text (16 lowercase hex digits); anything else names no token.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let well_formed =
            text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if well_formed {
            Ok(Self(text.to_owned()))
        } else {
            Err(TokenError::NotFound(truncate_for_message(text)))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One soft token in the vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    id: TokenId,
    otp: OtpAuth,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<u64>,
    #[serde(default)]
    use_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push: Option<PushBinding>,
}

/// What makes a token a push device: its server, the device's signing key, and the server's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushBinding {
    /// Base URL of the server.
    pub server: String,
    /// The push token's serial at that server.
    pub serial: String,
    /// The device's Ed25519 signing key seed (never leaves the vault).
    pub device_key: SecretBytes,
    /// The key the server signs challenges with.
    pub server_key: PublicKey,
    /// The last challenge sequence number received, to resume the channel without repeats.
    #[serde(default)]
    pub last_seq: u64,
    /// The last TOTP time step this device signed into an approval or a One Swipe code.
    #[serde(default)]
    pub last_otp_step: u64,
}

impl PushBinding {
    /// A freshly registered device: nothing received or signed yet.
    pub fn new(server: String, serial: String, device: &KeyPair, server_key: PublicKey) -> Self {
        Self { server, serial, device_key: device.seed(), server_key, last_seq: 0, last_otp_step: 0 }
    }

    /// The device's key pair.
    pub fn key_pair(&self) -> Result<KeyPair, PushError> {
        KeyPair::from_seed(&self.device_key)
    }
}

impl Token {
    /// The id.
    pub fn id(&self) -> &TokenId {
        &self.id
    }

    /// Issuer, account, seed and code parameters.
    pub fn otp(&self) -> &OtpAuth {
        &self.otp
    }

    /// The issuer, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.otp.issuer()
    }

    /// The account name (label).
    pub fn label(&self) -> &str {
        self.otp.account()
    }

    /// `issuer:label`, or the label alone: how lists and error messages name a token.
    pub fn display_name(&self) -> String {
        self.otp.display_name()
    }

    /// How codes are made.
    pub fn method(&self) -> &OtpMethod {
        self.otp.method()
    }

    /// The optional group (folder) name.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The optional icon (from the URI's `image` parameter).
    pub fn icon(&self) -> Option<&str> {
        self.otp.image()
    }

    /// When the token was added (Unix seconds).
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// When a code was last taken (Unix seconds).
    pub fn last_used_at(&self) -> Option<u64> {
        self.last_used_at
    }

    /// How many codes were taken.
    pub fn use_count(&self) -> u64 {
        self.use_count
    }

    /// The push binding, when this token answers push requests.
    pub fn push(&self) -> Option<&PushBinding> {
        self.push.as_ref()
    }

    /// The code at `unix_time` without using it: the current code for time-based tokens, the
    /// next one for HOTP (which only [`Vault::take_code`] advances).
    pub fn peek_code(&self, unix_time: u64) -> OtpCode {
        self.method().code_at(self.otp.secret(), unix_time)
    }
}

/// The decrypted contents of a vault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vault {
    tokens: Vec<Token>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer_pin: Option<AnswerPin>,
}

/// What to change in [`Vault::edit`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TokenEdit {
    /// New issuer: `Some(None)` removes it.
    pub issuer: Option<Option<String>>,
    /// New account name.
    pub label: Option<String>,
    /// New group: `Some(None)` removes it.
    pub group: Option<Option<String>>,
    /// New icon: `Some(None)` removes it.
    pub icon: Option<Option<String>>,
}

impl Vault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// All tokens, in the order they were added.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token with this exact id.
    pub fn get(&self, id: &TokenId) -> Option<&Token> {
        self.tokens.iter().find(|t| &t.id == id)
    }

    /// Adds a token. Refuses an exact duplicate (same seed, issuer and account), which is what
    /// scanning the same QR twice produces.
    pub fn add(&mut self, otp: OtpAuth, group: Option<String>, now: u64) -> Result<&Token, TokenError> {
        let group = checked_group(group)?;
        if let Some(existing) = self.tokens.iter().find(|t| {
            t.otp.secret() == otp.secret() && t.issuer() == otp.issuer() && t.label() == otp.account()
        }) {
            return Err(TokenError::Duplicate(existing.display_name()));
        }
        let id = loop {
            let id = TokenId::random().map_err(|e| TokenError::Random(e.to_string()))?;
            if self.get(&id).is_none() {
                break id;
            }
        };
        self.tokens.push(Token {
            id,
            otp,
            group,
            created_at: now,
            last_used_at: None,
            use_count: 0,
            push: None,
        });
        self.tokens.last().ok_or(TokenError::NotFound(String::new()))
    }

    /// Adds a push device token: its TOTP (for approve-with-OTP and typed codes) and its binding.
    /// Refuses a second binding to the same server and serial.
    pub fn add_push(&mut self, otp: OtpAuth, binding: PushBinding, now: u64) -> Result<&Token, TokenError> {
        if let Some(existing) = self.push_token(&binding.server, &binding.serial) {
            return Err(TokenError::Duplicate(existing.display_name()));
        }
        self.add(otp, None, now)?;
        let token = self.tokens.last_mut().ok_or(TokenError::NotFound(String::new()))?;
        token.push = Some(binding);
        Ok(token)
    }

    /// Tokens that answer push requests.
    pub fn push_tokens(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter().filter(|t| t.push.is_some())
    }

    /// The push token with this serial at this server.
    pub fn push_token(&self, server: &str, serial: &str) -> Option<&Token> {
        self.tokens.iter().find(|t| t.push.as_ref().is_some_and(|p| p.server == server && p.serial == serial))
    }

    /// Records the last challenge sequence number a push token received (never moves back).
    pub fn set_push_cursor(&mut self, id: &TokenId, seq: u64) -> Result<(), TokenError> {
        let index = self.index_of(id)?;
        if let Some(push) = self.tokens.get_mut(index).and_then(|t| t.push.as_mut()) {
            push.last_seq = push.last_seq.max(seq);
        }
        Ok(())
    }

    /// Tokens matching a user's query, best tier first:
    /// 1. the id, or an id prefix of at least [`MIN_ID_PREFIX`] characters;
    /// 2. exact `issuer:label`, issuer or label (case-insensitive);
    /// 3. the query as a substring of `issuer label` or the group (case-insensitive).
    ///
    /// The first tier with any match is returned.
    pub fn find(&self, query: &str) -> Vec<&Token> {
        self.find_where(query, |_| true)
    }

    /// [`Vault::find`] among the tokens `keep` accepts.
    fn find_where(&self, query: &str, keep: impl Fn(&Token) -> bool) -> Vec<&Token> {
        let query = query.trim();
        if query.is_empty() {
            return Vec::new();
        }
        let lower = query.to_lowercase();
        let tiers: [&dyn Fn(&Token) -> bool; 3] = [
            &|t| {
                t.id.as_str() == lower || (lower.len() >= MIN_ID_PREFIX && t.id.as_str().starts_with(&lower))
            },
            &|t| {
                t.display_name().to_lowercase() == lower
                    || t.label().to_lowercase() == lower
                    || t.issuer().is_some_and(|i| i.to_lowercase() == lower)
            },
            &|t| {
                format!("{} {}", t.issuer().unwrap_or_default(), t.label()).to_lowercase().contains(&lower)
                    || t.group().is_some_and(|g| g.to_lowercase().contains(&lower))
            },
        ];
        tiers
            .iter()
            .map(|matches| self.tokens.iter().filter(|t| keep(t) && matches(t)).collect::<Vec<_>>())
            .find(|found| !found.is_empty())
            .unwrap_or_default()
    }

    /// The one token a query names; several matches are an error listing them.
    pub fn resolve(&self, query: &str) -> Result<&Token, TokenError> {
        only_one(self.find(query), query, || TokenError::NotFound(query.trim().to_owned()))
    }

    /// The push device a query names, among push tokens only; without a query, the only one.
    pub fn resolve_push(&self, query: Option<&str>) -> Result<&Token, TokenError> {
        match query {
            Some(query) => only_one(self.find_where(query, |t| t.push.is_some()), query, || {
                TokenError::NotFound(query.trim().to_owned())
            }),
            None => only_one(self.push_tokens().collect(), "(no query)", || TokenError::NoPushDevice),
        }
    }

    /// Removes a token and returns it.
    pub fn remove(&mut self, id: &TokenId) -> Result<Token, TokenError> {
        let index = self.index_of(id)?;
        Ok(self.tokens.remove(index))
    }

    /// Changes a token's names, group or icon.
    pub fn edit(&mut self, id: &TokenId, edit: TokenEdit) -> Result<&Token, TokenError> {
        let index = self.index_of(id)?;
        let token = self.tokens.get_mut(index).ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        let mut otp = token.otp.clone();
        otp.rename(edit.issuer, edit.label)?;
        if let Some(icon) = edit.icon {
            otp.set_image(icon)?;
        }
        let group = match edit.group {
            Some(group) => checked_group(group)?,
            None => token.group.clone(),
        };
        token.otp = otp;
        token.group = group;
        Ok(token)
    }

    /// Takes the token's code for use: records the use and, for HOTP, advances the counter so
    /// the same code is never shown twice. Persist the vault before showing the code.
    pub fn take_code(&mut self, id: &TokenId, unix_time: u64) -> Result<OtpCode, TokenError> {
        let index = self.index_of(id)?;
        let token = self.tokens.get_mut(index).ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        let code = token.peek_code(unix_time);
        if let OtpMethod::Hotp { counter, .. } = *token.method() {
            let next = counter.checked_add(1).ok_or(TokenError::CounterExhausted)?;
            token.otp.set_counter(next);
        }
        token.last_used_at = Some(unix_time);
        token.use_count = token.use_count.saturating_add(1);
        Ok(code)
    }

    /// [`Vault::take_code`] as a token list gives codes out, without asking for the answer PIN:
    /// a push token's code approves logins, so with an answer PIN set it is refused
    /// ([`PinError::Required`]) and only a PIN-checked path (an answer, One Swipe) may take it.
    pub fn take_unguarded_code(&mut self, id: &TokenId, unix_time: u64) -> Result<OtpCode, VaultError> {
        let token = self.get(id).ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        if self.pin_guards(token) {
            return Err(PinError::Required.into());
        }
        Ok(self.take_code(id, unix_time)?)
    }

    /// Takes a push token's TOTP code for a signed message (an approval or a One Swipe code),
    /// never the same time step twice, because the server accepts each step once. A second message
    /// within one step carries the next step's code, which the server's ±1-step window accepts; a
    /// third has to wait for the next step.
    pub fn take_push_code(&mut self, id: &TokenId, unix_time: u64) -> Result<OtpCode, TokenError> {
        let index = self.index_of(id)?;
        let token = self.tokens.get_mut(index).ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        let name = token.display_name();
        let (Some(push), Some(period)) = (token.push.as_mut(), token.otp.method().period()) else {
            return Err(TokenError::NotPush(name));
        };
        let current = period.step_at(unix_time);
        let step = current.max(push.last_otp_step.saturating_add(1));
        if step > current + 1 {
            return Err(TokenError::CodeNotReady { wait_secs: period.seconds_remaining(unix_time) });
        }
        push.last_otp_step = step;
        let code = token.otp.method().code_at(token.otp.secret(), step * u64::from(period.get()));
        token.last_used_at = Some(unix_time);
        token.use_count = token.use_count.saturating_add(1);
        Ok(code)
    }

    /// Makes a One Swipe code: a push token's signed, single-use login payload, valid for
    /// `lifetime_secs`, with the token's current TOTP code attached (the payload's nonce makes it
    /// single-use, so codes in the same time step are fine). The server burns that step when it
    /// redeems the code, so the step counts as signed: the next approval carries a later one.
    /// Persist the vault before showing it.
    pub fn take_one_swipe(
        &mut self,
        id: &TokenId,
        unix_time: u64,
        lifetime_secs: u8,
    ) -> Result<OneSwipe, TokenError> {
        let otp = self.take_code(id, unix_time)?;
        let index = self.index_of(id)?;
        let token = self.tokens.get_mut(index).ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        let name = token.display_name();
        let (Some(push), Some(period)) = (token.push.as_mut(), token.otp.method().period()) else {
            return Err(TokenError::NotPush(name));
        };
        push.last_otp_step = push.last_otp_step.max(period.step_at(unix_time));
        let token = self.get(id).ok_or_else(|| TokenError::NotFound(id.to_string()))?;
        let push = token.push().ok_or_else(|| TokenError::NotPush(token.display_name()))?;
        let device = push.key_pair().map_err(|_| TokenError::DamagedDeviceKey(token.display_name()))?;
        let request = oneswipe::Request {
            serial: &push.serial,
            server_key: &push.server_key,
            otp: &otp,
            issued_at: unix_time,
            lifetime_secs,
        };
        Ok(OneSwipe::sign(&request, &device)?)
    }

    /// True when the vault asks for its answer PIN before answering push requests.
    pub fn has_answer_pin(&self) -> bool {
        self.answer_pin.is_some()
    }

    /// Whether an answer needs the PIN now: false without one, an error while attempts must wait.
    pub fn answer_pin_needed(&self, now: u64) -> Result<bool, PinError> {
        match &self.answer_pin {
            None => Ok(false),
            Some(stored) => stored.ready(now).map(|()| true),
        }
    }

    /// True when using `token` needs the answer PIN: a push token's code approves logins just as
    /// an answer does, so showing or exporting it is guarded by the same PIN.
    pub fn pin_guards(&self, token: &Token) -> bool {
        self.answer_pin.is_some() && token.push.is_some()
    }

    /// Checks the answer PIN before an answer (passes when the vault has none). Every attempt is
    /// counted, so save the vault whatever the result: the tenth wrong PIN in a row removes the
    /// vault's push devices (their tokens stay as plain TOTP tokens) and the PIN with them.
    pub fn check_answer_pin(&mut self, pin: Option<&SecretString>, now: u64) -> Result<(), PinError> {
        let Some(stored) = self.answer_pin.as_mut() else {
            return Ok(());
        };
        stored.ready(now)?;
        let pin = pin.ok_or(PinError::Required)?;
        match stored.check(pin, now) {
            PinCheck::Right => Ok(()),
            PinCheck::Wrong { remaining } => Err(PinError::Wrong { remaining }),
            PinCheck::Exhausted => {
                for token in &mut self.tokens {
                    token.push = None;
                }
                self.answer_pin = None;
                Err(PinError::DevicesRemoved)
            }
        }
    }

    /// Sets the answer PIN; replacing one needs the current PIN, checked and counted as by
    /// [`Vault::check_answer_pin`].
    pub fn set_answer_pin(
        &mut self,
        current: Option<&SecretString>,
        new: &SecretString,
        now: u64,
    ) -> Result<(), PinError> {
        self.check_answer_pin(current, now)?;
        self.answer_pin = Some(AnswerPin::new(new)?);
        Ok(())
    }

    /// Removes the answer PIN, given the current one (checked and counted).
    pub fn clear_answer_pin(&mut self, current: Option<&SecretString>, now: u64) -> Result<(), PinError> {
        if self.answer_pin.is_none() {
            return Err(PinError::NotSet);
        }
        self.check_answer_pin(current, now)?;
        self.answer_pin = None;
        Ok(())
    }

    fn index_of(&self, id: &TokenId) -> Result<usize, TokenError> {
        self.tokens.iter().position(|t| &t.id == id).ok_or_else(|| TokenError::NotFound(id.to_string()))
    }
}

/// The single token found, `none()` when nothing was, or the ambiguity listing them.
fn only_one<'a>(
    found: Vec<&'a Token>,
    query: &str,
    none: impl FnOnce() -> TokenError,
) -> Result<&'a Token, TokenError> {
    match found.as_slice() {
        [] => Err(none()),
        [one] => Ok(one),
        many => Err(TokenError::Ambiguous {
            query: query.trim().to_owned(),
            matches: many.iter().map(|t| TokenSummary::of(t)).collect(),
        }),
    }
}

fn checked_group(group: Option<String>) -> Result<Option<String>, TokenError> {
    let group = group.map(|g| g.trim().to_owned()).filter(|g| !g.is_empty());
    if let Some(group) = &group
        && (group.chars().count() > MAX_GROUP_LENGTH || group.chars().any(char::is_control))
    {
        return Err(TokenError::InvalidGroup);
    }
    Ok(group)
}

/// A token as named in messages: id and display name, never the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    /// The id.
    pub id: TokenId,
    /// `issuer:label`.
    pub name: String,
    /// `totp`, `hotp` or `steam`.
    pub kind: &'static str,
}

impl TokenSummary {
    /// Summarizes a token.
    pub fn of(token: &Token) -> Self {
        Self { id: token.id.clone(), name: token.display_name(), kind: token.method().kind_name() }
    }
}

/// Why an operation on the vault's tokens was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token matches.
    #[error("no token matches '{0}'")]
    NotFound(String),
    /// Several tokens match.
    #[error("'{query}' matches {} tokens; use a longer query or the id", matches.len())]
    Ambiguous {
        /// The query.
        query: String,
        /// What it matched.
        matches: Vec<TokenSummary>,
    },
    /// The same seed, issuer and account are in the vault already.
    #[error("this token is already in the vault as '{0}'")]
    Duplicate(String),
    /// The names are not valid.
    #[error(transparent)]
    InvalidName(#[from] UriError),
    /// Group names are up to 64 printable characters.
    #[error("a group name is at most {MAX_GROUP_LENGTH} printable characters")]
    InvalidGroup,
    /// The HOTP counter reached its maximum.
    #[error("the HOTP counter is exhausted")]
    CounterExhausted,
    /// The random number generator failed.
    #[error("{0}")]
    Random(String),
    /// The vault holds no push device.
    #[error("this vault has no push device; enroll one with `tessera enroll LINK`")]
    NoPushDevice,
    /// Push-only work asked of a token that is not a push device.
    #[error("'{0}' is not a push device; enroll one with `tessera enroll`")]
    NotPush(String),
    /// Both usable one-time codes of this time step were used already.
    #[error("this device just used its codes for this time step; try again in {wait_secs} s")]
    CodeNotReady {
        /// Seconds until the next step.
        wait_secs: u32,
    },
    /// The stored device key is not a valid key.
    #[error("the device key of '{0}' is damaged; enroll the device again")]
    DamagedDeviceKey(String),
    /// A One Swipe code could not be made.
    #[error(transparent)]
    OneSwipe(#[from] OneSwipeError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::{Algorithm, Digits};
    use crate::secret::SecretBytes;

    fn otp(issuer: Option<&str>, account: &str, seed: &[u8], method: OtpMethod) -> OtpAuth {
        OtpAuth::new(issuer.map(str::to_owned), account.into(), SecretBytes::from_slice(seed), method)
            .unwrap()
    }

    #[test]
    fn token_ids_parse_only_when_well_formed() {
        let id = TokenId::random().unwrap();
        assert_eq!(TokenId::parse(id.as_str()).unwrap(), id);
        for bad in ["", "0123456789abcde", "0123456789ABCDEF", "0123456789abcdeg", "0123456789abcdef0"] {
            assert!(matches!(TokenId::parse(bad), Err(TokenError::NotFound(_))), "{bad}");
        }
    }

    fn sample() -> Vault {
        let mut vault = Vault::new();
        vault
            .add(otp(Some("GitHub"), "octocat", b"seed-one-0123456", OtpMethod::default_totp()), None, 1)
            .unwrap();
        vault
            .add(
                otp(Some("GitLab"), "octocat", b"seed-two-0123456", OtpMethod::default_totp()),
                Some("work".into()),
                2,
            )
            .unwrap();
        vault
            .add(
                otp(
                    None,
                    "bank",
                    b"seed-three-01234",
                    OtpMethod::Hotp { algorithm: Algorithm::Sha1, digits: Digits::SIX, counter: 0 },
                ),
                None,
                3,
            )
            .unwrap();
        vault
    }

    #[test]
    fn find_prefers_exact_names_over_substrings() {
        let vault = sample();
        assert_eq!(vault.find("github").len(), 1);
        assert_eq!(vault.find("GitHub:octocat").len(), 1);
        assert_eq!(vault.find("git").len(), 2);
        assert_eq!(vault.find("octocat").len(), 2);
        assert_eq!(vault.find("work").len(), 1, "groups are searched");
        assert!(vault.find("nothing").is_empty());
        assert!(vault.find("  ").is_empty());
    }

    #[test]
    fn find_by_id_prefix() {
        let vault = sample();
        let id = vault.tokens()[1].id().clone();
        assert_eq!(vault.resolve(&id.as_str()[..MIN_ID_PREFIX]).unwrap().id(), &id);
        assert_eq!(vault.resolve(&id.as_str().to_uppercase()).unwrap().id(), &id);
    }

    #[test]
    fn resolve_reports_ambiguity_with_the_candidates() {
        let vault = sample();
        match vault.resolve("octocat") {
            Err(TokenError::Ambiguous { matches, .. }) => {
                let names: Vec<_> = matches.iter().map(|m| m.name.as_str()).collect();
                assert_eq!(names, ["GitHub:octocat", "GitLab:octocat"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(vault.resolve("zzz").unwrap_err(), TokenError::NotFound("zzz".into()));
    }

    #[test]
    fn duplicates_are_refused() {
        let mut vault = sample();
        let again = otp(Some("GitHub"), "octocat", b"seed-one-0123456", OtpMethod::default_totp());
        assert_eq!(vault.add(again, None, 9).unwrap_err(), TokenError::Duplicate("GitHub:octocat".into()));
        assert_eq!(vault.len(), 3);
    }

    #[test]
    fn take_code_advances_hotp_and_records_use() {
        let mut vault = sample();
        let id = vault.resolve("bank").unwrap().id().clone();
        let first = vault.take_code(&id, 100).unwrap();
        let second = vault.take_code(&id, 101).unwrap();
        assert_ne!(first, second);
        let token = vault.get(&id).unwrap();
        assert!(matches!(token.method(), OtpMethod::Hotp { counter: 2, .. }));
        assert_eq!((token.last_used_at(), token.use_count()), (Some(101), 2));
    }

    #[test]
    fn take_code_keeps_totp_parameters() {
        let mut vault = sample();
        let id = vault.resolve("github").unwrap().id().clone();
        let code = vault.take_code(&id, 59).unwrap();
        assert_eq!(code, vault.get(&id).unwrap().peek_code(59));
        assert_eq!(vault.get(&id).unwrap().method(), &OtpMethod::default_totp());
    }

    #[test]
    fn exhausted_counter_is_an_error_not_a_wrap() {
        let mut vault = Vault::new();
        let method = OtpMethod::Hotp { algorithm: Algorithm::Sha1, digits: Digits::SIX, counter: u64::MAX };
        let id = vault.add(otp(None, "x", b"0123456789", method), None, 0).unwrap().id().clone();
        assert_eq!(vault.take_code(&id, 0).unwrap_err(), TokenError::CounterExhausted);
        assert!(matches!(vault.get(&id).unwrap().method(), OtpMethod::Hotp { counter: u64::MAX, .. }));
    }

    #[test]
    fn edit_validates_before_changing_anything() {
        let mut vault = sample();
        let id = vault.resolve("github").unwrap().id().clone();
        let bad =
            TokenEdit { label: Some("new".into()), issuer: Some(Some("a:b".into())), ..Default::default() };
        assert!(vault.edit(&id, bad).is_err());
        assert_eq!(vault.get(&id).unwrap().display_name(), "GitHub:octocat");
        let good = TokenEdit {
            label: Some("mona".into()),
            group: Some(Some("personal".into())),
            ..Default::default()
        };
        let token = vault.edit(&id, good).unwrap();
        assert_eq!((token.display_name().as_str(), token.group()), ("GitHub:mona", Some("personal")));
        let bad_group = TokenEdit { group: Some(Some("x\u{7}".into())), ..Default::default() };
        assert_eq!(vault.edit(&id, bad_group).unwrap_err(), TokenError::InvalidGroup);
        let blanks = TokenEdit {
            issuer: Some(Some("  ".into())),
            group: Some(Some(" ".into())),
            ..Default::default()
        };
        let token = vault.edit(&id, blanks).unwrap();
        assert_eq!((token.issuer(), token.group()), (None, None), "a blank field (a cleared form) removes");
    }

    fn binding(device: &KeyPair) -> PushBinding {
        binding_to(device, &KeyPair::generate().unwrap())
    }

    fn binding_to(device: &KeyPair, server: &KeyPair) -> PushBinding {
        PushBinding::new("https://auth.example.com".into(), "PUSH-AAAAAAAA".into(), device, server.public())
    }

    #[test]
    fn push_codes_never_repeat_a_time_step() {
        let (mut vault, id) = with_push_token();
        let seed = vault.get(&id).unwrap().otp().secret().clone();
        let code_of_step = |step: u64| OtpMethod::default_totp().code_at(&seed, step * 30);
        let now = 1_000_000_005;
        let step = now / 30;
        assert_eq!(vault.take_push_code(&id, now).unwrap(), code_of_step(step));
        assert_eq!(vault.take_push_code(&id, now + 1).unwrap(), code_of_step(step + 1));
        assert_eq!(vault.take_push_code(&id, now + 2), Err(TokenError::CodeNotReady { wait_secs: 13 }));
        assert_eq!(vault.take_push_code(&id, now + 55).unwrap(), code_of_step(step + 2));
        let github = vault.resolve("github").unwrap().id().clone();
        assert!(matches!(vault.take_push_code(&github, now), Err(TokenError::NotPush(_))));
    }

    #[test]
    fn one_swipe_codes_are_signed_by_the_device_for_its_server() {
        let mut vault = sample();
        let (device, server) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        let push = otp(Some("ACME"), "alice", b"push-seed-01234567", OtpMethod::default_totp());
        let id = vault.add_push(push, binding_to(&device, &server), 5).unwrap().id().clone();
        let now = 1_000_000_005;
        let code = vault.take_one_swipe(&id, now, 30).unwrap();
        assert_eq!(code.serial(), "PUSH-AAAAAAAA");
        assert_eq!(code.verify(&device.public(), &server.public(), now + 10, 0), Ok(()));
        let seed = vault.get(&id).unwrap().otp().secret().clone();
        assert_eq!(code.otp(6).expose(), OtpMethod::default_totp().code_at(&seed, now).expose());
        assert_eq!(
            vault.take_one_swipe(&id, now, 0).unwrap_err(),
            TokenError::OneSwipe(OneSwipeError::InvalidLifetime(0))
        );
        let github = vault.resolve("github").unwrap().id().clone();
        assert!(matches!(vault.take_one_swipe(&github, now, 30), Err(TokenError::NotPush(_))));

        let second = vault.take_one_swipe(&id, now, 30).unwrap();
        assert_eq!(second.otp(6).expose(), code.otp(6).expose(), "One Swipe codes may share a step");
        let approval = vault.take_push_code(&id, now).unwrap();
        assert_eq!(
            approval.expose(),
            OtpMethod::default_totp().code_at(&seed, now + 30).expose(),
            "the server burns a redeemed One Swipe's step, so an approval after it takes the next"
        );
    }

    #[test]
    fn push_devices_are_picked_among_push_tokens() {
        assert_eq!(sample().resolve_push(None).unwrap_err(), TokenError::NoPushDevice);
        let (mut vault, id) = with_push_token();
        assert_eq!(vault.resolve_push(None).unwrap().id(), &id);
        assert_eq!(vault.resolve_push(Some("ACME")).unwrap().id(), &id);
        assert!(matches!(vault.resolve_push(Some("github")), Err(TokenError::NotFound(_))));
        let second = otp(Some("Other"), "bob", b"other-push-seed-0123", OtpMethod::default_totp());
        let binding =
            PushBinding { serial: "PUSH-BBBBBBBB".into(), ..binding(&KeyPair::generate().unwrap()) };
        vault.add_push(second, binding, 6).unwrap();
        assert!(matches!(vault.resolve_push(None), Err(TokenError::Ambiguous { .. })));
        assert!(vault.resolve_push(Some("bob")).is_ok());
        let named_ali = otp(Some("Mail"), "ali", b"mail-seed-0123456789", OtpMethod::default_totp());
        vault.add(named_ali, None, 7).unwrap();
        assert_eq!(vault.resolve("ali").unwrap().label(), "ali");
        assert_eq!(
            vault.resolve_push(Some("ali")).unwrap().id(),
            &id,
            "a closer non-push match does not hide it"
        );
    }

    fn with_push_token() -> (Vault, TokenId) {
        let mut vault = sample();
        let device = KeyPair::generate().unwrap();
        let push = otp(Some("ACME"), "alice", b"push-seed-01234567", OtpMethod::default_totp());
        let id = vault.add_push(push, binding(&device), 5).unwrap().id().clone();
        (vault, id)
    }

    fn pin(text: &str) -> SecretString {
        SecretString::new(text.into())
    }

    #[test]
    fn the_answer_pin_guards_answers_and_push_codes_only() {
        let (mut vault, id) = with_push_token();
        assert_eq!(vault.check_answer_pin(None, 0), Ok(()), "no PIN set: answers need none");
        vault.set_answer_pin(None, &pin("2468"), 0).unwrap();
        assert!(vault.pin_guards(vault.get(&id).unwrap()));
        assert!(!vault.pin_guards(vault.resolve("github").unwrap()));
        assert_eq!(vault.check_answer_pin(None, 0), Err(PinError::Required));
        assert_eq!(vault.check_answer_pin(Some(&pin("2468")), 0), Ok(()));
        assert_eq!(vault.set_answer_pin(None, &pin("1357"), 0), Err(PinError::Required));
        assert_eq!(
            vault.set_answer_pin(Some(&pin("9999")), &pin("1357"), 0),
            Err(PinError::Wrong { remaining: 9 })
        );
        vault.set_answer_pin(Some(&pin("2468")), &pin("1357"), 0).unwrap();
        assert_eq!(vault.clear_answer_pin(Some(&pin("2468")), 0), Err(PinError::Wrong { remaining: 9 }));
        vault.clear_answer_pin(Some(&pin("1357")), 0).unwrap();
        assert_eq!(vault.clear_answer_pin(Some(&pin("1357")), 0), Err(PinError::NotSet));
        assert!(!vault.pin_guards(vault.get(&id).unwrap()));
    }

    #[test]
    fn codes_are_given_out_without_a_pin_only_where_the_pin_does_not_guard_them() {
        let (mut vault, id) = with_push_token();
        let github = vault.resolve("github").unwrap().id().clone();
        assert!(vault.take_unguarded_code(&id, 100).is_ok(), "no PIN set");
        vault.set_answer_pin(None, &pin("2468"), 0).unwrap();
        let uses = vault.get(&id).unwrap().use_count();
        assert!(matches!(vault.take_unguarded_code(&id, 100), Err(VaultError::Pin(PinError::Required))));
        assert_eq!(vault.get(&id).unwrap().use_count(), uses, "a refused code is not taken");
        assert!(vault.take_unguarded_code(&github, 100).is_ok(), "plain tokens need no PIN");
        assert!(matches!(
            vault.take_unguarded_code(&TokenId::parse("00000000000000ff").unwrap(), 100),
            Err(VaultError::Token(TokenError::NotFound(_)))
        ));
    }

    #[test]
    fn ten_wrong_pins_remove_the_push_devices_but_keep_the_tokens() {
        let (mut vault, id) = with_push_token();
        vault.set_answer_pin(None, &pin("2468"), 0).unwrap();
        let mut now = 0;
        for attempt in 1..10 {
            assert_eq!(
                vault.check_answer_pin(Some(&pin("0000")), now),
                Err(PinError::Wrong { remaining: 10 - attempt })
            );
            now += 10_000;
        }
        assert_eq!(vault.check_answer_pin(Some(&pin("0000")), now), Err(PinError::DevicesRemoved));
        assert_eq!(vault.push_tokens().count(), 0);
        assert!(vault.get(&id).is_some(), "the token's TOTP stays");
        assert!(!vault.has_answer_pin());
        let json = serde_json::to_string(&vault).unwrap();
        assert_eq!(serde_json::from_str::<Vault>(&json).unwrap(), vault);
    }

    #[test]
    fn a_waiting_pin_refuses_even_the_right_pin() {
        let (mut vault, _) = with_push_token();
        vault.set_answer_pin(None, &pin("2468"), 0).unwrap();
        for _ in 0..5 {
            let _ = vault.check_answer_pin(Some(&pin("0000")), 100);
        }
        assert_eq!(vault.check_answer_pin(Some(&pin("2468")), 110), Err(PinError::Wait { seconds: 20 }));
        assert_eq!(vault.check_answer_pin(Some(&pin("2468")), 130), Ok(()));
        assert_eq!(
            vault.check_answer_pin(Some(&pin("0000")), 130),
            Err(PinError::Wrong { remaining: 9 }),
            "a right PIN resets the count"
        );
    }

    #[test]
    fn push_tokens_are_bound_once_and_keep_their_cursor() {
        let mut vault = sample();
        let device = KeyPair::generate().unwrap();
        let binding = binding(&device);
        let id = vault
            .add_push(
                otp(Some("ACME"), "alice", b"push-seed-01234567", OtpMethod::default_totp()),
                binding.clone(),
                5,
            )
            .unwrap()
            .id()
            .clone();
        assert_eq!(vault.push_tokens().count(), 1);
        assert_eq!(vault.push_token("https://auth.example.com", "PUSH-AAAAAAAA").unwrap().id(), &id);
        let again = otp(Some("ACME"), "alice2", b"other-seed-0123456", OtpMethod::default_totp());
        assert!(matches!(vault.add_push(again, binding, 6), Err(TokenError::Duplicate(_))));
        vault.set_push_cursor(&id, 9).unwrap();
        vault.set_push_cursor(&id, 4).unwrap();
        assert_eq!(vault.get(&id).unwrap().push().unwrap().last_seq, 9);
        assert_eq!(vault.get(&id).unwrap().push().unwrap().key_pair().unwrap().public(), device.public());
        let json = serde_json::to_string(&vault).unwrap();
        let back: Vault = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vault);
        assert!(!format!("{:?}", vault.get(&id).unwrap()).contains(&device.seed().to_base32().to_string()));
    }

    #[test]
    fn remove_returns_the_token() {
        let mut vault = sample();
        let id = vault.resolve("gitlab").unwrap().id().clone();
        assert_eq!(vault.remove(&id).unwrap().issuer(), Some("GitLab"));
        assert_eq!(vault.remove(&id).unwrap_err(), TokenError::NotFound(id.to_string()));
        assert_eq!(vault.len(), 2);
    }
}
