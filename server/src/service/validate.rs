//! Validation: a user's password and passcode (or push approval) checked as named steps, each
//! outcome audited with its precise reason while the caller learns only accept, locked,
//! rate-limited or "authentication failed".
//!
//! The order of the steps is the security argument: rate limits first (no work for a flood),
//! unknown users get the same Argon2 work and lock as real ones, the lock is checked before the
//! password (with the same work either way), a wrong password counts against the user and every
//! usable token, and only then does the passcode, or a push, decide. Every state change is a
//! compare-and-swap in the same transaction as its audit record; a contended token is read again
//! and the code decided again.

use std::net::IpAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tessera_core::otp::normalize_code_input;
use tessera_core::secret::SecretString;
use tessera_core::verifier::{self, Policy, RejectReason, TokenState, Verdict};
use utoipa::ToSchema;

use super::directory::{FirstLogin, PasswordCheck, Refusal};
use super::{Caller, Door, MAX_ATTEMPTS, Service, ServiceError};
use crate::clock::{i64_of, now_i64, unix_now, unix_now_ms};
use crate::config::PushPolicy;
use crate::delivery::Delivery;
use crate::input::{check_name, check_optional_texts};
use crate::push::{PushContext, PushOutcome, PushReason};
use crate::store::{
    AuditResult, Channel, DeliveryPreference as Preference, NewAudit, NewChallenge, SendLimit, StateUpdate,
    TokenKind, TokenRow, UserChange, UserRow,
};
use tessera_core::delivery::{DeliveryMode, Ttl};

/// A password ending in this asks for a passcode instead of a push.
pub const NOPUSH_SUFFIX: &str = "-nopush";

/// A validation request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The user.
    pub username: String,
    /// The user's password/PIN, when they have one.
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    /// The one-time code (spaces and dashes are ignored). Empty or one character asks the
    /// user's push device instead (unless the password ends in `-nopush`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub passcode: Option<SecretString>,
    /// Completes a push: the transaction a previous `challenge` answer named.
    pub transaction_id: Option<String>,
    /// The end user's address, when the caller is an application relaying the login.
    pub client_ip: Option<String>,
    /// The end user's browser or program, shown on the device.
    pub user_agent: Option<String>,
    /// The application's name, shown on the device.
    pub service: Option<String>,
}

/// `accept`, `reject`, or (for push and delivered passcodes) `challenge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValidationResult {
    /// The passcode is right (or the push was approved).
    Accept,
    /// It is not, or the account may not authenticate now.
    Reject,
    /// More is needed: approve on the device (with `transaction_id`), or enter a passcode.
    Challenge,
}

/// What a caller may learn about a rejection: never which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicReason {
    /// Wrong user, password, PIN or passcode (deliberately not distinguished).
    InvalidCredentials,
    /// Too many failures: the user's tokens are locked.
    Locked,
    /// Too many requests from this client or for this user.
    RateLimited,
    /// The user's password cannot be checked now: their directory is unreachable.
    Unavailable,
}

/// The answer to a validation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValidateResponse {
    /// Outcome.
    pub result: ValidationResult,
    /// Human-readable text for the login screen.
    pub message: String,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<PublicReason>,
    /// The token that accepted the passcode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// A push was sent: wait on `GET /api/v1/transactions/{id}`, then validate with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The number to show on the login screen for number matching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// A code was sent: `sms` or `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Where the code went, masked (`+44 ••• ••789`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// When the sent code stops working (Unix seconds): complete with `transaction_id` and the
    /// code before then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// A voice token's call: the code the login screen shows, for the user to key into the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub display_code: Option<SecretString>,
    /// On a challenge: every way this user can get a code or approve (`push`, `sms`, `email`, `voice`),
    /// for a login screen's "use another way" (send the way's name as the passcode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ways: Option<Vec<Way>>,
}

/// A way to get a code or approve a login, named as its keyword passcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Way {
    /// A push to the Tessera app.
    Push,
    /// A code by text message.
    Sms,
    /// A code by email.
    Email,
    /// A call in which the user keys the code shown on screen.
    Voice,
}

impl Way {
    /// The ways a user with `tokens` has (push left out after `-nopush`).
    fn of(tokens: &[TokenRow], nopush: bool) -> Vec<Self> {
        let push = !nopush && tokens.iter().any(TokenRow::is_registered_push_device);
        let has = |channel: Channel| tokens.iter().any(|t| t.kind.channel() == Some(channel));
        [
            (Self::Push, push),
            (Self::Sms, has(Channel::Sms)),
            (Self::Email, has(Channel::Email)),
            (Self::Voice, has(Channel::Voice)),
        ]
        .into_iter()
        .filter_map(|(way, present)| present.then_some(way))
        .collect()
    }
}

impl ValidateResponse {
    fn accept(serial: String) -> Self {
        Self {
            result: ValidationResult::Accept,
            message: "passcode accepted".into(),
            reason: None,
            serial: Some(serial),
            transaction_id: None,
            number: None,
            channel: None,
            destination: None,
            expires_at: None,
            display_code: None,
            ways: None,
        }
    }

    pub(crate) fn accept_push(serial: Option<String>) -> Self {
        Self { message: "approved on the device".into(), serial, ..Self::accept(String::new()) }
    }

    pub(crate) fn reject(reason: PublicReason) -> Self {
        let message = match reason {
            PublicReason::InvalidCredentials => "authentication failed",
            PublicReason::Locked => "too many failed attempts: the account is locked",
            PublicReason::RateLimited => "too many attempts: try again later",
            PublicReason::Unavailable => "your password cannot be checked now: try again later",
        };
        Self {
            result: ValidationResult::Reject,
            message: message.into(),
            reason: Some(reason),
            serial: None,
            transaction_id: None,
            number: None,
            channel: None,
            destination: None,
            expires_at: None,
            display_code: None,
            ways: None,
        }
    }

    pub(crate) fn challenge(transaction_id: Option<String>, number: Option<u8>, message: String) -> Self {
        Self {
            result: ValidationResult::Challenge,
            message,
            reason: None,
            serial: None,
            transaction_id,
            number,
            channel: None,
            destination: None,
            expires_at: None,
            display_code: None,
            ways: None,
        }
    }
}

/// Why a validation ended as it did: the audit log's and the server log's reason (the caller
/// sees only the [`PublicReason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateReason {
    /// A token accepted the passcode.
    Accepted,
    /// No usable token accepted it.
    WrongCode,
    /// The code was right but already used.
    Replayed,
    /// Every usable token, or the user, is locked.
    Locked,
    /// The password or PIN was wrong.
    WrongPassword,
    /// The user has no usable token.
    NoToken,
    /// No such user.
    UnknownUser,
    /// No such user, and that name failed too often.
    UnknownUserLocked,
    /// The client or the user made too many attempts.
    RateLimited,
    /// The password ended in `-nopush`: a passcode was asked for.
    NoPush,
    /// A client that shows questions (RADIUS) is asked for the passcode after the password.
    PasscodeAsked,
    /// Other requests kept changing the user's tokens.
    Contention,
    /// A push step decided.
    Push(PushReason),
    /// A code was queued for sending.
    CodeSent,
    /// A voice token's call was queued, its code shown.
    Called,
    /// The user was asked for a code already on their phone (pre-loaded, or today's Daycode).
    SentCodeAskedFor,
    /// A code could not be sent (no destination).
    NotSent,
    /// A cost limit refused a send.
    SendLimited(SendLimit),
    /// The real-time challenge is unknown, used, void or expired.
    ChallengeOver,
    /// The user's directory could not be reached to check the password.
    DirectoryUnavailable,
    /// The user's directory no longer lists them.
    DirectoryGone,
    /// A directory user's first login: Tessera created their account, which has no token yet.
    FirstLogin,
    /// A user without any token signed in to the portal with their registration code.
    RegistrationCode,
    /// A user without any token gave the portal a wrong or used-up registration code.
    WrongRegistrationCode,
}

impl ValidateReason {
    /// The name stored in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::WrongCode => "wrong_code",
            Self::Replayed => "replayed",
            Self::Locked => "locked",
            Self::WrongPassword => "wrong_password",
            Self::NoToken => "no_token",
            Self::UnknownUser => "unknown_user",
            Self::UnknownUserLocked => "unknown_user_locked",
            Self::RateLimited => "rate_limited",
            Self::NoPush => "nopush",
            Self::PasscodeAsked => "passcode_asked",
            Self::Contention => "contention",
            Self::Push(reason) => reason.as_str(),
            Self::CodeSent => "code_sent",
            Self::Called => "called",
            Self::SentCodeAskedFor => "sent_code_asked_for",
            Self::NotSent => "not_sent",
            Self::SendLimited(limit) => limit.as_str(),
            Self::ChallengeOver => "challenge_over",
            Self::DirectoryUnavailable => "directory_unavailable",
            Self::DirectoryGone => "directory_gone",
            Self::FirstLogin => "first_login",
            Self::RegistrationCode => "registration_code",
            Self::WrongRegistrationCode => "wrong_registration_code",
        }
    }
}

/// A validation's answer with what the logs record of it.
pub(super) struct Outcome {
    response: ValidateResponse,
    reason: ValidateReason,
    serial: Option<String>,
}

impl Outcome {
    pub(super) fn new(response: ValidateResponse, reason: ValidateReason) -> Self {
        Self { response, reason, serial: None }
    }

    /// A challenge that also offers the user's other ways.
    fn offering(mut self, ways: Vec<Way>) -> Self {
        if self.response.result == ValidationResult::Challenge && !ways.is_empty() {
            self.response.ways = Some(ways);
        }
        self
    }

    pub(super) fn accepted(serial: String) -> Self {
        Self {
            response: ValidateResponse::accept(serial.clone()),
            reason: ValidateReason::Accepted,
            serial: Some(serial),
        }
    }

    /// A code was queued: real-time codes are completed with the challenge's id before it expires;
    /// pre-loaded codes and Daycodes are typed as any passcode.
    pub(super) fn code_sent(
        channel: Channel,
        destination: String,
        challenge: Option<NewChallenge>,
        ttl: Ttl,
        mode: Option<DeliveryMode>,
    ) -> Self {
        let medium = match channel {
            Channel::Sms | Channel::Voice => "text message",
            Channel::Email => "email",
        };
        let message = match mode {
            Some(DeliveryMode::Realtime) | None => {
                format!("enter the code sent to {destination}; it works for {} min", ttl.minutes())
            }
            Some(DeliveryMode::Preload | DeliveryMode::Preload3) => format!(
                "new codes are on their way to {destination} by {medium}; codes sent before no longer work"
            ),
            Some(DeliveryMode::Daycode) => format!("enter today's code, sent to {destination} by {medium}"),
        };
        let (transaction_id, expires_at) = challenge.map(|c| (c.id, c.expires_at)).unzip();
        let response = ValidateResponse {
            channel: Some(channel),
            destination: Some(destination),
            expires_at,
            ..ValidateResponse::challenge(transaction_id, None, message)
        };
        Self { response, reason: ValidateReason::CodeSent, serial: None }
    }

    /// The code is already on the user's phone (pre-loaded, or today's Daycode): nothing is sent.
    pub(super) fn sent_code_asked_for(channel: Channel, destination: String) -> Self {
        let message = format!(
            "enter the passcode from your last message to {destination} (type {} for new codes)",
            channel.as_str()
        );
        let response = ValidateResponse {
            channel: Some(channel),
            destination: Some(destination),
            ..ValidateResponse::challenge(None, None, message)
        };
        Self { response, reason: ValidateReason::SentCodeAskedFor, serial: None }
    }

    pub(super) fn not_sent(message: String) -> Self {
        let response =
            ValidateResponse { message, ..ValidateResponse::reject(PublicReason::InvalidCredentials) };
        Self { response, reason: ValidateReason::NotSent, serial: None }
    }

    pub(super) fn send_limited(limit: SendLimit) -> Self {
        let response = ValidateResponse {
            message: limit.explained().into(),
            ..ValidateResponse::reject(PublicReason::RateLimited)
        };
        Self { response, reason: ValidateReason::SendLimited(limit), serial: None }
    }

    pub(super) fn reject(public: PublicReason, reason: ValidateReason) -> Self {
        Self { response: ValidateResponse::reject(public), reason, serial: None }
    }

    /// What `validate` answers for a push step.
    fn of_push(outcome: PushOutcome) -> Self {
        let reason = ValidateReason::Push(outcome.reason());
        let response = match outcome {
            PushOutcome::Sent { transaction_id, number } => {
                let message = match number {
                    Some(number) => {
                        format!("approve the login on your device; it will ask for the number {number}")
                    }
                    None => "approve the login on your device".to_owned(),
                };
                ValidateResponse::challenge(Some(transaction_id), number, message)
            }
            PushOutcome::Unavailable(_) => ValidateResponse {
                message: "push is not available right now; enter a passcode instead".into(),
                ..ValidateResponse::reject(PublicReason::RateLimited)
            },
            PushOutcome::Approved { serial } => ValidateResponse::accept_push(serial),
            PushOutcome::Pending { transaction_id } => {
                ValidateResponse::challenge(Some(transaction_id), None, "still waiting for approval".into())
            }
            PushOutcome::Failed(_) => ValidateResponse::reject(PublicReason::InvalidCredentials),
        };
        Self { response, reason, serial: None }
    }
}

impl Service {
    /// Checks a user's passcode (and password/PIN, when they have one) against their tokens.
    ///
    /// Every outcome is audited with its precise reason (refusals by rate limit, and unknown user
    /// names, at most once a minute per client and name); the caller only learns accept, locked,
    /// rate-limited or "authentication failed". What the user's device shows about the login (the
    /// service, the end user's address and browser) comes from the caller's application key, or
    /// from the connection when there is none, never from the request alone.
    pub async fn validate(
        &self,
        request: ValidateRequest,
        caller: &Caller<'_>,
    ) -> Result<ValidateResponse, ServiceError> {
        check_request(&request)?;
        let started = Instant::now();
        let attempt = Attempt::new(&request, caller);
        let Outcome { response, reason, serial } = self.decide(&request, &attempt).await?;
        let result = match response.result {
            ValidationResult::Accept => "accept",
            ValidationResult::Reject => "reject",
            ValidationResult::Challenge => "challenge",
        };
        self.metrics.validation(result, started.elapsed().as_secs_f64());
        let reason = reason.as_str();
        tracing::info!(username = %request.username, client_ip = ?caller.ip, application = %attempt.actor, result, reason, serial = serial.as_deref(), "validation");
        Ok(response)
    }

    /// The steps, in the order the module header explains.
    async fn decide(
        &self,
        request: &ValidateRequest,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        if !self.limiter.allow_validation(attempt.ip, &request.username) {
            self.audit_refusal(ValidateReason::RateLimited, attempt).await?;
            return Ok(Outcome::reject(PublicReason::RateLimited, ValidateReason::RateLimited));
        }
        let Some((user, tokens)) = self.store.user_with_tokens(&request.username).await? else {
            if self.directories.is_empty() {
                return self.unknown_user(attempt).await;
            }
            return self.first_login(attempt).await;
        };
        if let Some(transaction_id) = &request.transaction_id {
            if let Some(challenge) = self.store.challenge(transaction_id).await? {
                let passcode = normalize_code_input(
                    request.passcode.as_ref().map(SecretString::expose).unwrap_or_default(),
                );
                let first_sign_in = usable_tokens(tokens.clone()).is_empty();
                if let (Door::Portal { first_code_by_sms: true, .. }, true) =
                    (attempt.caller.door, first_sign_in)
                {
                    let first = tokens.iter().find(|t| t.id == challenge.token_id && t.pending.is_some());
                    if let Some(token) =
                        first.filter(|t| t.pending.as_ref().is_some_and(|p| p.replaces.is_none()))
                    {
                        return self.complete_first_code(&user, token, &challenge, &passcode, attempt).await;
                    }
                }
                return self.complete_challenge(&user, challenge, &passcode, attempt).await;
            }
            return Ok(Outcome::of_push(
                self.push.finish(&user, transaction_id, attempt.ip_text(), &attempt.actor).await?,
            ));
        }
        let tokens = usable_tokens(tokens);
        if self.is_locked_out(&user, &tokens, unix_now()) {
            return self.locked_out(&user, attempt).await;
        }
        let proved = matches!(attempt.caller.door, Door::Radius { password_proved: true, .. });
        let checked = match proved {
            true => PasswordCheck::Matches,
            false => self.check_user_password(&user, attempt.password.as_ref(), false).await?,
        };
        match checked {
            PasswordCheck::Matches => {}
            PasswordCheck::Wrong => {
                let directory_user = user.directory.is_some();
                let outcome = self.wrong_password(user, tokens, attempt).await?;
                if directory_user {
                    self.directory_timing.even_out(Refusal::WrongPassword, attempt.started).await;
                }
                return Ok(outcome);
            }
            PasswordCheck::DirectoryUnavailable => {
                self.store.audit(&attempt.rejected(ValidateReason::DirectoryUnavailable)).await?;
                return Ok(Outcome::reject(PublicReason::Unavailable, ValidateReason::DirectoryUnavailable));
            }
            PasswordCheck::DirectoryGone => {
                self.store.audit(&attempt.rejected(ValidateReason::DirectoryGone)).await?;
                return Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::DirectoryGone));
            }
        }
        if tokens.is_empty() {
            return self.without_tokens(user, attempt).await;
        }
        let typed = request.passcode.as_ref().map(SecretString::expose).unwrap_or_default();
        let keyword = Keyword::parse(typed);
        let passcode = normalize_code_input(typed);
        if passcode.char_count() <= 1 || keyword.is_some() {
            let ways = Way::of(&tokens, attempt.nopush);
            let ask = attempt.nopush || attempt.caller.door.asks_for_passcode();
            let outcome = match self.route(&user, &tokens, keyword, attempt.nopush, ask) {
                Route::Push => {
                    let context = attempt.push_context(self.push.settings());
                    Some(Outcome::of_push(self.push.start(&user, &context).await?))
                }
                Route::Send(token) => Some(self.deliver(&user, token, attempt).await?),
                Route::Call(token) => Some(self.call(&user, &token, attempt).await?),
                Route::AskForSentCode(token) => Some(self.ask_for_sent_code(&user, &token, attempt).await?),
                Route::AskForPasscode => Some(self.ask_for_passcode(attempt).await?),
                Route::CheckPasscode => None,
            };
            if let Some(outcome) = outcome {
                return Ok(outcome.offering(ways));
            }
        }
        self.check_passcode(user, tokens, &passcode, attempt).await
    }

    /// A user whose password was right but who has no usable token: at the portal, a
    /// registration code or (where policy allows) a code to the number on file lets them in for
    /// the first time; anywhere else, nothing does.
    async fn without_tokens(&self, user: UserRow, attempt: &Attempt<'_>) -> Result<Outcome, ServiceError> {
        match attempt.caller.door {
            Door::Portal { registration_code: Some(code), .. } => {
                self.registration_code(user, code, attempt).await
            }
            Door::Portal { first_code_by_sms: true, .. } => self.first_code_by_sms(&user, attempt).await,
            Door::Radius { .. }
                if self.portal.enabled && (user.password_hash.is_some() || user.directory.is_some()) =>
            {
                self.store.audit(&attempt.rejected(ValidateReason::NoToken)).await?;
                let mut outcome = Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::NoToken);
                outcome.response.message =
                    format!("you have no second factor yet: set one up at {}/portal", self.portal.origin);
                Ok(outcome)
            }
            Door::Portal { .. } | Door::Radius { .. } | Door::Api => {
                self.store.audit(&attempt.rejected(ValidateReason::NoToken)).await?;
                Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::NoToken))
            }
        }
    }

    /// A user without any usable token, signing in to the portal with the help desk's
    /// registration code (after their password, when they have one): a live code lets them in
    /// once; a wrong one counts as a wrong password does.
    async fn registration_code(
        &self,
        user: UserRow,
        code: &SecretString,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        if self.take_registration_code(&user, code).await? {
            let audit = NewAudit {
                result: AuditResult::Accept,
                ..attempt.rejected(ValidateReason::RegistrationCode)
            };
            self.store.audit(&audit).await?;
            let response = ValidateResponse {
                message: "registration code accepted".into(),
                serial: None,
                ..ValidateResponse::accept(String::new())
            };
            return Ok(Outcome { response, reason: ValidateReason::RegistrationCode, serial: None });
        }
        let audit = attempt.rejected(ValidateReason::WrongRegistrationCode);
        for attempt_number in 0..MAX_ATTEMPTS {
            let user = match attempt_number {
                0 => user.clone(),
                _ => match self.store.user(&user.username).await? {
                    Some(fresh) => fresh,
                    None => break,
                },
            };
            if self.record_wrong_password(&user, &[], &audit).await? {
                return Ok(Outcome::reject(
                    PublicReason::InvalidCredentials,
                    ValidateReason::WrongRegistrationCode,
                ));
            }
        }
        self.store.audit(&attempt.rejected(ValidateReason::Contention)).await?;
        Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::Contention))
    }

    /// A locked user or a user whose usable tokens are all locked: the same Argon2 work as any
    /// other answer, so the answer cannot be used to test passwords while the account is locked.
    async fn locked_out(&self, user: &UserRow, attempt: &Attempt<'_>) -> Result<Outcome, ServiceError> {
        if let Some(password) = &attempt.password {
            self.check_password(password, user.password_hash.as_deref()).await;
        }
        self.store.audit(&attempt.rejected(ValidateReason::Locked)).await?;
        Ok(Outcome::reject(PublicReason::Locked, ValidateReason::Locked))
    }

    /// Where a login that gave only its password (or a keyword) goes: the keyword's channel, else
    /// the user's preference, else push, SMS, email in that order, among what the user has.
    fn route(
        &self,
        user: &UserRow,
        tokens: &[TokenRow],
        keyword: Option<Keyword>,
        nopush: bool,
        ask_for_passcode: bool,
    ) -> Route {
        let push = !nopush && tokens.iter().any(TokenRow::is_registered_push_device);
        let delivered = |channel: Channel| tokens.iter().find(|t| t.kind.channel() == Some(channel)).cloned();
        let order = match (keyword, user.delivery_preference) {
            (Some(Keyword::Push), _) => vec![Preference::App],
            (Some(Keyword::Sms), _) => vec![Preference::Sms],
            (Some(Keyword::Email), _) => vec![Preference::Email],
            (Some(Keyword::Voice), _) => vec![Preference::Voice],
            (None, Preference::App) => {
                vec![Preference::App, Preference::Sms, Preference::Email, Preference::Voice]
            }
            (None, Preference::Sms) => {
                vec![Preference::Sms, Preference::App, Preference::Email, Preference::Voice]
            }
            (None, Preference::Email) => {
                vec![Preference::Email, Preference::App, Preference::Sms, Preference::Voice]
            }
            (None, Preference::Voice) => {
                vec![Preference::Voice, Preference::App, Preference::Sms, Preference::Email]
            }
        };
        for choice in order {
            let token = match choice {
                Preference::App if push => return Route::Push,
                Preference::App => None,
                Preference::Sms => delivered(Channel::Sms),
                Preference::Email => delivered(Channel::Email),
                Preference::Voice => match delivered(Channel::Voice) {
                    Some(token) => return Route::Call(token),
                    None => None,
                },
            };
            if let Some(token) = token {
                return if keyword.is_some() || self.needs_send(&token, unix_now()) {
                    Route::Send(token)
                } else {
                    Route::AskForSentCode(token)
                };
            }
        }
        if ask_for_passcode || keyword.is_some() { Route::AskForPasscode } else { Route::CheckPasscode }
    }

    /// A pre-loaded or Daycode user who gave only their password: their code is already on their
    /// phone, so nothing is sent.
    async fn ask_for_sent_code(
        &self,
        user: &UserRow,
        token: &TokenRow,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        let channel = token.kind.channel().unwrap_or(Channel::Sms);
        let destination = self
            .delivery
            .destination_of(user, token)
            .map(|d| Delivery::masked(channel, &d))
            .unwrap_or_default();
        let audit = NewAudit {
            serial: Some(&token.serial),
            result: AuditResult::Challenge,
            ..attempt.rejected(ValidateReason::SentCodeAskedFor)
        };
        self.store.audit(&audit).await?;
        Ok(Outcome::sent_code_asked_for(channel, destination))
    }

    /// `-nopush` with an empty passcode: the login client is asked for a passcode.
    async fn ask_for_passcode(&self, attempt: &Attempt<'_>) -> Result<Outcome, ServiceError> {
        let reason = if attempt.nopush { ValidateReason::NoPush } else { ValidateReason::PasscodeAsked };
        let audit = NewAudit { result: AuditResult::Challenge, ..attempt.rejected(reason) };
        self.store.audit(&audit).await?;
        let response = ValidateResponse::challenge(None, None, "enter the passcode from your token".into());
        Ok(Outcome { response, reason, serial: None })
    }

    /// A name Tessera does not know, with directories configured: a directory user's first login
    /// creates their account (which has no token yet); a name no directory knows is answered as
    /// an unknown user, as late as a directory user's wrong password typically is.
    async fn first_login(&self, attempt: &Attempt<'_>) -> Result<Outcome, ServiceError> {
        match self.first_directory_login(attempt.username, attempt.password.as_ref()).await? {
            FirstLogin::Created => {
                let first_factor = match attempt.caller.door {
                    Door::Portal { registration_code, first_code_by_sms } => {
                        registration_code.is_some() || first_code_by_sms
                    }
                    Door::Radius { .. } | Door::Api => false,
                };
                if let Some(user) = self.store.user(attempt.username).await?.filter(|_| first_factor) {
                    return self.without_tokens(user, attempt).await;
                }
                self.store.audit(&attempt.rejected(ValidateReason::FirstLogin)).await?;
                Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::FirstLogin))
            }
            FirstLogin::Unavailable => {
                self.store.audit(&attempt.rejected(ValidateReason::DirectoryUnavailable)).await?;
                Ok(Outcome::reject(PublicReason::Unavailable, ValidateReason::DirectoryUnavailable))
            }
            FirstLogin::WrongPassword | FirstLogin::Unknown => {
                let outcome = self.unknown_user_answered(attempt).await?;
                self.directory_timing.even_out(Refusal::UnknownName, attempt.started).await;
                Ok(outcome)
            }
        }
    }

    /// A name with no account: the same Argon2 work and the same lock after `max_failures` as a
    /// real account, so a run of failures does not tell which names exist.
    async fn unknown_user(&self, attempt: &Attempt<'_>) -> Result<Outcome, ServiceError> {
        if let Some(password) = &attempt.password {
            self.check_password(password, None).await;
        }
        self.unknown_user_answered(attempt).await
    }

    /// The answer to a name with no account, once the work that hides it is done.
    async fn unknown_user_answered(&self, attempt: &Attempt<'_>) -> Result<Outcome, ServiceError> {
        let (public, reason) = if self.limiter.allow_unknown_user(attempt.username) {
            (PublicReason::InvalidCredentials, ValidateReason::UnknownUser)
        } else {
            (PublicReason::Locked, ValidateReason::UnknownUserLocked)
        };
        self.audit_refusal(reason, attempt).await?;
        Ok(Outcome::reject(public, reason))
    }

    /// Audits a refusal that changes no state, at most once a minute per kind, client and name.
    async fn audit_refusal(&self, reason: ValidateReason, attempt: &Attempt<'_>) -> Result<(), ServiceError> {
        if self.limiter.audit_refusal(reason.as_str(), attempt.ip, attempt.username) {
            self.store.audit(&attempt.rejected(reason)).await?;
        }
        Ok(())
    }

    /// True when wrong passwords locked the user, or failures locked every usable token.
    pub(super) fn is_locked_out(&self, user: &UserRow, usable: &[TokenRow], now: u64) -> bool {
        user.password_lockout.is_locked(now, &self.policy)
            || (!usable.is_empty() && usable.iter().all(|t| t.state.is_locked(now, &self.policy)))
    }

    /// A wrong password counts once against the user and once on each usable token (a user with
    /// no usable token locks too), in one transaction with the audit record.
    async fn wrong_password(
        &self,
        mut user: UserRow,
        mut tokens: Vec<TokenRow>,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        let audit = attempt.rejected(ValidateReason::WrongPassword);
        for attempt_number in 0..MAX_ATTEMPTS {
            if attempt_number > 0 {
                let Some((fresh_user, fresh_tokens)) = self.store.user_with_tokens(&user.username).await?
                else {
                    break;
                };
                (user, tokens) = (fresh_user, usable_tokens(fresh_tokens));
            }
            if self.record_wrong_password(&user, &tokens, &audit).await? {
                return Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::WrongPassword));
            }
        }
        self.store.audit(&attempt.rejected(ValidateReason::Contention)).await?;
        Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::Contention))
    }

    /// Writes one wrong password's failures (user and usable tokens, compare-and-swap) with its
    /// audit record; false when the user or a token moved since it was read.
    pub(crate) async fn record_wrong_password(
        &self,
        user: &UserRow,
        usable: &[TokenRow],
        audit: &NewAudit<'_>,
    ) -> Result<bool, ServiceError> {
        let now = unix_now();
        let decision = Decision::failure_everywhere(usable, now, &self.policy);
        let lockout = user.password_lockout.after_failure(now, &self.policy);
        let change = UserChange::WrongPassword {
            user_id: user.id,
            expected_failures: user.password_lockout.failures,
            lockout,
        };
        let committed = self.store.commit(&decision.updates, Some(&change), audit).await?;
        if committed {
            let user_locked =
                lockout.is_locked(now, &self.policy) && !user.password_lockout.is_locked(now, &self.policy);
            self.metrics.lockouts(decision.new_lockouts + u64::from(user_locked));
        }
        Ok(committed)
    }

    /// The passcode against the user's usable tokens, committed with compare-and-swap (a
    /// contended token is read again and the code decided again).
    async fn check_passcode(
        &self,
        user: UserRow,
        mut tokens: Vec<TokenRow>,
        passcode: &SecretString,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        let now = unix_now();
        for attempt_number in 0..MAX_ATTEMPTS {
            if attempt_number > 0 {
                tokens = usable_tokens(self.store.tokens_of(user.id).await?);
            }
            if tokens.is_empty() {
                self.store.audit(&attempt.rejected(ValidateReason::NoToken)).await?;
                return Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::NoToken));
            }
            let mut decision = self.check_tokens(&tokens, passcode, now)?;
            if decision.accepted.is_none()
                && decision.reason != ValidateReason::Locked
                && let Some((serial, update)) = self.accept_temporary(&tokens, passcode, now).await
            {
                decision = Decision::accepted(serial, update);
            }
            let audit = NewAudit {
                serial: decision.accepted.as_deref(),
                result: if decision.accepted.is_some() { AuditResult::Accept } else { AuditResult::Reject },
                reason: decision.accepted.is_none().then_some(decision.reason.as_str()),
                ..attempt.rejected(decision.reason)
            };
            let success =
                decision.accepted.as_ref().map(|_| UserChange::Success { user_id: user.id, at: i64_of(now) });
            let committed = match (decision.follow_up.take(), decision.updates.pop(), &success) {
                (Some((token, counters)), Some(update), Some(success)) => {
                    self.commit_with_next_codes(&user, &token, update, counters, success, &audit).await?
                }
                (_, update, _) => {
                    decision.updates.extend(update);
                    self.store.commit(&decision.updates, success.as_ref(), &audit).await?
                }
            };
            if committed {
                self.metrics.lockouts(decision.new_lockouts);
                let response = match &decision.accepted {
                    Some(serial) => ValidateResponse::accept(serial.clone()),
                    None if decision.reason == ValidateReason::Locked => {
                        ValidateResponse::reject(PublicReason::Locked)
                    }
                    None => ValidateResponse::reject(PublicReason::InvalidCredentials),
                };
                return Ok(Outcome { response, reason: decision.reason, serial: decision.accepted });
            }
        }
        self.store.audit(&attempt.rejected(ValidateReason::Contention)).await?;
        Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::Contention))
    }

    fn check_tokens(
        &self,
        tokens: &[TokenRow],
        passcode: &SecretString,
        now: u64,
    ) -> Result<Decision, ServiceError> {
        let mut failures = Vec::new();
        let mut reasons = Vec::new();
        for token in tokens.iter().filter(|t| t.kind != TokenKind::Temp) {
            let (seed, method) = self.material(token)?;
            let checked = match token.kind.channel() {
                None => verifier::verify(&seed, &method, token.state, passcode.expose(), now, &self.policy),
                Some(_) => {
                    let Some(window) = self.typed_window(token, now) else { continue };
                    let passcode = passcode.expose();
                    verifier::verify_delivered(
                        &seed,
                        &method,
                        token.state,
                        &window,
                        passcode,
                        now,
                        &self.policy,
                    )
                }
            };
            match checked.verdict {
                Verdict::Accepted { .. } => {
                    let update = token.moved_to(checked.next, Some(i64_of(now)));
                    return Ok(Decision {
                        updates: vec![update],
                        accepted: Some(token.serial.clone()),
                        reason: ValidateReason::Accepted,
                        new_lockouts: 0,
                        follow_up: self
                            .follow_up(token, checked.next)
                            .map(|counters| (token.clone(), counters)),
                    });
                }
                Verdict::Rejected(reason) => {
                    reasons.push(reason);
                    if checked.next != token.state {
                        failures.push((token, checked.next));
                    }
                }
            }
        }
        let all_locked = reasons.iter().all(|r| matches!(r, RejectReason::Locked | RejectReason::Disabled))
            && reasons.contains(&RejectReason::Locked);
        let reason = if all_locked {
            ValidateReason::Locked
        } else if reasons.contains(&RejectReason::Replayed) {
            ValidateReason::Replayed
        } else {
            ValidateReason::WrongCode
        };
        Ok(Decision::from_failures(failures, now, &self.policy, reason))
    }

    // --- audit --------------------------------------------------------------------------------
}

/// A passcode that is a request instead of a code: `sms`, `email` or `push` picks the channel
/// (and for pre-loaded codes asks for fresh ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Sms,
    Email,
    Push,
    Voice,
}

impl Keyword {
    fn parse(passcode: &str) -> Option<Self> {
        match passcode.trim().to_ascii_lowercase().as_str() {
            "sms" => Some(Self::Sms),
            "email" => Some(Self::Email),
            "push" => Some(Self::Push),
            "voice" | "call" => Some(Self::Voice),
            _ => None,
        }
    }
}

/// Where a login without a code goes.
enum Route {
    /// A push to the user's device.
    Push,
    /// Send this delivered token's codes.
    Send(TokenRow),
    /// Call this voice token's phone.
    Call(TokenRow),
    /// The code is already on the phone: ask for it.
    AskForSentCode(TokenRow),
    /// Ask for a passcode from a token (`-nopush`, or a keyword for a channel the user lacks).
    AskForPasscode,
    /// Check what was typed as it is.
    CheckPasscode,
}

/// One validation request as the rules see it: the password split from its `-nopush` suffix,
/// who asks, and what a push would show on the device.
pub(super) struct Attempt<'a> {
    username: &'a str,
    password: Option<SecretString>,
    nopush: bool,
    ip: Option<IpAddr>,
    ip_text: Option<String>,
    actor: std::borrow::Cow<'static, str>,
    caller: &'a Caller<'a>,
    request: &'a ValidateRequest,
    started: Instant,
}

impl<'a> Attempt<'a> {
    fn new(request: &'a ValidateRequest, caller: &'a Caller<'a>) -> Self {
        // "-nopush" at the end of the password asks for a passcode instead of a push; it is not
        // part of the password.
        let (password, nopush) = match request.password.as_ref().map(SecretString::expose) {
            Some(text) if text.ends_with(NOPUSH_SUFFIX) => {
                let stripped = text.get(..text.len() - NOPUSH_SUFFIX.len()).unwrap_or_default();
                (Some(SecretString::new(stripped.to_owned())).filter(|p| !p.expose().is_empty()), true)
            }
            _ => (request.password.clone(), false),
        };
        Self {
            started: Instant::now(),
            username: &request.username,
            password,
            nopush,
            ip: caller.ip,
            ip_text: caller.ip.map(|ip| ip.to_string()),
            actor: caller.audit_actor(),
            caller,
            request,
        }
    }

    fn ip_text(&self) -> Option<&str> {
        self.ip_text.as_deref()
    }

    /// The caller's address.
    pub(super) fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The audit record of a rejection for `reason` (other outcomes override its fields).
    pub(super) fn rejected(&self, reason: ValidateReason) -> NewAudit<'_> {
        NewAudit {
            at_ms: unix_now_ms(),
            actor: &self.actor,
            action: "validate",
            username: Some(self.username),
            serial: None,
            client_ip: self.ip_text(),
            result: AuditResult::Reject,
            reason: Some(reason.as_str()),
        }
    }

    /// What the device will show: the application's service name (or the server's) and, only
    /// from an authenticated application, the end user's address and browser from the body.
    pub(super) fn push_context(&self, push: &PushPolicy) -> PushContext {
        let user_agent = self
            .caller
            .user_agent
            .filter(|ua| ua.len() <= 512 && !ua.chars().any(char::is_control))
            .map(str::to_owned);
        match &self.caller.application {
            Some(application) => PushContext {
                client_ip: self.request.client_ip.clone().or_else(|| self.ip_text.clone()),
                user_agent: self.request.user_agent.clone().or(user_agent),
                service: application.service_name.clone(),
                actor: self.actor.to_string(),
                shows_number: true,
            },
            None => match self.caller.door {
                Door::Radius { shows_number, .. } => PushContext {
                    client_ip: self.request.client_ip.clone().or_else(|| self.ip_text.clone()),
                    user_agent: None,
                    service: self.request.service.clone().unwrap_or_else(|| push.service_name.clone()),
                    actor: self.actor.to_string(),
                    shows_number,
                },
                Door::Api | Door::Portal { .. } => PushContext {
                    client_ip: self.ip_text.clone(),
                    user_agent,
                    service: push.service_name.clone(),
                    actor: self.actor.to_string(),
                    shows_number: true,
                },
            },
        }
    }
}

/// The tokens a passcode can be checked against: enabled TOTP and HOTP tokens, and push tokens
/// whose device has registered, that are not pending (added in the portal and not yet proved).
pub(crate) fn usable_tokens(tokens: Vec<TokenRow>) -> Vec<TokenRow> {
    tokens
        .into_iter()
        .filter(|t| {
            t.state.enabled
                && t.pending.is_none()
                && match t.kind {
                    TokenKind::Totp | TokenKind::Hotp => true,
                    TokenKind::Push => t.device().is_some(),
                    TokenKind::Sms | TokenKind::Email | TokenKind::Voice => t.delivery.is_some(),
                    TokenKind::Temp => t.is_live_temporary(now_i64()),
                }
        })
        .collect()
}

/// What one validation attempt will write.
struct Decision {
    updates: Vec<StateUpdate>,
    accepted: Option<String>,
    reason: ValidateReason,
    new_lockouts: u64,
    /// A pre-loaded token whose accepted code was its last: the next codes to queue.
    follow_up: Option<(TokenRow, std::ops::Range<u64>)>,
}

impl Decision {
    fn accepted(serial: String, update: StateUpdate) -> Self {
        Self {
            updates: vec![update],
            accepted: Some(serial),
            reason: ValidateReason::Accepted,
            new_lockouts: 0,
            follow_up: None,
        }
    }

    fn from_failures(
        failures: Vec<(&TokenRow, TokenState)>,
        now: u64,
        policy: &Policy,
        reason: ValidateReason,
    ) -> Self {
        let new_lockouts = failures
            .iter()
            .filter(|(token, next)| next.is_locked(now, policy) && !token.state.is_locked(now, policy))
            .count() as u64;
        let updates = failures.into_iter().map(|(token, state)| token.moved_to(state, None)).collect();
        Self { updates, accepted: None, reason, new_lockouts, follow_up: None }
    }

    /// A wrong password counts as a failure on each of the user's usable tokens.
    fn failure_everywhere(tokens: &[TokenRow], now: u64, policy: &Policy) -> Self {
        let failures = tokens
            .iter()
            .filter(|t| t.state.enabled && !t.state.is_locked(now, policy))
            .map(|t| (t, t.state.after_failure(now, policy)))
            .collect();
        Self::from_failures(failures, now, policy, ValidateReason::WrongPassword)
    }
}

/// The request's free-text fields, before any work.
fn check_request(request: &ValidateRequest) -> Result<(), ServiceError> {
    check_name("username", &request.username)?;
    if let Some(ip) = &request.client_ip {
        ip.parse::<IpAddr>()
            .map_err(|_| ServiceError::InvalidInput("client_ip must be an IP address".into()))?;
    }
    check_optional_texts(&[
        ("user_agent", &request.user_agent, 512),
        ("service", &request.service, 128),
        ("transaction_id", &request.transaction_id, 64),
    ])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_core::push::{Answer, Decision, EnrollmentLink, KeyPair, PROTOCOL_VERSION, RegisterRequest};

    use super::*;
    use crate::service::testing::{request, service, user};
    use crate::service::{Actor, EnrollRequest, TokenView};
    use crate::store::AuditFilter;

    /// Enrolls a TOTP token for `username`.
    async fn totp(service: &Service, username: &str) -> TokenView {
        let request = EnrollRequest::of_kind(TokenKind::Totp);
        let serial = service.enroll(&Actor::Cli, username, request).await.unwrap().serial;
        service.tokens(username).await.unwrap().into_iter().find(|t| t.serial == serial).unwrap()
    }

    /// The code `serial` shows now.
    async fn code_of(service: &Service, serial: &str) -> String {
        let token = service.store().token(serial).await.unwrap().unwrap();
        let (seed, method) = service.material(&token).unwrap();
        method.code_at(&seed, unix_now()).expose().to_owned()
    }

    /// The reasons of `username`'s validation audit records, oldest first.
    async fn audited(service: &Service, username: &str) -> Vec<(String, String)> {
        let filter = AuditFilter {
            username: Some(username.into()),
            action: Some("validate".into()),
            ..Default::default()
        };
        let mut rows: Vec<(String, String)> = service
            .audit(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.result, entry.reason.unwrap_or_default()))
            .collect();
        rows.reverse();
        rows
    }

    #[tokio::test]
    async fn nopush_with_an_empty_passcode_asks_for_one_and_audits_a_challenge() {
        let (_dir, service) = service("").await;
        user(&service, "ann", "2580").await;
        totp(&service, "ann").await;
        let answer = service.validate(request("ann", "2580-nopush", ""), &Caller::default()).await.unwrap();
        assert_eq!((answer.result, answer.transaction_id), (ValidationResult::Challenge, None));
        assert_eq!(audited(&service, "ann").await, [("challenge".to_owned(), "nopush".to_owned())]);
    }

    #[tokio::test]
    async fn unknown_names_answer_like_real_ones_and_lock_after_max_failures() {
        let (_dir, service) = service("[policy]\nmax_failures = 3\n").await;
        let caller = Caller::default();
        for _ in 0..3 {
            let answer = service.validate(request("nobody", "2580", "123456"), &caller).await.unwrap();
            assert_eq!(answer.reason, Some(PublicReason::InvalidCredentials));
        }
        let answer = service.validate(request("nobody", "2580", "123456"), &caller).await.unwrap();
        assert_eq!(answer.reason, Some(PublicReason::Locked), "a name with no account locks like one with");
    }

    #[tokio::test]
    async fn when_every_usable_token_is_locked_the_answer_is_locked_even_for_the_right_code() {
        let (_dir, service) = service("[policy]\nmax_failures = 2\n").await;
        user(&service, "bob", "2580").await;
        let first = totp(&service, "bob").await;
        let second = totp(&service, "bob").await;
        for _ in 0..2 {
            let answer =
                service.validate(request("bob", "2580", "000000"), &Caller::default()).await.unwrap();
            assert_eq!(answer.reason, Some(PublicReason::InvalidCredentials));
        }
        let right = code_of(&service, &first.serial).await;
        let answer = service.validate(request("bob", "2580", &right), &Caller::default()).await.unwrap();
        assert_eq!(answer.reason, Some(PublicReason::Locked));
        service.set_enabled(&Actor::Cli, &second.serial, false).await.unwrap();
        let answer = service.validate(request("bob", "2580", &right), &Caller::default()).await.unwrap();
        assert_eq!(answer.reason, Some(PublicReason::Locked), "a disabled token does not unlock the user");
        let reasons: Vec<String> = audited(&service, "bob").await.into_iter().map(|(_, r)| r).collect();
        assert_eq!(reasons, ["wrong_code", "wrong_code", "locked", "locked"]);
    }

    #[tokio::test]
    async fn a_wrong_password_counts_once_on_the_user_and_on_every_usable_token() {
        let (_dir, service) = service("").await;
        user(&service, "cy", "2580").await;
        totp(&service, "cy").await;
        totp(&service, "cy").await;
        let answer = service.validate(request("cy", "9999", "123456"), &Caller::default()).await.unwrap();
        assert_eq!(answer.reason, Some(PublicReason::InvalidCredentials));
        let failures: Vec<u32> = service.tokens("cy").await.unwrap().iter().map(|t| t.failures).collect();
        assert_eq!(failures, [1, 1]);
        assert_eq!(service.user("cy").await.unwrap().password_failures, 1);
        assert_eq!(audited(&service, "cy").await, [("reject".to_owned(), "wrong_password".to_owned())]);
    }

    #[tokio::test]
    async fn one_code_presented_by_eight_logins_at_once_is_accepted_once() {
        let (_dir, service) = service("").await;
        user(&service, "dee", "2580").await;
        let token = totp(&service, "dee").await;
        let code = code_of(&service, &token.serial).await;
        let logins = (0..8).map(|_| {
            let (service, code) = (Arc::clone(&service), code.clone());
            tokio::spawn(
                async move { service.validate(request("dee", "2580", &code), &Caller::default()).await },
            )
        });
        let mut accepted = 0;
        for login in logins {
            let answer = login.await.unwrap().unwrap();
            accepted += usize::from(answer.result == ValidationResult::Accept);
        }
        assert_eq!(accepted, 1, "compare-and-swap lets exactly one of the eight through");
        let audited = audited(&service, "dee").await;
        let count = |wanted: (&str, &str)| {
            audited.iter().filter(|(result, reason)| (result.as_str(), reason.as_str()) == wanted).count()
        };
        assert_eq!((count(("accept", "")), count(("reject", "replayed"))), (1, 7), "{audited:?}");
    }

    #[tokio::test]
    async fn an_approved_push_completes_one_login_once() {
        let (_dir, service) = service("").await;
        user(&service, "eve", "2580").await;
        let push = EnrollRequest::of_kind(TokenKind::Push);
        let enrollment = service.enroll(&Actor::Cli, "eve", push).await.unwrap();
        let link = EnrollmentLink::parse(enrollment.enrollment_uri.as_ref().unwrap().expose()).unwrap();
        let device = KeyPair::generate().unwrap();
        let registration = RegisterRequest {
            serial: link.serial.clone(),
            code: link.code.clone(),
            device_public_key: device.public(),
            device_name: None,
            wake: None,
        };
        service.push().register_device(registration, None).await.unwrap();

        let challenge = service.validate(request("eve", "2580", ""), &Caller::default()).await.unwrap();
        assert_eq!(challenge.result, ValidationResult::Challenge);
        let transaction_id = challenge.transaction_id.clone().unwrap();
        let finish =
            || ValidateRequest { transaction_id: Some(transaction_id.clone()), ..request("eve", "2580", "") };
        let pending = service.validate(finish(), &Caller::default()).await.unwrap();
        assert_eq!(pending.result, ValidationResult::Challenge, "still waiting for the device");

        let answer = Answer {
            v: PROTOCOL_VERSION,
            transaction_id: transaction_id.clone(),
            serial: link.serial.clone(),
            decision: Decision::Approve,
            number: challenge.number,
            otp: Some(SecretString::new(code_of(&service, &link.serial).await)),
            answered_at: unix_now(),
        };
        let receipt = service.push().answer(answer.sign(&device), None).await.unwrap();
        assert_eq!(receipt.status, tessera_core::wire::AnswerStatus::Approved);

        let accepted = service.validate(finish(), &Caller::default()).await.unwrap();
        assert_eq!((accepted.result, accepted.serial), (ValidationResult::Accept, Some(link.serial.clone())));
        let again = service.validate(finish(), &Caller::default()).await.unwrap();
        assert_eq!(again.reason, Some(PublicReason::InvalidCredentials), "an approval logs in once");
        let reasons: Vec<String> = audited(&service, "eve").await.into_iter().map(|(_, r)| r).collect();
        assert_eq!(reasons, ["push_approved", "push_consumed"]);
    }

    #[tokio::test]
    async fn a_wrong_password_locks_a_user_with_no_usable_token_and_nopush_tells_nothing() {
        let (_dir, service) = service("[policy]\nmax_failures = 3\n").await;
        user(&service, "ivy", "2580").await;
        let caller = Caller::default();
        let answer = service.validate(request("ivy", "2580-nopush", ""), &caller).await.unwrap();
        assert_eq!(
            (answer.result, answer.reason),
            (ValidationResult::Reject, Some(PublicReason::InvalidCredentials)),
            "the right password of a user with no usable token gets a plain reject, not a challenge"
        );
        for guess in ["0000", "1111", "2222"] {
            let answer =
                service.validate(request("ivy", &format!("{guess}-nopush"), ""), &caller).await.unwrap();
            assert_eq!(answer.reason, Some(PublicReason::InvalidCredentials));
        }
        let answer = service.validate(request("ivy", "2580-nopush", ""), &caller).await.unwrap();
        assert_eq!(answer.reason, Some(PublicReason::Locked), "three wrong passwords lock the user");
        let view = service.user("ivy").await.unwrap();
        assert_eq!((view.password_failures, view.locked), (3, true));
        let view = service.unlock_user(&Actor::Cli, "ivy").await.unwrap();
        assert_eq!((view.password_failures, view.locked), (0, false));
        let answer = service.validate(request("ivy", "0000-nopush", ""), &caller).await.unwrap();
        assert_eq!(answer.reason, Some(PublicReason::InvalidCredentials), "unlocked, the count starts again");
    }
}
