//! Delivered passcodes in the service: enrolling SMS and email tokens, sending their codes when a
//! login asks (a real-time challenge, fresh pre-loaded codes, the period's Daycode), completing a
//! real-time challenge, and queueing the next pre-loaded codes when one is used.
//!
//! Every send is queued in the same transaction as the token's progress (the counters it hands
//! out) and its audit record; the cost limits are counted there too. A wrong password never gets
//! here, so it never sends anything.

use std::ops::Range;

use tessera_core::delivery::{
    Accepted, CHALLENGE_TRIES, DeliveryMode, batch_after_use, check_period_days, fresh_batch,
    preloaded_window,
};
use tessera_core::secret::{SecretBytes, SecretString};
use tessera_core::verifier::{self, TokenState, Verdict};

use super::audit::AdminAudit;
use super::tokens::{EnrollRequest, Enrollment, SEED_BYTES, TokenDraft};
use super::validate::{Attempt, Outcome, PublicReason, ValidateReason};
use super::{Actor, MAX_ATTEMPTS, Service, ServiceError};
use crate::clock::{i64_of, now_i64, unix_now};
use crate::delivery::{Delivery, GatewayTest};
use crate::input::{check_call_destination, check_email, check_phone};
use crate::keys::{KeyError, random_id};
use crate::store::{
    AuditResult, ChallengeRow, ChallengeStatus, Channel, DeliveredToken, DeliveryProgress, NewAudit,
    NewChallenge, NewDelivery, Queued, SendLimit, StateUpdate, TokenRow, UserChange, UserRow,
};
use crate::voice::sip::{CallEnd, CallOutcome};

/// Which messages `GET /api/v1/deliveries` lists.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    /// Only this user's messages.
    pub username: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Codes an administrator had sent.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SentCodes {
    /// The token.
    pub serial: String,
    /// `sms` or `email`.
    pub channel: Channel,
    /// Where they went, masked.
    pub destination: String,
}

/// What a send does to a delivered token.
struct Send {
    counters: Range<u64>,
    state: TokenState,
    progress: DeliveryProgress,
    challenge: Option<NewChallenge>,
}

impl Service {
    /// Queued and sent messages, newest first: when, to where, through which gateway, and why one
    /// failed (never a code).
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<crate::store::DeliveryRow>, ServiceError> {
        let user_id = match &filter.username {
            Some(username) => Some(self.existing_user(username).await?.id),
            None => None,
        };
        Ok(self.store.deliveries(user_id, filter.limit.unwrap_or(100).clamp(1, 1000)).await?)
    }

    /// Sends a test message (no code) through a gateway (`email` for the mail server) to `to`,
    /// now; the gateway's answer. Audited.
    pub async fn test_gateway(&self, actor: &Actor, id: &str, to: &str) -> Result<GatewayTest, ServiceError> {
        let to = if id == "email" { check_email(to.to_owned())? } else { check_phone(to.to_owned())? };
        let tested = self
            .delivery
            .test_gateway(id, &to)
            .await
            .map_err(|_| ServiceError::NotFound("gateway", id.to_owned()))?;
        let audit = AdminAudit::new(actor, "gateway.test");
        let reason = format!("{id}: {}", if tested.accepted { "accepted" } else { "refused" });
        let record = NewAudit {
            result: if tested.accepted { AuditResult::Ok } else { AuditResult::Reject },
            reason: Some(&reason),
            ..audit.record()
        };
        self.store.audit(&record).await?;
        Ok(tested)
    }

    /// Places a test call to `to` (a SIP URI, or an E.164 number at the configured proxy) that
    /// plays the prompt and waits for up to `keys` keys (1 to 16), letting it ring up to
    /// `ring_secs` (1 to 120); audited as `voice.test_call`.
    pub async fn test_call(
        &self,
        actor: &Actor,
        to: &str,
        keys: usize,
        ring_secs: u64,
    ) -> Result<CallOutcome, ServiceError> {
        let to = check_call_destination(to.to_owned())?;
        if !(1..=16).contains(&keys) {
            return Err(ServiceError::InvalidInput("keys must be 1 to 16".into()));
        }
        if !(1..=120).contains(&ring_secs) {
            return Err(ServiceError::InvalidInput("ring_secs must be 1 to 120".into()));
        }
        let ring_for = std::time::Duration::from_secs(ring_secs);
        let outcome = self.delivery.test_call(&to, keys, ring_for).await.map_err(|_| {
            ServiceError::InvalidInput(if self.delivery.places_calls() {
                "test calls go over SIP; with a Twilio-compatible provider, sign in with a voice token to test".into()
            } else {
                "no [delivery.voice] is configured: calls cannot be placed".into()
            })
        })?;
        let reason = format!("{to}: {}", outcome.ended.as_str());
        let audit = AdminAudit::new(actor, "voice.test_call");
        let record = NewAudit {
            result: if outcome.ended == CallEnd::Keyed { AuditResult::Ok } else { AuditResult::Reject },
            reason: Some(&reason),
            ..audit.record()
        };
        self.store.audit(&record).await?;
        Ok(outcome)
    }

    /// A Twilio-compatible status callback: checked against the account's signature, then the
    /// message's fate recorded (a message that was not delivered is audited).
    pub async fn twilio_status(
        &self,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> Result<(), ServiceError> {
        let refused =
            || ServiceError::Unauthorized("the callback's X-Twilio-Signature does not match".into());
        let report =
            self.delivery.twilio_report(params, signature.ok_or_else(refused)?).map_err(|_| refused())?;
        let Some(report) = report else { return Ok(()) };
        let recorded = self.store.record_report(&report.gateway, &report.message_id, &report.outcome).await?;
        if let (true, Err(error)) = (recorded, &report.outcome) {
            let reason = format!("{} message {}: {error}", report.gateway, report.message_id);
            let audit = NewAudit {
                at_ms: crate::clock::unix_now_ms(),
                actor: "delivery",
                action: "delivery.report",
                username: None,
                serial: None,
                client_ip: None,
                result: AuditResult::Reject,
                reason: Some(&reason),
            };
            self.store.audit(&audit).await?;
        }
        Ok(())
    }

    /// Sends a pre-loaded or Daycode token's codes now, as an administrator asks: fresh pre-loaded
    /// codes (the unused ones void) or the period's Daycode. Real-time codes go only with a login.
    pub async fn send_codes(&self, actor: &Actor, serial: &str) -> Result<SentCodes, ServiceError> {
        let (token, user) = self
            .store
            .token_with_owner(serial)
            .await?
            .ok_or_else(|| ServiceError::NotFound("token", serial.to_owned()))?;
        let mode = token.delivery.as_ref().map(|d| d.mode).ok_or_else(|| {
            ServiceError::InvalidInput("only sms and email tokens have codes to send".into())
        })?;
        if mode == DeliveryMode::Realtime {
            return Err(ServiceError::InvalidInput(
                "a real-time code is sent when the user logs in, inside that login".into(),
            ));
        }
        let audit = AdminAudit::new(actor, "token.send").user(&user.username).serial(serial);
        self.queue_send(&user, &token, false, &audit.record()).await?;
        let channel = token.kind.channel().unwrap_or(Channel::Sms);
        let destination = self
            .delivery
            .destination_of(&user, &token)
            .map(|d| Delivery::masked(channel, &d))
            .unwrap_or_default();
        Ok(SentCodes { serial: serial.to_owned(), channel, destination })
    }

    /// Enrolls an SMS or email token: a seed only the server knows, and for pre-loaded and Daycode
    /// tokens the first message, queued with the token.
    pub(super) async fn enroll_delivered(
        &self,
        actor: &Actor,
        user: &UserRow,
        options: &EnrollRequest,
    ) -> Result<Enrollment, ServiceError> {
        let kind = options.kind;
        let delivered = self.delivered_token(user, options)?;
        let seed = SecretBytes::random(SEED_BYTES).map_err(|e| KeyError::Random(e.to_string()))?;
        let draft = TokenDraft {
            kind,
            algorithm: "SHA1",
            digits: 6,
            period: 30,
            seed: &seed,
            description: options.description.as_deref(),
            enrollment: None,
            delivery: Some(&delivered),
            temporary: None,
            pending: None,
        };
        let serial = self.insert_token(actor, user, draft).await?;
        if delivered.mode != DeliveryMode::Realtime {
            let token = self
                .store
                .token(&serial)
                .await?
                .ok_or_else(|| ServiceError::NotFound("token", serial.clone()))?;
            let audit = AdminAudit::new(actor, "token.send")
                .user(&user.username)
                .serial(&serial)
                .reason("first codes");
            self.queue_send(user, &token, false, &audit.record()).await?;
        }
        Ok(Enrollment::delivered(serial))
    }

    /// An SMS or email enrolment's settings, checked, with somewhere to send to.
    fn delivered_token(
        &self,
        user: &UserRow,
        options: &EnrollRequest,
    ) -> Result<DeliveredToken, ServiceError> {
        let invalid = |e: tessera_core::delivery::DeliveryError| ServiceError::InvalidInput(e.to_string());
        let channel = options
            .kind
            .channel()
            .ok_or_else(|| ServiceError::InvalidInput("not a delivered kind".into()))?;
        if let Some(secs) = options.ttl_secs {
            tessera_core::delivery::Ttl::new(secs).map_err(invalid)?;
        }
        let destination = match (&options.destination, channel) {
            (Some(text), Channel::Sms) => Some(check_phone(text.clone())?),
            (Some(text), Channel::Email) => Some(check_email(text.clone())?),
            (Some(text), Channel::Voice) => Some(check_call_destination(text.clone())?),
            (None, _) => None,
        };
        let mode = options.mode.unwrap_or(DeliveryMode::Realtime);
        if channel == Channel::Voice && (mode != DeliveryMode::Realtime || options.ttl_secs.is_some()) {
            return Err(ServiceError::InvalidInput(
                "a voice token calls at each login: it takes no mode or ttl_secs".into(),
            ));
        }
        self.delivery.destination(user, channel, destination.as_deref()).map_err(|e| {
            ServiceError::InvalidInput(format!(
                "{e}: give the token a destination, or set the user's phone or email (PATCH /api/v1/users/{{username}})"
            ))
        })?;
        Ok(DeliveredToken {
            mode,
            destination,
            ttl_secs: options.ttl_secs,
            period_days: check_period_days(options.period_days.unwrap_or(1)).map_err(invalid)?,
            issued_upto: 0,
            last_delivered_period: None,
        })
    }

    /// Sends `token`'s codes for a login that gave the right password: a real-time challenge,
    /// fresh pre-loaded codes (the unused ones void), or the period's Daycode.
    pub(super) async fn deliver(
        &self,
        user: &UserRow,
        mut token: TokenRow,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        let channel = token.kind.channel().unwrap_or(Channel::Sms);
        for attempt_number in 0..MAX_ATTEMPTS {
            if attempt_number > 0 {
                match self.store.token_by_id(token.id).await? {
                    Some(fresh) => token = fresh,
                    None => break,
                }
            }
            let destination = match self.delivery.destination_of(user, &token) {
                Ok(destination) => destination,
                Err(error) => {
                    let reason = format!("not sent: {error}");
                    let audit = NewAudit {
                        serial: Some(&token.serial),
                        reason: Some(&reason),
                        ..attempt.rejected(ValidateReason::NotSent)
                    };
                    self.store.audit(&audit).await?;
                    return Ok(Outcome::not_sent(format!("no code could be sent: {error}")));
                }
            };
            let audit = NewAudit {
                serial: Some(&token.serial),
                result: AuditResult::Challenge,
                ..attempt.rejected(ValidateReason::CodeSent)
            };
            let (send, queued) = self.queue_to(user, &token, &destination, true, &audit).await?;
            match queued {
                Queued::Yes => {
                    let masked = Delivery::masked(channel, &destination);
                    return Ok(Outcome::code_sent(
                        channel,
                        masked,
                        send.challenge,
                        self.delivery.ttl(&token),
                        token.delivery.map(|d| d.mode),
                    ));
                }
                Queued::Limited(limit) => {
                    let audit = NewAudit {
                        serial: Some(&token.serial),
                        ..attempt.rejected(ValidateReason::SendLimited(limit))
                    };
                    self.store.audit(&audit).await?;
                    return Ok(Outcome::send_limited(limit));
                }
                Queued::Moved => {}
            }
        }
        self.store.audit(&attempt.rejected(ValidateReason::Contention)).await?;
        Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::Contention))
    }

    /// Queues `token`'s next message (with its progress) and wakes the sender; `Moved` when the
    /// token changed meanwhile.
    async fn queue_to(
        &self,
        user: &UserRow,
        token: &TokenRow,
        destination: &str,
        limited: bool,
        audit: &NewAudit<'_>,
    ) -> Result<(Send, Queued), ServiceError> {
        let now = unix_now();
        let send = self.next_send(token, now)?;
        let update = StateUpdate { delivery: Some(send.progress), ..token.moved_to(send.state, None) };
        let message = NewDelivery {
            user_id: user.id,
            token_id: token.id,
            channel: token.kind.channel().unwrap_or(Channel::Sms),
            destination,
            mode: token.delivery.as_ref().map_or(DeliveryMode::Realtime, |d| d.mode),
            counters: send.counters.clone(),
            service: self.delivery.service_name(),
            challenge: send.challenge.clone(),
            call: None,
            limited,
            now: i64_of(now),
        };
        let queued = self
            .store
            .queue_message(&[update], None, &message, &self.delivery.settings().limits, audit)
            .await?;
        if queued == Queued::Yes {
            self.delivery.wake();
        }
        Ok((send, queued))
    }

    /// Sends a real-time token's code now, outside a login (to verify a new phone number), under
    /// the cost limits: the challenge it opened, or the limit that refused it.
    pub(super) async fn send_challenge(
        &self,
        user: &UserRow,
        token: &TokenRow,
        audit: &NewAudit<'_>,
    ) -> Result<Result<NewChallenge, SendLimit>, ServiceError> {
        match self.queue_unasked(user, token, true, audit).await? {
            (Send { challenge: Some(challenge), .. }, Queued::Yes) => Ok(Ok(challenge)),
            (_, Queued::Limited(limit)) => Ok(Err(limit)),
            (_, Queued::Yes | Queued::Moved) => {
                Err(ServiceError::InvalidInput("only a real-time token opens a challenge".into()))
            }
        }
    }

    /// Queues a send that no login asked for (enrolment's first codes), retrying a moved token.
    async fn queue_send(
        &self,
        user: &UserRow,
        token: &TokenRow,
        limited: bool,
        audit: &NewAudit<'_>,
    ) -> Result<(), ServiceError> {
        self.queue_unasked(user, token, limited, audit).await.map(|_| ())
    }

    /// Queues `token`'s next message outside a login, reading the token again while it moves:
    /// the send and whether it was queued or limited.
    async fn queue_unasked(
        &self,
        user: &UserRow,
        token: &TokenRow,
        limited: bool,
        audit: &NewAudit<'_>,
    ) -> Result<(Send, Queued), ServiceError> {
        let mut token = token.clone();
        for _ in 0..MAX_ATTEMPTS {
            let destination = self
                .delivery
                .destination_of(user, &token)
                .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
            let queued = self.queue_to(user, &token, &destination, limited, audit).await?;
            if queued.1 != Queued::Moved {
                return Ok(queued);
            }
            token = self
                .store
                .token_by_id(token.id)
                .await?
                .ok_or_else(|| ServiceError::NotFound("token", token.serial.clone()))?;
        }
        Err(ServiceError::Busy("the token kept changing; try again".into()))
    }

    /// The counters a send hands out now and the token's state and progress after it.
    fn next_send(&self, token: &TokenRow, now: u64) -> Result<Send, ServiceError> {
        let delivered = token
            .delivery
            .as_ref()
            .ok_or_else(|| ServiceError::InvalidInput("not a delivered token".into()))?;
        let issued = delivered.issued_upto;
        Ok(match delivered.mode {
            DeliveryMode::Realtime => {
                let expires_at = i64_of(now) + i64::from(self.delivery.ttl(token).secs());
                let challenge = NewChallenge { id: random_id("CH")?, counter: issued, expires_at };
                Send {
                    counters: issued..issued + 1,
                    state: token.state,
                    progress: DeliveryProgress { issued_upto: issued + 1, last_delivered_period: None },
                    challenge: Some(challenge),
                }
            }
            DeliveryMode::Preload | DeliveryMode::Preload3 => {
                let from = issued.max(token.state.counter);
                let counters = fresh_batch(delivered.mode, from);
                Send {
                    state: TokenState { counter: from, ..token.state },
                    progress: DeliveryProgress { issued_upto: counters.end, last_delivered_period: None },
                    counters,
                    challenge: None,
                }
            }
            DeliveryMode::Daycode => {
                let period = self.delivery.period_at(token, now);
                Send {
                    counters: period..period + 1,
                    state: token.state,
                    progress: DeliveryProgress { issued_upto: issued, last_delivered_period: Some(period) },
                    challenge: None,
                }
            }
        })
    }

    /// Whether an empty passcode should send `token`'s codes now: always for real-time tokens,
    /// for pre-loaded ones only when none is on the phone, for a Daycode at the period's first login.
    pub(super) fn needs_send(&self, token: &TokenRow, now: u64) -> bool {
        let Some(delivered) = &token.delivery else { return false };
        match delivered.mode {
            DeliveryMode::Realtime => true,
            DeliveryMode::Preload | DeliveryMode::Preload3 => delivered.issued_upto <= token.state.counter,
            DeliveryMode::Daycode => {
                delivered.last_delivered_period != Some(self.delivery.period_at(token, now))
            }
        }
    }

    /// The counters a delivered token accepts as a typed passcode (a real-time token: none).
    pub(super) fn typed_window(&self, token: &TokenRow, now: u64) -> Option<Accepted> {
        let delivered = token.delivery.as_ref()?;
        match delivered.mode {
            DeliveryMode::Realtime => None,
            DeliveryMode::Preload | DeliveryMode::Preload3 => {
                Some(preloaded_window(token.state.counter, delivered.issued_upto))
            }
            DeliveryMode::Daycode => Some(Accepted::Period(self.delivery.period_at(token, now))),
        }
    }

    /// The next pre-loaded codes to queue after `token` accepted a code and moved to `next`.
    pub(super) fn follow_up(&self, token: &TokenRow, next: TokenState) -> Option<Range<u64>> {
        let delivered = token.delivery.as_ref()?;
        batch_after_use(delivered.mode, next.counter, delivered.issued_upto)
    }

    /// Commits an accepted pre-loaded code with the next codes' message (the user's password
    /// was right and a code was used, so no cost limit applies); false when something moved.
    pub(super) async fn commit_with_next_codes(
        &self,
        user: &UserRow,
        token: &TokenRow,
        update: StateUpdate,
        counters: Range<u64>,
        success: &UserChange,
        audit: &NewAudit<'_>,
    ) -> Result<bool, ServiceError> {
        let Ok(destination) = self.delivery.destination_of(user, token) else {
            tracing::warn!(serial = %token.serial, "the next pre-loaded codes have nowhere to go");
            return Ok(self.store.commit(&[update], Some(success), audit).await?);
        };
        let update = StateUpdate {
            delivery: Some(DeliveryProgress { issued_upto: counters.end, last_delivered_period: None }),
            ..update
        };
        let message = NewDelivery {
            user_id: user.id,
            token_id: token.id,
            channel: token.kind.channel().unwrap_or(Channel::Sms),
            destination: &destination,
            mode: token.delivery.as_ref().map_or(DeliveryMode::Preload, |d| d.mode),
            counters,
            service: self.delivery.service_name(),
            challenge: None,
            call: None,
            limited: false,
            now: now_i64(),
        };
        let queued = self
            .store
            .queue_message(&[update], Some(success), &message, &self.delivery.settings().limits, audit)
            .await?;
        if queued == Queued::Yes {
            self.delivery.wake();
        }
        Ok(queued == Queued::Yes)
    }

    /// The token a challenge sent its code for, while the challenge is `user`'s, pending and not
    /// expired at `now`.
    async fn live_challenge_token(
        &self,
        user: &UserRow,
        challenge: &ChallengeRow,
        now: u64,
    ) -> Result<Option<TokenRow>, ServiceError> {
        let live = challenge.user_id == user.id
            && challenge.status == ChallengeStatus::Pending
            && challenge.expires_at > i64_of(now);
        if !live {
            return Ok(None);
        }
        Ok(self
            .store
            .token_by_id(challenge.token_id)
            .await?
            .filter(|t| t.user_id == user.id && t.pending.is_none()))
    }

    /// Whether `passcode` is the code `challenge` sent for `token`, and the token's state after
    /// the try (a failure counted, or the code used).
    pub(super) fn check_challenge_code(
        &self,
        token: &TokenRow,
        challenge: &ChallengeRow,
        passcode: &SecretString,
        now: u64,
    ) -> Result<(bool, StateUpdate), ServiceError> {
        let (seed, method) = self.material(token)?;
        let expected = Accepted::Challenge(challenge.counter);
        let checked = verifier::verify_delivered(
            &seed,
            &method,
            token.state,
            &expected,
            passcode.expose(),
            now,
            &self.policy,
        );
        let accepted = matches!(checked.verdict, Verdict::Accepted { .. });
        Ok((accepted, token.moved_to(checked.next, accepted.then_some(i64_of(now)))))
    }

    /// Completes a real-time challenge with the code the user typed: at most three tries, only
    /// before it expires, and once.
    pub(super) async fn complete_challenge(
        &self,
        user: &UserRow,
        mut challenge: ChallengeRow,
        passcode: &SecretString,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        for attempt_number in 0..MAX_ATTEMPTS {
            if attempt_number > 0 {
                match self.store.challenge(&challenge.id).await? {
                    Some(fresh) => challenge = fresh,
                    None => break,
                }
            }
            let now = unix_now();
            let Some(token) = self.live_challenge_token(user, &challenge, now).await? else {
                self.store.audit(&attempt.rejected(ValidateReason::ChallengeOver)).await?;
                return Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::ChallengeOver));
            };
            if self.is_locked_out(user, std::slice::from_ref(&token), now) {
                self.store.audit(&attempt.rejected(ValidateReason::Locked)).await?;
                return Ok(Outcome::reject(PublicReason::Locked, ValidateReason::Locked));
            }
            let (accepted, update) = self.check_challenge_code(&token, &challenge, passcode, now)?;
            let (status, reason, result) = settled(accepted, challenge.tries);
            let success = accepted.then_some(UserChange::Success { user_id: user.id, at: i64_of(now) });
            let audit = NewAudit {
                serial: Some(&token.serial),
                result,
                reason: (!accepted).then_some(reason.as_str()),
                ..attempt.rejected(reason)
            };
            if self
                .store
                .settle_challenge(&challenge, status, Some(&update), success.as_ref(), &audit)
                .await?
            {
                return Ok(if accepted {
                    Outcome::accepted(token.serial)
                } else if update.state.is_locked(now, &self.policy) {
                    Outcome::reject(PublicReason::Locked, ValidateReason::Locked)
                } else {
                    Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::WrongCode)
                });
            }
        }
        self.store.audit(&attempt.rejected(ValidateReason::Contention)).await?;
        Ok(Outcome::reject(PublicReason::InvalidCredentials, ValidateReason::Contention))
    }
}

/// A challenge's next status after a code, with the validation's reason and audit result: used
/// when the code was right, void after its third wrong code, still pending before.
pub(super) fn settled(accepted: bool, tries_before: u32) -> (ChallengeStatus, ValidateReason, AuditResult) {
    if accepted {
        (ChallengeStatus::Used, ValidateReason::Accepted, AuditResult::Accept)
    } else if tries_before + 1 >= CHALLENGE_TRIES {
        (ChallengeStatus::Void, ValidateReason::WrongCode, AuditResult::Reject)
    } else {
        (ChallengeStatus::Pending, ValidateReason::WrongCode, AuditResult::Reject)
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::delivery::codes;
    use tessera_core::otp::OtpMethod;

    use super::*;
    use crate::service::testing::{request, service, user};
    use crate::service::{Caller, UserChanges, ValidateRequest, ValidationResult};
    use crate::store::{DeliveryRow, TokenKind};

    const NO_COOLDOWN: &str = "[delivery.limits]\ncooldown_secs = 0\n";

    /// `username` with a phone and an SMS token in `mode`; its serial.
    async fn sms_user(service: &Service, username: &str, mode: DeliveryMode) -> String {
        user(service, username, "2580").await;
        let phone = UserChanges { phone: Some(Some("+44 7700 900123".into())), ..UserChanges::default() };
        service.update_user(&Actor::Cli, username, phone).await.unwrap();
        let request = EnrollRequest { mode: Some(mode), ..EnrollRequest::of_kind(TokenKind::Sms) };
        service.enroll(&Actor::Cli, username, request).await.unwrap().serial
    }

    /// The outbox, oldest first.
    async fn outbox(service: &Service) -> Vec<DeliveryRow> {
        let mut rows = service.store().deliveries(None, 100).await.unwrap();
        rows.reverse();
        rows
    }

    /// The codes a queued message carries, computed as the sender will.
    async fn codes_in(service: &Service, serial: &str, message: &DeliveryRow) -> Vec<String> {
        let token = service.store().token(serial).await.unwrap().unwrap();
        let (seed, method) = service.material(&token).unwrap();
        let OtpMethod::Hotp { algorithm, digits, .. } = method else { panic!("not HOTP") };
        codes(&seed, algorithm, digits, message.counter_from..message.counter_to)
            .iter()
            .map(|code| code.expose().to_owned())
            .collect()
    }

    async fn login(service: &Service, passcode: &str) -> crate::service::ValidateResponse {
        service.validate(request("ann", "2580", passcode), &Caller::default()).await.unwrap()
    }

    #[tokio::test]
    async fn a_realtime_code_works_only_inside_its_challenge_three_tries_once() {
        let (_dir, service) = service(NO_COOLDOWN).await;
        let serial = sms_user(&service, "ann", DeliveryMode::Realtime).await;
        assert!(outbox(&service).await.is_empty(), "a real-time token sends nothing at enrolment");
        let wrong_password = service.validate(request("ann", "9999", ""), &Caller::default()).await.unwrap();
        assert_eq!(wrong_password.result, ValidationResult::Reject);
        assert!(outbox(&service).await.is_empty(), "a wrong password sends nothing");

        let challenge = login(&service, "").await;
        assert_eq!(challenge.result, ValidationResult::Challenge);
        assert_eq!(
            (challenge.channel, challenge.destination.as_deref()),
            (Some(Channel::Sms), Some("+44 ••• ••123"))
        );
        let sent = outbox(&service).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].challenge_id, challenge.transaction_id);
        let code = codes_in(&service, &serial, &sent[0]).await.remove(0);
        assert_eq!(
            login(&service, &code).await.result,
            ValidationResult::Reject,
            "not without its challenge"
        );

        let finish = |passcode: &str| ValidateRequest {
            transaction_id: challenge.transaction_id.clone(),
            ..request("ann", "", passcode)
        };
        let wrong = service.validate(finish("000000"), &Caller::default()).await.unwrap();
        assert_eq!(wrong.result, ValidationResult::Reject);
        let right = service.validate(finish(&code), &Caller::default()).await.unwrap();
        assert_eq!(
            (right.result, right.serial.as_deref()),
            (ValidationResult::Accept, Some(serial.as_str()))
        );
        let again = service.validate(finish(&code), &Caller::default()).await.unwrap();
        assert_eq!(again.result, ValidationResult::Reject, "a challenge logs in once");

        let second = login(&service, "sms").await;
        let finish = |passcode: &str| ValidateRequest {
            transaction_id: second.transaction_id.clone(),
            ..request("ann", "", passcode)
        };
        for _ in 0..3 {
            service.validate(finish("000000"), &Caller::default()).await.unwrap();
        }
        let sent = outbox(&service).await;
        let code = codes_in(&service, &serial, &sent[1]).await.remove(0);
        let after_three = service.validate(finish(&code), &Caller::default()).await.unwrap();
        assert_eq!(after_three.result, ValidationResult::Reject, "three wrong tries void the challenge");
    }

    #[tokio::test]
    async fn preloaded_codes_chain_across_logins_and_new_codes_void_the_old_ones() {
        let (_dir, service) = service(NO_COOLDOWN).await;
        let serial = sms_user(&service, "ann", DeliveryMode::Preload).await;
        let sent = outbox(&service).await;
        assert_eq!(
            (sent.len(), sent[0].counter_from, sent[0].counter_to),
            (1, 0, 1),
            "the first code at enrolment"
        );
        let first = codes_in(&service, &serial, &sent[0]).await.remove(0);
        let asked = login(&service, "").await;
        assert_eq!((asked.result, asked.transaction_id.as_ref()), (ValidationResult::Challenge, None));
        assert_eq!(outbox(&service).await.len(), 1, "the code is already on the phone: nothing is sent");

        assert_eq!(login(&service, &first).await.result, ValidationResult::Accept);
        let sent = outbox(&service).await;
        assert_eq!((sent.len(), sent[1].counter_from), (2, 1), "each login sends the next code");
        assert_eq!(login(&service, &first).await.result, ValidationResult::Reject, "a used code");
        let unsent =
            codes_in(&service, &serial, &DeliveryRow { counter_from: 2, counter_to: 3, ..sent[1].clone() })
                .await;
        assert_eq!(login(&service, &unsent[0]).await.result, ValidationResult::Reject, "a code never sent");

        let second = codes_in(&service, &serial, &sent[1]).await.remove(0);
        let fresh = login(&service, "sms").await;
        assert_eq!(fresh.result, ValidationResult::Challenge);
        assert_eq!(
            login(&service, &second).await.result,
            ValidationResult::Reject,
            "new codes void the unused one"
        );
        let sent = outbox(&service).await;
        let third = codes_in(&service, &serial, &sent[2]).await.remove(0);
        assert_eq!(login(&service, &third).await.result, ValidationResult::Accept);
    }

    #[tokio::test]
    async fn three_codes_per_message_and_the_next_three_when_the_last_is_used() {
        let (_dir, service) = service(NO_COOLDOWN).await;
        let serial = sms_user(&service, "ann", DeliveryMode::Preload3).await;
        let sent = outbox(&service).await;
        let three = codes_in(&service, &serial, &sent[0]).await;
        assert_eq!(three.len(), 3);
        assert_eq!(
            login(&service, &three[1]).await.result,
            ValidationResult::Accept,
            "any code of the batch"
        );
        assert_eq!(outbox(&service).await.len(), 1, "the third is still on the phone");
        assert_eq!(
            login(&service, &three[0]).await.result,
            ValidationResult::Reject,
            "skipped codes are void"
        );
        assert_eq!(login(&service, &three[2]).await.result, ValidationResult::Accept);
        let sent = outbox(&service).await;
        assert_eq!((sent.len(), sent[1].counter_from, sent[1].counter_to), (2, 3, 6));
    }

    #[tokio::test]
    async fn a_daycode_is_reusable_within_its_period_and_sent_once_per_period() {
        let (_dir, service) = service(NO_COOLDOWN).await;
        let serial = sms_user(&service, "ann", DeliveryMode::Daycode).await;
        let sent = outbox(&service).await;
        let code = codes_in(&service, &serial, &sent[0]).await.remove(0);
        assert_eq!(login(&service, &code).await.result, ValidationResult::Accept);
        assert_eq!(
            login(&service, &code).await.result,
            ValidationResult::Accept,
            "reusable within the period"
        );
        assert_eq!(login(&service, "").await.result, ValidationResult::Challenge);
        assert_eq!(outbox(&service).await.len(), 1, "already sent this period");
    }

    #[tokio::test]
    async fn the_cooldown_refuses_a_second_send_in_a_row() {
        let (_dir, service) = service("").await;
        sms_user(&service, "ann", DeliveryMode::Realtime).await;
        assert_eq!(login(&service, "").await.result, ValidationResult::Challenge);
        let again = login(&service, "").await;
        assert_eq!((again.result, again.reason), (ValidationResult::Reject, Some(PublicReason::RateLimited)));
        assert_eq!(outbox(&service).await.len(), 1);
    }
}
