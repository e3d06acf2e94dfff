//! Proving a phone number with a code sent to it, for two things the portal does: changing one's
//! number, and (where `[portal] first_enrolment` allows) a first sign-in by a code sent to the
//! number the directory or the help desk put on file. Either way the number is proved the way a
//! new device is: a pending SMS token to it, whose code is sent at once and must come back within
//! its challenge (three tries, a few minutes). Only then, in one transaction, does the pending
//! token become the user's text-message token (the old one deleted, the number on file changed);
//! abandoned half-way, nothing changed. A pending token's challenge never completes an ordinary
//! login, and changing a number needs a second factor proved within `[portal] step_up_secs`.

use tessera_core::delivery::{DeliveryMode, check_period_days};
use tessera_core::secret::{SecretBytes, SecretString};

use super::audit::AdminAudit;
use super::delivered::settled;
use super::notices::{AccountChange, number_ending};
use super::tokens::{SEED_BYTES, TokenDraft};
use super::validate::{Attempt, Outcome, PublicReason, ValidateReason};
use super::{Actor, Caller, Confirmation, PortalSession, Service, ServiceError, StepUp, TokenKind};
use crate::clock::{i64_of, now_i64, unix_now};
use crate::delivery::Delivery;
use crate::input::check_phone;
use crate::keys::KeyError;
use crate::store::{
    AuditResult, ChallengeRow, ChallengeStatus, Channel, DeliveredToken, NewAudit, NewChallenge,
    PendingToken, SendLimit, TokenRow, UserRow,
};

/// A new number waiting for the code sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneCheck {
    /// The pending SMS token that carries the number.
    pub serial: String,
    /// The challenge its code answers.
    pub transaction_id: String,
    /// The number, masked (when just sent).
    pub masked: Option<String>,
}

/// A pending SMS token to a number, and the challenge whose code went to it.
struct NumberCheck {
    serial: String,
    challenge: NewChallenge,
}

/// How a code for a pending number went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberProof {
    /// Right: the token is active.
    Proved,
    /// Wrong; `over` when that was the challenge's last try.
    Wrong { over: bool },
    /// The challenge or the token moved meanwhile, or the token's time ran out.
    Gone,
}

impl Service {
    /// Starts changing the session's user's phone number to `number`: a pending SMS token to it,
    /// replacing their current one once proved, and its code sent now (under the send limits).
    pub async fn portal_change_phone(
        &self,
        session: &PortalSession,
        number: &str,
        caller: &Caller<'_>,
    ) -> Result<StepUp<PhoneCheck>, ServiceError> {
        session.signed_in()?;
        let phone = check_phone(number.trim().to_owned())?;
        let user = self.existing_user(session.username()).await?;
        self.delivery
            .destination(&user, Channel::Sms, Some(&phone))
            .map_err(|e| ServiceError::InvalidInput(format!("{e}: this number cannot receive codes")))?;
        self.check_kind_allowed(&user, TokenKind::Sms.as_str()).await?;
        if !session.factor_is_fresh(now_i64(), self.portal.step_up_secs) {
            return Ok(StepUp::Needed);
        }
        let current = self
            .store
            .tokens_of(user.id)
            .await?
            .into_iter()
            .find(|t| t.kind == TokenKind::Sms && t.pending.is_none());
        let actor = Actor::Portal { ip: caller.ip };
        match self.send_number_check(&actor, &user, &phone, current.as_ref(), "verify phone").await? {
            Ok(check) => Ok(StepUp::Done(PhoneCheck {
                serial: check.serial,
                transaction_id: check.challenge.id,
                masked: Some(Delivery::masked(Channel::Sms, &phone)),
            })),
            Err(limit) => Err(ServiceError::TooManyRequests(limit.explained().into())),
        }
    }

    /// Completes a phone number change with the code sent to the new number: the pending token
    /// active, the old SMS token deleted and (for a user the directory does not manage) the number
    /// on file changed, in one transaction. Three wrong codes end it.
    pub async fn portal_confirm_phone(
        &self,
        session: &PortalSession,
        serial: &str,
        transaction_id: &str,
        code: &SecretString,
        caller: &Caller<'_>,
    ) -> Result<Confirmation, ServiceError> {
        let now = i64_of(unix_now());
        let Some(token) =
            self.own_pending_token(session, serial, now).await?.filter(|t| t.kind == TokenKind::Sms)
        else {
            return Ok(Confirmation::Gone);
        };
        let Some(challenge) = self.store.challenge(transaction_id).await? else {
            return Ok(Confirmation::Gone);
        };
        let user = self.existing_user(session.username()).await?;
        let old_phone = self.current_number(&user).await;
        let actor = Actor::Portal { ip: caller.ip };
        let confirm = AdminAudit::new(&actor, "token.confirm").user(session.username()).serial(serial);
        let replaced = token.pending.as_ref().and_then(|p| p.replaces.clone());
        let retired = replaced.as_deref().map(|old| {
            AdminAudit::new(&actor, "token.delete").user(session.username()).serial(old).reason("replaced")
        });
        let retired = retired.as_ref().map(AdminAudit::record);
        let confirmed = confirm.clone().reason("phone number changed");
        let wrong = NewAudit { result: AuditResult::Reject, reason: Some("wrong_code"), ..confirm.record() };
        let audits = ProofAudits { proved: &confirmed.record(), retired: retired.as_ref(), wrong: &wrong };
        match self.check_number_code(&user, &token, &challenge, code, &audits).await? {
            NumberProof::Proved => {
                if let Some(phone) = token.delivery.as_ref().and_then(|d| d.destination.as_deref()) {
                    let change = AccountChange::PhoneChanged(number_ending(phone));
                    self.notify(&user, &change, old_phone.as_deref()).await;
                }
                Ok(Confirmation::Ready)
            }
            NumberProof::Wrong { over: false } => Ok(Confirmation::WrongCode),
            NumberProof::Wrong { over: true } | NumberProof::Gone => Ok(Confirmation::Gone),
        }
    }

    /// A user with no token signing in to the portal for the first time, where `[portal]
    /// first_enrolment` allows a code by text message: their password was right, so a pending SMS
    /// token to the number on file is added and its code sent; the sign-in completes with it.
    pub(super) async fn first_code_by_sms(
        &self,
        user: &UserRow,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        let phone = self.delivery.destination(user, Channel::Sms, None);
        let allowed = self.check_kind_allowed(user, TokenKind::Sms.as_str()).await;
        let (Ok(phone), Ok(())) = (phone, allowed) else {
            self.store.audit(&attempt.rejected(ValidateReason::NoToken)).await?;
            return Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::NoToken));
        };
        let actor = Actor::Portal { ip: attempt.ip() };
        match self.send_number_check(&actor, user, &phone, None, "first sign-in").await? {
            Ok(check) => {
                let audit =
                    NewAudit { result: AuditResult::Challenge, ..attempt.rejected(ValidateReason::CodeSent) };
                self.store.audit(&NewAudit { serial: Some(&check.serial), ..audit }).await?;
                let masked = Delivery::masked(Channel::Sms, &phone);
                let ttl = self.delivery.settings().default_ttl;
                Ok(Outcome::code_sent(Channel::Sms, masked, Some(check.challenge), ttl, None))
            }
            Err(limit) => {
                self.store.audit(&attempt.rejected(ValidateReason::SendLimited(limit))).await?;
                Ok(Outcome::send_limited(limit))
            }
        }
    }

    /// Completes a first sign-in by a code sent to the number on file: the pending token becomes
    /// the user's text-message token, in the same transaction as the challenge and the audit.
    pub(super) async fn complete_first_code(
        &self,
        user: &UserRow,
        token: &TokenRow,
        challenge: &ChallengeRow,
        passcode: &SecretString,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        let proved = NewAudit {
            serial: Some(&token.serial),
            result: AuditResult::Accept,
            reason: Some("first_code_by_sms"),
            ..attempt.rejected(ValidateReason::Accepted)
        };
        let wrong = NewAudit { serial: Some(&token.serial), ..attempt.rejected(ValidateReason::WrongCode) };
        let audits = ProofAudits { proved: &proved, retired: None, wrong: &wrong };
        Ok(match self.check_number_code(user, token, challenge, passcode, &audits).await? {
            NumberProof::Proved => Outcome::accepted(token.serial.clone()),
            NumberProof::Wrong { .. } => {
                Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::WrongCode)
            }
            NumberProof::Gone => {
                Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::ChallengeOver)
            }
        })
    }

    /// Adds a pending real-time SMS token to `phone` for `user`, to replace `current` (whose name
    /// it keeps) once proved, and sends its code now under the send limits; a refused send
    /// leaves no token behind.
    async fn send_number_check(
        &self,
        actor: &Actor,
        user: &UserRow,
        phone: &str,
        current: Option<&TokenRow>,
        reason: &str,
    ) -> Result<Result<NumberCheck, SendLimit>, ServiceError> {
        let pending = PendingToken {
            until: now_i64() + i64::from(self.delivery.settings().default_ttl.secs()),
            replaces: current.map(|t| t.serial.clone()),
        };
        let delivered = DeliveredToken {
            mode: DeliveryMode::Realtime,
            destination: Some(phone.to_owned()),
            ttl_secs: None,
            period_days: check_period_days(1).map_err(|e| ServiceError::InvalidInput(e.to_string()))?,
            issued_upto: 0,
            last_delivered_period: None,
        };
        let seed = SecretBytes::random(SEED_BYTES).map_err(|e| KeyError::Random(e.to_string()))?;
        let draft = TokenDraft {
            kind: TokenKind::Sms,
            algorithm: "SHA1",
            digits: 6,
            period: 30,
            seed: &seed,
            description: current.and_then(|t| t.description.as_deref()),
            enrollment: None,
            delivery: Some(&delivered),
            temporary: None,
            pending: Some(&pending),
        };
        let serial = self.insert_token(actor, user, draft).await?;
        let token = self
            .store
            .token(&serial)
            .await?
            .ok_or_else(|| ServiceError::NotFound("token", serial.clone()))?;
        let audit = AdminAudit::new(actor, "token.send").user(&user.username).serial(&serial).reason(reason);
        match self.send_challenge(user, &token, &audit.record()).await? {
            Ok(challenge) => Ok(Ok(NumberCheck { serial, challenge })),
            Err(limit) => {
                let withdrawn = AdminAudit::new(actor, "token.delete")
                    .user(&user.username)
                    .serial(&serial)
                    .reason("not sent");
                self.store.delete_token(&serial, &withdrawn.record()).await?;
                Ok(Err(limit))
            }
        }
    }

    /// Checks `code` against the challenge of `user`'s pending SMS token `token`: right, the
    /// challenge is used and the token active (the token it replaces deleted, the number on file
    /// changed for a user the directory does not manage) in one transaction; wrong, the try is
    /// counted.
    async fn check_number_code(
        &self,
        user: &UserRow,
        token: &TokenRow,
        challenge: &ChallengeRow,
        code: &SecretString,
        audits: &ProofAudits<'_>,
    ) -> Result<NumberProof, ServiceError> {
        let now = unix_now();
        let live = challenge.token_id == token.id
            && challenge.user_id == user.id
            && challenge.status == ChallengeStatus::Pending
            && challenge.expires_at > i64_of(now);
        if !live || token.pending.as_ref().is_none_or(|p| p.until < i64_of(now)) {
            return Ok(NumberProof::Gone);
        }
        let (accepted, update) = self.check_challenge_code(token, challenge, code, now)?;
        if !accepted {
            let (status, ..) = settled(false, challenge.tries);
            if !self.store.settle_challenge(challenge, status, Some(&update), None, audits.wrong).await? {
                return Ok(NumberProof::Gone);
            }
            return Ok(NumberProof::Wrong { over: status == ChallengeStatus::Void });
        }
        let phone = token.delivery.as_ref().and_then(|d| d.destination.as_deref());
        let on_file = phone.filter(|_| user.directory.is_none());
        let activated = self
            .store
            .activate_verified_phone(challenge, &update, i64_of(now), on_file, audits.proved, audits.retired)
            .await?;
        Ok(if activated { NumberProof::Proved } else { NumberProof::Gone })
    }
}

/// The audit records of a number's proof: proved (with the token it retired), or a wrong code.
struct ProofAudits<'a> {
    proved: &'a NewAudit<'a>,
    retired: Option<&'a NewAudit<'a>>,
    wrong: &'a NewAudit<'a>,
}
