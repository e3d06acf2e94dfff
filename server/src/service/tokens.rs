//! Token administration: enrollment (a fresh seed sealed to its serial, or a push token's
//! enrollment link), listing, enabling and disabling, unlocking, resynchronizing and deleting.

use serde::{Deserialize, Serialize};
use tessera_core::otp::{Algorithm, Digits, OtpMethod, Period, normalize_code_input};
use tessera_core::otpauth::OtpAuth;
use tessera_core::qr;
use tessera_core::secret::{SecretBytes, SecretString, fill_random};
use tessera_core::verifier::{self, TokenState};
use utoipa::ToSchema;

use super::audit::AdminAudit;
use super::{Actor, MAX_ATTEMPTS, Service, ServiceError};
use crate::clock::{now_i64, unix_now};
use crate::input::check_text;
use crate::keys::KeyError;
use crate::store::{
    DeliveredToken, NewToken, PendingToken, StoreError, TemporaryPasscode, TokenKind, TokenRow, UserChange,
    UserRow,
};
use tessera_core::delivery::DeliveryMode;

/// Bytes of seed generated per token: 160 bits (RFC 4226 §4's recommendation).
pub const SEED_BYTES: usize = 20;
/// Fresh serials tried when one is taken.
const SERIAL_ATTEMPTS: usize = 4;

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
    /// `sms` and `email`: `realtime` (default), `preload`, `preload3` or `daycode`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mode: Option<DeliveryMode>,
    /// `sms` and `email`, real-time: the code's time to live, 60–5940 seconds (default 300).
    #[serde(default)]
    pub ttl_secs: Option<u32>,
    /// `sms` and `email`, Daycode: the period in days, 1–31 (default 1).
    #[serde(default)]
    pub period_days: Option<u32>,
    /// `sms` and `email`: the token's own phone number (E.164) or address; without one the
    /// user's `phone` or `email` is used, as it is when the code is sent.
    #[serde(default)]
    pub destination: Option<String>,
}

impl EnrollRequest {
    /// A request for `kind` with every option left to its default.
    pub fn of_kind(kind: TokenKind) -> Self {
        Self {
            kind,
            algorithm: None,
            digits: None,
            period: None,
            description: None,
            mode: None,
            ttl_secs: None,
            period_days: None,
            destination: None,
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
    /// The URI or link as a QR code, PNG, base64 (`tessera add --qr FILE`, `tessera enroll FILE`);
    /// absent for SMS and email tokens, whose seed never leaves the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_png_base64: Option<String>,
    /// The URI as a QR code, SVG; absent for SMS and email tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
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
        Ok(Self {
            serial,
            otpauth_uri,
            enrollment_uri,
            qr_png_base64: Some(qr_png_base64),
            qr_svg: Some(qr_svg),
        })
    }

    /// An SMS or email token's enrollment: only its serial (the seed stays on the server).
    pub(crate) fn delivered(serial: String) -> Self {
        Self { serial, otpauth_uri: None, enrollment_uri: None, qr_png_base64: None, qr_svg: None }
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
    /// An SMS or email token's mode and destination.
    pub delivery: Option<&'a DeliveredToken>,
    /// A temporary passcode's hash, expiry and allowance.
    pub temporary: Option<&'a TemporaryPasscode>,
    /// Added in the portal: pending until proved.
    pub pending: Option<&'a PendingToken>,
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
    /// `totp`, `hotp`, `push`, `sms`, `email` or `temp`.
    pub kind: TokenKind,
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
    /// SMS and email: `realtime`, `preload`, `preload3` or `daycode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub mode: Option<DeliveryMode>,
    /// SMS and email: the token's own destination (otherwise the user's phone or email).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Temporary passcodes: Unix seconds after which it stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Temporary passcodes: logins completed so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<u64>,
    /// Temporary passcodes: logins it may complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// Added in the portal and not proved yet: it accepts no code, and is given up after this
    /// (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_until: Option<i64>,
    /// Pending: the serial of the token it replaces once proved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl Service {
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
        self.check_kind_allowed(&user, request.kind.as_str()).await?;
        if request.kind == TokenKind::Push {
            return self.enroll_push(actor, &user, request.description.as_deref(), None).await;
        }
        if request.kind == TokenKind::Temp {
            return Err(ServiceError::InvalidInput(
                "temporary passcodes are issued with POST /api/v1/users/{username}/temporary-passcode".into(),
            ));
        }
        if request.kind.channel().is_some() {
            return self.enroll_delivered(actor, &user, &request).await;
        }
        if request.mode.is_some()
            || request.ttl_secs.is_some()
            || request.period_days.is_some()
            || request.destination.is_some()
        {
            return Err(ServiceError::InvalidInput(
                "mode, ttl_secs, period_days and destination are for sms and email tokens".into(),
            ));
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
            TokenKind::Totp
            | TokenKind::Push
            | TokenKind::Sms
            | TokenKind::Email
            | TokenKind::Temp
            | TokenKind::Voice => OtpMethod::Totp { algorithm, digits, period },
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
                    delivery: None,
                    temporary: None,
                    pending: None,
                },
            )
            .await?;
        Enrollment::new(serial, request.kind, otp.to_uri())
    }

    /// Enrolls a push token: a TOTP seed (for approve-with-OTP) sealed like any other, and a
    /// single-use enrollment credential that expires after the configured time.
    pub(super) async fn enroll_push(
        &self,
        actor: &Actor,
        user: &UserRow,
        description: Option<&str>,
        pending: Option<&PendingToken>,
    ) -> Result<Enrollment, ServiceError> {
        let seed = SecretBytes::random(SEED_BYTES).map_err(|e| KeyError::Random(e.to_string()))?;
        let credential = self.push.new_enrollment()?;
        let draft = TokenDraft {
            kind: TokenKind::Push,
            algorithm: "SHA1",
            digits: 6,
            period: 30,
            seed: &seed,
            description,
            enrollment: Some((&credential.hash, credential.expires_at)),
            delivery: None,
            temporary: None,
            pending,
        };
        let serial = self.insert_token(actor, user, draft).await?;
        let link = self.push.enrollment_link(credential, &serial, &user.username);
        Enrollment::new(serial, TokenKind::Push, link.to_uri())
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
                        kind: draft.kind,
                        algorithm: draft.algorithm,
                        digits: draft.digits,
                        period: draft.period,
                        seed: &sealed,
                        counter: 0,
                        description: draft.description,
                        created_at: now_i64(),
                        enrollment_code_hash: draft.enrollment.map(|(hash, _)| hash),
                        enrollment_expires_at: draft.enrollment.map(|(_, expires)| expires),
                        delivery: draft.delivery,
                        temporary: draft.temporary,
                        pending: draft.pending,
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
            kind: token.kind,
            algorithm: token.algorithm.clone(),
            digits: token.digits,
            period: token.kind.is_time_based().then_some(token.period),
            description: token.description.clone(),
            enabled: token.state.enabled,
            locked: token.state.is_locked(now, &self.policy),
            failures: token.state.failures,
            drift: token.state.drift,
            created_at: token.created_at,
            last_used_at: token.last_used_at,
            registered: token.push.as_ref().map(|_| token.device().is_some()),
            device_name: token.device().and_then(|device| device.name.clone()),
            wake: token
                .device()
                .and_then(|device| device.wake.as_ref())
                .map(|wake| wake.service().to_owned()),
            mode: token.delivery.as_ref().map(|d| d.mode),
            destination: token.delivery.as_ref().and_then(|d| d.destination.clone()),
            expires_at: token.temporary.as_ref().map(|t| t.expires_at),
            uses: token.temporary.as_ref().map(|_| token.state.counter),
            max_uses: token.temporary.as_ref().map(|t| t.max_uses),
            pending_until: token.pending.as_ref().map(|p| p.until),
            replaces: token.pending.as_ref().and_then(|p| p.replaces.clone()),
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
            self.push.revoke_device(serial).await;
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
        self.push.revoke_device(serial).await;
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
            let update = token.moved_to(state, None);
            let audit = AdminAudit::new(actor, action).user(&owner).serial(serial);
            let owner_change = unlock_owner.then_some(UserChange::Unlock { user_id: token.user_id });
            if self.store.commit(&[update], owner_change.as_ref(), &audit.record()).await? {
                let updated = TokenRow { state, ..token };
                return Ok(self.token_view(&updated, &owner, unix_now()));
            }
        }
        Err(ServiceError::Conflict("the token is changing too often; try again".into()))
    }

    /// A token's opened seed and its code parameters.
    pub(crate) fn material(&self, token: &TokenRow) -> Result<(SecretBytes, OtpMethod), ServiceError> {
        Ok((token.open_seed(&self.key)?, token.otp_method()?))
    }
}

/// A fresh serial: the kind in capitals and 40 random bits in base32.
pub(crate) fn new_serial(kind: TokenKind) -> Result<String, ServiceError> {
    let mut bytes = [0u8; 5];
    fill_random(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(format!("{}-{}", kind.as_str().to_uppercase(), data_encoding::BASE32_NOPAD.encode(&bytes)))
}
