//! Push approval on the server: push token enrollment and device registration, challenges created
//! by `validate`, delivery to devices (SSE stream and long-poll, resumable by sequence number), the
//! devices' signed answers (with approve-with-OTP, number matching and "not me" muting), and the
//! login client's wait for the outcome.
//!
//! Notifications go through a [`Hub`] of watch channels keyed by user (new challenge) and by
//! transaction (new status). With PostgreSQL every change is also sent with `NOTIFY`, and each
//! replica's listener republishes it locally, so a device connected to one replica hears about a
//! login started on another. A notification only says "look again": the database is the truth, so
//! a lost or duplicated notification never loses or duplicates a challenge.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
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
use tokio::sync::watch;

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
const _: () = assert!(MAX_WAIT_SECS < crate::api::REQUEST_TIMEOUT.as_secs());

/// Watch channels keyed by `user:<id>` and `tx:<id>`: subscribers learn that something changed.
#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Hub {
    /// A receiver that wakes on every later `publish` of `key`.
    pub fn subscribe(&self, key: &str) -> watch::Receiver<u64> {
        let mut channels = self.channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        channels.entry(key.to_owned()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Wakes the subscribers of `key` (and forgets channels nobody listens to).
    pub fn publish(&self, key: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = channels.get(key) {
            sender.send_modify(|version| *version = version.wrapping_add(1));
            if sender.receiver_count() == 0 {
                channels.remove(key);
            }
        }
    }

    /// Channels currently held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.channels.lock().map(|c| c.len()).unwrap_or(0)
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

/// Request context for a push, taken from the validate call.
pub struct PushContext<'a> {
    /// The login client's address (as the calling application reports it, or the caller's).
    pub client_ip: Option<String>,
    /// The login client's user agent.
    pub user_agent: Option<&'a str>,
    /// The application name (defaults to the configured service name).
    pub service: Option<&'a str>,
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
    async fn wake_devices(
        &self,
        user_id: i64,
        transaction_id: &str,
        expires_at: u64,
    ) -> Result<(), ServiceError> {
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
            let transaction_id = transaction_id.to_owned();
            tokio::spawn(async move {
                let wake = WakeUp { serial: &serial, transaction_id: &transaction_id, expires_at };
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

    /// A receiver woken when the user's challenges change.
    pub fn watch_user(&self, user_id: i64) -> watch::Receiver<u64> {
        self.hub.subscribe(&user_key(user_id))
    }

    /// Waits (up to `wait`) for deliveries after `after`.
    pub async fn wait_for_deliveries(
        &self,
        device: &Device,
        after: i64,
        wait: Duration,
    ) -> Result<Vec<Delivery>, ServiceError> {
        let mut changes = self.watch_user(device.token.user_id);
        let deadline = tokio::time::Instant::now() + wait.min(Duration::from_secs(MAX_WAIT_SECS));
        loop {
            let found = self.deliveries(device, after).await?;
            if !found.is_empty() {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return Ok(found);
            }
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
        context: &PushContext<'_>,
    ) -> Result<(ValidateResponse, &'static str), ServiceError> {
        let now = unix_now();
        let mode = self.push.number_matching;
        let numbers = NumberChallenge::new(mode).map_err(|e| KeyError::Random(e.to_string()))?;
        let id = random_id("TX")?;
        let service = context.service.unwrap_or(&self.push.service_name);
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
            reason: Some(&id),
        };
        let created = self
            .store
            .create_transaction(
                &NewTransaction {
                    id: &id,
                    user_id: user.id,
                    service,
                    client_ip: context.client_ip.as_deref(),
                    user_agent: context.user_agent,
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
                self.wake_devices(user.id, &id, now + self.push.expiry_secs).await?;
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
                        &audit("accept", Some("push_approved")),
                    )
                    .await?;
                if consumed {
                    return Ok((ValidateResponse::accept_push(answered_by.clone()), "push_approved"));
                }
                self.store.audit(&audit("reject", Some("push_consumed"))).await?;
                Ok((ValidateResponse::reject(PublicReason::InvalidCredentials), "push_consumed"))
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
        let now = unix_now();
        let answer = &signed.answer;
        let ip_text = ip.map(|ip| ip.to_string());
        let found = self.store.token_with_owner(&answer.serial).await?.filter(|(t, _)| t.kind == "push");
        let key = found
            .as_ref()
            .and_then(|(t, _)| t.device_public_key.as_deref())
            .and_then(|k| PublicKey::parse(k).ok());
        let (Some((token, owner)), Some(key)) = (found, key) else {
            return Err(ServiceError::Unauthorized("unknown push device".into()));
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
        if signed.verify(&key).is_err() {
            self.store.audit(&audit("reject", "bad_signature")).await?;
            return Err(ServiceError::Unauthorized("the answer's signature does not verify".into()));
        }
        let Some(tx) =
            self.store.transaction(&answer.transaction_id).await?.filter(|tx| tx.user_id == token.user_id)
        else {
            self.store.audit(&audit("reject", "unknown_transaction")).await?;
            return Err(ServiceError::NotFound("transaction", answer.transaction_id.clone()));
        };
        if tx.status != "pending" {
            self.store.audit(&audit("reject", "already_answered")).await?;
            return Err(ServiceError::Conflict("this request was already answered".into()));
        }
        if now > u64_of(tx.expires_at) {
            self.store.audit(&audit("reject", "late")).await?;
            return Err(ServiceError::Gone("this request has expired".into()));
        }
        if answer.answered_at.abs_diff(now) > tessera_core::push::CLOCK_SKEW_SECS {
            self.store.audit(&audit("reject", "stale_answer")).await?;
            return Err(ServiceError::Unauthorized(
                "the answer is dated too far from now (check the device's clock)".into(),
            ));
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
            self.store.audit(&audit("reject", "already_answered")).await?;
            return Err(ServiceError::Conflict("this request was already answered".into()));
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

    /// A transaction's status, waiting up to `wait` while it is pending.
    pub async fn transaction_status(
        &self,
        id: &str,
        wait: Duration,
    ) -> Result<TransactionStatus, ServiceError> {
        let mut changes = self.hub.subscribe(&transaction_key(id));
        let deadline = tokio::time::Instant::now() + wait.min(Duration::from_secs(MAX_WAIT_SECS));
        loop {
            let tx = self
                .store
                .transaction(id)
                .await?
                .ok_or_else(|| ServiceError::NotFound("transaction", id.into()))?;
            let now = unix_now();
            let expired = tx.status == "pending" && now > u64_of(tx.expires_at);
            let status = if expired { "expired".to_owned() } else { tx.status.clone() };
            if status != "pending" {
                return Ok(TransactionStatus { transaction_id: tx.id, status, expires_at: tx.expires_at });
            }
            let until_expiry = tokio::time::Instant::now()
                + Duration::from_secs(u64_of(tx.expires_at).saturating_sub(now) + 1);
            let wake = deadline.min(until_expiry);
            let timed_out = tokio::time::timeout_at(wake, changes.changed()).await.is_err();
            if timed_out && wake == deadline {
                return Ok(TransactionStatus { transaction_id: tx.id, status, expires_at: tx.expires_at });
            }
        }
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
    async fn the_hub_wakes_subscribers_and_forgets_idle_keys() {
        let hub = Hub::default();
        let mut first = hub.subscribe("user:1");
        hub.publish("user:1");
        assert!(first.has_changed().unwrap());
        first.changed().await.unwrap();
        hub.publish("user:2");
        assert_eq!(hub.len(), 1, "publishing to nobody creates nothing");
        drop(first);
        hub.publish("user:1");
        assert!(hub.is_empty(), "a channel nobody listens to is dropped");
    }
}
