//! Admin API keys: authenticating a presented key (failures counted and audited per client),
//! creating, listing and revoking keys.

use std::net::IpAddr;

use tessera_core::secret::SecretString;

use super::audit::AdminAudit;
use super::{Actor, Service, ServiceError};
use crate::clock::{now_i64, unix_now_ms};
use crate::error::conflict;
use crate::input::check_name;
use crate::keys;
use crate::store::{AdminKeyRow, AuditResult, NewAudit};

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

impl Service {
    /// The admin key's name when `presented` is a valid admin key; failures are counted per
    /// client address (too many are refused) and audited at most once a minute per client.
    pub async fn authenticate_admin(
        &self,
        presented: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<AdminAuth, ServiceError> {
        if let Some(presented) = presented {
            if let Some(configured) = &self.admin_token
                && keys::secrets_match(presented, configured.expose())
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
                    result: AuditResult::Reject,
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
}
