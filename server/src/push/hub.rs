//! The hub: watch channels keyed by user (a new challenge), by transaction (a new status) and by
//! device (revoked). A channel exists only while someone waits on it: the last [`Subscription`] to
//! go removes it, so the map is bounded by the waiters, whatever keys callers ask about. With
//! PostgreSQL every publication is also sent with `NOTIFY` and republished by each replica (see
//! [`super::Push::publish`]); a notification only says "look again", the database is the truth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Watch channels keyed by `user:<id>`, `tx:<id>` and `device:<serial>`: subscribers learn that
/// something changed. A channel exists only while someone subscribes to it: the last
/// [`Subscription`] to go removes it, so the map is bounded by the waiters, whatever keys callers
/// ask about.
#[derive(Default)]
pub struct Hub {
    channels: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
}

/// A receiver of one hub key's changes; dropping the last one of a key removes the key.
pub struct Subscription {
    key: String,
    receiver: watch::Receiver<u64>,
    channels: Arc<Mutex<HashMap<String, watch::Sender<u64>>>>,
}

impl Subscription {
    /// Resolves at the next `publish` of the key (or at once when one came since the last call).
    pub async fn changed(&mut self) {
        if self.receiver.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = lock(&self.channels);
        if channels.get(&self.key).is_some_and(|sender| sender.receiver_count() <= 1) {
            channels.remove(&self.key);
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    /// A subscription that wakes on every later `publish` of `key`.
    pub fn subscribe(&self, key: &str) -> Subscription {
        let receiver =
            lock(&self.channels).entry(key.to_owned()).or_insert_with(|| watch::channel(0).0).subscribe();
        Subscription { key: key.to_owned(), receiver, channels: self.channels.clone() }
    }

    /// Wakes the subscribers of `key`; a key nobody subscribes to is not created.
    pub fn publish(&self, key: &str) {
        if let Some(sender) = lock(&self.channels).get(key) {
            sender.send_modify(|version| *version = version.wrapping_add(1));
        }
    }

    /// Channels currently held (for tests and metrics).
    pub fn len(&self) -> usize {
        lock(&self.channels).len()
    }

    /// True when no channel is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The hub key of a user's challenges.
pub fn user_key(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// The hub key of a transaction's status.
pub fn transaction_key(id: &str) -> String {
    format!("tx:{id}")
}

/// The hub key that announces a push device's revocation (disabled or deleted).
pub fn device_key(serial: &str) -> String {
    format!("device:{serial}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_hub_wakes_subscribers_and_holds_keys_only_while_subscribed() {
        let hub = Hub::default();
        let mut first = hub.subscribe("user:1");
        let second = hub.subscribe("user:1");
        hub.publish("user:1");
        tokio::time::timeout(Duration::from_secs(1), first.changed()).await.unwrap();
        hub.publish("user:2");
        assert_eq!(hub.len(), 1, "publishing to nobody creates nothing");
        drop(first);
        assert_eq!(hub.len(), 1, "a key stays while one subscriber is left");
        drop(second);
        assert!(hub.is_empty(), "the last subscriber to go removes the key");
    }
}
