//! The login client's wait on a push transaction: its status, long-polled while it is pending.

use std::net::IpAddr;
use std::time::Duration;

use tessera_core::wire::{CallDenial, TransactionState, TransactionStatus};

use super::hub::{Subscription, transaction_key};
use super::{MAX_WAIT_SECS, Push};
use crate::clock::{u64_of, unix_now};
use crate::error::ServiceError;
use crate::store::{TxChannel, TxStatus};

impl Push {
    /// A transaction's status, waiting up to `wait` while it is pending. Only an existing,
    /// pending transaction is waited on, so unknown ids cost one read and leave nothing behind.
    pub async fn transaction_status(
        &self,
        id: &str,
        wait: Duration,
        ip: Option<IpAddr>,
    ) -> Result<TransactionStatus, ServiceError> {
        if !self.limiter.allow_client(ip) {
            return Err(ServiceError::TooManyRequests(
                "too many requests from this address; try again later".into(),
            ));
        }
        let deadline = tokio::time::Instant::now() + wait.min(Duration::from_secs(MAX_WAIT_SECS));
        let mut changes: Option<Subscription> = None;
        loop {
            let tx = self
                .store
                .transaction(id)
                .await?
                .ok_or_else(|| ServiceError::NotFound("transaction", id.into()))?;
            let now = unix_now();
            let status = match tx.status {
                TxStatus::Pending if now > u64_of(tx.expires_at) => TransactionState::Expired,
                TxStatus::Pending => TransactionState::Pending,
                TxStatus::Approved => TransactionState::Approved,
                TxStatus::Denied => TransactionState::Denied,
                TxStatus::Consumed => TransactionState::Consumed,
            };
            if status != TransactionState::Pending || tokio::time::Instant::now() >= deadline {
                let reason = match (tx.channel, status) {
                    (TxChannel::Voice, TransactionState::Denied) => {
                        tx.deny_reason.as_deref().and_then(CallDenial::parse)
                    }
                    _ => None,
                };
                return Ok(TransactionStatus {
                    transaction_id: tx.id,
                    status,
                    expires_at: tx.expires_at,
                    reason,
                });
            }
            let Some(changes) = changes.as_mut() else {
                // Subscribed only now that the transaction is known to be pending, then read again
                // so a change between the read and the subscription is not missed.
                changes = Some(self.hub.subscribe(&transaction_key(id)));
                continue;
            };
            let until_expiry = tokio::time::Instant::now()
                + Duration::from_secs(u64_of(tx.expires_at).saturating_sub(now) + 1);
            let _ = tokio::time::timeout_at(deadline.min(until_expiry), changes.changed()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::error::ServiceError;
    use crate::service::testing::service;

    #[tokio::test]
    async fn unknown_transaction_ids_leave_nothing_in_the_hub() {
        let (_dir, service) = service("").await;
        for i in 0..1_000 {
            let id = format!("TX{i:060}");
            assert!(matches!(
                service.push().transaction_status(&id, Duration::from_secs(1), None).await,
                Err(ServiceError::NotFound(..))
            ));
        }
        let hub = service.push().hub();
        assert!(hub.is_empty(), "the hub holds {} channels", hub.len());
    }
}
