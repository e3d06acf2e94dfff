//! The outbox loop: claim due messages, compute their codes from the sealed seed and render the
//! mode's template (or take a notice's stored text), try the gateways in order, and record the
//! outcome (retried with back-off).
//! A message for a real-time challenge that ended before it could be sent is dropped, never sent
//! late. A voice token's call is handed to whoever took [`Delivery::calls_to_place`] (the
//! service, which judges the keys).

use std::time::Duration;

use futures_util::future::join_all;
use tessera_core::delivery::{DeliveryMode, MessageValues, codes};
use tessera_core::otp::{Algorithm, Digits};
use tessera_core::secret::SecretString;

use super::Delivery;
use super::gateway::Outgoing;
use crate::clock::now_i64;
use crate::store::{AuditResult, ChallengeStatus, Channel, DeliveryRow, MessageMode, NewAudit, SendResult};

/// A notice's email subject (`{service}` is the service's name).
const NOTICE_SUBJECT: &str = "{service}: a change to your sign-in";
/// Messages claimed per round.
const BATCH: i64 = 32;
/// Tries before a message is given up.
const MAX_TRIES: u32 = 5;
/// How often the outbox is looked at when nothing woke the sender (other replicas' messages,
/// retries that came due).
const POLL: Duration = Duration::from_millis(500);

impl Delivery {
    /// Sends due messages until [`Delivery::stop`].
    pub async fn run_sender(&self) {
        let mut stopping = self.stopping.subscribe();
        loop {
            if *stopping.borrow() {
                return;
            }
            let sent = match self.send_due().await {
                Ok(count) => count,
                Err(error) => {
                    tracing::warn!(%error, "the outbox could not be read; trying again");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    () = self.due.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                    _ = stopping.changed() => {}
                }
            }
        }
    }

    /// Claims and sends one round of due messages; how many it claimed.
    pub async fn send_due(&self) -> Result<usize, crate::store::StoreError> {
        let now = now_i64();
        let lease = i64::try_from(self.settings.claim_secs).unwrap_or(60);
        let claimed = self.store.claim_deliveries(now, now + lease, BATCH).await?;
        let count = claimed.len();
        join_all(claimed.iter().map(|message| self.send_one(message))).await;
        Ok(count)
    }

    async fn send_one(&self, message: &DeliveryRow) {
        if message.channel == Channel::Voice {
            if self.handed_calls.0.send(message.clone()).is_err() {
                let result =
                    SendResult::Failed { gateway: None, error: "nothing places calls here", retry_at: None };
                let _ = self.store.record_send(message, &result, now_i64()).await;
            }
            return;
        }
        let outcome = self.attempt(message).await;
        let now = now_i64();
        let result = match &outcome {
            Ok((gateway, id)) => SendResult::Sent { gateway, provider_message_id: id.as_deref() },
            Err(failure) => SendResult::Failed {
                gateway: failure.gateway.as_deref(),
                error: &failure.error,
                retry_at: (failure.retry && message.attempts < MAX_TRIES)
                    .then(|| now + (1i64 << message.attempts.min(6))),
            },
        };
        match self.store.record_send(message, &result, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = message.id, "a message's claim ran out while it was being sent")
            }
            Err(error) => {
                tracing::warn!(delivery = message.id, %error, "the outcome of a send could not be recorded")
            }
        }
        match &result {
            SendResult::Sent { gateway, .. } => {
                tracing::info!(
                    delivery = message.id,
                    channel = message.channel.as_str(),
                    gateway,
                    "message sent"
                );
            }
            SendResult::Failed { error, retry_at, .. } => {
                tracing::warn!(delivery = message.id, error, retry = retry_at.is_some(), "message not sent");
                if retry_at.is_none() {
                    self.audit_failure(message, error).await;
                }
            }
        }
    }

    /// One try: the message rendered and offered to each gateway in turn.
    async fn attempt(&self, message: &DeliveryRow) -> Result<(String, Option<String>), Failure> {
        let outgoing = match message.mode {
            MessageMode::Codes(mode) => self.codes_message(message, mode).await?,
            MessageMode::Notice => Outgoing {
                to: &message.destination,
                text: SecretString::new(message.notice.clone().unwrap_or_default()),
                codes: Vec::new(),
                valid_for: None,
                subject: Some(NOTICE_SUBJECT),
            },
        };
        match message.channel {
            Channel::Sms => self.through_sms_gateways(&outgoing).await,
            Channel::Voice => Err(Failure::permanent("a call is placed by the service, not sent")),
            Channel::Email => match &self.mailer {
                Some(mailer) => mailer
                    .send(&outgoing, &message.service)
                    .await
                    .map(|answer| ("email".to_owned(), answer))
                    .map_err(|error| Failure { gateway: Some("email".into()), error, retry: true }),
                None => Err(Failure::permanent("email delivery is not configured ([delivery.email])")),
            },
        }
    }

    /// A message of codes, rendered by `mode`'s template: while its challenge (if any) is open
    /// and its token is there and enabled.
    async fn codes_message<'m>(
        &self,
        message: &'m DeliveryRow,
        mode: DeliveryMode,
    ) -> Result<Outgoing<'m>, Failure> {
        let mut valid_for = None;
        if let Some(id) = &message.challenge_id {
            let live = self.store.challenge(id).await.map_err(Failure::retry)?;
            let now = now_i64();
            match live.filter(|c| c.status == ChallengeStatus::Pending && c.expires_at > now) {
                Some(challenge) => {
                    valid_for =
                        Some(Duration::from_secs(u64::try_from(challenge.expires_at - now).unwrap_or(1)));
                }
                None => return Err(Failure::permanent("the login ended before the code could be sent")),
            }
        }
        let Some(token_id) = message.token_id else {
            return Err(Failure::permanent("the token was deleted"));
        };
        let token = self.store.token_by_id(token_id).await.map_err(Failure::retry)?;
        let Some(token) = token.filter(|t| t.state.enabled) else {
            return Err(Failure::permanent("the token was deleted or disabled"));
        };
        let seed = token
            .open_seed(&self.key)
            .map_err(|_| Failure::permanent("the token's seed cannot be opened"))?;
        let algorithm =
            Algorithm::parse(&token.algorithm).map_err(|_| Failure::permanent("the token is damaged"))?;
        let digits = Digits::new(u8::try_from(token.digits).unwrap_or(0))
            .map_err(|_| Failure::permanent("the token is damaged"))?;
        let codes = codes(&seed, algorithm, digits, message.counter_from..message.counter_to);
        let values = MessageValues { codes: &codes, ttl: Some(self.ttl(&token)), service: &message.service };
        let text = self.settings.templates.of(mode).render(&values);
        Ok(Outgoing { to: &message.destination, text, codes, valid_for, subject: None })
    }

    async fn through_sms_gateways(
        &self,
        outgoing: &Outgoing<'_>,
    ) -> Result<(String, Option<String>), Failure> {
        let mut last = Failure::permanent("no SMS gateway is configured ([[delivery.sms_gateway]])");
        for gateway in &self.settings.sms_gateways {
            match self.send_sms(gateway, outgoing).await {
                Ok(accepted) => return Ok((gateway.id().to_owned(), accepted.message_id)),
                Err(error) => {
                    tracing::warn!(gateway = gateway.id(), %error, "gateway refused a message; trying the next");
                    last = Failure { gateway: Some(gateway.id().to_owned()), error, retry: true };
                }
            }
        }
        Err(last)
    }

    async fn audit_failure(&self, message: &DeliveryRow, error: &str) {
        let username = self.store.username_of(message.user_id).await.ok().flatten();
        let reason = format!("{} message {} not sent: {error}", message.channel.as_str(), message.id);
        let audit = NewAudit {
            at_ms: crate::clock::unix_now_ms(),
            actor: "delivery",
            action: "delivery.send",
            username: username.as_deref(),
            serial: None,
            client_ip: None,
            result: AuditResult::Reject,
            reason: Some(&reason),
        };
        if let Err(error) = self.store.audit(&audit).await {
            tracing::warn!(%error, "a failed send could not be audited");
        }
    }
}

/// Why a try failed, and whether another try may succeed.
struct Failure {
    gateway: Option<String>,
    error: String,
    retry: bool,
}

impl Failure {
    fn retry(error: crate::store::StoreError) -> Self {
        Self { gateway: None, error: error.to_string(), retry: true }
    }

    fn permanent(error: &str) -> Self {
        Self { gateway: None, error: error.to_owned(), retry: false }
    }
}
