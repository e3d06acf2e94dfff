//! Limits on what a client can make the server do, per process (GCRA through `governor`).
//!
//! - Validations per client address and per user name.
//! - Unknown user names get the same lock as real accounts (`max_failures` attempts, then
//!   `locked`), so a run of failures does not tell which names exist.
//! - Refused requests are audited at most once a minute per client and name, so a flood cannot
//!   fill the disk; they are still counted in the metrics.
//! - Failed admin authentications per client address.
//!
//! The lockout NIST SP 800-63B requires is counted in the database and so holds across replicas;
//! these limits live in each process.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tessera_core::verifier::Policy;

use crate::config::RateLimits;

/// Failed admin authentications allowed per client address and minute.
const ADMIN_FAILURES_PER_MINUTE: u32 = 20;

/// The limiters.
pub struct Limiter {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_user: Option<DefaultKeyedRateLimiter<String>>,
    unknown_users: DefaultKeyedRateLimiter<String>,
    refusal_audits: DefaultKeyedRateLimiter<String>,
    admin_failures: DefaultKeyedRateLimiter<IpAddr>,
}

impl Limiter {
    /// Limiters for the configured rates and lockout policy.
    pub fn new(limits: RateLimits, policy: &Policy) -> Self {
        let failures = NonZeroU32::new(policy.max_failures).unwrap_or(NonZeroU32::MIN);
        let reset = Duration::from_secs(policy.lockout_reset_secs.unwrap_or(3600).max(1));
        let refill = reset / failures.get();
        let unknown = Quota::with_period(refill).unwrap_or(Quota::per_hour(failures)).allow_burst(failures);
        Self {
            per_ip: per_minute(limits.per_ip_per_minute),
            per_user: per_minute(limits.per_user_per_minute),
            unknown_users: RateLimiter::keyed(unknown),
            refusal_audits: RateLimiter::keyed(Quota::per_minute(NonZeroU32::MIN)),
            admin_failures: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(ADMIN_FAILURES_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            )),
        }
    }

    /// Takes one validation from the client's and the user's budgets; false when either is spent.
    pub fn allow_validation(&self, ip: Option<IpAddr>, username: &str) -> bool {
        let ip_ok = self.allow_client(ip);
        let user_ok = self.allow_user(username);
        ip_ok && user_ok
    }

    /// Takes one attempt from the client's budget; false when it is spent.
    pub fn allow_client(&self, ip: Option<IpAddr>) -> bool {
        match (&self.per_ip, ip) {
            (Some(limiter), Some(ip)) => limiter.check_key(&ip).is_ok(),
            _ => true,
        }
    }

    /// Takes one attempt from the user's budget; false when it is spent.
    pub fn allow_user(&self, username: &str) -> bool {
        self.per_user.as_ref().is_none_or(|limiter| limiter.check_key(&username.to_owned()).is_ok())
    }

    /// Counts a failed attempt on an unknown user name; false once the name is "locked".
    pub fn allow_unknown_user(&self, username: &str) -> bool {
        self.unknown_users.check_key(&username.to_owned()).is_ok()
    }

    /// True when a refusal of this kind, from this client, for this name should be audited now
    /// (once a minute for each combination).
    pub fn audit_refusal(&self, kind: &str, ip: Option<IpAddr>, username: &str) -> bool {
        let key = format!("{kind}|{}|{username}", ip.map(|ip| ip.to_string()).unwrap_or_default());
        self.refusal_audits.check_key(&key).is_ok()
    }

    /// Counts a failed admin authentication; false once the address has too many.
    pub fn allow_admin_failure(&self, ip: Option<IpAddr>) -> bool {
        ip.is_none_or(|ip| self.admin_failures.check_key(&ip).is_ok())
    }

    /// Forgets keys whose budget is full again (called periodically to bound memory).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
        }
        if let Some(limiter) = &self.per_user {
            limiter.retain_recent();
        }
        self.unknown_users.retain_recent();
        self.refusal_audits.retain_recent();
        self.admin_failures.retain_recent();
    }
}

fn per_minute<K: Clone + std::hash::Hash + Eq>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_lock_after_max_failures() {
        let policy = Policy { max_failures: 3, ..Policy::default() };
        let limiter = Limiter::new(RateLimits { per_ip_per_minute: 0, per_user_per_minute: 0 }, &policy);
        assert!((0..3).all(|_| limiter.allow_unknown_user("mallory")));
        assert!(!limiter.allow_unknown_user("mallory"));
        assert!(limiter.allow_unknown_user("trent"), "other names have their own budget");
    }

    #[test]
    fn refusals_are_audited_once_a_minute_per_client_and_name() {
        let limiter =
            Limiter::new(RateLimits { per_ip_per_minute: 0, per_user_per_minute: 0 }, &Policy::default());
        let ip = Some("192.0.2.1".parse().unwrap());
        assert!(limiter.audit_refusal("rate_limited", ip, "alice"));
        assert!(!limiter.audit_refusal("rate_limited", ip, "alice"));
        assert!(limiter.audit_refusal("rate_limited", ip, "bob"));
        assert!(
            limiter.audit_refusal("unknown_user_locked", ip, "alice"),
            "each kind of refusal has its own budget"
        );
    }

    #[test]
    fn zero_disables_a_limit() {
        let limiter =
            Limiter::new(RateLimits { per_ip_per_minute: 0, per_user_per_minute: 2 }, &Policy::default());
        let ip = Some("192.0.2.1".parse().unwrap());
        assert!(limiter.allow_validation(ip, "a") && limiter.allow_validation(ip, "a"));
        assert!(!limiter.allow_validation(ip, "a"));
        assert!(limiter.allow_validation(ip, "b"));
    }
}
