//! What a signed-in portal user does with their own devices. A device they add is *pending*: it
//! accepts no code until it proves itself (an authenticator app's first code, the Tessera app's
//! registration), and is given up when its time runs out. Replacing a phone is adding a device
//! that names the one it replaces: the moment the new one proves itself, in the same transaction,
//! it becomes active and the old one is deleted, so abandoning half-way leaves the old phone
//! working. Deleting or replacing a device needs a second factor proved within the last
//! `[portal] step_up_secs`.

use std::net::IpAddr;

use tessera_core::otp::{Algorithm, Digits, OtpMethod, Period};
use tessera_core::otpauth::OtpAuth;
use tessera_core::push::{RegisterRequest, RegisterResponse};
use tessera_core::secret::{SecretBytes, SecretString};
use tessera_core::verifier::{self, Verdict};

use super::audit::AdminAudit;
use super::notices::{AccountChange, device_name};
use super::tokens::{EnrollRequest, Enrollment, SEED_BYTES, TokenDraft};
use super::users::UserChanges;
use super::{Actor, Caller, PortalSession, Service, ServiceError, TokenKind};
use crate::clock::{now_i64, unix_now};
use crate::delivery::Delivery;
use crate::input::check_text;
use crate::keys::KeyError;
use crate::store::{AuditResult, Channel, DeliveryPreference, PendingToken, TokenRow, UserRow};

/// What the user adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewDevice {
    /// The Tessera app: push approvals and codes, registered from the QR code's link.
    App,
    /// Any authenticator app: time-based codes from the QR code's `otpauth://` URI.
    Authenticator,
}

/// A device being added, as its page shows it until it proves itself.
pub struct AddedDevice {
    /// The new token's serial.
    pub serial: String,
    /// What kind of device.
    pub kind: NewDevice,
    /// The link or URI the QR code holds (a secret: shown on this page only).
    pub link: SecretString,
    /// The QR code, PNG, base64.
    pub qr_png_base64: String,
    /// Unix seconds after which it is given up.
    pub pending_until: i64,
    /// The serial of the device it replaces.
    pub replaces: Option<String>,
}

impl std::fmt::Debug for AddedDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddedDevice").field("serial", &self.serial).finish_non_exhaustive()
    }
}

/// Where a code goes when the user gives only their password, as the portal offers the choice:
/// the app or a text message (email is for administrators to set up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChoice {
    /// A push to the Tessera app.
    App,
    /// A code by text message.
    TextMessage,
}

/// The user's delivery preference as the portal shows it.
#[derive(Debug)]
pub struct DeliveryChoice {
    /// What they chose; none when an administrator chose email.
    pub chosen: Option<CodeChoice>,
    /// Their phone number on file, masked.
    pub phone: Option<String>,
    /// Whether they have a registered Tessera app.
    pub has_app: bool,
}

/// An action that needs a fresh second factor.
#[derive(Debug)]
pub enum StepUp<T> {
    /// Done.
    Done(T),
    /// Not done: the user must prove a second factor again first.
    Needed,
}

/// How confirming a pending device ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// It is active (and the device it replaces, deleted).
    Ready,
    /// The code was not the app's.
    WrongCode,
    /// It is not pending any more: proved already, given up or deleted.
    Gone,
}

impl Service {
    /// Adds a pending device for the session's user, replacing `replaces` (one of their active
    /// devices) once it proves itself. Replacing needs a fresh second factor; adding beside the
    /// others is refused past `[portal] max_devices`.
    pub async fn portal_add_device(
        &self,
        session: &PortalSession,
        kind: NewDevice,
        replaces: Option<&str>,
        caller: &Caller<'_>,
    ) -> Result<StepUp<AddedDevice>, ServiceError> {
        session.signed_in()?;
        let now = now_i64();
        let user = self.existing_user(session.username()).await?;
        let tokens = self.store.tokens_of(user.id).await?;
        if let Some(serial) = replaces {
            if !tokens.iter().any(|t| t.serial == serial && t.pending.is_none() && t.kind != TokenKind::Temp)
            {
                return Err(ServiceError::NotFound("device", serial.into()));
            }
            if !session.factor_is_fresh(now, self.portal.step_up_secs) {
                return Ok(StepUp::Needed);
            }
        }
        self.add_pending_device(&user, kind, replaces, caller).await.map(StepUp::Done)
    }

    /// Adds a pending device for `user`, replacing `replaces` once it proves itself; refused
    /// past `[portal] max_devices` unless it replaces one.
    pub(super) async fn add_pending_device(
        &self,
        user: &UserRow,
        kind: NewDevice,
        replaces: Option<&str>,
        caller: &Caller<'_>,
    ) -> Result<AddedDevice, ServiceError> {
        if replaces.is_none() {
            let held =
                self.store.tokens_of(user.id).await?.iter().filter(|t| t.kind != TokenKind::Temp).count();
            if held >= usize::try_from(self.portal.max_devices).unwrap_or(usize::MAX) {
                return Err(ServiceError::Conflict(format!(
                    "you have {held} devices, the most allowed: replace or delete one first"
                )));
            }
        }
        let pending_until =
            now_i64() + i64::try_from(self.push.settings().enrollment_ttl_secs).unwrap_or(600);
        let pending = PendingToken { until: pending_until, replaces: replaces.map(str::to_owned) };
        let actor = Actor::Portal { ip: caller.ip };
        let enrollment = match kind {
            NewDevice::App => self.enroll_push(&actor, user, None, Some(&pending)).await?,
            NewDevice::Authenticator => {
                let seed = SecretBytes::random(SEED_BYTES).map_err(|e| KeyError::Random(e.to_string()))?;
                let draft = TokenDraft {
                    kind: TokenKind::Totp,
                    algorithm: "SHA1",
                    digits: 6,
                    period: 30,
                    seed: &seed,
                    description: None,
                    enrollment: None,
                    delivery: None,
                    temporary: None,
                    pending: Some(&pending),
                };
                let serial = self.insert_token(&actor, user, draft).await?;
                let otp = self.authenticator_uri(&user.username, seed)?;
                Enrollment::new(serial, TokenKind::Totp, otp)?
            }
        };
        added(enrollment, kind, pending)
    }

    /// A pending authenticator app of the session's user, shown again (its QR code is made
    /// again from the stored seed); none once it is proved, given up, or not theirs.
    pub async fn portal_pending_device(
        &self,
        session: &PortalSession,
        serial: &str,
    ) -> Result<Option<AddedDevice>, ServiceError> {
        let Some(token) = self.own_pending_token(session, serial, now_i64()).await? else { return Ok(None) };
        if token.kind != TokenKind::Totp {
            return Ok(None);
        }
        let Some(pending) = token.pending.clone() else { return Ok(None) };
        let uri = self.authenticator_uri(session.username(), token.open_seed(&self.key)?)?;
        added(Enrollment::new(token.serial, TokenKind::Totp, uri)?, NewDevice::Authenticator, pending)
            .map(Some)
    }

    /// Confirms a pending authenticator app with its first code: active at once, the device it
    /// replaces deleted in the same transaction (and its push channel closed).
    pub async fn portal_confirm_device(
        &self,
        session: &PortalSession,
        serial: &str,
        code: &SecretString,
        caller: &Caller<'_>,
    ) -> Result<Confirmation, ServiceError> {
        let now = unix_now();
        let now_secs = now_i64();
        let Some(token) = self.own_pending_token(session, serial, now_secs).await? else {
            return Ok(Confirmation::Gone);
        };
        if token.kind != TokenKind::Totp {
            return Ok(Confirmation::Gone);
        }
        let (seed, method) = self.material(&token)?;
        let checked = verifier::verify(&seed, &method, token.state, code.expose(), now, &self.policy);
        let actor = Actor::Portal { ip: caller.ip };
        let Verdict::Accepted { .. } = checked.verdict else {
            let audit = AdminAudit::new(&actor, "token.confirm").user(session.username()).serial(serial);
            let record = audit.record();
            self.store
                .audit(&crate::store::NewAudit {
                    result: AuditResult::Reject,
                    reason: Some("wrong_code"),
                    ..record
                })
                .await?;
            return Ok(Confirmation::WrongCode);
        };
        let replaced = token.pending.as_ref().and_then(|p| p.replaces.clone());
        let confirmed = AdminAudit::new(&actor, "token.confirm").user(session.username()).serial(serial);
        let retired = replaced.as_deref().map(|old| {
            AdminAudit::new(&actor, "token.delete").user(session.username()).serial(old).reason("replaced")
        });
        let update = token.moved_to(checked.next, Some(now_secs));
        let retired_record = retired.as_ref().map(AdminAudit::record);
        if !self.store.activate_token(&update, now_secs, &confirmed.record(), retired_record.as_ref()).await?
        {
            return Ok(Confirmation::Gone);
        }
        if let Some(old) = &replaced {
            self.push.revoke_device(old).await;
        }
        let user = self.existing_user(session.username()).await?;
        self.notify(&user, &AccountChange::DeviceAdded(device_name(TokenKind::Totp, None)), None).await;
        Ok(Confirmation::Ready)
    }

    /// Registers a device from an enrollment link ([`Push::register_device`]); when it was added
    /// in the portal or by the app's sign-in, its user hears of it by another channel.
    ///
    /// [`Push::register_device`]: crate::push::Push::register_device
    pub async fn register_device(
        &self,
        request: RegisterRequest,
        ip: Option<IpAddr>,
    ) -> Result<RegisterResponse, ServiceError> {
        let added_by_user = self
            .store
            .token_with_owner(&request.serial)
            .await?
            .filter(|(token, _)| token.pending.is_some())
            .map(|(_, user)| user);
        let name = request.device_name.clone();
        let registered = self.push.register_device(request, ip).await?;
        if let Some(user) = added_by_user {
            let change = AccountChange::DeviceAdded(device_name(TokenKind::Push, name.as_deref()));
            self.notify(&user, &change, None).await;
        }
        Ok(registered)
    }

    /// Whether the session's user's device `serial` is active (a pending app turns active when
    /// the phone registers it).
    pub async fn portal_device_is_ready(
        &self,
        session: &PortalSession,
        serial: &str,
    ) -> Result<bool, ServiceError> {
        Ok(self.own_token(session, serial).await?.is_some_and(|t| t.pending.is_none()))
    }

    /// Renames one of the session's user's devices.
    pub async fn portal_rename_device(
        &self,
        session: &PortalSession,
        serial: &str,
        name: &str,
        caller: &Caller<'_>,
    ) -> Result<(), ServiceError> {
        let name = name.trim();
        check_text("name", name, 64)?;
        if name.is_empty() {
            return Err(ServiceError::InvalidInput("give the device a name".into()));
        }
        let Some(token) = self.own_token(session, serial).await? else {
            return Err(ServiceError::NotFound("device", serial.into()));
        };
        let audit = AdminAudit::new(&Actor::Portal { ip: caller.ip }, "token.rename")
            .user(session.username())
            .serial(&token.serial);
        if !self.store.rename_token(token.id, name, &audit.record()).await? {
            return Err(ServiceError::NotFound("device", serial.into()));
        }
        Ok(())
    }

    /// Deletes one of the session's user's devices: a pending one at once, an active one only
    /// with a fresh second factor.
    pub async fn portal_delete_device(
        &self,
        session: &PortalSession,
        serial: &str,
        caller: &Caller<'_>,
    ) -> Result<StepUp<()>, ServiceError> {
        let Some(token) = self.own_token(session, serial).await? else {
            return Err(ServiceError::NotFound("device", serial.into()));
        };
        if token.pending.is_none() && !session.factor_is_fresh(now_i64(), self.portal.step_up_secs) {
            return Ok(StepUp::Needed);
        }
        self.delete_token(&Actor::Portal { ip: caller.ip }, &token.serial).await?;
        if token.pending.is_none() {
            let name = token.description.clone().or_else(|| token.device().and_then(|d| d.name.clone()));
            let user = self.existing_user(session.username()).await?;
            let change = AccountChange::DeviceDeleted(device_name(token.kind, name.as_deref()));
            self.notify(&user, &change, None).await;
        }
        Ok(StepUp::Done(()))
    }

    /// The user's delivery preference and what it can be.
    pub async fn portal_delivery(&self, session: &PortalSession) -> Result<DeliveryChoice, ServiceError> {
        session.signed_in()?;
        let Some((user, tokens)) = self.store.user_with_tokens(session.username()).await? else {
            return Err(ServiceError::NotFound("user", session.username().into()));
        };
        let chosen = match user.delivery_preference {
            DeliveryPreference::App => Some(CodeChoice::App),
            DeliveryPreference::Sms => Some(CodeChoice::TextMessage),
            DeliveryPreference::Email | DeliveryPreference::Voice => None,
        };
        let texted = tokens.iter().find(|t| t.kind == TokenKind::Sms);
        let phone = texted
            .and_then(|token| self.delivery.destination_of(&user, token).ok())
            .or_else(|| user.phone.clone())
            .map(|phone| Delivery::masked(Channel::Sms, &phone));
        Ok(DeliveryChoice { chosen, phone, has_app: tokens.iter().any(TokenRow::is_registered_push_device) })
    }

    /// Sets where the user's code goes when they give only their password. Choosing text
    /// messages without an SMS token gives them one, real-time, to the phone number on file
    /// (which the help desk or the directory set); choosing the app needs a registered app.
    pub async fn portal_choose_delivery(
        &self,
        session: &PortalSession,
        choice: CodeChoice,
        caller: &Caller<'_>,
    ) -> Result<(), ServiceError> {
        session.signed_in()?;
        let Some((user, tokens)) = self.store.user_with_tokens(session.username()).await? else {
            return Err(ServiceError::NotFound("user", session.username().into()));
        };
        let actor = Actor::Portal { ip: caller.ip };
        let preference = match choice {
            CodeChoice::App => {
                if !tokens.iter().any(TokenRow::is_registered_push_device) {
                    return Err(ServiceError::InvalidInput("add the Tessera app first".into()));
                }
                DeliveryPreference::App
            }
            CodeChoice::TextMessage => {
                if !tokens.iter().any(|t| t.kind == TokenKind::Sms) {
                    if user.phone.is_none() {
                        return Err(ServiceError::InvalidInput(
                            "no phone number is on file for you: add yours under “Your phone number”".into(),
                        ));
                    }
                    self.check_kind_allowed(&user, TokenKind::Sms.as_str()).await?;
                    self.enroll_delivered(&actor, &user, &EnrollRequest::of_kind(TokenKind::Sms)).await?;
                }
                DeliveryPreference::Sms
            }
        };
        let changes = UserChanges { delivery_preference: Some(preference), ..UserChanges::default() };
        self.update_user(&actor, &user.username, changes).await?;
        Ok(())
    }

    /// The session's user's token `serial` (for a signed-in session only).
    async fn own_token(
        &self,
        session: &PortalSession,
        serial: &str,
    ) -> Result<Option<TokenRow>, ServiceError> {
        session.signed_in()?;
        Ok(self.store.token(serial).await?.filter(|t| t.user_id == session.user_id()))
    }

    /// The session's user's pending token `serial`, while its time lasts.
    pub(super) async fn own_pending_token(
        &self,
        session: &PortalSession,
        serial: &str,
        now: i64,
    ) -> Result<Option<TokenRow>, ServiceError> {
        Ok(self
            .own_token(session, serial)
            .await?
            .filter(|t| t.pending.as_ref().is_some_and(|p| p.until >= now)))
    }

    /// An authenticator app's `otpauth://` URI for `seed`, in the portal's fixed shape (SHA-1,
    /// 6 digits, 30 seconds: what every app reads).
    fn authenticator_uri(&self, username: &str, seed: SecretBytes) -> Result<SecretString, ServiceError> {
        let invalid = |e: tessera_core::otp::OtpError| ServiceError::InvalidInput(e.to_string());
        let method = OtpMethod::Totp {
            algorithm: Algorithm::Sha1,
            digits: Digits::new(6).map_err(invalid)?,
            period: Period::new(30).map_err(invalid)?,
        };
        let otp = OtpAuth::new(Some(self.issuer.clone()), username.to_owned(), seed, method)
            .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        Ok(otp.to_uri())
    }
}

/// The page's view of a new enrolment.
fn added(
    enrollment: Enrollment,
    kind: NewDevice,
    pending: PendingToken,
) -> Result<AddedDevice, ServiceError> {
    let link = enrollment.enrollment_uri.or(enrollment.otpauth_uri);
    let (Some(link), Some(qr_png_base64)) = (link, enrollment.qr_png_base64) else {
        return Err(ServiceError::InvalidInput("this kind of device has no QR code".into()));
    };
    Ok(AddedDevice {
        serial: enrollment.serial,
        kind,
        link,
        qr_png_base64,
        pending_until: pending.until,
        replaces: pending.replaces,
    })
}
