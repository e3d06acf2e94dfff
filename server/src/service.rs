//! The verification server's operations: users, token enrollment and management, validation, audit.
//!
//! The per-token rules (windows, replay, lockout, drift, resync) are `tessera_core::verifier`'s;
//! this layer loads state, asks the core, and stores the outcome atomically with its audit record.
//! HTTP handlers and `tessera-server admin` subcommands both call these functions, so an action
//! behaves and is audited the same way whichever door it came through.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tessera_core::otp::{Algorithm, Digits, OtpMethod, Period, normalize_code_input};
use tessera_core::otpauth::OtpAuth;
use tessera_core::qr;
use tessera_core::secret::{SecretBytes, SecretString, fill_random};
use tessera_core::verifier::{self, Policy, RejectReason, TokenState, Verdict};
use utoipa::ToSchema;

use crate::applications::{Application, ApplicationCache};
use crate::config::Limits;
use crate::keys::{self, KeyError, ServerKey};
use crate::metrics::Metrics;
use crate::ratelimit::Limiter;
use crate::store::{
    AdminKeyRow, AuditEntry, AuditFilter, NewAudit, NewToken, StateUpdate, Store, StoreError, TokenRow,
    UserChange, UserRow,
};

/// Bytes of seed generated per token: 160 bits (RFC 4226 §4's recommendation).
pub const SEED_BYTES: usize = 20;
/// Compare-and-swap attempts before a contended validation gives up.
const MAX_ATTEMPTS: usize = 16;
/// A password ending in this asks for a passcode instead of a push.
pub const NOPUSH_SUFFIX: &str = "-nopush";
/// Fresh serials tried when one is taken.
const SERIAL_ATTEMPTS: usize = 4;

/// Who is acting, for the audit log.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An HTTP client authenticated by an admin API key.
    Admin {
        /// The key's name.
        key: String,
        /// The client's address.
        ip: Option<IpAddr>,
    },
    /// `tessera-server admin` on the server's machine.
    Cli,
}

impl Actor {
    fn audit_name(&self) -> String {
        match self {
            Self::Admin { key, .. } => format!("admin:{key}"),
            Self::Cli => "cli".into(),
        }
    }

    fn ip(&self) -> Option<String> {
        match self {
            Self::Admin { ip, .. } => ip.map(|ip| ip.to_string()),
            Self::Cli => None,
        }
    }
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such user or token.
    #[error("{0} '{1}' not found")]
    NotFound(&'static str, String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidInput(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key material failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The caller's credentials (device key, enrollment link) were refused.
    #[error("{0}")]
    Unauthorized(String),
    /// The thing asked about has expired.
    #[error("{0}")]
    Gone(String),
    /// Too many attempts.
    #[error("{0}")]
    TooManyRequests(String),
    /// The server holds as much of this kind of work as it may.
    #[error("{0}")]
    Busy(String),
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Unique name, 1–128 printable characters.
    pub username: String,
    /// Optional password or PIN checked at validation (4–1024 characters).
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    /// Phone number for SMS/voice passcodes, E.164 (`+` and 7–15 digits).
    pub phone: Option<String>,
    /// Email address for emailed passcodes.
    pub email: Option<String>,
}

/// Changes to a user; absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    /// New password/PIN; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<SecretString>>,
    /// New phone; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// New email; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
}

fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Name.
    pub username: String,
    /// Whether a password/PIN is required at validation.
    pub has_password: bool,
    /// Consecutive wrong passwords.
    pub password_failures: u32,
    /// Locked by wrong passwords (every validation answers `locked` until the lock lifts or an
    /// administrator unlocks the user).
    pub locked: bool,
    /// Phone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl UserView {
    fn of(user: &UserRow, now: u64, policy: &Policy) -> Self {
        Self {
            username: user.username.clone(),
            has_password: user.password_hash.is_some(),
            password_failures: user.password_lockout.failures,
            locked: user.password_lockout.is_locked(now, policy),
            phone: user.phone.clone(),
            email: user.email.clone(),
            created_at: user.created_at,
        }
    }
}

/// What to enroll.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// `totp` or `hotp`.
    pub kind: TokenKind,
    /// `SHA1` (default), `SHA256` or `SHA512`.
    pub algorithm: Option<String>,
    /// 6 (default) to 10.
    pub digits: Option<u8>,
    /// TOTP period in seconds, 10–300 (default 30).
    pub period: Option<u32>,
    /// Free text shown in token lists.
    pub description: Option<String>,
}

/// Token kinds that can be enrolled by this server so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Time-based codes.
    Totp,
    /// Counter-based codes.
    Hotp,
    /// A push device (the Tessera app or CLI): approves logins, and is a TOTP token too.
    Push,
}

impl TokenKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Hotp => "hotp",
            Self::Push => "push",
        }
    }
}

/// A new token's enrollment data. The URI and QR codes carry the seed: shown once, never stored in clear.
#[derive(Serialize, ToSchema)]
pub struct Enrollment {
    /// The token's public identifier.
    pub serial: String,
    /// TOTP/HOTP: `otpauth://` URI for any authenticator (`tessera add URI`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub otpauth_uri: Option<SecretString>,
    /// Push: `tessera://enroll?...` link with a single-use credential (`tessera enroll LINK`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub enrollment_uri: Option<SecretString>,
    /// The URI or link as a QR code, PNG, base64 (`tessera add --qr FILE`, `tessera enroll FILE`).
    pub qr_png_base64: String,
    /// The URI as a QR code, SVG.
    pub qr_svg: String,
}

impl Enrollment {
    /// The enrollment for a new token: its URI (an `otpauth://` seed record, or a push token's
    /// `tessera://enroll` link) and the URI as QR codes.
    pub(crate) fn new(serial: String, kind: TokenKind, uri: SecretString) -> Result<Self, ServiceError> {
        let invalid = |e: qr::QrError| ServiceError::InvalidInput(e.to_string());
        let qr_png_base64 = data_encoding::BASE64.encode(&qr::render_png(uri.expose(), 8).map_err(invalid)?);
        let qr_svg = qr::render_svg(uri.expose()).map_err(invalid)?;
        let (otpauth_uri, enrollment_uri) =
            if kind == TokenKind::Push { (None, Some(uri)) } else { (Some(uri), None) };
        Ok(Self { serial, otpauth_uri, enrollment_uri, qr_png_base64, qr_svg })
    }
}

/// A new token's stored fields, apart from the serial that [`Service::insert_token`] picks.
pub(crate) struct TokenDraft<'a> {
    pub kind: TokenKind,
    pub algorithm: &'a str,
    pub digits: i64,
    pub period: i64,
    pub seed: &'a SecretBytes,
    pub description: Option<&'a str>,
    /// A push token's single-use enrollment credential: its hash and expiry (Unix seconds).
    pub enrollment: Option<(&'a str, i64)>,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment").field("serial", &self.serial).finish_non_exhaustive()
    }
}

/// A token as the API shows it (never the seed).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Public identifier.
    pub serial: String,
    /// Owner.
    pub username: String,
    /// `totp` or `hotp`.
    pub kind: String,
    /// HMAC algorithm.
    pub algorithm: String,
    /// Code length.
    pub digits: i64,
    /// TOTP period (seconds).
    pub period: Option<i64>,
    /// Free text.
    pub description: Option<String>,
    /// Accepts codes.
    pub enabled: bool,
    /// Locked by failures.
    pub locked: bool,
    /// Consecutive failures.
    pub failures: u32,
    /// TOTP: steps the token's clock runs ahead (+) or behind (−).
    pub drift: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last accepted code.
    pub last_used_at: Option<i64>,
    /// Push: whether a device has registered (enrollment links work once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<bool>,
    /// Push: the registered device's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// Push: `fcm` or `apns` when the device can be woken through that service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake: Option<String>,
}

/// A validation request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The user.
    pub username: String,
    /// The user's password/PIN, when they have one.
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    /// The one-time code (spaces and dashes are ignored). Empty or one character asks the
    /// user's push device instead (unless the password ends in `-nopush`).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub passcode: Option<SecretString>,
    /// Completes a push: the transaction a previous `challenge` answer named.
    pub transaction_id: Option<String>,
    /// The end user's address, when the caller is an application relaying the login.
    pub client_ip: Option<String>,
    /// The end user's browser or program, shown on the device.
    pub user_agent: Option<String>,
    /// The application's name, shown on the device.
    pub service: Option<String>,
}

/// `accept`, `reject`, or (for push and delivered passcodes) `challenge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValidationResult {
    /// The passcode is right (or the push was approved).
    Accept,
    /// It is not, or the account may not authenticate now.
    Reject,
    /// More is needed: approve on the device (with `transaction_id`), or enter a passcode.
    Challenge,
}

/// What a caller may learn about a rejection: never which part was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicReason {
    /// Wrong user, password, PIN or passcode (deliberately not distinguished).
    InvalidCredentials,
    /// Too many failures: the user's tokens are locked.
    Locked,
    /// Too many requests from this client or for this user.
    RateLimited,
}

/// The answer to a validation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValidateResponse {
    /// Outcome.
    pub result: ValidationResult,
    /// Human-readable text for the login screen.
    pub message: String,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<PublicReason>,
    /// The token that accepted the passcode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// A push was sent: wait on `GET /api/v1/transactions/{id}`, then validate with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The number to show on the login screen for number matching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
}

impl ValidateResponse {
    fn accept(serial: String) -> Self {
        Self {
            result: ValidationResult::Accept,
            message: "passcode accepted".into(),
            reason: None,
            serial: Some(serial),
            transaction_id: None,
            number: None,
        }
    }

    pub(crate) fn accept_push(serial: Option<String>) -> Self {
        Self { message: "approved on the device".into(), serial, ..Self::accept(String::new()) }
    }

    pub(crate) fn reject(reason: PublicReason) -> Self {
        let message = match reason {
            PublicReason::InvalidCredentials => "authentication failed",
            PublicReason::Locked => "too many failed attempts: the account is locked",
            PublicReason::RateLimited => "too many attempts: try again later",
        };
        Self {
            result: ValidationResult::Reject,
            message: message.into(),
            reason: Some(reason),
            serial: None,
            transaction_id: None,
            number: None,
        }
    }

    pub(crate) fn challenge(transaction_id: Option<String>, number: Option<u8>, message: String) -> Self {
        Self {
            result: ValidationResult::Challenge,
            message,
            reason: None,
            serial: None,
            transaction_id,
            number,
        }
    }
}

/// The server's state shared by all requests.
pub struct Service {
    pub(crate) store: Store,
    pub(crate) key: ServerKey,
    pub(crate) issuer: String,
    pub(crate) policy: Policy,
    pub(crate) limiter: Limiter,
    pub(crate) metrics: Arc<Metrics>,
    admin_token: Option<SecretString>,
    hashing: tokio::sync::Semaphore,
    pub(crate) push: crate::config::PushPolicy,
    pub(crate) push_key: tessera_core::push::KeyPair,
    pub(crate) hub: crate::push::Hub,
    pub(crate) streams: crate::push::DeviceStreams,
    pub(crate) http: reqwest::Client,
    pub(crate) waker: Arc<crate::wake::Waker>,
    pub(crate) applications: ApplicationCache,
    pub(crate) limits: Limits,
    require_application_key: bool,
    stopping: tokio::sync::watch::Sender<bool>,
}

/// Who asks for a validation, as the HTTP edge saw it.
#[derive(Debug, Clone, Default)]
pub struct Caller<'a> {
    /// The client's address (the connection's, or the one a trusted proxy appended).
    pub ip: Option<IpAddr>,
    /// The request's `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// The relying party, when it presented its application key.
    pub application: Option<Application>,
}

impl Caller<'_> {
    /// The audit log's actor: `app:<name>` for an application, `validate` for anonymous calls.
    fn audit_actor(&self) -> std::borrow::Cow<'static, str> {
        match &self.application {
            Some(app) => format!("app:{}", app.name).into(),
            None => "validate".into(),
        }
    }
}

/// The meta entry saying seeds are sealed with the key derived from the server key.
const SEED_SEALING_MARKER: &str = "seed_sealing";
const SEED_SEALING_VERSION: &[u8] = b"hkdf-sha256/v1";
const KEY_CHECK: &str = "server_key_check";

/// A factory of outbound HTTPS clients (webhook, FCM, APNs) that trust the platform's CAs plus
/// those in `ca_file`, with a 10 s timeout, and follow no redirect (none of these services sends
/// one, and one to plain HTTP would carry an alert or an access token in the clear).
fn outbound_client(
    ca_file: Option<&std::path::Path>,
) -> Result<impl Fn() -> reqwest::ClientBuilder, ServiceError> {
    let extra = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| ServiceError::InvalidInput(format!("push.ca_file {}: {e}", path.display())))?;
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ServiceError::InvalidInput(format!(
                    "push.ca_file {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?
        }
        None => Vec::new(),
    };
    Ok(move || {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_merge(extra.clone())
    })
}

pub use tessera_core::otp::unix_now;

pub(crate) fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn now_i64() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}

/// An audit record of an administrative action, stored in the same transaction as the action.
pub(crate) struct AdminAudit {
    actor: String,
    ip: Option<String>,
    action: &'static str,
    username: Option<String>,
    serial: Option<String>,
    reason: Option<String>,
}

impl AdminAudit {
    pub(crate) fn new(actor: &Actor, action: &'static str) -> Self {
        Self { actor: actor.audit_name(), ip: actor.ip(), action, username: None, serial: None, reason: None }
    }

    pub(crate) fn user(mut self, username: &str) -> Self {
        self.username = Some(username.to_owned());
        self
    }

    pub(crate) fn serial(mut self, serial: &str) -> Self {
        self.serial = Some(serial.to_owned());
        self
    }

    pub(crate) fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    pub(crate) fn record(&self) -> NewAudit<'_> {
        NewAudit {
            at_ms: unix_now_ms(),
            actor: &self.actor,
            action: self.action,
            username: self.username.as_deref(),
            serial: self.serial.as_deref(),
            client_ip: self.ip.as_deref(),
            result: "ok",
            reason: self.reason.as_deref(),
        }
    }
}

impl Service {
    /// A service over an opened store. Refuses a server key that did not encrypt this database's seeds.
    pub async fn new(
        store: Store,
        key: ServerKey,
        config: &crate::config::Config,
        admin_token: Option<SecretString>,
    ) -> Result<Arc<Self>, ServiceError> {
        check_key_and_reseal(&store, &key).await?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let push_key = key.push_signing_key()?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let outbound = outbound_client(config.push.ca_file.as_deref())?;
        let http = outbound().build().map_err(|e| ServiceError::InvalidInput(format!("HTTP client: {e}")))?;
        let waker = crate::wake::Waker::new(&config.push, &http, &outbound)
            .map_err(|e| ServiceError::InvalidInput(format!("push wake-ups: {e}")))?;
        Ok(Arc::new(Self {
            store,
            key,
            issuer: config.issuer.clone(),
            policy: config.policy,
            limiter: Limiter::new(config.rate_limits, &config.policy),
            metrics: Arc::new(Metrics::new()),
            admin_token,
            hashing: tokio::sync::Semaphore::new(2 * cores),
            push: config.push.clone(),
            push_key,
            hub: crate::push::Hub::default(),
            streams: crate::push::DeviceStreams::new(config.limits),
            http,
            waker: Arc::new(waker),
            applications: ApplicationCache::default(),
            limits: config.limits,
            require_application_key: config.require_application_key,
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// Whether `/validate` refuses callers without an application key.
    pub fn requires_application_key(&self) -> bool {
        self.require_application_key
    }

    /// Handles another replica's notification: a revoked application empties the key cache;
    /// anything else wakes this process's waiters on that key.
    pub fn notified(&self, key: &str) {
        if key == crate::applications::APPLICATIONS_CHANGED {
            self.applications.clear();
        } else {
            self.hub.publish(key);
        }
    }

    /// Deletes push transactions created more than a day ago; returns how many.
    pub async fn prune_transactions(&self) -> Result<u64, ServiceError> {
        let cutoff = now_i64().saturating_sub(TRANSACTION_RETENTION_SECS);
        Ok(self.store.prune_transactions(cutoff).await?)
    }

    /// Starts the shutdown: open device channels close (devices reconnect, to another replica
    /// if there is one), so a graceful shutdown does not wait on them forever.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Service::stop`] was called.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// The store (for health checks and shutdown).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The rate limiter (for periodic clean-up).
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Deletes audit records older than `days` days; returns how many.
    pub async fn prune_audit(&self, days: u32) -> Result<u64, ServiceError> {
        let cutoff = unix_now_ms().saturating_sub(i64::from(days).saturating_mul(86_400_000));
        Ok(self.store.prune_audit(cutoff).await?)
    }

    // --- admin keys ---------------------------------------------------------------------------

    /// The admin key's name when `presented` is a valid admin key; failures are counted per
    /// client address (too many are refused) and audited at most once a minute per client.
    pub async fn authenticate_admin(
        &self,
        presented: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<AdminAuth, ServiceError> {
        if let Some(presented) = presented {
            if let Some(configured) = &self.admin_token
                && keys::admin_key_matches(presented, configured.expose())
            {
                return Ok(AdminAuth::Admin(Actor::Admin { key: "env".into(), ip }));
            }
            if let Some(key) = self.store.admin_key_name(&keys::credential_hash(presented)).await? {
                return Ok(AdminAuth::Admin(Actor::Admin { key, ip }));
            }
        }
        let allowed = self.limiter.allow_admin_failure(ip);
        if self.limiter.audit_refusal("admin", ip, "") {
            let ip = ip.map(|ip| ip.to_string());
            let reason = if presented.is_some() { "unknown_key" } else { "missing_key" };
            self.store
                .audit(&NewAudit {
                    at_ms: unix_now_ms(),
                    actor: "http",
                    action: "admin.authenticate",
                    username: None,
                    serial: None,
                    client_ip: ip.as_deref(),
                    result: "reject",
                    reason: Some(reason),
                })
                .await?;
        }
        Ok(if allowed { AdminAuth::Refused } else { AdminAuth::TooManyFailures })
    }

    /// Creates an admin key; the returned key is shown once and never stored.
    pub async fn create_admin_key(&self, actor: &Actor, name: &str) -> Result<SecretString, ServiceError> {
        check_name("key name", name)?;
        let key = keys::new_key(keys::ADMIN_KEY_PREFIX)?;
        let audit = AdminAudit::new(actor, "admin_key.create").reason(name);
        self.store
            .create_admin_key(name, &keys::credential_hash(key.expose()), now_i64(), &audit.record())
            .await
            .map_err(conflict)?;
        Ok(key)
    }

    /// The admin keys (never the keys themselves).
    pub async fn admin_keys(&self) -> Result<Vec<AdminKeyRow>, ServiceError> {
        Ok(self.store.admin_keys().await?)
    }

    /// Revokes an admin key: it stops working at once.
    pub async fn revoke_admin_key(&self, actor: &Actor, id: i64) -> Result<(), ServiceError> {
        let key = self
            .store
            .admin_key(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("admin key", id.to_string()))?;
        let audit = AdminAudit::new(actor, "admin_key.revoke").reason(&key.name);
        if !self.store.delete_admin_key(id, &audit.record()).await? {
            return Err(ServiceError::NotFound("admin key", id.to_string()));
        }
        Ok(())
    }

    /// True when the database has no admin key yet.
    pub async fn has_no_admin_keys(&self) -> Result<bool, ServiceError> {
        Ok(self.store.admin_key_count().await? == 0)
    }

    // --- users --------------------------------------------------------------------------------

    /// Creates a user.
    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<UserView, ServiceError> {
        check_name("username", &new.username)?;
        let phone = new.phone.map(check_phone).transpose()?;
        let email = new.email.map(check_email).transpose()?;
        let hash = match new.password {
            Some(password) => Some(self.hash_password(password).await?),
            None => None,
        };
        let audit = AdminAudit::new(actor, "user.create").user(&new.username);
        let user = self
            .store
            .create_user(
                &new.username,
                hash.as_deref(),
                phone.as_deref(),
                email.as_deref(),
                now_i64(),
                &audit.record(),
            )
            .await
            .map_err(conflict)?;
        Ok(self.user_view(&user))
    }

    fn user_view(&self, user: &UserRow) -> UserView {
        UserView::of(user, unix_now(), &self.policy)
    }

    /// One user.
    pub async fn user(&self, username: &str) -> Result<UserView, ServiceError> {
        Ok(self.user_view(&self.existing_user(username).await?))
    }

    /// All users.
    pub async fn users(&self) -> Result<Vec<UserView>, ServiceError> {
        Ok(self.store.users().await?.iter().map(|user| self.user_view(user)).collect())
    }

    /// Clears a user's password lock and unlocks all their tokens, audited in one transaction.
    pub async fn unlock_user(&self, actor: &Actor, username: &str) -> Result<UserView, ServiceError> {
        for _ in 0..MAX_ATTEMPTS {
            let (user, tokens) = self
                .store
                .user_with_tokens(username)
                .await?
                .ok_or_else(|| ServiceError::NotFound("user", username.into()))?;
            let updates: Vec<StateUpdate> = tokens
                .iter()
                .filter(|t| t.state.failures > 0 || t.state.locked_at.is_some())
                .map(|t| StateUpdate {
                    token_id: t.id,
                    expected_version: t.version,
                    state: t.state.unlocked(),
                    used_at: None,
                })
                .collect();
            let audit = AdminAudit::new(actor, "user.unlock").user(username);
            let change = UserChange::Unlock { user_id: user.id };
            if self.store.commit(&updates, Some(&change), &audit.record()).await? {
                let unlocked = UserRow { password_lockout: Default::default(), ..user };
                return Ok(self.user_view(&unlocked));
            }
        }
        Err(ServiceError::Conflict("the user is changing too often; try again".into()))
    }

    /// Changes a user's password, phone or email.
    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        changes: UserChanges,
    ) -> Result<UserView, ServiceError> {
        let mut user = self.existing_user(username).await?;
        if let Some(password) = changes.password {
            user.password_hash = match password {
                Some(password) => Some(self.hash_password(password).await?),
                None => None,
            };
        }
        if let Some(phone) = changes.phone {
            user.phone = phone.map(check_phone).transpose()?;
        }
        if let Some(email) = changes.email {
            user.email = email.map(check_email).transpose()?;
        }
        let audit = AdminAudit::new(actor, "user.update").user(username);
        if !self.store.update_user(&user, &audit.record()).await? {
            return Err(ServiceError::NotFound("user", username.into()));
        }
        Ok(self.user_view(&user))
    }

    /// Deletes a user and their tokens.
    pub async fn delete_user(&self, actor: &Actor, username: &str) -> Result<(), ServiceError> {
        let audit = AdminAudit::new(actor, "user.delete").user(username);
        let user = self.existing_user(username).await?;
        let tokens = self.store.tokens_of(user.id).await?;
        if !self.store.delete_user(username, &audit.record()).await? {
            return Err(ServiceError::NotFound("user", username.into()));
        }
        for token in tokens.iter().filter(|t| t.kind == "push") {
            self.revoke_device(&token.serial).await;
        }
        Ok(())
    }

    async fn existing_user(&self, username: &str) -> Result<UserRow, ServiceError> {
        self.store.user(username).await?.ok_or_else(|| ServiceError::NotFound("user", username.into()))
    }

    // --- tokens -------------------------------------------------------------------------------

    /// Enrolls a new token for a user: a 160-bit seed from the OS CSPRNG, sealed with the server key.
    pub async fn enroll(
        &self,
        actor: &Actor,
        username: &str,
        request: EnrollRequest,
    ) -> Result<Enrollment, ServiceError> {
        let user = self.existing_user(username).await?;
        if let Some(description) = &request.description {
            check_text("description", description, 256)?;
        }
        if request.kind == TokenKind::Push {
            return self.enroll_push(actor, &user, request.description.as_deref()).await;
        }
        let invalid = |e: tessera_core::otp::OtpError| ServiceError::InvalidInput(e.to_string());
        let algorithm = Algorithm::parse(request.algorithm.as_deref().unwrap_or("SHA1")).map_err(invalid)?;
        let digits = Digits::new(request.digits.unwrap_or(6)).map_err(invalid)?;
        let period = request.period.unwrap_or(30);
        if !(10..=300).contains(&period) {
            return Err(ServiceError::InvalidInput("period must be 10 to 300 seconds".into()));
        }
        let period = Period::new(period).map_err(invalid)?;
        let method = match request.kind {
            TokenKind::Hotp => OtpMethod::Hotp { algorithm, digits, counter: 0 },
            TokenKind::Totp | TokenKind::Push => OtpMethod::Totp { algorithm, digits, period },
        };
        let seed = SecretBytes::random(SEED_BYTES).map_err(|e| KeyError::Random(e.to_string()))?;
        let otp = OtpAuth::new(Some(self.issuer.clone()), user.username.clone(), seed, method)
            .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        let serial = self
            .insert_token(
                actor,
                &user,
                TokenDraft {
                    kind: request.kind,
                    algorithm: algorithm.as_str(),
                    digits: i64::from(digits.get()),
                    period: i64::from(period.get()),
                    seed: otp.secret(),
                    description: request.description.as_deref(),
                    enrollment: None,
                },
            )
            .await?;
        Enrollment::new(serial, request.kind, otp.to_uri())
    }

    /// Stores a new token under a fresh random serial (retrying the rare collision), with its
    /// seed sealed to that serial and an audit record in the same transaction.
    pub(crate) async fn insert_token(
        &self,
        actor: &Actor,
        user: &UserRow,
        draft: TokenDraft<'_>,
    ) -> Result<String, ServiceError> {
        for _ in 0..SERIAL_ATTEMPTS {
            let serial = new_serial(draft.kind)?;
            let sealed = self.key.seal_seed(&serial, draft.seed)?;
            let audit = AdminAudit::new(actor, "token.enroll")
                .user(&user.username)
                .serial(&serial)
                .reason(draft.kind.as_str());
            let created = self
                .store
                .create_token(
                    NewToken {
                        serial: &serial,
                        user_id: user.id,
                        kind: draft.kind.as_str(),
                        algorithm: draft.algorithm,
                        digits: draft.digits,
                        period: draft.period,
                        seed: &sealed,
                        description: draft.description,
                        created_at: now_i64(),
                        enrollment_code_hash: draft.enrollment.map(|(hash, _)| hash),
                        enrollment_expires_at: draft.enrollment.map(|(_, expires)| expires),
                    },
                    &audit.record(),
                )
                .await;
            match created {
                Ok(()) => return Ok(serial),
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Conflict("could not find a free token serial".into()))
    }

    /// A user's tokens.
    pub async fn tokens(&self, username: &str) -> Result<Vec<TokenView>, ServiceError> {
        let user = self.existing_user(username).await?;
        let now = unix_now();
        Ok(self
            .store
            .tokens_of(user.id)
            .await?
            .iter()
            .map(|t| self.token_view(t, &user.username, now))
            .collect())
    }

    fn token_view(&self, token: &TokenRow, username: &str, now: u64) -> TokenView {
        TokenView {
            serial: token.serial.clone(),
            username: username.to_owned(),
            kind: token.kind.clone(),
            algorithm: token.algorithm.clone(),
            digits: token.digits,
            period: matches!(token.kind.as_str(), "totp" | "push").then_some(token.period),
            description: token.description.clone(),
            enabled: token.state.enabled,
            locked: token.state.is_locked(now, &self.policy),
            failures: token.state.failures,
            drift: token.state.drift,
            created_at: token.created_at,
            last_used_at: token.last_used_at,
            registered: (token.kind == "push").then_some(token.device_public_key.is_some()),
            device_name: token.device_name.clone(),
            wake: token.wake_service.clone(),
        }
    }

    /// Enables or disables a token.
    pub async fn set_enabled(
        &self,
        actor: &Actor,
        serial: &str,
        enabled: bool,
    ) -> Result<TokenView, ServiceError> {
        let action = if enabled { "token.enable" } else { "token.disable" };
        let view = self
            .change_token(actor, serial, action, false, |state| Ok(TokenState { enabled, ..state }))
            .await?;
        if !enabled {
            self.revoke_device(serial).await;
        }
        Ok(view)
    }

    /// Clears a token's failures and lock, and its owner's password lock (a locked user could not
    /// use the token anyway).
    pub async fn unlock(&self, actor: &Actor, serial: &str) -> Result<TokenView, ServiceError> {
        self.change_token(actor, serial, "token.unlock", true, |state| Ok(state.unlocked())).await
    }

    /// Resynchronizes a token from two consecutive codes.
    pub async fn resync(
        &self,
        actor: &Actor,
        serial: &str,
        first: &str,
        second: &str,
    ) -> Result<TokenView, ServiceError> {
        let token = self.existing_token(serial).await?;
        let (seed, method) = self.material(&token)?;
        let first = normalize_code_input(first);
        let second = normalize_code_input(second);
        let now = unix_now();
        let policy = self.policy;
        self.change_token(actor, serial, "token.resync", false, move |state| {
            verifier::resync(&seed, &method, state, first.expose(), second.expose(), now, &policy)
                .map_err(|e| ServiceError::InvalidInput(e.to_string()))
        })
        .await
    }

    /// Deletes a token.
    pub async fn delete_token(&self, actor: &Actor, serial: &str) -> Result<(), ServiceError> {
        let token = self.existing_token(serial).await?;
        let owner = self.owner_name(&token).await?.unwrap_or_default();
        let audit = AdminAudit::new(actor, "token.delete").user(&owner).serial(serial);
        if !self.store.delete_token(serial, &audit.record()).await? {
            return Err(ServiceError::NotFound("token", serial.into()));
        }
        self.revoke_device(serial).await;
        Ok(())
    }

    async fn existing_token(&self, serial: &str) -> Result<TokenRow, ServiceError> {
        self.store.token(serial).await?.ok_or_else(|| ServiceError::NotFound("token", serial.into()))
    }

    async fn owner_name(&self, token: &TokenRow) -> Result<Option<String>, ServiceError> {
        Ok(self.store.username_of(token.user_id).await?)
    }

    /// Applies an administrative state change with compare-and-swap, audited in the same transaction.
    async fn change_token(
        &self,
        actor: &Actor,
        serial: &str,
        action: &'static str,
        unlock_owner: bool,
        change: impl Fn(TokenState) -> Result<TokenState, ServiceError>,
    ) -> Result<TokenView, ServiceError> {
        for _ in 0..MAX_ATTEMPTS {
            let token = self.existing_token(serial).await?;
            let owner = self.owner_name(&token).await?.unwrap_or_default();
            let state = change(token.state)?;
            let update =
                StateUpdate { token_id: token.id, expected_version: token.version, state, used_at: None };
            let audit = AdminAudit::new(actor, action).user(&owner).serial(serial);
            let owner_change = unlock_owner.then_some(UserChange::Unlock { user_id: token.user_id });
            if self.store.commit(&[update], owner_change.as_ref(), &audit.record()).await? {
                let updated = TokenRow { state, ..token };
                return Ok(self.token_view(&updated, &owner, unix_now()));
            }
        }
        Err(ServiceError::Conflict("the token is changing too often; try again".into()))
    }

    pub(crate) fn material(&self, token: &TokenRow) -> Result<(SecretBytes, OtpMethod), ServiceError> {
        let sealed = token.seed.as_deref().ok_or(StoreError::Corrupt("token without a seed"))?;
        let seed = self.key.open_seed(&token.serial, sealed)?;
        let corrupt = |_| StoreError::Corrupt("token parameters");
        let algorithm = Algorithm::parse(&token.algorithm).map_err(corrupt)?;
        let digits = Digits::new(u8::try_from(token.digits).unwrap_or(0)).map_err(corrupt)?;
        let method = match token.kind.as_str() {
            "totp" | "push" => OtpMethod::Totp {
                algorithm,
                digits,
                period: Period::new(u32::try_from(token.period).unwrap_or(0)).map_err(corrupt)?,
            },
            "hotp" => OtpMethod::Hotp { algorithm, digits, counter: token.state.counter },
            _ => return Err(StoreError::Corrupt("unknown token kind").into()),
        };
        Ok((seed, method))
    }

    // --- passwords ----------------------------------------------------------------------------

    /// Hashes a new password/PIN (Argon2id), at most `2 × cores` at a time.
    async fn hash_password(&self, password: SecretString) -> Result<String, ServiceError> {
        let length = password.char_count();
        if !(4..=1024).contains(&length) {
            return Err(ServiceError::InvalidInput("a password/PIN has 4 to 1024 characters".into()));
        }
        let _permit = self.hashing.acquire().await.map_err(|e| KeyError::Hashing(e.to_string()))?;
        tokio::task::spawn_blocking(move || keys::hash_password(&password))
            .await
            .map_err(|e| KeyError::Hashing(e.to_string()))?
            .map_err(ServiceError::from)
    }

    /// Checks a password/PIN against a hash, or against a hash nothing matches when there is none,
    /// so the work (and the time) is the same whether or not the user exists or has a password.
    /// At most `2 × cores` checks run at once: each takes 19 MiB.
    pub(crate) async fn check_password(&self, password: &SecretString, hash: Option<&str>) -> bool {
        let Ok(_permit) = self.hashing.acquire().await else { return false };
        let password = password.clone();
        let hash = hash.unwrap_or_else(|| keys::dummy_password_hash()).to_owned();
        tokio::task::spawn_blocking(move || keys::verify_password(password.expose(), &hash))
            .await
            .unwrap_or(false)
    }

    // --- validation ---------------------------------------------------------------------------

    /// Checks a user's passcode (and password/PIN, when they have one) against their tokens.
    ///
    /// Every outcome is audited with its precise reason (refusals by rate limit, and unknown user
    /// names, at most once a minute per client and name); the caller only learns accept, locked,
    /// rate-limited or "authentication failed". What the user's device shows about the login (the
    /// service, the end user's address and browser) comes from the caller's application key, or
    /// from the connection when there is none, never from the request alone.
    pub async fn validate(
        &self,
        request: ValidateRequest,
        caller: &Caller<'_>,
    ) -> Result<ValidateResponse, ServiceError> {
        check_name("username", &request.username)?;
        if let Some(ip) = &request.client_ip {
            ip.parse::<IpAddr>()
                .map_err(|_| ServiceError::InvalidInput("client_ip must be an IP address".into()))?;
        }
        for (field, value, max) in [
            ("user_agent", &request.user_agent, 512),
            ("service", &request.service, 128),
            ("transaction_id", &request.transaction_id, 64),
        ] {
            if let Some(value) = value {
                check_text(field, value, max)?;
            }
        }
        let started = Instant::now();
        let attempt = Attempt::new(&request, caller);
        let (response, reason, serial) = self.decide(&request, &attempt).await?;
        let result = match response.result {
            ValidationResult::Accept => "accept",
            ValidationResult::Reject => "reject",
            ValidationResult::Challenge => "challenge",
        };
        self.metrics.validation(result, started.elapsed().as_secs_f64());
        tracing::info!(username = %request.username, client_ip = ?caller.ip, application = %attempt.actor, result, reason, serial = serial.as_deref(), "validation");
        Ok(response)
    }

    async fn decide(
        &self,
        request: &ValidateRequest,
        attempt: &Attempt<'_>,
    ) -> Result<(ValidateResponse, &'static str, Option<String>), ServiceError> {
        let reject = |public, reason| (ValidateResponse::reject(public), reason, None);
        if !self.limiter.allow_validation(attempt.ip, &request.username) {
            self.audit_refusal("rate_limited", attempt).await?;
            return Ok(reject(PublicReason::RateLimited, "rate_limited"));
        }
        let Some((user, tokens)) = self.store.user_with_tokens(&request.username).await? else {
            return self.unknown_user(attempt).await;
        };
        if let Some(transaction_id) = &request.transaction_id {
            let (response, reason) = self.finish_push(&user, transaction_id, attempt.ip_text()).await?;
            return Ok((response, reason, None));
        }
        let now = unix_now();
        let tokens = usable_tokens(tokens);
        if self.is_locked_out(&user, &tokens, now) {
            // The same Argon2 work as any other answer, so the answer cannot be used to test
            // passwords while the account is locked.
            if let Some(password) = &attempt.password {
                self.check_password(password, user.password_hash.as_deref()).await;
            }
            self.store.audit(&attempt.rejected("locked")).await?;
            return Ok(reject(PublicReason::Locked, "locked"));
        }
        if !self.password_matches(&user, attempt.password.as_ref()).await {
            return self.wrong_password(user, tokens, attempt).await;
        }
        if tokens.is_empty() {
            self.store.audit(&attempt.rejected("no_token")).await?;
            return Ok(reject(PublicReason::InvalidCredentials, "no_token"));
        }
        let passcode =
            normalize_code_input(request.passcode.as_ref().map(SecretString::expose).unwrap_or_default());
        if passcode.char_count() <= 1 {
            if attempt.nopush {
                self.store.audit(&NewAudit { result: "challenge", ..attempt.rejected("nopush") }).await?;
                let message = "enter the passcode from your token".to_owned();
                return Ok((ValidateResponse::challenge(None, None, message), "nopush", None));
            }
            if Self::has_push_device(&tokens) {
                let (response, reason) = self.start_push(&user, &attempt.push_context(&self.push)).await?;
                return Ok((response, reason, None));
            }
        }
        self.check_passcode(user, tokens, &passcode, attempt).await
    }

    /// A name with no account: the same Argon2 work and the same lock after `max_failures` as a
    /// real account, so a run of failures does not tell which names exist.
    async fn unknown_user(
        &self,
        attempt: &Attempt<'_>,
    ) -> Result<(ValidateResponse, &'static str, Option<String>), ServiceError> {
        if let Some(password) = &attempt.password {
            self.check_password(password, None).await;
        }
        let (public, reason) = if self.limiter.allow_unknown_user(attempt.username) {
            (PublicReason::InvalidCredentials, "unknown_user")
        } else {
            (PublicReason::Locked, "unknown_user_locked")
        };
        self.audit_refusal(reason, attempt).await?;
        Ok((ValidateResponse::reject(public), reason, None))
    }

    /// Audits a refusal that changes no state, at most once a minute per kind, client and name.
    async fn audit_refusal(&self, reason: &'static str, attempt: &Attempt<'_>) -> Result<(), ServiceError> {
        if self.limiter.audit_refusal(reason, attempt.ip, attempt.username) {
            self.store.audit(&attempt.rejected(reason)).await?;
        }
        Ok(())
    }

    /// True when wrong passwords locked the user, or failures locked every usable token.
    fn is_locked_out(&self, user: &UserRow, usable: &[TokenRow], now: u64) -> bool {
        user.password_lockout.is_locked(now, &self.policy)
            || (!usable.is_empty() && usable.iter().all(|t| t.state.is_locked(now, &self.policy)))
    }

    /// Whether the password is the user's (a user without one needs none).
    pub(crate) async fn password_matches(&self, user: &UserRow, password: Option<&SecretString>) -> bool {
        match (password, user.password_hash.as_deref()) {
            (Some(password), hash) => self.check_password(password, hash).await || hash.is_none(),
            (None, hash) => hash.is_none(),
        }
    }

    /// A wrong password counts once against the user and once on each usable token (a user with
    /// no usable token locks too), in one transaction with the audit record.
    async fn wrong_password(
        &self,
        mut user: UserRow,
        mut tokens: Vec<TokenRow>,
        attempt: &Attempt<'_>,
    ) -> Result<(ValidateResponse, &'static str, Option<String>), ServiceError> {
        let audit = attempt.rejected("wrong_password");
        for attempt_number in 0..MAX_ATTEMPTS {
            if attempt_number > 0 {
                let Some((fresh_user, fresh_tokens)) = self.store.user_with_tokens(&user.username).await?
                else {
                    break;
                };
                (user, tokens) = (fresh_user, usable_tokens(fresh_tokens));
            }
            if self.record_wrong_password(&user, &tokens, &audit).await? {
                return Ok((
                    ValidateResponse::reject(PublicReason::InvalidCredentials),
                    "wrong_password",
                    None,
                ));
            }
        }
        self.store.audit(&attempt.rejected("contention")).await?;
        Ok((ValidateResponse::reject(PublicReason::InvalidCredentials), "contention", None))
    }

    /// Writes one wrong password's failures (user and usable tokens, compare-and-swap) with its
    /// audit record; false when the user or a token moved since it was read.
    pub(crate) async fn record_wrong_password(
        &self,
        user: &UserRow,
        usable: &[TokenRow],
        audit: &NewAudit<'_>,
    ) -> Result<bool, ServiceError> {
        let now = unix_now();
        let decision = Decision::failure_everywhere(usable, now, &self.policy, "wrong_password");
        let lockout = user.password_lockout.after_failure(now, &self.policy);
        let change = UserChange::WrongPassword {
            user_id: user.id,
            expected_failures: user.password_lockout.failures,
            lockout,
        };
        let committed = self.store.commit(&decision.updates, Some(&change), audit).await?;
        if committed {
            let user_locked =
                lockout.is_locked(now, &self.policy) && !user.password_lockout.is_locked(now, &self.policy);
            self.metrics.lockouts(decision.new_lockouts + u64::from(user_locked));
        }
        Ok(committed)
    }

    /// The passcode against the user's usable tokens, committed with compare-and-swap (a
    /// contended token is read again and the code decided again).
    async fn check_passcode(
        &self,
        user: UserRow,
        mut tokens: Vec<TokenRow>,
        passcode: &SecretString,
        attempt: &Attempt<'_>,
    ) -> Result<(ValidateResponse, &'static str, Option<String>), ServiceError> {
        let now = unix_now();
        for attempt_number in 0..MAX_ATTEMPTS {
            if attempt_number > 0 {
                tokens = usable_tokens(self.store.tokens_of(user.id).await?);
            }
            if tokens.is_empty() {
                self.store.audit(&attempt.rejected("no_token")).await?;
                return Ok((ValidateResponse::reject(PublicReason::InvalidCredentials), "no_token", None));
            }
            let decision = self.check_tokens(&tokens, passcode, now)?;
            let audit = NewAudit {
                serial: decision.accepted.as_deref(),
                result: if decision.accepted.is_some() { "accept" } else { "reject" },
                reason: decision.accepted.is_none().then_some(decision.reason),
                ..attempt.rejected(decision.reason)
            };
            let success = decision.accepted.as_ref().map(|_| UserChange::Success {
                user_id: user.id,
                at: i64::try_from(now).unwrap_or(i64::MAX),
            });
            if self.store.commit(&decision.updates, success.as_ref(), &audit).await? {
                self.metrics.lockouts(decision.new_lockouts);
                let response = match &decision.accepted {
                    Some(serial) => ValidateResponse::accept(serial.clone()),
                    None if decision.reason == "locked" => ValidateResponse::reject(PublicReason::Locked),
                    None => ValidateResponse::reject(PublicReason::InvalidCredentials),
                };
                return Ok((response, decision.reason, decision.accepted));
            }
        }
        self.store.audit(&attempt.rejected("contention")).await?;
        Ok((ValidateResponse::reject(PublicReason::InvalidCredentials), "contention", None))
    }

    fn check_tokens(
        &self,
        tokens: &[TokenRow],
        passcode: &SecretString,
        now: u64,
    ) -> Result<Decision, ServiceError> {
        let mut failures = Vec::new();
        let mut reasons = Vec::new();
        for token in tokens {
            let (seed, method) = self.material(token)?;
            let checked = verifier::verify(&seed, &method, token.state, passcode.expose(), now, &self.policy);
            match checked.verdict {
                Verdict::Accepted { .. } => {
                    let update = StateUpdate {
                        token_id: token.id,
                        expected_version: token.version,
                        state: checked.next,
                        used_at: Some(i64::try_from(now).unwrap_or(i64::MAX)),
                    };
                    return Ok(Decision {
                        updates: vec![update],
                        accepted: Some(token.serial.clone()),
                        reason: "accepted",
                        new_lockouts: 0,
                    });
                }
                Verdict::Rejected(reason) => {
                    reasons.push(reason);
                    if checked.next != token.state {
                        failures.push((token, checked.next));
                    }
                }
            }
        }
        let all_locked = reasons.iter().all(|r| matches!(r, RejectReason::Locked | RejectReason::Disabled))
            && reasons.contains(&RejectReason::Locked);
        let reason = if all_locked {
            "locked"
        } else if reasons.contains(&RejectReason::Replayed) {
            "replayed"
        } else {
            "wrong_code"
        };
        Ok(Decision::from_failures(failures, now, &self.policy, reason))
    }

    // --- audit --------------------------------------------------------------------------------

    /// Audit records, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, ServiceError> {
        Ok(self.store.audit_entries(filter).await?)
    }
}

/// The outcome of presenting admin credentials.
#[derive(Debug)]
pub enum AdminAuth {
    /// A valid key.
    Admin(Actor),
    /// No key, or an unknown one.
    Refused,
    /// Too many failed attempts from this address.
    TooManyFailures,
}

/// One validation request as the rules see it: the password split from its `-nopush` suffix,
/// who asks, and what a push would show on the device.
struct Attempt<'a> {
    username: &'a str,
    password: Option<SecretString>,
    nopush: bool,
    ip: Option<IpAddr>,
    ip_text: Option<String>,
    actor: std::borrow::Cow<'static, str>,
    caller: &'a Caller<'a>,
    request: &'a ValidateRequest,
}

impl<'a> Attempt<'a> {
    fn new(request: &'a ValidateRequest, caller: &'a Caller<'a>) -> Self {
        // "-nopush" at the end of the password asks for a passcode instead of a push; it is not
        // part of the password.
        let (password, nopush) = match request.password.as_ref().map(SecretString::expose) {
            Some(text) if text.ends_with(NOPUSH_SUFFIX) => {
                let stripped = text.get(..text.len() - NOPUSH_SUFFIX.len()).unwrap_or_default();
                (Some(SecretString::new(stripped.to_owned())).filter(|p| !p.expose().is_empty()), true)
            }
            _ => (request.password.clone(), false),
        };
        Self {
            username: &request.username,
            password,
            nopush,
            ip: caller.ip,
            ip_text: caller.ip.map(|ip| ip.to_string()),
            actor: caller.audit_actor(),
            caller,
            request,
        }
    }

    fn ip_text(&self) -> Option<&str> {
        self.ip_text.as_deref()
    }

    /// The audit record of a rejection for `reason` (other outcomes override its fields).
    fn rejected(&self, reason: &'static str) -> NewAudit<'_> {
        NewAudit {
            at_ms: unix_now_ms(),
            actor: &self.actor,
            action: "validate",
            username: Some(self.username),
            serial: None,
            client_ip: self.ip_text(),
            result: "reject",
            reason: Some(reason),
        }
    }

    /// What the device will show: the application's service name (or the server's) and, only
    /// from an authenticated application, the end user's address and browser from the body.
    fn push_context(&self, push: &crate::config::PushPolicy) -> crate::push::PushContext {
        let user_agent = self
            .caller
            .user_agent
            .filter(|ua| ua.len() <= 512 && !ua.chars().any(char::is_control))
            .map(str::to_owned);
        match &self.caller.application {
            Some(application) => crate::push::PushContext {
                client_ip: self.request.client_ip.clone().or_else(|| self.ip_text.clone()),
                user_agent: self.request.user_agent.clone().or(user_agent),
                service: application.service_name.clone(),
            },
            None => crate::push::PushContext {
                client_ip: self.ip_text.clone(),
                user_agent,
                service: push.service_name.clone(),
            },
        }
    }
}

/// The tokens a passcode can be checked against: enabled TOTP and HOTP tokens, and push tokens
/// whose device has registered.
pub(crate) fn usable_tokens(tokens: Vec<TokenRow>) -> Vec<TokenRow> {
    tokens
        .into_iter()
        .filter(|t| {
            t.state.enabled
                && match t.kind.as_str() {
                    "totp" | "hotp" => true,
                    "push" => t.device_public_key.is_some(),
                    _ => false,
                }
        })
        .collect()
}

/// What one validation attempt will write.
struct Decision {
    updates: Vec<StateUpdate>,
    accepted: Option<String>,
    reason: &'static str,
    new_lockouts: u64,
}

impl Decision {
    fn from_failures(
        failures: Vec<(&TokenRow, TokenState)>,
        now: u64,
        policy: &Policy,
        reason: &'static str,
    ) -> Self {
        let new_lockouts = failures
            .iter()
            .filter(|(token, next)| next.is_locked(now, policy) && !token.state.is_locked(now, policy))
            .count() as u64;
        let updates = failures
            .into_iter()
            .map(|(token, state)| StateUpdate {
                token_id: token.id,
                expected_version: token.version,
                state,
                used_at: None,
            })
            .collect();
        Self { updates, accepted: None, reason, new_lockouts }
    }

    /// A wrong password counts as a failure on each of the user's usable tokens.
    fn failure_everywhere(tokens: &[TokenRow], now: u64, policy: &Policy, reason: &'static str) -> Self {
        let failures = tokens
            .iter()
            .filter(|t| t.state.enabled && !t.state.is_locked(now, policy))
            .map(|t| (t, t.state.after_failure(now, policy)))
            .collect();
        Self::from_failures(failures, now, policy, reason)
    }
}

/// Push transactions are kept this long (for the audit trail of who approved what), then pruned.
const TRANSACTION_RETENTION_SECS: i64 = 24 * 60 * 60;

/// Refuses a server key that did not seal this database's seeds, and re-seals seeds of a database
/// from before the sealing key was derived from the server key (once, in one transaction; the
/// check value changes with them, so an older server refuses to start on the database afterwards
/// instead of failing every validation).
async fn check_key_and_reseal(store: &Store, key: &ServerKey) -> Result<(), ServiceError> {
    let wrong_key = || {
        ServiceError::InvalidInput(
            "the server key does not match this database (every replica needs the same TESSERA_SERVER_KEY or server.key)"
                .into(),
        )
    };
    for _ in 0..MAX_ATTEMPTS {
        let resealed = store.meta(SEED_SEALING_MARKER).await?.is_some();
        let check = store.meta(KEY_CHECK).await?;
        let seeds = match (&check, resealed) {
            (Some(check), true) => {
                return if key.matches_check_value(check) { Ok(()) } else { Err(wrong_key()) };
            }
            (Some(check), false) if !key.matches_legacy_check_value(check) => return Err(wrong_key()),
            (Some(_), false) => store.sealed_seeds().await?,
            (None, _) => Vec::new(),
        };
        let resealed_seeds = seeds
            .into_iter()
            .map(|old| {
                let seed = key.open_legacy_seed(&old.serial, &old.sealed)?;
                let new = key.seal_seed(&old.serial, &seed)?;
                Ok((old, new))
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        let count = resealed_seeds.len();
        let meta = [(KEY_CHECK, key.check_value()?)];
        if store.reseal(&resealed_seeds, &meta, (SEED_SEALING_MARKER, SEED_SEALING_VERSION)).await? {
            if check.is_some() {
                tracing::info!(
                    tokens = count,
                    "token seeds re-sealed with the key derived from the server key"
                );
            }
            return Ok(());
        }
    }
    Err(ServiceError::Conflict(
        "the database's seeds changed while they were being re-sealed; start again".into(),
    ))
}

pub(crate) fn new_serial(kind: TokenKind) -> Result<String, ServiceError> {
    let mut bytes = [0u8; 5];
    fill_random(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(format!("{}-{}", kind.as_str().to_uppercase(), data_encoding::BASE32_NOPAD.encode(&bytes)))
}

pub(crate) fn conflict(error: StoreError) -> ServiceError {
    match error {
        StoreError::Conflict(what) => ServiceError::Conflict(format!("{what} already exists")),
        other => ServiceError::Store(other),
    }
}

pub(crate) fn check_text(field: &str, text: &str, max: usize) -> Result<(), ServiceError> {
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(ServiceError::InvalidInput(format!(
            "{field} must be at most {max} printable characters"
        )));
    }
    Ok(())
}

pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ServiceError> {
    if name.is_empty() || name.trim() != name {
        return Err(ServiceError::InvalidInput(format!(
            "{field} must be non-empty, without surrounding spaces"
        )));
    }
    check_text(field, name, 128)
}

fn check_phone(phone: String) -> Result<String, ServiceError> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(phone)
    } else {
        Err(ServiceError::InvalidInput("phone must be in E.164 form: + and 7 to 15 digits".into()))
    }
}

fn check_email(email: String) -> Result<String, ServiceError> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email) } else { Err(ServiceError::InvalidInput("email is not a valid address".into())) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, ConfigArgs};

    /// A service on SQLite in a temporary directory, configured by `toml`.
    async fn service(toml: &str) -> (tempfile::TempDir, Arc<Service>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(
            &path,
            format!("{toml}\n[rate_limit]\nper_ip_per_minute = 0\nper_user_per_minute = 0\n"),
        )
        .unwrap();
        let args =
            ConfigArgs { config: Some(path), data_dir: Some(dir.path().join("data")), ..Default::default() };
        let service = crate::open_service(&Config::load(&args).unwrap()).await.unwrap();
        (dir, service)
    }

    fn request(username: &str, password: &str, passcode: &str) -> ValidateRequest {
        ValidateRequest {
            username: username.into(),
            password: Some(SecretString::new(password.into())),
            passcode: Some(SecretString::new(passcode.into())),
            transaction_id: None,
            client_ip: None,
            user_agent: None,
            service: None,
        }
    }

    #[tokio::test]
    async fn unknown_transaction_ids_leave_nothing_in_the_hub() {
        let (_dir, service) = service("").await;
        for i in 0..1_000 {
            let id = format!("TX{i:060}");
            assert!(matches!(
                service.transaction_status(&id, Duration::from_secs(1), None).await,
                Err(ServiceError::NotFound(..))
            ));
        }
        assert!(service.hub().is_empty(), "the hub holds {} channels", service.hub().len());
    }

    #[tokio::test]
    async fn a_wrong_password_locks_a_user_with_no_usable_token_and_nopush_tells_nothing() {
        let (_dir, service) = service("[policy]\nmax_failures = 3\n").await;
        let new = NewUser {
            username: "ivy".into(),
            password: Some(SecretString::new("2580".into())),
            phone: None,
            email: None,
        };
        service.create_user(&Actor::Cli, new).await.unwrap();
        let caller = Caller::default();
        let answer = service.validate(request("ivy", "2580-nopush", ""), &caller).await.unwrap();
        assert_eq!(
            (answer.result, answer.reason),
            (ValidationResult::Reject, Some(PublicReason::InvalidCredentials)),
            "the right password of a user with no usable token gets a plain reject, not a challenge"
        );
        for guess in ["0000", "1111", "2222"] {
            let answer =
                service.validate(request("ivy", &format!("{guess}-nopush"), ""), &caller).await.unwrap();
            assert_eq!(answer.reason, Some(PublicReason::InvalidCredentials));
        }
        let answer = service.validate(request("ivy", "2580-nopush", ""), &caller).await.unwrap();
        assert_eq!(answer.reason, Some(PublicReason::Locked), "three wrong passwords lock the user");
        let view = service.user("ivy").await.unwrap();
        assert_eq!((view.password_failures, view.locked), (3, true));
        let view = service.unlock_user(&Actor::Cli, "ivy").await.unwrap();
        assert_eq!((view.password_failures, view.locked), (0, false));
        let answer = service.validate(request("ivy", "0000-nopush", ""), &caller).await.unwrap();
        assert_eq!(answer.reason, Some(PublicReason::InvalidCredentials), "unlocked, the count starts again");
    }

    #[tokio::test]
    async fn seeds_sealed_with_the_server_key_itself_are_resealed_once_with_a_derived_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        keys::create_private_dir(&data).unwrap();
        let key = ServerKey::load_or_create(&data).unwrap();
        let seed = SecretBytes::from_slice(b"12345678901234567890");
        let (sealed, check) = key.legacy_seal("TOTP-LEGACY", &seed);
        {
            let store =
                Store::open(&format!("sqlite://{}", data.join("tessera.db").display())).await.unwrap();
            let audit = NewAudit {
                at_ms: 0,
                actor: "test",
                action: "setup",
                username: None,
                serial: None,
                client_ip: None,
                result: "ok",
                reason: None,
            };
            store.reseal(&[], &[(KEY_CHECK, check)], ("unrelated", b"x")).await.unwrap();
            let user = store.create_user("old", None, None, None, 0, &audit).await.unwrap();
            let token = NewToken {
                serial: "TOTP-LEGACY",
                user_id: user.id,
                kind: "totp",
                algorithm: "SHA1",
                digits: 6,
                period: 30,
                seed: &sealed,
                description: None,
                created_at: 0,
                enrollment_code_hash: None,
                enrollment_expires_at: None,
            };
            store.create_token(token, &audit).await.unwrap();
            store.close().await;
        }
        let args = ConfigArgs { data_dir: Some(data.clone()), ..Default::default() };
        for start in 0..2 {
            let service = crate::open_service(&Config::load(&args).unwrap()).await.unwrap();
            let token = service.store.token("TOTP-LEGACY").await.unwrap().unwrap();
            assert_ne!(token.seed.as_deref(), Some(sealed.as_slice()), "start {start}: re-sealed");
            let (opened, _) = service.material(&token).unwrap();
            assert_eq!(opened, seed, "start {start}: the seed survives");
            service.store.close().await;
        }
        let other = ServerKey::from_hex(&"cd".repeat(32), "test").unwrap();
        let store = Store::open(&format!("sqlite://{}", data.join("tessera.db").display())).await.unwrap();
        assert!(check_key_and_reseal(&store, &other).await.is_err(), "another key is still refused");
    }
}
