//! Voice tokens in the service. A login with the right password gets a six-digit code to show and
//! a transaction to wait on; the call to the token's phone is queued in the same database
//! transaction (so the cost limits count it), and the outbox hands it to [`Service::run_calls`],
//! which places it and judges what the callee keys: the displayed code approves the transaction
//! (the login client then completes with `{username, transaction_id}`, as after a push), three
//! wrong codes deny it, `9` denies it as fraud (the user's pushes and calls are muted and an alert
//! is raised, as a push's "not me" does), and a call that is busy, unanswered or hung up denies
//! it with that reason for the login screen.
//!
//! The code never starts with `9`, so `9` always means "I did not ask for this"; it is stored only
//! as a keyed MAC bound to the transaction. The callee must see the login screen to approve: a
//! blind "press any key" is not enough.

use std::sync::Arc;

use tessera_core::delivery::{CHALLENGE_TRIES, DeliveryMode};
use tessera_core::secret::{SecretString, fill_random};
use tessera_core::wire::CallDenial;

use super::validate::{Attempt, Outcome, ValidateReason, ValidateResponse};
use super::{MAX_ATTEMPTS, Service, ServiceError};
use crate::clock::{i64_of, now_i64, unix_now_ms};
use crate::delivery::{Delivery, KEYS_WITHIN, VoiceEvent, VoiceStep, twiml};
use crate::keys::{KeyError, random_id};
use crate::push::transaction_key;
use crate::store::{
    AuditResult, Channel, DeliveryRow, NewAudit, NewCall, NewDelivery, Queued, RecordedAnswer, SendResult,
    TokenRow, TransactionRow, TxChannel, TxStatus, UserRow,
};
use crate::voice::sip::{CallEnd, CallOutcome, CallRequest, Judge, Reply};

/// Digits in the code shown on the login screen.
pub const DISPLAY_CODE_DIGITS: usize = 6;
/// How long a call's transaction lasts once the phone stops ringing: the prompt and three
/// entries of up to 30 seconds each.
const ANSWERED_SECS: u64 = 120;
/// The key that reports a call the user did not ask for.
const FRAUD_KEY: char = '9';
/// What a Twilio-compatible provider says while it gathers the keys.
const SPOKEN_PROMPT: &str =
    "Please key in the six digit code shown on your screen. If you did not ask to sign in, press 9.";

/// A fresh code to show: six digits, uniformly from `000000` to `899999`, so it never starts with
/// the fraud key.
pub fn display_code() -> Result<SecretString, KeyError> {
    const CODES: u32 = 900_000;
    let limit = u32::MAX - u32::MAX % CODES;
    loop {
        let mut bytes = [0u8; 4];
        fill_random(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        let value = u32::from_le_bytes(bytes);
        if value < limit {
            return Ok(SecretString::new(format!("{:06}", value % CODES)));
        }
    }
}

impl Service {
    /// A voice token's step in `validate`: opens the transaction, queues the call, and answers
    /// with the code to show.
    pub(super) async fn call(
        &self,
        user: &UserRow,
        token: &TokenRow,
        attempt: &Attempt<'_>,
    ) -> Result<Outcome, ServiceError> {
        if !self.delivery.places_calls() {
            return self
                .not_called("calls cannot be placed: no [delivery.voice] is configured", attempt)
                .await;
        }
        if user.push_muted_until.is_some_and(|until| until > now_i64()) {
            let why = "calls to your phone are paused after a sign-in was reported; use another way";
            return self.not_called(why, attempt).await;
        }
        let destination = match self.delivery.destination_of(user, token) {
            Ok(destination) => destination,
            Err(error) => return self.not_called(&format!("no call was placed: {error}"), attempt).await,
        };
        let context = attempt.push_context(self.push.settings());
        let code = display_code()?;
        let id = random_id("TX")?;
        let now = now_i64();
        let expires_at = now + i64_of(self.delivery.ring_for().as_secs() + ANSWERED_SECS);
        let call = NewCall {
            code_mac: self.key.code_mac(&id, code.expose())?,
            serial: token.serial.clone(),
            id: id.clone(),
            client_ip: context.client_ip.clone(),
            user_agent: context.user_agent.clone(),
            expires_at,
        };
        let message = NewDelivery {
            user_id: user.id,
            token_id: token.id,
            channel: Channel::Voice,
            destination: &destination,
            mode: DeliveryMode::Realtime,
            counters: 0..0,
            service: &context.service,
            challenge: None,
            call: Some(call),
            limited: true,
            now,
        };
        let audit = NewAudit {
            serial: Some(&token.serial),
            result: AuditResult::Challenge,
            ..attempt.rejected(ValidateReason::Called)
        };
        let limits = &self.delivery.settings().limits;
        for _ in 0..MAX_ATTEMPTS {
            match self.store.queue_message(&[], None, &message, limits, &audit).await? {
                Queued::Yes => {
                    self.delivery.wake();
                    let shown = Delivery::masked(Channel::Voice, &destination);
                    return Ok(Outcome::called(&id, code, shown, expires_at));
                }
                Queued::Limited(limit) => return Ok(Outcome::send_limited(limit)),
                Queued::Moved => {}
            }
        }
        self.store.audit(&attempt.rejected(ValidateReason::Contention)).await?;
        Ok(Outcome::not_sent("the call could not be placed; try again".into()))
    }

    async fn not_called(&self, why: &str, attempt: &Attempt<'_>) -> Result<Outcome, ServiceError> {
        let audit = NewAudit { reason: Some(why), ..attempt.rejected(ValidateReason::NotSent) };
        self.store.audit(&audit).await?;
        Ok(Outcome::not_sent(why.to_owned()))
    }

    /// Places the calls the outbox hands over, each as it comes, until the server stops.
    pub async fn run_calls(self: Arc<Self>) {
        let Some(mut calls) = self.delivery.calls_to_place() else { return };
        while let Some(call) = calls.recv().await {
            let service = Arc::clone(&self);
            tokio::spawn(async move {
                if let Err(error) = service.place_call(&call).await {
                    tracing::warn!(delivery = call.id, %error, "a voice call could not be completed");
                }
            });
        }
    }

    /// One call: placed once (a late call is worthless, so none is tried twice), over SIP here or
    /// through the Twilio-compatible provider, which calls back with the keys.
    async fn place_call(&self, message: &DeliveryRow) -> Result<(), ServiceError> {
        let Some(id) = message.challenge_id.as_deref() else { return Ok(()) };
        let tx = self.store.transaction(id).await?;
        let Some(tx) = tx.filter(|tx| tx.status == TxStatus::Pending && tx.expires_at > now_i64()) else {
            let ended = SendResult::Failed {
                gateway: None,
                error: "the login ended before the call was placed",
                retry_at: None,
            };
            self.store.record_send(message, &ended, now_i64()).await?;
            return Ok(());
        };
        let judge = CallJudge::of(self, tx).await?;
        if self.delivery.twilio_voice().is_some() {
            return self.place_twilio_call(message, &judge).await;
        }
        let placed = SendResult::Sent { gateway: "sip", provider_message_id: Some(id) };
        if !self.store.record_send(message, &placed, now_i64()).await? {
            return Ok(());
        }
        let request = CallRequest {
            to: message.destination.clone(),
            keys_wanted: DISPLAY_CODE_DIGITS,
            ring_for: self.delivery.ring_for(),
            keys_within: KEYS_WITHIN,
            fraud_key: Some(FRAUD_KEY),
        };
        let outcome = self.delivery.call(&request, &judge).await.unwrap_or_else(|_| {
            CallOutcome::unanswered(CallEnd::Failed("no [delivery.voice] is configured".into()))
        });
        let report = match &outcome.ended {
            _ if outcome.answered => Ok(()),
            CallEnd::Failed(why) => Err(format!("the call failed: {why}")),
            ended => Err(format!("the call ended {}", ended.as_str())),
        };
        self.store.record_report("sip", id, &report).await?;
        if let CallEnd::Failed(why) = &outcome.ended {
            tracing::warn!(delivery = message.id, why, "a voice call failed");
        }
        judge.deny(outcome.ended.denial()).await?;
        Ok(())
    }

    /// Asks the Twilio-compatible provider for the call, after marking it placed (so a lease that
    /// runs out while the provider answers cannot place it twice; the outbox row's id for it is
    /// the transaction's, which its webhooks name); a refusal ends the login's wait at once.
    async fn place_twilio_call(
        &self,
        message: &DeliveryRow,
        judge: &CallJudge<'_>,
    ) -> Result<(), ServiceError> {
        let tx = judge.tx.id.as_str();
        let placed = SendResult::Sent { gateway: "twilio", provider_message_id: Some(tx) };
        if !self.store.record_send(message, &placed, now_i64()).await? {
            return Ok(());
        }
        match self.delivery.place_twilio_call(&message.destination, tx).await {
            Ok(sid) => {
                tracing::info!(delivery = message.id, call = sid, "the provider is placing a voice call")
            }
            Err(error) => {
                tracing::warn!(delivery = message.id, error, "the provider did not place a voice call");
                let refused = Err(format!("the provider did not place the call: {error}"));
                self.store.record_report("twilio", tx, &refused).await?;
                judge.deny(CallDenial::Failed).await?;
            }
        }
        Ok(())
    }

    /// A Twilio-compatible provider's webhook for transaction `tx`'s call, checked against the
    /// account's signature: the TwiML that says and gathers (`answer`), judges the keys
    /// (`gather`), or records how the call ended (`status`, answered with empty TwiML).
    pub async fn twilio_voice(
        &self,
        step: VoiceStep,
        tx: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> Result<String, ServiceError> {
        let event =
            self.delivery.voice_webhook(step, tx, params, signature.unwrap_or_default()).map_err(|_| {
                ServiceError::Unauthorized("the webhook's X-Twilio-Signature does not match".into())
            })?;
        let found = self.store.transaction(tx).await?.filter(|t| t.channel == TxChannel::Voice);
        let Some(found) = found else { return Err(ServiceError::NotFound("transaction", tx.to_owned())) };
        let live = found.status == TxStatus::Pending && found.expires_at > now_i64();
        let judge = CallJudge::of(self, found).await?;
        let gather = |say: Option<&str>| {
            let action =
                self.delivery.twilio_voice().map(|t| VoiceStep::Gather.url(t, tx)).unwrap_or_default();
            twiml(say, Some((&action, DISPLAY_CODE_DIGITS, SPOKEN_PROMPT)))
        };
        Ok(match event {
            VoiceEvent::Answered | VoiceEvent::Keys(_) if !live => {
                twiml(Some("This sign-in has ended. Goodbye."), None)
            }
            VoiceEvent::Answered => gather(None),
            VoiceEvent::Keys(keys) if keys.is_empty() => {
                judge.deny(CallDenial::NoKeys).await?;
                twiml(Some("No code was keyed in. Goodbye."), None)
            }
            VoiceEvent::Keys(keys) => match judge.judge(&keys).await {
                Reply::Accepted => twiml(Some("Thank you. You are signed in. Goodbye."), None),
                Reply::TryAgain => gather(Some("That code is not right.")),
                Reply::Refused => twiml(Some("Goodbye."), None),
            },
            VoiceEvent::Ended(None) => twiml(None, None),
            VoiceEvent::Ended(Some(ended)) => {
                let report = match &ended {
                    CallEnd::HungUp => Ok(()),
                    ended => Err(format!("the provider reported the call {}", ended.as_str())),
                };
                self.store.record_report("twilio", tx, &report).await?;
                judge.deny(ended.denial()).await?;
                twiml(None, None)
            }
        })
    }
}

/// Judges one call's entries against its transaction.
struct CallJudge<'a> {
    service: &'a Service,
    tx: TransactionRow,
    serial: String,
    username: String,
}

impl<'a> CallJudge<'a> {
    /// The judge of `tx`'s call.
    async fn of(service: &'a Service, tx: TransactionRow) -> Result<Self, ServiceError> {
        let username = service.store.username_of(tx.user_id).await?.unwrap_or_default();
        let serial = tx.token_serial.clone().unwrap_or_default();
        Ok(Self { service, tx, serial, username })
    }

    /// Moves the transaction from pending to `status` (with the user's mute for fraud), audited
    /// as the call's answer; false when it was no longer pending.
    async fn settle(
        &self,
        status: TxStatus,
        reason: &'static str,
        mute: Option<(i64, i64)>,
    ) -> Result<bool, ServiceError> {
        let denied = status == TxStatus::Denied;
        let result = if denied { AuditResult::Reject } else { AuditResult::Ok };
        let answer = RecordedAnswer {
            id: &self.tx.id,
            status,
            deny_reason: denied.then_some(reason),
            answered_at: now_i64(),
            answered_by: &self.serial,
            channel: TxChannel::Voice,
        };
        let store = &self.service.store;
        let settled = store.answer_transaction(&answer, None, mute, &self.audit(result, reason)).await?;
        if settled {
            self.service.metrics.call(reason);
            self.service.push.publish(&transaction_key(&self.tx.id)).await;
        }
        Ok(settled)
    }

    /// The audit record of what the call did.
    fn audit<'r>(&'r self, result: AuditResult, reason: &'r str) -> NewAudit<'r> {
        NewAudit {
            at_ms: unix_now_ms(),
            actor: "call",
            action: "voice.answer",
            username: Some(&self.username),
            serial: Some(&self.serial),
            client_ip: self.tx.client_ip.as_deref(),
            result,
            reason: Some(reason),
        }
    }

    /// Denies the transaction if it is still pending.
    async fn deny(&self, denial: CallDenial) -> Result<bool, ServiceError> {
        self.settle(TxStatus::Denied, denial.as_str(), None).await
    }

    /// `9`: the login is denied if it still waits, and the user is muted and the alert raised
    /// even when it no longer does (a report is never lost), unless the call had approved it.
    async fn report_fraud(&self) -> Result<(), ServiceError> {
        let until = i64_of(crate::clock::unix_now() + self.service.push.settings().mute_secs);
        let mute = (self.tx.user_id, until);
        if !self.settle(TxStatus::Denied, CallDenial::Fraud.as_str(), Some(mute)).await? {
            let now = self.service.store.transaction(&self.tx.id).await?;
            if now.is_some_and(|tx| matches!(tx.status, TxStatus::Approved | TxStatus::Consumed)) {
                return Ok(());
            }
            let reported = self.audit(AuditResult::Reject, "fraud_after_end");
            self.service.store.mute_user(self.tx.user_id, until, &reported).await?;
        }
        self.service.push.report_fraud(&self.username, &self.tx, &self.serial, None).await
    }

    async fn judged(&self, entry: &str) -> Result<Reply, ServiceError> {
        if entry.starts_with(FRAUD_KEY) {
            self.report_fraud().await?;
            return Ok(Reply::Refused);
        }
        let stored = self.tx.code_mac.as_deref().unwrap_or_default();
        if self.service.key.code_matches(&self.tx.id, entry, stored) {
            let approved = self.settle(TxStatus::Approved, "approved", None).await?;
            return Ok(if approved { Reply::Accepted } else { Reply::Refused });
        }
        match self.service.store.count_wrong_code(&self.tx.id).await? {
            Some(tries) if tries < CHALLENGE_TRIES => Ok(Reply::TryAgain),
            Some(_) => {
                self.deny(CallDenial::WrongCode).await?;
                Ok(Reply::Refused)
            }
            None => Ok(Reply::Refused),
        }
    }
}

impl Judge for CallJudge<'_> {
    async fn judge(&self, entry: &str) -> Reply {
        self.judged(entry).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "a keyed code could not be checked; the call ends");
            Reply::Refused
        })
    }
}

/// What a user is told to do with a voice token's call: with the code in the text where the text is
/// all they see (a RADIUS prompt, an app), without it beside a screen that shows it large. `None`
/// when `response` is not a call's challenge.
pub(super) fn call_prompt(response: &ValidateResponse, with_code: bool) -> Option<String> {
    let code = response.display_code.as_ref()?;
    let destination = response.destination.as_deref().unwrap_or("your phone");
    Some(match with_code {
        true => format!("answer the call to {destination} and key in {}, the code shown here", code.expose()),
        false => format!("answer the call to {destination} and key in the code shown here"),
    })
}

impl Outcome {
    /// A call is on its way: the login screen shows `code` and waits on the transaction.
    pub(super) fn called(id: &str, code: SecretString, destination: String, expires_at: i64) -> Self {
        let message = format!("answer the call to {destination} and key in the code shown here");
        let response = ValidateResponse {
            channel: Some(Channel::Voice),
            destination: Some(destination),
            expires_at: Some(expires_at),
            display_code: Some(code),
            ..ValidateResponse::challenge(Some(id.to_owned()), None, message)
        };
        Self::new(response, ValidateReason::Called)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_codes_are_six_digits_and_never_start_with_the_fraud_key() {
        let mut first_digits = [0usize; 10];
        for _ in 0..5_000 {
            let code = display_code().unwrap();
            let code = code.expose();
            assert_eq!(code.len(), DISPLAY_CODE_DIGITS);
            assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
            first_digits[usize::from(code.as_bytes()[0] - b'0')] += 1;
        }
        assert_eq!(first_digits[9], 0, "9 reports fraud");
        assert!(
            first_digits[..9].iter().all(|n| *n > 400),
            "every other first digit comes up: {first_digits:?}"
        );
    }
}
