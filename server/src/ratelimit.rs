//! Rate limits on validation, per client address and per user name (GCRA through `governor`).
//!
//! These live in each server process; the lockout that NIST SP 800-63B requires is counted in
//! the database and so holds across replicas.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimits;

/// The limiters (absent when configured as 0).
pub struct Limiter {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_user: Option<DefaultKeyedRateLimiter<String>>,
}

impl Limiter {
    /// Limiters for the configured rates.
    pub fn new(limits: RateLimits) -> Self {
        Self { per_ip: keyed(limits.per_ip_per_minute), per_user: keyed(limits.per_user_per_minute) }
    }

    /// Takes one request from both budgets; false when either is exhausted.
    pub fn allow(&self, ip: Option<IpAddr>, username: &str) -> bool {
        let ip_ok = match (&self.per_ip, ip) {
            (Some(limiter), Some(ip)) => limiter.check_key(&ip).is_ok(),
            _ => true,
        };
        let user_ok =
            self.per_user.as_ref().is_none_or(|limiter| limiter.check_key(&username.to_owned()).is_ok());
        ip_ok && user_ok
    }

    /// Forgets keys whose budget is full again (called periodically to bound memory).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
        }
        if let Some(limiter) = &self.per_user {
            limiter.retain_recent();
        }
    }
}

fn keyed<K: Clone + std::hash::Hash + Eq>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}
