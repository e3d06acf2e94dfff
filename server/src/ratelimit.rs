//! Limits on what a client can make the server do, per process (GCRA through `governor`).
//!
//! - Validations (and the other public calls: One Swipe codes, device answers, transaction
//!   polls) per client and per user name. A client is an IPv4 address or an IPv6 /64, since one
//!   IPv6 host owns a whole /64; the user's budget is spent only by requests the client's allowed.
//! - Unknown user names get the same lock as real accounts (`max_failures` attempts, then
//!   `locked`), so a run of failures does not tell which names exist.
//! - Refused requests are audited at most once a minute per client and name, so a flood cannot
//!   fill the disk; they are still counted in the metrics.
//! - Failed admin authentications per client address.
//!
//! The lockout NIST SP 800-63B requires is counted in the database and so holds across replicas;
//! these limits live in each process.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tessera_core::verifier::Policy;

use crate::config::RateLimits;

/// Failed admin authentications allowed per client address and minute.
const ADMIN_FAILURES_PER_MINUTE: u32 = 20;

/// Who a per-client limit counts: an IPv4 address, or the /64 network of an IPv6 address (an
/// IPv4 address mapped into IPv6 counts as that IPv4 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a client address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX)))),
            },
            v4 @ IpAddr::V4(_) => Self(v4),
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(network) => write!(f, "{network}/64"),
            IpAddr::V4(address) => write!(f, "{address}"),
        }
    }
}

/// The limiters.
pub struct Limiter {
    per_ip: Option<DefaultKeyedRateLimiter<ClientKey>>,
    per_user: Option<DefaultKeyedRateLimiter<String>>,
    unknown_users: DefaultKeyedRateLimiter<String>,
    refusal_audits: DefaultKeyedRateLimiter<String>,
    admin_failures: DefaultKeyedRateLimiter<ClientKey>,
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

    /// Takes one validation from the client's budget and, only when the client is allowed, from
    /// the user's: a client over its limit cannot hold someone else's account at 429.
    pub fn allow_validation(&self, ip: Option<IpAddr>, username: &str) -> bool {
        self.allow_client(ip) && self.allow_user(username)
    }

    /// Takes one attempt from the client's budget; false when it is spent.
    pub fn allow_client(&self, ip: Option<IpAddr>) -> bool {
        match (&self.per_ip, ip) {
            (Some(limiter), Some(ip)) => limiter.check_key(&ClientKey::of(ip)).is_ok(),
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
        let client = ip.map(|ip| ClientKey::of(ip).to_string()).unwrap_or_default();
        let key = format!("{kind}|{client}|{username}");
        self.refusal_audits.check_key(&key).is_ok()
    }

    /// Counts a failed admin authentication; false once the address has too many.
    pub fn allow_admin_failure(&self, ip: Option<IpAddr>) -> bool {
        ip.is_none_or(|ip| self.admin_failures.check_key(&ClientKey::of(ip)).is_ok())
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
    fn an_ipv6_64_is_one_client_and_an_ipv4_address_is_one_client() {
        let limiter =
            Limiter::new(RateLimits { per_ip_per_minute: 1, per_user_per_minute: 0 }, &Policy::default());
        let ip = |text: &str| Some(text.parse().unwrap());
        assert!(limiter.allow_client(ip("2001:db8::1")));
        assert!(!limiter.allow_client(ip("2001:db8::2")), "the same /64 shares a budget");
        assert!(!limiter.allow_client(ip("2001:db8:0:0:ffff:ffff:ffff:ffff")));
        assert!(limiter.allow_client(ip("2001:db8:0:1::1")), "the next /64 is another client");
        assert!(limiter.allow_client(ip("192.0.2.1")));
        assert!(!limiter.allow_client(ip("::ffff:192.0.2.1")), "an IPv4-mapped address is that IPv4 address");
        assert!(limiter.allow_client(ip("192.0.2.2")));
        assert_eq!(ClientKey::of("2001:db8::1".parse().unwrap()).to_string(), "2001:db8::/64");
    }

    #[test]
    fn a_refused_client_spends_nothing_of_the_users_budget() {
        let limiter =
            Limiter::new(RateLimits { per_ip_per_minute: 1, per_user_per_minute: 2 }, &Policy::default());
        let (attacker, user) = (Some("198.51.100.7".parse().unwrap()), Some("192.0.2.1".parse().unwrap()));
        assert!(limiter.allow_validation(attacker, "alice"));
        assert!((0..10).all(|_| !limiter.allow_validation(attacker, "alice")));
        assert!(limiter.allow_validation(user, "alice"), "alice's own login still has its budget");
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
