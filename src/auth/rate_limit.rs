//! Per-IP and per-account rate limits for login, registration and token creation.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("too many attempts; retry in {} s", retry_after.as_secs().max(1))]
pub struct RateLimited {
    pub retry_after: Duration,
}

pub struct LoginLimiter {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl LoginLimiter {
    /// `per_minute` attempts per IP and per account, with that many allowed in a burst.
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("max(1) is non-zero");
        let quota = Quota::per_minute(n).allow_burst(n);
        Self {
            by_ip: RateLimiter::keyed(quota),
            by_account: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one attempt from `ip` against `account` (an email, lower-cased by the caller).
    pub fn check(&self, ip: IpAddr, account: Option<&str>) -> Result<(), RateLimited> {
        let wait = |nu: governor::NotUntil<_>| RateLimited {
            retry_after: nu.wait_time_from(self.clock.now()),
        };
        self.by_ip.check_key(&ip).map_err(wait)?;
        if let Some(account) = account {
            self.by_account
                .check_key(&account.to_string())
                .map_err(wait)?;
        }
        Ok(())
    }

    /// Forgets keys whose quota has fully recovered, so memory stays bounded.
    pub fn prune(&self) {
        self.by_ip.retain_recent();
        self.by_account.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_and_per_account() {
        let l = LoginLimiter::new(3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            l.check(ip, Some("a@x.io")).unwrap();
        }
        assert!(l.check(ip, Some("b@x.io")).is_err(), "IP exhausted");
        // Another IP on the same account is limited by the account quota.
        assert!(l.check(other, Some("a@x.io")).is_err());
        let err = l.check(ip, None).unwrap_err();
        assert!(err.retry_after > Duration::ZERO);
    }
}
