//! The audit log: the record of an administrative action (written in the same transaction as the
//! action), reading the log, and pruning it.

use super::{Actor, Service, ServiceError};
use crate::clock::unix_now_ms;
use crate::store::{AuditEntry, AuditFilter, AuditResult, NewAudit};

/// An audit record of an administrative action, stored in the same transaction as the action.
#[derive(Clone)]
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

    /// A record of something the server did by itself (`actor` names the part that did it).
    pub(crate) fn system(actor: &str, action: &'static str) -> Self {
        Self { actor: actor.to_owned(), ip: None, action, username: None, serial: None, reason: None }
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
            result: AuditResult::Ok,
            reason: self.reason.as_deref(),
        }
    }
}

impl Service {
    /// Deletes audit records older than `days` days; returns how many.
    pub async fn prune_audit(&self, days: u32) -> Result<u64, ServiceError> {
        let cutoff = unix_now_ms().saturating_sub(i64::from(days).saturating_mul(86_400_000));
        Ok(self.store.prune_audit(cutoff).await?)
    }

    /// Audit records, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, ServiceError> {
        Ok(self.store.audit_entries(filter).await?)
    }
}
