//! One Swipe at the server: redeems the signed, single-use code a push device shows to a login
//! screen's webcam. The code must name this server, verify under the device's registered key, be
//! within its lifetime, carry the token's current TOTP code, and not have been redeemed before;
//! the redeemed nonce is stored in the database, so replicas sharing it agree. Every refusal has a
//! typed reason, written to the audit log and counted in the metrics.
//!
//! With a `transaction_id` the code approves that pending push login instead (the login client
//! then completes it with `validate`, as after an approval on the phone), which lets a relying
//! party keep the decision on its server while the browser only carries the code.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use tessera_core::oneswipe::{OneSwipe, OneSwipeError};
use tessera_core::secret::SecretString;
use tessera_core::verifier::{self, Verdict};
use utoipa::ToSchema;

use super::directory::PasswordCheck;
use super::validate::usable_tokens;
use super::{Service, ServiceError};
use crate::clock::{i64_of, u64_of, unix_now, unix_now_ms};
use crate::input::check_optional_texts;
use crate::push::transaction_key;
use crate::store::{
    AuditResult, NewAudit, RecordedAnswer, StateUpdate, TokenKind, TokenRow, TxChannel, TxStatus, UserChange,
    UserRow,
};

/// Attempts at a token update that raced with another request for the same token.
const MAX_ATTEMPTS: usize = 4;
/// Redeemed nonces are kept this long past their code's expiry, so a replica whose clock runs up
/// to this far behind another's still finds them (a code must never be accepted twice).
const NONCE_MARGIN_SECS: u64 = 300;

/// A One Swipe code read by a login screen.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneSwipeRequest {
    /// The text the QR code held.
    #[schema(value_type = String)]
    pub payload: SecretString,
    /// The user the login screen is signing in, if it asked: a code of another user is refused.
    pub username: Option<String>,
    /// The user's password or PIN. Required when the user has one (as for `validate`).
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    /// A pending push login (from `validate`) that the code approves instead of logging in by
    /// itself; complete it with `validate` and this `transaction_id`.
    pub transaction_id: Option<String>,
}

/// Accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OneSwipeResult {
    /// The code logged its user in (or approved the transaction).
    Accept,
    /// The code was refused; `reason` says why.
    Reject,
}

/// Why a One Swipe code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not a One Swipe code.
    Malformed,
    /// A format version this server does not know.
    UnsupportedVersion,
    /// Made for another server.
    WrongAudience,
    /// No registered push device made it.
    UnknownDevice,
    /// The signature does not verify.
    BadSignature,
    /// Past its lifetime.
    Expired,
    /// Dated ahead of the server's clock.
    NotYetValid,
    /// Redeemed before.
    Replayed,
    /// The attached one-time code is wrong or used (audited as such; callers are answered
    /// `invalid_credentials`, as for a wrong password).
    BadOtp,
    /// The token is locked after too many failures.
    Locked,
    /// The token is disabled.
    Disabled,
    /// The code belongs to another user than the login screen's.
    WrongUser,
    /// The password is missing or wrong, or the attached one-time code is.
    InvalidCredentials,
    /// The transaction to approve is unknown, answered or expired.
    UnknownTransaction,
    /// Too many attempts from this client or for this user.
    RateLimited,
}

impl RejectReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedVersion => "unsupported_version",
            Self::WrongAudience => "wrong_audience",
            Self::UnknownDevice => "unknown_device",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Replayed => "replayed",
            Self::BadOtp => "bad_otp",
            Self::Locked => "locked",
            Self::Disabled => "disabled",
            Self::WrongUser => "wrong_user",
            Self::InvalidCredentials => "invalid_credentials",
            Self::UnknownTransaction => "unknown_transaction",
            Self::RateLimited => "rate_limited",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Malformed => "this is not a One Swipe code",
            Self::UnsupportedVersion => "this One Swipe code is from a newer Tessera; update the server",
            Self::WrongAudience => "this One Swipe code was made for another server",
            Self::UnknownDevice | Self::BadSignature => "this One Swipe code is not from a registered device",
            Self::Expired => "this One Swipe code has expired; show a fresh one",
            Self::NotYetValid => "this One Swipe code is dated in the future; check the device's clock",
            Self::Replayed => "this One Swipe code was used already; show a fresh one",
            Self::BadOtp => "the one-time code in this One Swipe code is wrong or used; show a fresh one",
            Self::Locked => "too many failed attempts: the token is locked",
            Self::Disabled => "this token is disabled",
            Self::WrongUser => "this One Swipe code belongs to another user",
            Self::InvalidCredentials => "authentication failed",
            Self::UnknownTransaction => "this login request is unknown, answered or expired",
            Self::RateLimited => "too many attempts: try again later",
        }
    }

    fn of(error: &OneSwipeError) -> Self {
        match error {
            OneSwipeError::UnsupportedVersion(_) => Self::UnsupportedVersion,
            OneSwipeError::WrongAudience => Self::WrongAudience,
            OneSwipeError::BadSignature => Self::BadSignature,
            OneSwipeError::Expired => Self::Expired,
            OneSwipeError::NotYetValid => Self::NotYetValid,
            _ => Self::Malformed,
        }
    }
}

/// The outcome of presenting a One Swipe code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OneSwipeResponse {
    /// `accept` or `reject`.
    pub result: OneSwipeResult,
    /// The user logged in (when accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Human-readable text for the login screen.
    pub message: String,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// The push token whose device made the code (when accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The transaction approved (when one was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

impl OneSwipeResponse {
    /// The refusal the caller sees: a wrong password and a wrong one-time code are both
    /// `invalid_credentials`, so the answer never tells which part was wrong.
    fn reject(reason: RejectReason) -> Self {
        let reason = match reason {
            RejectReason::BadOtp => RejectReason::InvalidCredentials,
            other => other,
        };
        Self {
            result: OneSwipeResult::Reject,
            username: None,
            message: reason.message().into(),
            reason: Some(reason),
            serial: None,
            transaction_id: None,
        }
    }
}

/// Who presented the code, for the audit log.
struct Presenter<'a> {
    client_ip: Option<IpAddr>,
    ip: Option<&'a str>,
    username: Option<&'a str>,
    serial: Option<&'a str>,
}

impl Presenter<'_> {
    fn audit(&self, result: AuditResult, reason: Option<&'static str>) -> NewAudit<'_> {
        NewAudit {
            at_ms: unix_now_ms(),
            actor: "validate",
            action: "oneswipe",
            username: self.username,
            serial: self.serial,
            client_ip: self.ip,
            result,
            reason,
        }
    }
}

impl Service {
    /// Redeems a One Swipe code: accepts its user once, or rejects with a typed, audited reason.
    pub async fn redeem_one_swipe(
        &self,
        request: OneSwipeRequest,
        client_ip: Option<IpAddr>,
    ) -> Result<OneSwipeResponse, ServiceError> {
        check_optional_texts(&[
            ("username", &request.username, 128),
            ("transaction_id", &request.transaction_id, 64),
        ])?;
        let ip = client_ip.map(|ip| ip.to_string());
        let redeemed = self.redeem(&request, client_ip, ip.as_deref()).await?;
        let outcome = redeemed.as_ref().err().map_or("accept", |reason| reason.as_str());
        self.metrics.one_swipe(outcome);
        tracing::info!(username = redeemed.as_ref().ok().and_then(|r| r.username.as_deref()), client_ip = ?client_ip, result = outcome, "one swipe");
        Ok(redeemed.unwrap_or_else(OneSwipeResponse::reject))
    }

    /// The accepted response, or why the code was refused (the precise reason: the caller is told
    /// only its public form).
    async fn redeem(
        &self,
        request: &OneSwipeRequest,
        client_ip: Option<IpAddr>,
        ip: Option<&str>,
    ) -> Result<Result<OneSwipeResponse, RejectReason>, ServiceError> {
        let now = unix_now();
        let mut presenter = Presenter { ip, client_ip, username: request.username.as_deref(), serial: None };
        if !self.limiter.allow_client(client_ip) {
            return self.refuse(&presenter, RejectReason::RateLimited).await;
        }
        let server_key = self.push.public_key();
        let code = match OneSwipe::parse(request.payload.expose()).and_then(|code| {
            code.check_audience(&server_key)?;
            Ok(code)
        }) {
            Ok(code) => code,
            Err(error) => return self.refuse(&presenter, RejectReason::of(&error)).await,
        };
        let serial = code.serial();
        presenter.serial = Some(&serial);
        let found = self.store.token_with_owner(&serial).await?.filter(|(t, _)| t.kind == TokenKind::Push);
        let found = found.and_then(|(t, user)| Some((t.device_key()?, t, user)));
        let Some((device_key, token, user)) = found else {
            return self.refuse(&presenter, RejectReason::UnknownDevice).await;
        };
        let expected_user = presenter.username.replace(&user.username);
        if let Err(error) =
            code.verify(&device_key, &server_key, now, self.push.settings().oneswipe_clock_skew_secs)
        {
            return self.refuse(&presenter, RejectReason::of(&error)).await;
        }
        if expected_user.is_some_and(|expected| expected != user.username) {
            return self.refuse(&presenter, RejectReason::WrongUser).await;
        }
        if !self.limiter.allow_user(&user.username) {
            return self.refuse(&presenter, RejectReason::RateLimited).await;
        }
        if !token.state.enabled {
            return self.refuse(&presenter, RejectReason::Disabled).await;
        }
        let nonce = data_encoding::HEXLOWER.encode(&code.nonce());
        let forget_after = i64_of(code.expires_at() + NONCE_MARGIN_SECS);
        if !self.store.claim_one_swipe_nonce(token.id, &nonce, forget_after, i64_of(now)).await? {
            return self.refuse(&presenter, RejectReason::Replayed).await;
        }
        // A local password's Argon2 work is done before the lock is looked at, so neither the
        // answer nor its timing tells a locked account's right password from a wrong one; a
        // locked directory user's directory is not asked at all.
        let locked =
            user.password_lockout.is_locked(now, &self.policy) || token.state.is_locked(now, &self.policy);
        let password = self.check_user_password(&user, request.password.as_ref(), locked).await?;
        if locked {
            return self.refuse(&presenter, RejectReason::Locked).await;
        }
        match password {
            PasswordCheck::Matches => {}
            PasswordCheck::Wrong => return self.refuse_wrong_password(&presenter, &user.username).await,
            PasswordCheck::DirectoryUnavailable | PasswordCheck::DirectoryGone => {
                return self.refuse(&presenter, RejectReason::InvalidCredentials).await;
            }
        }
        self.redeem_code(request, &code, token, &user, &presenter, now).await
    }

    /// A wrong password counts against the user and their tokens, as at `validate`.
    async fn refuse_wrong_password(
        &self,
        presenter: &Presenter<'_>,
        username: &str,
    ) -> Result<Result<OneSwipeResponse, RejectReason>, ServiceError> {
        let audit = presenter.audit(AuditResult::Reject, Some(RejectReason::InvalidCredentials.as_str()));
        for _ in 0..MAX_ATTEMPTS {
            let Some((user, tokens)) = self.store.user_with_tokens(username).await? else { break };
            if self.record_wrong_password(&user, &usable_tokens(tokens), &audit).await? {
                return Ok(Err(RejectReason::InvalidCredentials));
            }
        }
        self.store.audit(&presenter.audit(AuditResult::Reject, Some("contention"))).await?;
        Ok(Err(RejectReason::InvalidCredentials))
    }

    /// Checks the code's one-time code at its signed issue time and logs the user in (or
    /// approves the transaction), with compare-and-swap on the token.
    async fn redeem_code(
        &self,
        request: &OneSwipeRequest,
        code: &OneSwipe,
        mut token: TokenRow,
        user: &UserRow,
        presenter: &Presenter<'_>,
        now: u64,
    ) -> Result<Result<OneSwipeResponse, RejectReason>, ServiceError> {
        let serial = token.serial.clone();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                match self.store.token(&serial).await? {
                    Some(fresh) => token = fresh,
                    None => return self.refuse(presenter, RejectReason::UnknownDevice).await,
                }
            }
            let (seed, method) = self.material(&token)?;
            let otp = code.otp(method.code_length());
            let checked = verifier::verify_in_single_use_message(
                &seed,
                &method,
                token.state,
                otp.expose(),
                code.issued_at(),
                now,
                &self.policy,
            );
            let accepted = matches!(checked.verdict, Verdict::Accepted { .. });
            let update = token.moved_to(checked.next, accepted.then_some(i64_of(now)));
            if !accepted {
                let audit = presenter.audit(AuditResult::Reject, Some(RejectReason::BadOtp.as_str()));
                if self.store.commit(std::slice::from_ref(&update), None, &audit).await? {
                    return Ok(Err(RejectReason::BadOtp));
                }
                continue;
            }
            let committed = match &request.transaction_id {
                Some(id) => self.approve_transaction(id, &token, &update, presenter, now).await?,
                None => {
                    let audit = presenter.audit(AuditResult::Accept, None);
                    let success = UserChange::Success { user_id: user.id, at: i64_of(now) };
                    Some(self.store.commit(std::slice::from_ref(&update), Some(&success), &audit).await?)
                }
            };
            match committed {
                Some(true) => {
                    return Ok(Ok(OneSwipeResponse {
                        result: OneSwipeResult::Accept,
                        username: Some(user.username.clone()),
                        message: format!("signed in as {}", user.username),
                        reason: None,
                        serial: Some(serial.clone()),
                        transaction_id: request.transaction_id.clone(),
                    }));
                }
                Some(false) => continue,
                None => return self.refuse(presenter, RejectReason::UnknownTransaction).await,
            }
        }
        self.store.audit(&presenter.audit(AuditResult::Reject, Some("contention"))).await?;
        Ok(Err(RejectReason::BadOtp))
    }

    /// Approves the user's pending push transaction with the code. `None` when there is no such
    /// pending transaction; `Some(false)` when the token moved meanwhile.
    async fn approve_transaction(
        &self,
        id: &str,
        token: &TokenRow,
        update: &StateUpdate,
        presenter: &Presenter<'_>,
        now: u64,
    ) -> Result<Option<bool>, ServiceError> {
        let pending = self.store.transaction(id).await?.filter(|tx| {
            tx.user_id == token.user_id
                && tx.channel == TxChannel::Push
                && tx.status == TxStatus::Pending
                && u64_of(tx.expires_at) >= now
        });
        if pending.is_none() {
            return Ok(None);
        }
        let answer = RecordedAnswer {
            id,
            status: TxStatus::Approved,
            deny_reason: None,
            answered_at: i64_of(now),
            answered_by: &token.serial,
            channel: TxChannel::Push,
        };
        let applied = self
            .store
            .answer_transaction(
                &answer,
                Some(update),
                None,
                &presenter.audit(AuditResult::Accept, Some("transaction")),
            )
            .await?;
        if applied {
            self.push.publish(&transaction_key(id)).await;
        }
        Ok(Some(applied))
    }

    /// Audits a refusal that changes no state (at most once a minute per reason, client and
    /// device, so floods of bad codes cannot fill the audit log) and returns its reason.
    async fn refuse<T>(
        &self,
        presenter: &Presenter<'_>,
        reason: RejectReason,
    ) -> Result<Result<T, RejectReason>, ServiceError> {
        let kind = format!("oneswipe.{}", reason.as_str());
        if self.limiter.audit_refusal(&kind, presenter.client_ip, presenter.serial.unwrap_or_default()) {
            self.store.audit(&presenter.audit(AuditResult::Reject, Some(reason.as_str()))).await?;
        }
        Ok(Err(reason))
    }
}
