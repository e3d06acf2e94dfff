//! Push approval on the server: push token enrollment and device registration, challenges created
//! by `validate`, delivery to devices (SSE stream and long-poll, resumable by sequence number), the
//! devices' signed answers (with approve-with-OTP, number matching and "not me" muting), and the
//! login client's wait for the outcome.
//!
//! [`Push`] is its own object, owned by the service: it holds the hub, the device streams, the
//! signing key and the outbound clients, and reaches the database only through `Store`'s methods.
//! Nothing here calls back into the service; `validate` calls [`Push::start`] and
//! [`Push::finish`], and the token operations call [`Push::revoke_device`].
//!
//! | file | what |
//! |---|---|
//! | `hub.rs` | watch channels per user, transaction and device; NOTIFY across replicas |
//! | `enroll.rs` | enrollment credential and link, registration, wake address, device authentication |
//! | `challenge.rs` | a push started by `validate` and the login it completes |
//! | `channel.rs` | deliveries to a device: long-poll and SSE streams with their pool |
//! | `answer.rs` | a device's signed answer, fraud reports |
//! | `transaction.rs` | the login client's wait on a transaction |

mod answer;
mod challenge;
mod channel;
mod enroll;
mod hub;
mod transaction;

use std::sync::Arc;

use tessera_core::push::{KeyPair, PublicKey};
use tessera_core::verifier::Policy;
use tokio::sync::watch;

pub use challenge::{PushContext, PushOutcome, PushReason};
pub use channel::{DeviceStreams, StreamEnd, StreamSlot};
pub use enroll::{Device, EnrollmentCredential};
pub use hub::{Hub, Subscription, device_key, transaction_key, user_key};

use crate::config::{Config, PushPolicy};
use crate::error::ServiceError;
use crate::keys::ServerKey;
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::store::Store;
use crate::wake::{Waker, outbound_client};

/// Longest a long-poll waits: shorter than the request timeout, so the poll answers (still
/// pending) instead of the server cutting it off with a 503.
pub const MAX_WAIT_SECS: u64 = 25;
const _: () = assert!(MAX_WAIT_SECS < crate::config::REQUEST_TIMEOUT.as_secs());

/// What push shares with the rest of the service: the database, the server key, the verifier's
/// policy, the rate limits and the metrics.
pub struct Shared {
    /// The database.
    pub store: Store,
    /// Opens the push tokens' seeds (approve-with-OTP).
    pub key: Arc<ServerKey>,
    /// The verifier's windows and lockout.
    pub policy: Policy,
    /// Per-client and per-user limits.
    pub limiter: Arc<Limiter>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Push approval: its settings, its signing key, the hub, the device streams and the outbound
/// clients (wake-ups, the fraud webhook).
pub struct Push {
    store: Store,
    key: Arc<ServerKey>,
    policy: Policy,
    limiter: Arc<Limiter>,
    metrics: Arc<Metrics>,
    issuer: String,
    settings: PushPolicy,
    signing_key: KeyPair,
    hub: Hub,
    streams: DeviceStreams,
    http: reqwest::Client,
    waker: Arc<Waker>,
    stream_max_secs: u64,
    stopping: watch::Sender<bool>,
}

impl Push {
    /// Push over the shared parts, configured by `config`'s `[push]` and `[limits]`.
    pub fn new(shared: Shared, config: &Config) -> Result<Self, ServiceError> {
        let signing_key = shared.key.push_signing_key()?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let outbound = outbound_client(config.push.ca_file.as_deref()).map_err(ServiceError::InvalidInput)?;
        let http = outbound().build().map_err(|e| ServiceError::InvalidInput(format!("HTTP client: {e}")))?;
        let waker = Waker::new(&config.push, &http, &outbound)
            .map_err(|e| ServiceError::InvalidInput(format!("push wake-ups: {e}")))?;
        Ok(Self {
            store: shared.store,
            key: shared.key,
            policy: shared.policy,
            limiter: shared.limiter,
            metrics: shared.metrics,
            issuer: config.issuer.clone(),
            settings: config.push.clone(),
            signing_key,
            hub: Hub::default(),
            streams: DeviceStreams::new(config.limits),
            http,
            waker: Arc::new(waker),
            stream_max_secs: config.limits.stream_max_secs,
            stopping: watch::Sender::new(false),
        })
    }

    /// The hub, for the PostgreSQL listener to republish other replicas' notifications.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The key that signs challenges; One Swipe codes are addressed to it.
    pub fn public_key(&self) -> PublicKey {
        self.signing_key.public()
    }

    /// The `[push]` settings.
    pub fn settings(&self) -> &PushPolicy {
        &self.settings
    }

    /// Announces a change to this process and (PostgreSQL) to every replica.
    pub async fn publish(&self, key: &str) {
        self.hub.publish(key);
        if let Err(error) = self.store.notify(key).await {
            tracing::warn!(%error, "NOTIFY failed; other replicas will see the change on their next look");
        }
    }

    /// Announces that a push token was disabled or deleted: its open streams end, on every replica.
    pub async fn revoke_device(&self, serial: &str) {
        self.publish(&device_key(serial)).await;
    }

    /// Starts the shutdown: open device streams close (devices reconnect, to another replica if
    /// there is one), so a graceful shutdown does not wait on them forever.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Push::stop`] was called.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}
