//! Changing one's phone number in the portal. The new number is proved the way a new device is: a
//! pending SMS token to that number, whose code is sent at once and must come back from the page
//! within its challenge (three tries, a few minutes). Only then, in one transaction, does the
//! pending token become the user's text-message token, the old one go, and the number on file
//! change; abandoned half-way, nothing changed. A pending token's challenge never completes a
//! login, and starting needs a second factor proved within `[portal] step_up_secs`.

use tessera_core::delivery::{Accepted, DeliveryMode, check_period_days};
use tessera_core::secret::{SecretBytes, SecretString};
use tessera_core::verifier::{self, Verdict};

use super::audit::AdminAudit;
use super::delivered::settled;
use super::notices::{AccountChange, number_ending};
use super::tokens::{SEED_BYTES, TokenDraft};
use super::{Actor, Caller, Confirmation, PortalSession, Service, ServiceError, StepUp, TokenKind};
use crate::clock::{i64_of, now_i64, unix_now};
use crate::delivery::Delivery;
use crate::input::check_phone;
use crate::keys::KeyError;
use crate::store::{AuditResult, ChallengeStatus, Channel, DeliveredToken, NewAudit, PendingToken};

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
        let description = current.as_ref().and_then(|t| t.description.clone());
        let replaces = current.map(|t| t.serial);
        let pending = PendingToken {
            until: now_i64() + i64::from(self.delivery.settings().default_ttl.secs()),
            replaces,
        };
        let delivered = DeliveredToken {
            mode: DeliveryMode::Realtime,
            destination: Some(phone.clone()),
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
            description: description.as_deref(),
            enrollment: None,
            delivery: Some(&delivered),
            temporary: None,
            pending: Some(&pending),
        };
        let actor = Actor::Portal { ip: caller.ip };
        let serial = self.insert_token(&actor, &user, draft).await?;
        let token = self
            .store
            .token(&serial)
            .await?
            .ok_or_else(|| ServiceError::NotFound("token", serial.clone()))?;
        let audit =
            AdminAudit::new(&actor, "token.send").user(&user.username).serial(&serial).reason("verify phone");
        match self.send_challenge(&user, &token, &audit.record()).await? {
            Ok(transaction_id) => Ok(StepUp::Done(PhoneCheck {
                serial,
                transaction_id,
                masked: Some(Delivery::masked(Channel::Sms, &phone)),
            })),
            Err(limit) => {
                let withdrawn = AdminAudit::new(&actor, "token.delete")
                    .user(&user.username)
                    .serial(&serial)
                    .reason("not sent");
                self.store.delete_token(&serial, &withdrawn.record()).await?;
                Err(ServiceError::TooManyRequests(limit.explained().into()))
            }
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
        let now = unix_now();
        let Some(token) =
            self.own_pending_token(session, serial, i64_of(now)).await?.filter(|t| t.kind == TokenKind::Sms)
        else {
            return Ok(Confirmation::Gone);
        };
        let Some(challenge) = self.store.challenge(transaction_id).await?.filter(|c| {
            c.token_id == token.id && c.status == ChallengeStatus::Pending && c.expires_at > i64_of(now)
        }) else {
            return Ok(Confirmation::Gone);
        };
        let (seed, method) = self.material(&token)?;
        let expected = Accepted::Challenge(challenge.counter);
        let checked = verifier::verify_delivered(
            &seed,
            &method,
            token.state,
            &expected,
            code.expose(),
            now,
            &self.policy,
        );
        let actor = Actor::Portal { ip: caller.ip };
        let confirm = AdminAudit::new(&actor, "token.confirm").user(session.username()).serial(serial);
        if !matches!(checked.verdict, Verdict::Accepted { .. }) {
            let (status, ..) = settled(false, challenge.tries);
            let record = confirm.record();
            let audit = NewAudit { result: AuditResult::Reject, reason: Some("wrong_code"), ..record };
            self.store.settle_challenge(&challenge, status, None, None, &audit).await?;
            return Ok(if status == ChallengeStatus::Void {
                Confirmation::Gone
            } else {
                Confirmation::WrongCode
            });
        }
        let user = self.existing_user(session.username()).await?;
        let old_phone = self.current_number(&user).await;
        let phone = token.delivery.as_ref().and_then(|d| d.destination.clone());
        let on_file = phone.as_deref().filter(|_| user.directory.is_none());
        let replaced = token.pending.as_ref().and_then(|p| p.replaces.clone());
        let confirmed = confirm.reason("phone number changed");
        let retired = replaced.as_deref().map(|old| {
            AdminAudit::new(&actor, "token.delete").user(session.username()).serial(old).reason("replaced")
        });
        let update = token.moved_to(checked.next, Some(i64_of(now)));
        let retired_record = retired.as_ref().map(AdminAudit::record);
        let activated = self
            .store
            .activate_verified_phone(
                &challenge,
                &update,
                i64_of(now),
                on_file,
                &confirmed.record(),
                retired_record.as_ref(),
            )
            .await?;
        if !activated {
            return Ok(Confirmation::Gone);
        }
        if let Some(phone) = &phone {
            let change = AccountChange::PhoneChanged(number_ending(phone));
            self.notify(&user, &change, old_phone.as_deref()).await;
        }
        Ok(Confirmation::Ready)
    }
}
