//! Relying-party applications: the VPNs, web sites and RADIUS front ends that call `/validate`.
//!
//! An application presents its key (`Authorization: Bearer tak_...`). Only then does the server
//! believe what the body says about the end user (`client_ip`, `user_agent`); and the name a push
//! device shows as "who is asking" always comes from the application's record, never from the
//! request, so an anonymous caller cannot write the text on the user's phone. Anonymous calls
//! keep working unless `require_application_key` is set; their device text is the server's
//! configured service name and the connection's own address.
//!
//! Keys are looked up in a per-process cache (no database round trip per validation); a
//! revocation clears it on every replica (PostgreSQL `NOTIFY`), and entries older than a minute are
//! checked again in case a notification was lost.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tessera_core::secret::SecretString;
use utoipa::ToSchema;

use super::audit::AdminAudit;
use super::{Actor, Service, ServiceError};
use crate::clock::now_i64;
use crate::error::conflict;
use crate::input::{check_name, check_text};
use crate::keys;
use crate::store::ApplicationRow;

/// Prefix of application keys, so they are recognizable in secret scanners.
pub const APPLICATION_KEY_PREFIX: &str = "tak_";
/// The notification that tells every replica an application was revoked.
pub const APPLICATIONS_CHANGED: &str = "applications";
/// Longest a cached key is trusted without asking the database again.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// A relying party that proved its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Its unique name (the audit log's `app:<name>`).
    pub name: String,
    /// What devices show as the application asking.
    pub service_name: String,
}

/// A new application and its key, shown once.
#[derive(Serialize, ToSchema)]
pub struct NewApplication {
    /// The application.
    #[serde(flatten)]
    pub application: ApplicationRow,
    /// The key: `Authorization: Bearer <key>` on `/api/v1/validate`. Shown only this once.
    #[schema(value_type = String)]
    pub key: SecretString,
}

impl std::fmt::Debug for NewApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApplication").field("application", &self.application).finish_non_exhaustive()
    }
}

/// Known application keys by hash, with the time each was read from the database.
#[derive(Default)]
pub(crate) struct ApplicationCache {
    entries: Mutex<HashMap<String, (Application, Instant)>>,
}

impl ApplicationCache {
    fn get(&self, key_hash: &str) -> Option<Application> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key_hash).filter(|(_, read)| read.elapsed() < CACHE_TTL).map(|(app, _)| app.clone())
    }

    fn insert(&self, key_hash: String, application: Application) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.insert(key_hash, (application, Instant::now()));
    }

    /// Forgets every key (after a revocation anywhere).
    pub(crate) fn clear(&self) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

impl Service {
    /// Creates an application; the returned key is shown once and never stored. The service name
    /// devices show defaults to the application's name.
    pub async fn create_application(
        &self,
        actor: &Actor,
        name: &str,
        service_name: Option<&str>,
    ) -> Result<NewApplication, ServiceError> {
        check_name("application name", name)?;
        let service_name = service_name.unwrap_or(name);
        check_name("service name", service_name)?;
        check_text("service name", service_name, 128)?;
        let key = keys::new_key(APPLICATION_KEY_PREFIX)?;
        let audit = AdminAudit::new(actor, "application.create").reason(name);
        let now = now_i64();
        self.store
            .create_application(
                name,
                &keys::credential_hash(key.expose()),
                service_name,
                now,
                &audit.record(),
            )
            .await
            .map_err(conflict)?;
        let application = self
            .store
            .applications()
            .await?
            .into_iter()
            .find(|app| app.name == name)
            .ok_or_else(|| ServiceError::NotFound("application", name.into()))?;
        Ok(NewApplication { application, key })
    }

    /// The applications, by name.
    pub async fn applications(&self) -> Result<Vec<ApplicationRow>, ServiceError> {
        Ok(self.store.applications().await?)
    }

    /// Revokes an application: its key stops working at once on every replica.
    pub async fn revoke_application(&self, actor: &Actor, name: &str) -> Result<(), ServiceError> {
        let audit = AdminAudit::new(actor, "application.revoke").reason(name);
        if !self.store.delete_application(name, &audit.record()).await? {
            return Err(ServiceError::NotFound("application", name.into()));
        }
        self.applications.clear();
        if let Err(error) = self.store.notify(APPLICATIONS_CHANGED).await {
            tracing::warn!(%error, "NOTIFY failed; other replicas forget the revoked key within a minute");
        }
        Ok(())
    }

    /// The application whose key was presented. Unknown keys are refused (never treated as an
    /// anonymous call) and count, per client, like failed admin authentications.
    pub async fn authenticate_application(
        &self,
        presented: &str,
        ip: Option<IpAddr>,
    ) -> Result<Application, ServiceError> {
        let hash = keys::credential_hash(presented);
        if let Some(application) = self.applications.get(&hash) {
            return Ok(application);
        }
        if let Some(row) = self.store.application_by_key(&hash).await? {
            let application = Application { name: row.name, service_name: row.service_name };
            self.applications.insert(hash, application.clone());
            return Ok(application);
        }
        if !self.limiter.allow_admin_failure(ip) {
            return Err(ServiceError::TooManyRequests(
                "too many unknown application keys from this address".into(),
            ));
        }
        Err(ServiceError::Unauthorized("unknown application key".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_keys_are_forgotten_on_clear() {
        let cache = ApplicationCache::default();
        let app = Application { name: "vpn".into(), service_name: "ACME VPN".into() };
        cache.insert("h".into(), app.clone());
        assert_eq!(cache.get("h"), Some(app));
        assert_eq!(cache.get("other"), None);
        cache.clear();
        assert_eq!(cache.get("h"), None);
    }
}
