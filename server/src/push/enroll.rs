//! A push token's life on the device side: the enrollment credential and link, the device's
//! registration with its public key, its wake-up address, and the signed timestamp that
//! authenticates each of its requests.

use std::net::IpAddr;

use subtle::ConstantTimeEq;
use tessera_core::push::{
    EnrollmentLink, PublicKey, RegisterRequest, RegisterResponse, WakeAddress, device_auth_message,
};
use tessera_core::secret::SecretString;

use super::Push;
use crate::clock::{i64_of, u64_of, unix_now, unix_now_ms};
use crate::error::ServiceError;
use crate::input::check_text;
use crate::keys::{credential_hash, random_id};
use crate::store::{AuditResult, NewAudit, PushDevice, TokenKind, TokenRow};

/// How far a device's signed timestamp may be from the server's clock.
const DEVICE_AUTH_SKEW_SECS: u64 = 120;

/// A device that proved possession of its key.
#[derive(Debug, Clone)]
pub struct Device {
    /// The push token.
    pub token: TokenRow,
    /// Its owner's name.
    pub username: String,
}

/// A push token's single-use enrollment credential: the code for the link, the hash to store,
/// and its expiry (Unix seconds).
pub struct EnrollmentCredential {
    code: SecretString,
    /// SHA-256 of the code (hex), as stored.
    pub hash: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A wake-up address as stored (`fcm`/`apns` and the token), after checking its shape.
fn wake_parts(wake: Option<&WakeAddress>) -> Result<Option<(&'static str, &str)>, ServiceError> {
    wake.map(|address| {
        address.validate().map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        Ok((address.service(), address.token()))
    })
    .transpose()
}

impl Push {
    /// A new push token's single-use enrollment credential, which expires after the configured
    /// time; only its hash is stored.
    pub fn new_enrollment(&self) -> Result<EnrollmentCredential, ServiceError> {
        let code = SecretString::new(random_id("")?);
        let hash = credential_hash(code.expose());
        let expires_at = i64_of(unix_now() + self.settings.enrollment_ttl_secs);
        Ok(EnrollmentCredential { code, hash, expires_at })
    }

    /// The link a device registers with: this server, the token, the credential.
    pub fn enrollment_link(
        &self,
        credential: EnrollmentCredential,
        serial: &str,
        account: &str,
    ) -> EnrollmentLink {
        EnrollmentLink {
            server: self.settings.public_url.clone(),
            serial: serial.to_owned(),
            code: credential.code,
            issuer: Some(self.issuer.clone()),
            account: Some(account.to_owned()),
        }
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
            check_text("device name", name, 64)?;
        }
        let wake = wake_parts(request.wake.as_ref())?;
        let found =
            self.store.token_with_owner(&request.serial).await?.filter(|(t, _)| t.kind == TokenKind::Push);
        let (token, username) = found.map_or((None, String::new()), |(t, owner)| (Some(t), owner.username));
        let now = unix_now();
        let hash = credential_hash(request.code.expose());
        let valid = token.as_ref().is_some_and(|t| match &t.push {
            Some(PushDevice::Unregistered(Some(enrollment))) => {
                bool::from(enrollment.code_hash.as_bytes().ct_eq(hash.as_bytes()))
                    && u64_of(enrollment.expires_at) >= now
            }
            _ => false,
        });
        let ip_text = ip.map(|ip| ip.to_string());
        let audit = |result: AuditResult, reason: Option<&'static str>| NewAudit {
            at_ms: unix_now_ms(),
            actor: "device",
            action: "push.register",
            username: Some(&username).filter(|u| !u.is_empty()).map(String::as_str),
            serial: Some(&request.serial),
            client_ip: ip_text.as_deref(),
            result,
            reason,
        };
        let replaced = token.as_ref().and_then(|t| t.pending.as_ref()).and_then(|p| p.replaces.clone());
        let retired = replaced.as_deref().map(|serial| NewAudit {
            action: "token.delete",
            serial: Some(serial),
            reason: Some("replaced"),
            ..audit(AuditResult::Ok, None)
        });
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
                        &audit(AuditResult::Ok, None),
                        retired.as_ref(),
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
                self.store.audit(&audit(AuditResult::Reject, Some("bad_credential"))).await?;
            }
            return Err(refused());
        };
        if let Some(serial) = &replaced {
            self.revoke_device(serial).await;
        }
        let seed = token.open_seed(&self.key)?;
        Ok(RegisterResponse {
            serial: token.serial,
            username,
            issuer: self.issuer.clone(),
            server_public_key: self.signing_key.public(),
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
            result: AuditResult::Ok,
            reason: Some(parts.map_or("cleared", |(service, _)| service)),
        };
        if self.store.set_wake_address(&device.token.serial, parts, &audit).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound("push token", device.token.serial.clone()))
        }
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
        let fresh = timestamp.abs_diff(now) <= DEVICE_AUTH_SKEW_SECS;
        match self.enabled_device(serial).await? {
            Some((token, username, key))
                if fresh && key.verify(&device_auth_message(serial, timestamp), signature).is_ok() =>
            {
                Ok(Device { token, username })
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

    /// The enabled push token `serial` whose device registered, its owner's name and the device's key.
    pub(super) async fn enabled_device(
        &self,
        serial: &str,
    ) -> Result<Option<(TokenRow, String, PublicKey)>, ServiceError> {
        let found = self.store.token_with_owner(serial).await?.filter(|(t, _)| t.state.enabled);
        Ok(found.and_then(|(token, owner)| {
            let key = token.device_key()?;
            Some((token, owner.username, key))
        }))
    }
}
