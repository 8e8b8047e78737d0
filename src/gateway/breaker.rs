//! A circuit breaker per target: when an upstream cannot be reached (refused, timed out, closed,
//! 5xx), callers stop waiting for the same failure. The target is left out of lists and its calls
//! fail at once, for a backoff that doubles from 1 s to 30 s; then one caller's request goes
//! through as a probe (half-open), and its outcome closes the breaker or opens it again.
//! Failures that belong to one caller (4xx, a JSON-RPC error) never open it. The probe's slot is
//! a guard: a probe that ends without reporting (its caller needed no request, or gave up) frees
//! it, so the next caller probes instead of failing until the probe is overdue.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::TargetId;
use crate::mcp::{RpcError, codes};
use crate::upstream::UpstreamError;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    /// Failures in a row.
    failures: u32,
    open_until: Option<Instant>,
    /// A probe is out since then; others keep failing fast until it reports (or is overdue).
    probe_since: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Breakers {
    states: Mutex<HashMap<TargetId, State>>,
    /// When a list last logged each target's failure, and the failures not logged since.
    warned: Mutex<HashMap<(TargetId, LeftOut), (Instant, u64)>>,
}

/// Whether an upstream failure says the target is unwell (rather than that this caller erred).
pub fn target_at_fault(e: &UpstreamError) -> bool {
    match e {
        UpstreamError::Connect(_)
        | UpstreamError::Timeout
        | UpstreamError::Closed
        | UpstreamError::Exited(_)
        | UpstreamError::Protocol(_) => true,
        UpstreamError::Status { status, .. } => *status >= 500,
        // A pod that went away is recreated by the next call (gateway/pods): not a fault.
        UpstreamError::Rpc(_) | UpstreamError::Gone(_) => false,
    }
}

fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(5))
        .min(MAX_BACKOFF)
}

/// Leave to send a request; when it is the half-open probe, it holds the probe's slot until
/// the outcome is recorded or it is dropped, whichever comes first.
#[must_use]
#[derive(Debug)]
pub struct Admission<'a> {
    probe: Option<(&'a Breakers, TargetId, Instant)>,
}

impl Admission<'_> {
    #[cfg(test)]
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        let Some((breakers, target, since)) = self.probe else {
            return;
        };
        let mut states = breakers.states.lock().unwrap();
        // Still our probe (no outcome recorded): the next caller may probe.
        if let Some(s) = states.get_mut(&target)
            && s.probe_since == Some(since)
        {
            s.probe_since = None;
        }
    }
}

impl Breakers {
    /// May a request to the target go out now? `probe_overdue`: how long a probe may take before
    /// another caller may probe instead (the target's timeout).
    pub fn admit(
        &self,
        target: TargetId,
        name: &str,
        probe_overdue: Duration,
    ) -> Result<Admission<'_>, RpcError> {
        let mut states = self.states.lock().unwrap();
        let Some(s) = states.get_mut(&target) else {
            return Ok(Admission { probe: None });
        };
        let now = Instant::now();
        match s.open_until {
            None => Ok(Admission { probe: None }),
            Some(until) if now < until => Err(unavailable(name, until - now)),
            Some(_) => match s.probe_since {
                Some(since) if now.duration_since(since) < probe_overdue => {
                    Err(unavailable(name, Duration::ZERO))
                }
                _ => {
                    s.probe_since = Some(now);
                    Ok(Admission {
                        probe: Some((self, target, now)),
                    })
                }
            },
        }
    }

    pub fn success(&self, target: TargetId) {
        let mut states = self.states.lock().unwrap();
        if states.contains_key(&target) {
            states.remove(&target);
        }
    }

    /// Opens (or re-opens, longer) the breaker; returns the backoff.
    pub fn failure(&self, target: TargetId) -> Duration {
        let mut states = self.states.lock().unwrap();
        let s = states.entry(target).or_default();
        s.failures = s.failures.saturating_add(1);
        let wait = backoff(s.failures);
        s.open_until = Some(Instant::now() + wait);
        s.probe_since = None;
        wait
    }

    /// Records the outcome of a request that went out (HTTP targets; stdio processes have their
    /// own crash backoff).
    pub fn record(&self, target: TargetId, outcome: Result<(), &UpstreamError>) {
        match outcome {
            Ok(()) => self.success(target),
            Err(e) if target_at_fault(e) => {
                self.failure(target);
            }
            Err(_) => self.success(target),
        }
    }

    /// Targets whose breaker is open now (for metrics).
    pub fn open(&self) -> Vec<TargetId> {
        let now = Instant::now();
        self.states
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.open_until.is_some_and(|u| u > now) || s.probe_since.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether this target's being left out for `why` should be logged now: at most one line
    /// per `every` per target and reason (a down target would otherwise log one line per list
    /// request or session, and a caller's own failure, e.g. a missing credential, one per list
    /// of that caller).
    /// `Some(n)`: log, saying `n` failures went unlogged since the last line.
    pub fn list_warning(&self, target: TargetId, why: LeftOut, every: Duration) -> Option<u64> {
        let mut warned = self.warned.lock().unwrap();
        let now = Instant::now();
        match warned.get_mut(&(target, why)) {
            Some((at, unlogged)) if now.duration_since(*at) < every => {
                *unlogged += 1;
                None
            }
            entry => {
                let unlogged = entry.map_or(0, |(_, n)| *n);
                warned.insert((target, why), (now, 0));
                Some(unlogged)
            }
        }
    }

    pub fn forget(&self, target: TargetId) {
        self.states.lock().unwrap().remove(&target);
        self.warned.lock().unwrap().retain(|(t, _), _| *t != target);
    }
}

/// Why a target was left out of what a caller got; each is logged on its own schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeftOut {
    /// No connection to it (down, its breaker open, a credential missing).
    Unreachable,
    /// Connected, but its list request failed.
    ListFailed,
}

fn unavailable(name: &str, retry_in: Duration) -> RpcError {
    let when = if retry_in.is_zero() {
        "a probe is under way".to_string()
    } else {
        format!("next try in {} ms", retry_in.as_millis().max(1))
    };
    RpcError::new(
        codes::UPSTREAM_ERROR,
        format!("upstream {name} is unavailable: its last requests failed ({when})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_target_is_logged_once_per_interval_with_what_was_left_out() {
        let b = Breakers::default();
        let (t, other) = (TargetId::new(), TargetId::new());
        let every = Duration::from_millis(200);
        let warn = |t, why| b.list_warning(t, why, every);
        assert_eq!(warn(t, LeftOut::ListFailed), Some(0));
        for _ in 0..5 {
            assert_eq!(warn(t, LeftOut::ListFailed), None);
        }
        assert_eq!(
            warn(other, LeftOut::ListFailed),
            Some(0),
            "targets are counted apart"
        );
        assert_eq!(warn(t, LeftOut::Unreachable), Some(0), "and each reason");
        assert_eq!(warn(t, LeftOut::Unreachable), None);
        std::thread::sleep(every);
        assert_eq!(warn(t, LeftOut::ListFailed), Some(5));
        assert_eq!(warn(t, LeftOut::ListFailed), None);
        assert_eq!(warn(t, LeftOut::Unreachable), Some(1));
        // Counting warnings opens no breaker: requests still go through.
        assert!(b.admit(t, "t", every).unwrap().probe.is_none());
        assert!(b.open().is_empty());
        // A target removed and one added later start afresh.
        b.forget(t);
        assert_eq!(warn(t, LeftOut::ListFailed), Some(0));
        assert_eq!(warn(t, LeftOut::Unreachable), Some(0));
    }

    #[test]
    fn opens_on_target_faults_only_then_lets_one_probe_through() {
        let b = Breakers::default();
        let t = TargetId::new();
        let slow = Duration::from_secs(60);
        assert!(b.admit(t, "t", slow).is_ok());
        b.record(
            t,
            Err(&UpstreamError::Status {
                status: 401,
                body: String::new(),
            }),
        );
        assert!(
            b.admit(t, "t", slow).is_ok(),
            "a caller's 401 is not the target's fault"
        );
        b.record(t, Err(&UpstreamError::Timeout));
        let e = b.admit(t, "t", slow).unwrap_err();
        assert!(
            e.message.contains("upstream t is unavailable"),
            "{}",
            e.message
        );
        // Backoff passed: exactly one probe.
        b.states.lock().unwrap().get_mut(&t).unwrap().open_until = Some(Instant::now());
        let probe = b.admit(t, "t", slow).expect("the probe");
        assert!(probe.is_probe());
        assert!(
            b.admit(t, "t", slow).is_err(),
            "others fail fast while it runs"
        );
        b.record(t, Err(&UpstreamError::Closed));
        drop(probe);
        assert!(
            b.admit(t, "t", slow).is_err(),
            "a probe that failed reopens the breaker; its guard frees nothing"
        );
        assert_eq!(b.states.lock().unwrap()[&t].failures, 2);
        b.success(t);
        assert!(b.admit(t, "t", slow).is_ok());
        assert!(b.open().is_empty());
    }

    #[test]
    fn a_probe_that_ends_without_an_outcome_frees_its_slot() {
        let b = Breakers::default();
        let t = TargetId::new();
        let slow = Duration::from_secs(60);
        b.failure(t);
        b.states.lock().unwrap().get_mut(&t).unwrap().open_until = Some(Instant::now());
        let probe = b.admit(t, "t", slow).unwrap();
        assert!(b.admit(t, "t", slow).is_err(), "one probe at a time");
        drop(probe); // e.g. the caller's list came from cache: no request went out
        let next = b
            .admit(t, "t", slow)
            .expect("the next caller probes at once");
        assert!(next.is_probe());
        b.success(t);
        drop(next);
        assert!(!b.admit(t, "t", slow).unwrap().is_probe(), "closed");
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(9), Duration::from_secs(30));
    }
}
