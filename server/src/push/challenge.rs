//! A push started by `validate` (a transaction within the fatigue limits, the devices notified and
//! woken) and the login it completes once approved (once only, within its expiry).

use tessera_core::push::{NumberChallenge, NumberMatching, WakeAddress};

use super::Push;
use super::hub::user_key;
use crate::clock::{i64_of, u64_of, unix_now, unix_now_ms};
use crate::error::ServiceError;
use crate::keys::{KeyError, random_id};
use crate::store::{
    AuditResult, NewAudit, NewTransaction, PushLimits, PushRefusal, TokenRow, TxChannel, TxStatus, UserRow,
};
use crate::wake::{WakeOutcome, WakeUp};

/// An approved push can still complete its login this long after the request expired (the login
/// client learns of the approval a moment after it happens).
const APPROVAL_GRACE_SECS: i64 = 10;

/// What a push shows on the device about the login.
pub struct PushContext {
    /// The login client's address (as an authenticated application reports it, or the caller's).
    pub client_ip: Option<String>,
    /// The login client's user agent.
    pub user_agent: Option<String>,
    /// The application asking: an authenticated application's service name, else the server's.
    pub service: String,
    /// Who asked, as the audit log names it (`validate`, `portal`, `app:…`, `radius:…`).
    pub actor: String,
    /// Whether the login screen can show a number: without one (a RADIUS client in `auto` mode
    /// answers before the user sees anything) the push asks for none, whatever the server's
    /// number matching.
    pub shows_number: bool,
}

/// Why a push step ended as it did: the audit log's reason, and `validate`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushReason {
    /// A challenge went to the user's devices.
    Sent,
    /// "Not me" muted the user's pushes.
    Muted,
    /// The user has as many pending pushes as allowed.
    PendingLimit,
    /// The user had as many pushes in the window as allowed.
    WindowLimit,
    /// The approved transaction completed the login.
    Approved,
    /// The transaction a voice token's call approved completed the login.
    CallApproved,
    /// The transaction still waits for the device.
    Pending,
    /// No such transaction for this user.
    Unknown,
    /// The device denied it.
    Denied,
    /// It already completed a login.
    Consumed,
    /// It expired before it was approved or used.
    Expired,
}

impl PushReason {
    /// The name stored in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "push_sent",
            Self::Muted => "push_muted",
            Self::PendingLimit => "push_pending_limit",
            Self::WindowLimit => "push_window_limit",
            Self::Approved => "push_approved",
            Self::CallApproved => "call_approved",
            Self::Pending => "push_pending",
            Self::Unknown => "push_unknown",
            Self::Denied => "push_denied",
            Self::Consumed => "push_consumed",
            Self::Expired => "push_expired",
        }
    }

    fn of(refusal: PushRefusal) -> Self {
        match refusal {
            PushRefusal::Muted => Self::Muted,
            PushRefusal::TooManyPending => Self::PendingLimit,
            PushRefusal::TooManyRecent => Self::WindowLimit,
        }
    }
}

/// What a push step decided, for `validate` to answer (the step audited it already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// A challenge went to the user's devices; the login client waits on the transaction.
    Sent {
        /// The transaction.
        transaction_id: String,
        /// The number the device will ask for (number matching).
        number: Option<u8>,
    },
    /// The fatigue limits refused a new push: the user can still enter a passcode.
    Unavailable(PushReason),
    /// The approved transaction completed the login.
    Approved {
        /// The push token that approved it.
        serial: Option<String>,
    },
    /// The transaction still waits for the device.
    Pending {
        /// The transaction.
        transaction_id: String,
    },
    /// The transaction cannot complete the login.
    Failed(PushReason),
}

impl PushOutcome {
    /// The reason, for the log.
    pub fn reason(&self) -> PushReason {
        match self {
            Self::Sent { .. } => PushReason::Sent,
            Self::Approved { .. } => PushReason::Approved,
            Self::Pending { .. } => PushReason::Pending,
            Self::Unavailable(reason) | Self::Failed(reason) => *reason,
        }
    }
}

impl Push {
    /// Starts a push for a user whose password (if any) checked out: creates the transaction
    /// within the fatigue limits and notifies the user's devices.
    pub async fn start(&self, user: &UserRow, context: &PushContext) -> Result<PushOutcome, ServiceError> {
        let now = unix_now();
        let mode = if context.shows_number { self.settings.number_matching } else { NumberMatching::Off };
        let numbers = NumberChallenge::new(mode).map_err(|e| KeyError::Random(e.to_string()))?;
        let id = random_id("TX")?;
        let recent_since =
            user.last_success_at.unwrap_or(0).max(i64_of(now.saturating_sub(self.settings.window_secs)));
        let audit = NewAudit {
            at_ms: unix_now_ms(),
            actor: &context.actor,
            action: "push.request",
            username: Some(&user.username),
            serial: None,
            client_ip: context.client_ip.as_deref(),
            result: AuditResult::Challenge,
            reason: None,
        };
        let transaction = NewTransaction {
            id: &id,
            user_id: user.id,
            service: &context.service,
            client_ip: context.client_ip.as_deref(),
            user_agent: context.user_agent.as_deref(),
            number_matching: mode,
            number: numbers.number.map(i64::from),
            choices: &numbers.choices,
            created_at: i64_of(now),
            expires_at: i64_of(now + self.settings.expiry_secs),
        };
        let limits = PushLimits {
            max_pending: i64::from(self.settings.max_pending),
            max_recent: i64::from(self.settings.max_per_window),
            recent_since,
        };
        match self.store.create_transaction(&transaction, &limits, &audit).await? {
            Ok(()) => {
                self.metrics.push("sent");
                self.publish(&user_key(user.id)).await;
                self.wake_devices(user.id, now + self.settings.expiry_secs).await?;
                Ok(PushOutcome::Sent { transaction_id: id, number: numbers.number })
            }
            Err(refusal) => {
                let reason = PushReason::of(refusal);
                self.metrics.push("refused");
                let refused =
                    NewAudit { result: AuditResult::Reject, reason: Some(reason.as_str()), ..audit };
                self.store.audit(&refused).await?;
                Ok(PushOutcome::Unavailable(reason))
            }
        }
    }

    /// Completes a login from an approved push: accepts it once; audited as `actor`'s.
    pub async fn finish(
        &self,
        user: &UserRow,
        transaction_id: &str,
        ip: Option<&str>,
        actor: &str,
    ) -> Result<PushOutcome, ServiceError> {
        let now = unix_now();
        let tx = self.store.transaction(transaction_id).await?.filter(|tx| tx.user_id == user.id);
        let answered_by = tx.as_ref().and_then(|tx| tx.answered_by.clone());
        let audit = |result, reason: PushReason| NewAudit {
            at_ms: unix_now_ms(),
            actor,
            action: "validate",
            username: Some(&user.username),
            serial: answered_by.as_deref(),
            client_ip: ip,
            result,
            reason: Some(reason.as_str()),
        };
        let failed = match tx.as_ref().map(|tx| (tx.status, tx.expires_at)) {
            Some((TxStatus::Approved, expires_at)) => {
                let by_call = tx.as_ref().is_some_and(|tx| tx.channel == TxChannel::Voice);
                let reason = if by_call { PushReason::CallApproved } else { PushReason::Approved };
                let accepted = audit(AuditResult::Accept, reason);
                let store = &self.store;
                if store
                    .consume_transaction(transaction_id, user.id, i64_of(now), APPROVAL_GRACE_SECS, &accepted)
                    .await?
                {
                    return Ok(PushOutcome::Approved { serial: answered_by.clone() });
                }
                let expired = expires_at.saturating_add(APPROVAL_GRACE_SECS) < i64_of(now);
                if expired { PushReason::Expired } else { PushReason::Consumed }
            }
            Some((TxStatus::Pending, expires_at)) if u64_of(expires_at) >= now => {
                return Ok(PushOutcome::Pending { transaction_id: transaction_id.to_owned() });
            }
            None => PushReason::Unknown,
            Some((TxStatus::Denied, _)) => PushReason::Denied,
            Some((TxStatus::Consumed, _)) => PushReason::Consumed,
            Some((TxStatus::Pending, _)) => PushReason::Expired,
        };
        self.store.audit(&audit(AuditResult::Reject, failed)).await?;
        Ok(PushOutcome::Failed(failed))
    }

    /// Wakes the user's devices that gave a wake-up address, in the background: the login
    /// request does not wait for Google or Apple.
    async fn wake_devices(&self, user_id: i64, expires_at: u64) -> Result<(), ServiceError> {
        if !self.waker.is_enabled() {
            return Ok(());
        }
        let targets: Vec<(String, WakeAddress)> = self
            .store
            .tokens_of(user_id)
            .await?
            .into_iter()
            .filter(TokenRow::is_registered_push_device)
            .filter_map(|token| {
                let address = token.device()?.wake.clone()?;
                Some((token.serial, address))
            })
            .collect();
        for (serial, address) in targets {
            let (waker, store, metrics) = (self.waker.clone(), self.store.clone(), self.metrics.clone());
            tokio::spawn(async move {
                let wake = WakeUp { serial: &serial, expires_at };
                let outcome = waker.wake(&address, &wake).await;
                metrics.wakeup(address.service(), outcome.label());
                match outcome {
                    WakeOutcome::Sent | WakeOutcome::NotConfigured => {}
                    WakeOutcome::Unregistered => {
                        tracing::info!(%serial, service = address.service(), "the push service no longer knows this device; its wake-up address is forgotten");
                        if let Err(error) = store.forget_wake_address(&serial, address.token()).await {
                            tracing::warn!(%error, %serial, "could not forget a wake-up address");
                        }
                    }
                    WakeOutcome::Failed(reason) => {
                        tracing::warn!(%serial, service = address.service(), %reason, "wake-up failed");
                    }
                }
            });
        }
        Ok(())
    }
}
