//! The device channel: each device's pending challenges, signed for it, by SSE stream or
//! long-poll and resumable by sequence number. Streams have their own pool and per-device cap
//! ([`DeviceStreams`]), end when their token is disabled or deleted (announced on every replica,
//! and re-checked every [`RECHECK`]), and live at most `limits.stream_max_secs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tessera_core::push::{Challenge, Delivery, PROTOCOL_VERSION};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use super::hub::{device_key, lock, user_key};
use super::{Device, MAX_WAIT_SECS, Push};
use crate::clock::{i64_of, u64_of, unix_now};
use crate::error::ServiceError;
use crate::store::TransactionRow;

/// Device streams look for challenges, and check that the device is still registered, at least
/// this often even without a notification.
const RECHECK: Duration = Duration::from_secs(30);

/// The open device streams: a global cap, and a cap per device past which a new stream closes the
/// device's oldest (a phone that changed networks comes back before the server notices the old
/// connection died, so the newest must win; replayed credentials can only churn, never pile up).
pub struct DeviceStreams {
    permits: Arc<Semaphore>,
    per_device: usize,
    open: OpenStreams,
    next_id: AtomicU64,
}

/// Each push token's open streams, oldest first: a stream id and the signal that closes it.
type OpenStreams = Arc<Mutex<HashMap<i64, VecDeque<(u64, Arc<Notify>)>>>>;

/// One open device stream's place; dropping it frees the place.
pub struct StreamSlot {
    _permit: OwnedSemaphorePermit,
    token_id: i64,
    id: u64,
    replaced: Arc<Notify>,
    open: OpenStreams,
}

impl DeviceStreams {
    /// Streams within the configured limits.
    pub fn new(limits: crate::config::Limits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_device_streams)),
            per_device: limits.streams_per_device,
            open: Arc::default(),
            next_id: AtomicU64::new(0),
        }
    }

    /// A place for a new stream of the push token `token_id`, closing the token's oldest streams
    /// beyond the per-device cap; `Busy` when the server holds as many streams as it may.
    pub fn open(&self, token_id: i64) -> Result<StreamSlot, ServiceError> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            ServiceError::Busy("the server holds as many device streams as it may; try again later".into())
        })?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let replaced = Arc::new(Notify::new());
        let mut open = lock(&self.open);
        let streams = open.entry(token_id).or_default();
        streams.push_back((id, replaced.clone()));
        while streams.len() > self.per_device {
            if let Some((_, oldest)) = streams.pop_front() {
                oldest.notify_one();
            }
        }
        Ok(StreamSlot { _permit: permit, token_id, id, replaced, open: self.open.clone() })
    }

    /// Streams open now.
    pub fn len(&self) -> usize {
        lock(&self.open).values().map(VecDeque::len).sum()
    }

    /// True when no stream is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl StreamSlot {
    /// Resolves when a newer stream of the same device took this one's place.
    pub async fn replaced(&self) {
        self.replaced.notified().await;
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(streams) = open.get_mut(&self.token_id) {
            streams.retain(|(id, _)| *id != self.id);
            if streams.is_empty() {
                open.remove(&self.token_id);
            }
        }
    }
}

/// Why a device stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The push token was disabled or deleted, or its device re-registered.
    Revoked,
    /// A newer stream of the same device took its place.
    Replaced,
    /// It reached its maximum lifetime: the device authenticates again.
    Expired,
    /// The server is shutting down.
    Stopping,
    /// The device went away.
    Closed,
}

impl StreamEnd {
    /// The name sent to the device in the stream's last event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Replaced => "replaced",
            Self::Expired => "expired",
            Self::Stopping => "stopping",
            Self::Closed => "closed",
        }
    }
}

impl Push {
    /// The device's pending challenges after stream position `after`, each signed for it.
    pub async fn deliveries(&self, device: &Device, after: i64) -> Result<Vec<Delivery>, ServiceError> {
        let now = i64_of(unix_now());
        let pending = self.store.pending_transactions(device.token.user_id, after, now).await?;
        Ok(pending
            .into_iter()
            .map(|tx| Delivery {
                seq: u64_of(tx.seq),
                challenge: self.challenge_for(&tx, device).sign(&self.signing_key),
            })
            .collect())
    }

    fn challenge_for(&self, tx: &TransactionRow, device: &Device) -> Challenge {
        Challenge {
            v: PROTOCOL_VERSION,
            transaction_id: tx.id.clone(),
            username: device.username.clone(),
            serial: device.token.serial.clone(),
            service: tx.service.clone(),
            client_ip: tx.client_ip.clone(),
            user_agent: tx.user_agent.clone(),
            created_at: u64_of(tx.created_at),
            expires_at: u64_of(tx.expires_at),
            number_matching: tx.number_matching,
            number_choices: tx.choices.clone(),
        }
    }

    /// Waits (up to `wait`) for deliveries after `after`.
    pub async fn wait_for_deliveries(
        &self,
        device: &Device,
        after: i64,
        wait: Duration,
    ) -> Result<Vec<Delivery>, ServiceError> {
        let mut changes = self.hub.subscribe(&user_key(device.token.user_id));
        let deadline = tokio::time::Instant::now() + wait.min(Duration::from_secs(MAX_WAIT_SECS));
        loop {
            let found = self.deliveries(device, after).await?;
            if !found.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(found);
            }
            let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
        }
    }

    /// A place for a device stream (see [`DeviceStreams`]).
    pub fn open_stream(&self, device: &Device) -> Result<StreamSlot, ServiceError> {
        self.streams.open(device.token.id)
    }

    /// Serves a device's stream: sends each new challenge to `events`, until the device goes, the
    /// token is disabled or deleted (announced on every replica, and checked every
    /// [`RECHECK`] in case a notification was lost), a newer stream replaces it, it reaches its
    /// maximum lifetime, or the server stops.
    pub async fn serve_stream(
        &self,
        device: &Device,
        mut after: i64,
        slot: &StreamSlot,
        events: &mpsc::Sender<Delivery>,
    ) -> StreamEnd {
        let mut challenges = self.hub.subscribe(&user_key(device.token.user_id));
        let mut revocations = self.hub.subscribe(&device_key(&device.token.serial));
        let ends = tokio::time::Instant::now() + Duration::from_secs(self.stream_max_secs);
        let mut recheck = false;
        loop {
            if recheck && !self.still_registered(device).await {
                return StreamEnd::Revoked;
            }
            recheck = false;
            match self.deliveries(device, after).await {
                Ok(deliveries) => {
                    for delivery in deliveries {
                        let seq = i64::try_from(delivery.seq).unwrap_or(after);
                        if events.send(delivery).await.is_err() {
                            return StreamEnd::Closed;
                        }
                        after = seq;
                    }
                }
                Err(error) => tracing::warn!(%error, "reading challenges for a device failed"),
            }
            tokio::select! {
                () = challenges.changed() => {}
                () = revocations.changed() => recheck = true,
                () = tokio::time::sleep(RECHECK) => recheck = true,
                () = slot.replaced() => return StreamEnd::Replaced,
                () = tokio::time::sleep_until(ends) => return StreamEnd::Expired,
                () = events.closed() => return StreamEnd::Closed,
                () = self.stopped() => return StreamEnd::Stopping,
            }
        }
    }

    /// Whether the device's push token still exists, is enabled, and holds the device's key.
    async fn still_registered(&self, device: &Device) -> bool {
        match self.store.token(&device.token.serial).await {
            Ok(Some(token)) => {
                token.is_registered_push_device()
                    && token.device().map(|d| &d.public_key) == device.token.device().map(|d| &d.public_key)
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "checking a device's registration failed; the stream stays open");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_keeps_at_most_its_cap_of_streams_and_the_newest_win() {
        let limits =
            crate::config::Limits { max_device_streams: 3, streams_per_device: 2, ..Default::default() };
        let streams = DeviceStreams::new(limits);
        let first = streams.open(7).unwrap();
        let _second = streams.open(7).unwrap();
        let third = streams.open(7).unwrap();
        assert_eq!(streams.len(), 2);
        let replaced = futures_util::FutureExt::now_or_never(first.replaced());
        assert!(replaced.is_some(), "the oldest stream was told to close");
        assert!(futures_util::FutureExt::now_or_never(third.replaced()).is_none());
        assert!(
            matches!(streams.open(8), Err(ServiceError::Busy(_))),
            "three places in all, and the replaced one still holds its place until it closes"
        );
        drop(first);
        let other = streams.open(8).unwrap();
        drop((third, other));
        assert_eq!(streams.len(), 1);
    }
}
