//! Push approval on the server: push token enrollment and device registration, challenges created
//! by `validate`, delivery to devices (SSE stream and long-poll, resumable by sequence number), the
//! devices' signed answers (with approve-with-OTP, number matching and "not me" muting), and the
//! login client's wait for the outcome.
//!
//! Notifications go through a [`Hub`] of watch channels keyed by user (new challenge), by
//! transaction (new status) and by device (revoked); a channel lives only while someone waits on
//! it. Device streams have their own pool and per-device cap ([`DeviceStreams`]), end when their
//! token is disabled or deleted, and live at most `limits.stream_max_secs`. With PostgreSQL every change is also sent with `NOTIFY`, and each
//! replica's listener republishes it locally, so a device connected to one replica hears about a
//! login started on another. A notification only says "look again": the database is the truth, so
//! a lost or duplicated notification never loses or duplicates a challenge.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use subtle::ConstantTimeEq;
use tessera_core::push::{
    Challenge, Decision, Delivery, DenyReason, EnrollmentLink, NumberChallenge, NumberMatching,
    PROTOCOL_VERSION, PublicKey, RegisterRequest, RegisterResponse, SignedAnswer, WakeAddress,
    device_auth_message,
};
use tessera_core::secret::{SecretBytes, SecretString, fill_random};
use tessera_core::verifier::{self, Verdict};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::keys::KeyError;
use crate::service::{
    Actor, Enrollment, PublicReason, SEED_BYTES, Service, ServiceError, TokenDraft, TokenKind,
    ValidateResponse, unix_now, unix_now_ms,
};
use crate::store::{
    NewAudit, NewTransaction, PushLimits, PushRefusal, RecordedAnswer, StateUpdate, TokenRow, TransactionRow,
    UserRow,
};
use crate::wake::{WakeOutcome, WakeUp};

/// How far a device's signed timestamp may be from the server's clock.
const DEVICE_AUTH_SKEW_SECS: u64 = 120;
/// Longest a long-poll waits: shorter than the request timeout, so the poll answers (still
/// pending) instead of the server cutting it off with a 503.
pub const MAX_WAIT_SECS: u64 = 25;
/// Device streams look for challenges, and check that the device is still registered, at least
/// this often even without a notification.
const RECHECK: Duration = Duration::from_secs(30);
/// An approved push can still complete its login this long after the request expired (the login
/// client learns of the approval a moment after it happens).
const APPROVAL_GRACE_SECS: i64 = 10;
const _: () = assert!(MAX_WAIT_SECS < crate::api::REQUEST_TIMEOUT.as_secs());

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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

/// The hub key that announces a push device's revocation (disabled or deleted).
pub fn device_key(serial: &str) -> String {
    format!("device:{serial}")
}

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

/// The hub key of a user's challenges.
pub fn user_key(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// The hub key of a transaction's status.
pub fn transaction_key(id: &str) -> String {
    format!("tx:{id}")
}

/// A device that proved possession of its key.
#[derive(Debug, Clone)]
pub struct Device {
    /// The push token.
    pub token: TokenRow,
    /// Its owner's name.
    pub username: String,
}

/// A transaction's status for a waiting login client.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TransactionStatus {
    /// The transaction.
    pub transaction_id: String,
    /// `pending`, `approved`, `denied`, `expired` or `consumed`.
    pub status: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The outcome of a device's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnswerReceipt {
    /// The transaction.
    pub transaction_id: String,
    /// Its status now: `approved` or `denied`.
    pub status: String,
    /// Why it was denied: `wrong_number` or `bad_otp` (an approval refused), or the device's
    /// own reason (`cancelled`, `not_me`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a push shows on the device about the login.
pub struct PushContext {
    /// The login client's address (as an authenticated application reports it, or the caller's).
    pub client_ip: Option<String>,
    /// The login client's user agent.
    pub user_agent: Option<String>,
    /// The application asking: an authenticated application's service name, else the server's.
    pub service: String,
}

/// A random id: 128 bits, base32, with a prefix.
pub fn random_id(prefix: &str) -> Result<String, ServiceError> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(format!("{prefix}{}", data_encoding::BASE32_NOPAD.encode(&bytes)))
}

/// A wake-up address as stored (`fcm`/`apns` and the token), after checking its shape.
fn wake_parts(wake: Option<&WakeAddress>) -> Result<Option<(&'static str, &str)>, ServiceError> {
    wake.map(|address| {
        address.validate().map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        Ok((address.service(), address.token()))
    })
    .transpose()
}

pub(crate) fn i64_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn u64_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Service {
    /// Enrolls a push token: a TOTP seed (for approve-with-OTP) sealed like any other, and a
    /// single-use enrollment credential that expires after the configured time.
    pub(crate) async fn enroll_push(
        &self,
        actor: &Actor,
        user: &UserRow,
        description: Option<&str>,
    ) -> Result<Enrollment, ServiceError> {
        let seed = SecretBytes::random(SEED_BYTES).map_err(|e| KeyError::Random(e.to_string()))?;
        let code = random_id("")?;
        let hash = crate::keys::credential_hash(&code);
        let expires = i64_of(unix_now() + self.push.enrollment_ttl_secs);
        let serial = self
            .insert_token(
                actor,
                user,
                TokenDraft {
                    kind: TokenKind::Push,
                    algorithm: "SHA1",
                    digits: 6,
                    period: 30,
                    seed: &seed,
                    description,
                    enrollment: Some((&hash, expires)),
                },
            )
            .await?;
        let link = EnrollmentLink {
            server: self.push.public_url.clone(),
            serial: serial.clone(),
            code: SecretString::new(code),
            issuer: Some(self.issuer.clone()),
            account: Some(user.username.clone()),
        };
        Enrollment::new(serial, TokenKind::Push, link.to_uri())
    }

    /// Registers a device from an enrollment link: binds its public key to the push token (the
    /// credential works once, before it expires) and returns the server's key and the TOTP seed.
    pub async fn register_device(
        &self,
        request: RegisterRequest,
        ip: Option<IpAddr>,
    ) -> Result<RegisterResponse, ServiceError> {
        let refused =
            || ServiceError::Unauthorized("the enrollment link is invalid, expired or already used".into());
        if let Some(name) = &request.device_name {
            crate::service::check_text("device name", name, 64)?;
        }
        let wake = wake_parts(request.wake.as_ref())?;
        let found = self.store.token_with_owner(&request.serial).await?.filter(|(t, _)| t.kind == "push");
        let (token, username) = found.map_or((None, String::new()), |(t, owner)| (Some(t), owner.username));
        let now = unix_now();
        let hash = crate::keys::credential_hash(request.code.expose());
        let valid = token.as_ref().is_some_and(|t| {
            let matches = t
                .enrollment_code_hash
                .as_deref()
                .is_some_and(|stored| bool::from(stored.as_bytes().ct_eq(hash.as_bytes())));
            matches
                && t.enrollment_expires_at.is_some_and(|at| u64_of(at) >= now)
                && t.device_public_key.is_none()
        });
        let ip_text = ip.map(|ip| ip.to_string());
        let audit = |result: &'static str, reason: Option<&'static str>| NewAudit {
            at_ms: unix_now_ms(),
            actor: "device",
            action: "push.register",
            username: Some(&username).filter(|u| !u.is_empty()).map(String::as_str),
            serial: Some(&request.serial),
            client_ip: ip_text.as_deref(),
            result,
            reason,
        };
        let registered = match (&token, valid) {
            (Some(token), true) => {
                self.store
                    .register_device(
                        token.id,
                        &hash,
                        &request.device_public_key.to_base64(),
                        request.device_name.as_deref(),
                        wake,
                        i64_of(now),
                        &audit("ok", None),
                    )
                    .await?
            }
            _ => false,
        };
        let Some(token) = token.filter(|_| registered) else {
            if !self.limiter.allow_admin_failure(ip) {
                return Err(ServiceError::TooManyRequests(
                    "too many failed enrollments from this address".into(),
                ));
            }
            if self.limiter.audit_refusal("push.register", ip, &request.serial) {
                self.store.audit(&audit("reject", Some("bad_credential"))).await?;
            }
            return Err(refused());
        };
        let seed = self.key.open_seed(&token.serial, token.seed.as_deref().unwrap_or_default())?;
        Ok(RegisterResponse {
            serial: token.serial,
            username,
            issuer: self.issuer.clone(),
            server_public_key: self.push_key.public(),
            totp_secret: SecretString::from(seed.to_base32()),
            algorithm: token.algorithm,
            digits: u8::try_from(token.digits).unwrap_or(6),
            period: u32::try_from(token.period).unwrap_or(30),
        })
    }

    /// Sets or clears the address at which FCM or APNs can wake the device (their tokens
    /// rotate; the app reports each new one).
    pub async fn set_wake_address(
        &self,
        device: &Device,
        wake: Option<WakeAddress>,
        ip: Option<IpAddr>,
    ) -> Result<(), ServiceError> {
        let parts = wake_parts(wake.as_ref())?;
        let ip_text = ip.map(|ip| ip.to_string());
        let audit = NewAudit {
            at_ms: unix_now_ms(),
            actor: "device",
            action: "push.wake_address",
            username: Some(&device.username),
            serial: Some(&device.token.serial),
            client_ip: ip_text.as_deref(),
            result: "ok",
            reason: Some(parts.map_or("cleared", |(service, _)| service)),
        };
        if self.store.set_wake_address(&device.token.serial, parts, &audit).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound("push token", device.token.serial.clone()))
        }
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
            .filter(|token| token.kind == "push" && token.state.enabled && token.device_public_key.is_some())
            .filter_map(|token| {
                let address =
                    WakeAddress::from_parts(token.wake_service.as_deref()?, token.wake_token.as_deref()?)?;
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

    /// Checks a device's signed timestamp: the device holds the key registered for `serial`.
    pub async fn authenticate_device(
        &self,
        serial: &str,
        timestamp: &str,
        signature: &str,
        ip: Option<IpAddr>,
    ) -> Result<Device, ServiceError> {
        let refused = || ServiceError::Unauthorized("device authentication failed".into());
        let timestamp: u64 = timestamp.trim().parse().map_err(|_| refused())?;
        let now = unix_now();
        let found =
            self.store.token_with_owner(serial).await?.filter(|(t, _)| t.kind == "push" && t.state.enabled);
        let key = found
            .as_ref()
            .and_then(|(t, _)| t.device_public_key.as_deref())
            .and_then(|k| PublicKey::parse(k).ok());
        let fresh = timestamp.abs_diff(now) <= DEVICE_AUTH_SKEW_SECS;
        match (found, key) {
            (Some((token, owner)), Some(key))
                if fresh && key.verify(&device_auth_message(serial, timestamp), signature).is_ok() =>
            {
                Ok(Device { token, username: owner.username })
            }
            _ => {
                if !self.limiter.allow_admin_failure(ip) {
                    return Err(ServiceError::TooManyRequests(
                        "too many failed device authentications".into(),
                    ));
                }
                Err(refused())
            }
        }
    }

    /// The device's pending challenges after stream position `after`, each signed for it.
    pub async fn deliveries(&self, device: &Device, after: i64) -> Result<Vec<Delivery>, ServiceError> {
        let now = i64_of(unix_now());
        let pending = self.store.pending_transactions(device.token.user_id, after, now).await?;
        Ok(pending
            .into_iter()
            .map(|tx| Delivery {
                seq: u64_of(tx.seq),
                challenge: self.challenge_for(&tx, device).sign(&self.push_key),
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
            number_matching: number_matching(&tx.number_matching),
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

    /// The hub, for the PostgreSQL listener to republish other replicas' notifications.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Announces a change to this process and (PostgreSQL) to every replica.
    pub(crate) async fn publish(&self, key: &str) {
        self.hub.publish(key);
        if let Err(error) = self.store.notify(key).await {
            tracing::warn!(%error, "NOTIFY failed; other replicas will see the change on their next look");
        }
    }

    /// Starts a push for a user whose password (if any) checked out: creates the transaction
    /// within the fatigue limits and notifies the user's devices.
    pub(crate) async fn start_push(
        &self,
        user: &UserRow,
        context: &PushContext,
    ) -> Result<(ValidateResponse, &'static str), ServiceError> {
        let now = unix_now();
        let mode = self.push.number_matching;
        let numbers = NumberChallenge::new(mode).map_err(|e| KeyError::Random(e.to_string()))?;
        let id = random_id("TX")?;
        let service = context.service.as_str();
        let recent_since =
            user.last_success_at.unwrap_or(0).max(i64_of(now.saturating_sub(self.push.window_secs)));
        let audit = NewAudit {
            at_ms: unix_now_ms(),
            actor: "validate",
            action: "push.request",
            username: Some(&user.username),
            serial: None,
            client_ip: context.client_ip.as_deref(),
            result: "challenge",
            reason: None,
        };
        let created = self
            .store
            .create_transaction(
                &NewTransaction {
                    id: &id,
                    user_id: user.id,
                    service,
                    client_ip: context.client_ip.as_deref(),
                    user_agent: context.user_agent.as_deref(),
                    number_matching: mode.as_str(),
                    number: numbers.number.map(i64::from),
                    choices: &numbers.choices,
                    created_at: i64_of(now),
                    expires_at: i64_of(now + self.push.expiry_secs),
                },
                &PushLimits {
                    max_pending: i64::from(self.push.max_pending),
                    max_recent: i64::from(self.push.max_per_window),
                    recent_since,
                },
                &audit,
            )
            .await?;
        match created {
            Ok(()) => {
                self.metrics.push("sent");
                self.publish(&user_key(user.id)).await;
                self.wake_devices(user.id, now + self.push.expiry_secs).await?;
                let message = match numbers.number {
                    Some(number) => {
                        format!("approve the login on your device; it will ask for the number {number}")
                    }
                    None => "approve the login on your device".to_owned(),
                };
                Ok((ValidateResponse::challenge(Some(id), numbers.number, message), "push_sent"))
            }
            Err(refusal) => {
                let reason = match refusal {
                    PushRefusal::Muted => "push_muted",
                    PushRefusal::TooManyPending => "push_pending_limit",
                    PushRefusal::TooManyRecent => "push_window_limit",
                };
                self.metrics.push("refused");
                self.store
                    .audit(&NewAudit {
                        action: "push.request",
                        result: "reject",
                        reason: Some(reason),
                        ..audit
                    })
                    .await?;
                let mut response = ValidateResponse::reject(PublicReason::RateLimited);
                response.message = "push is not available right now; enter a passcode instead".into();
                Ok((response, reason))
            }
        }
    }

    /// Completes a login from an approved push: accepts it once.
    pub(crate) async fn finish_push(
        &self,
        user: &UserRow,
        transaction_id: &str,
        ip: Option<&str>,
    ) -> Result<(ValidateResponse, &'static str), ServiceError> {
        let now = unix_now();
        let tx = self.store.transaction(transaction_id).await?.filter(|tx| tx.user_id == user.id);
        let answered_by = tx.as_ref().and_then(|tx| tx.answered_by.clone());
        let audit = |result, reason| NewAudit {
            at_ms: unix_now_ms(),
            actor: "validate",
            action: "validate",
            username: Some(&user.username),
            serial: answered_by.as_deref(),
            client_ip: ip,
            result,
            reason,
        };
        match tx.as_ref().map(|tx| tx.status.as_str()) {
            Some("approved") => {
                let consumed = self
                    .store
                    .consume_transaction(
                        transaction_id,
                        user.id,
                        i64_of(now),
                        APPROVAL_GRACE_SECS,
                        &audit("accept", Some("push_approved")),
                    )
                    .await?;
                if consumed {
                    return Ok((ValidateResponse::accept_push(answered_by.clone()), "push_approved"));
                }
                let expired = tx
                    .as_ref()
                    .is_some_and(|tx| tx.expires_at.saturating_add(APPROVAL_GRACE_SECS) < i64_of(now));
                let reason = if expired { "push_expired" } else { "push_consumed" };
                self.store.audit(&audit("reject", Some(reason))).await?;
                Ok((ValidateResponse::reject(PublicReason::InvalidCredentials), reason))
            }
            Some("pending") if tx.as_ref().is_some_and(|tx| u64_of(tx.expires_at) >= now) => Ok((
                ValidateResponse::challenge(
                    Some(transaction_id.to_owned()),
                    None,
                    "still waiting for approval".into(),
                ),
                "push_pending",
            )),
            other => {
                let reason = match other {
                    None => "push_unknown",
                    Some("denied") => "push_denied",
                    Some("consumed") => "push_consumed",
                    _ => "push_expired",
                };
                self.store.audit(&audit("reject", Some(reason))).await?;
                Ok((ValidateResponse::reject(PublicReason::InvalidCredentials), reason))
            }
        }
    }

    /// Applies a device's signed answer. Wrong numbers and wrong one-time codes deny the request
    /// (fail closed); "not me" also mutes the user's pushes and raises an alert.
    pub async fn answer(
        &self,
        signed: SignedAnswer,
        ip: Option<IpAddr>,
    ) -> Result<AnswerReceipt, ServiceError> {
        if !self.limiter.allow_client(ip) {
            return Err(ServiceError::TooManyRequests(
                "too many answers from this address; try again later".into(),
            ));
        }
        let now = unix_now();
        let answer = &signed.answer;
        let ip_text = ip.map(|ip| ip.to_string());
        let found = self
            .store
            .token_with_owner(&answer.serial)
            .await?
            .filter(|(t, _)| t.kind == "push" && t.state.enabled);
        let key = found
            .as_ref()
            .and_then(|(t, _)| t.device_public_key.as_deref())
            .and_then(|k| PublicKey::parse(k).ok());
        let (Some((token, owner)), Some(key)) = (found, key) else {
            return Err(ServiceError::Unauthorized(
                "this push device is unknown, disabled or no longer registered".into(),
            ));
        };
        let username = owner.username;
        let audit = |result: &'static str, reason: &'static str| NewAudit {
            at_ms: unix_now_ms(),
            actor: "device",
            action: "push.answer",
            username: Some(&username),
            serial: Some(&answer.serial),
            client_ip: ip_text.as_deref(),
            result,
            reason: Some(reason),
        };
        // Refusals change nothing, so they are audited at most once a minute per reason, client
        // and device: forged or repeated answers cannot fill the audit log.
        let refuse = |reason: &'static str, error: ServiceError| async move {
            if self.limiter.audit_refusal(&format!("push.answer.{reason}"), ip, &answer.serial) {
                self.store.audit(&audit("reject", reason)).await?;
            }
            Err::<AnswerReceipt, ServiceError>(error)
        };
        if signed.verify(&key).is_err() {
            let error = ServiceError::Unauthorized("the answer's signature does not verify".into());
            return refuse("bad_signature", error).await;
        }
        let Some(tx) =
            self.store.transaction(&answer.transaction_id).await?.filter(|tx| tx.user_id == token.user_id)
        else {
            return refuse(
                "unknown_transaction",
                ServiceError::NotFound("transaction", answer.transaction_id.clone()),
            )
            .await;
        };
        if tx.status != "pending" {
            return refuse(
                "already_answered",
                ServiceError::Conflict("this request was already answered".into()),
            )
            .await;
        }
        if now > u64_of(tx.expires_at) {
            return refuse("late", ServiceError::Gone("this request has expired".into())).await;
        }
        if answer.answered_at.abs_diff(now) > tessera_core::push::CLOCK_SKEW_SECS {
            let error = ServiceError::Unauthorized(
                "the answer is dated too far from now (check the device's clock)".into(),
            );
            return refuse("stale_answer", error).await;
        }

        let (status, reason, token_update, mute) = match answer.decision {
            Decision::Deny(deny) => {
                let mute =
                    (deny == DenyReason::NotMe).then(|| (token.user_id, i64_of(now + self.push.mute_secs)));
                ("denied", deny.as_str(), None, mute)
            }
            Decision::Approve => {
                let number_ok = match number_matching(&tx.number_matching) {
                    NumberMatching::Off => true,
                    NumberMatching::Pick | NumberMatching::Type => {
                        answer.number.map(i64::from) == tx.number && tx.number.is_some()
                    }
                };
                let (seed, method) = self.material(&token)?;
                let otp = answer.otp.as_ref().map(SecretString::expose).unwrap_or_default();
                let checked = verifier::verify(&seed, &method, token.state, otp, now, &self.policy);
                let update = |state| StateUpdate {
                    token_id: token.id,
                    expected_version: token.version,
                    state,
                    used_at: Some(i64_of(now)),
                };
                match (number_ok, checked.verdict) {
                    (false, _) => ("denied", "wrong_number", None, None),
                    (true, Verdict::Accepted { .. }) => {
                        ("approved", "approved", Some(update(checked.next)), None)
                    }
                    (true, Verdict::Rejected(_)) => (
                        "denied",
                        "bad_otp",
                        Some(StateUpdate { used_at: None, ..update(checked.next) }),
                        None,
                    ),
                }
            }
        };
        let result = if status == "approved" { "ok" } else { "reject" };
        let applied = self
            .store
            .answer_transaction(
                &RecordedAnswer {
                    id: &tx.id,
                    status,
                    deny_reason: (status == "denied").then_some(reason),
                    answered_at: i64_of(now),
                    answered_by: &answer.serial,
                },
                token_update.as_ref().filter(|u| u.state != token.state),
                mute,
                &audit(result, reason),
            )
            .await?;
        if !applied {
            return refuse(
                "already_answered",
                ServiceError::Conflict("this request was already answered".into()),
            )
            .await;
        }
        self.metrics.push(status);
        self.publish(&transaction_key(&tx.id)).await;
        if mute.is_some() {
            self.report_fraud(&username, &tx, &answer.serial, ip_text.as_deref()).await?;
        }
        Ok(AnswerReceipt {
            transaction_id: tx.id,
            status: status.to_owned(),
            reason: (status == "denied").then(|| reason.to_owned()),
        })
    }

    /// "Not me": an audit alert and, when configured, a webhook call.
    async fn report_fraud(
        &self,
        username: &str,
        tx: &TransactionRow,
        serial: &str,
        device_ip: Option<&str>,
    ) -> Result<(), ServiceError> {
        self.store
            .audit(&NewAudit {
                at_ms: unix_now_ms(),
                actor: "device",
                action: "push.fraud_report",
                username: Some(username),
                serial: Some(serial),
                client_ip: tx.client_ip.as_deref(),
                result: "alert",
                reason: Some("not-me"),
            })
            .await?;
        tracing::warn!(
            username,
            serial,
            login_client_ip = tx.client_ip.as_deref(),
            device_ip,
            "push denied as not me"
        );
        if let Some(url) = self.push.webhook_url.clone() {
            let body = serde_json::json!({
                "event": "push.fraud_report",
                "username": username,
                "serial": serial,
                "transaction_id": tx.id,
                "service": tx.service,
                "client_ip": tx.client_ip,
                "user_agent": tx.user_agent,
                "muted_until": unix_now() + self.push.mute_secs,
                "at": unix_now(),
            });
            let http = self.http.clone();
            tokio::spawn(async move {
                match http.post(&url).json(&body).timeout(Duration::from_secs(5)).send().await {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => {
                        tracing::warn!(status = %response.status(), "the fraud webhook refused the alert")
                    }
                    Err(error) => tracing::warn!(%error, "the fraud webhook could not be reached"),
                }
            });
        }
        Ok(())
    }

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
            let expired = tx.status == "pending" && now > u64_of(tx.expires_at);
            let status = if expired { "expired".to_owned() } else { tx.status.clone() };
            if status != "pending" || tokio::time::Instant::now() >= deadline {
                return Ok(TransactionStatus { transaction_id: tx.id, status, expires_at: tx.expires_at });
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
        let ends = tokio::time::Instant::now() + Duration::from_secs(self.limits.stream_max_secs);
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
                token.state.enabled
                    && token.device_public_key.is_some()
                    && token.device_public_key == device.token.device_public_key
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "checking a device's registration failed; the stream stays open");
                true
            }
        }
    }

    /// Announces that a push token was disabled or deleted: its open streams end, on every replica.
    pub(crate) async fn revoke_device(&self, serial: &str) {
        self.publish(&device_key(serial)).await;
    }

    /// Whether the user has a registered, enabled push device.
    pub(crate) fn has_push_device(tokens: &[TokenRow]) -> bool {
        tokens.iter().any(|t| t.kind == "push" && t.device_public_key.is_some() && t.state.enabled)
    }
}

fn number_matching(text: &str) -> NumberMatching {
    match text {
        "off" => NumberMatching::Off,
        "type" => NumberMatching::Type,
        _ => NumberMatching::Pick,
    }
}

#[cfg(test)]
mod tests {
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
