//! Live activity for the dashboard, aggregated in memory by this process (one replica's view):
//! every audit row, as the audit log records it, is counted into 10-second slots covering the
//! last 15 minutes, overall, per target and per user. Reading a snapshot touches no database.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::domain::UserId;
use crate::store::{AuditDecision, AuditRecord};

/// Seconds per slot, and slots kept (15 minutes).
pub const SLOT_SECS: i64 = 10;
pub const SLOTS: usize = 90;

/// Upper bounds (ms) of the latency histogram buckets; the last one catches everything.
const BOUNDS_MS: [i64; 24] = [
    0,
    1,
    2,
    3,
    5,
    7,
    10,
    15,
    20,
    30,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1000,
    2000,
    5000,
    10_000,
    30_000,
    i64::MAX,
];

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// Start of the slot (unix seconds, a multiple of SLOT_SECS); 0 when unused.
    start: i64,
    requests: u32,
    errors: u32,
    denials: u32,
    latency: [u32; BOUNDS_MS.len()],
}

impl Slot {
    fn add(&mut self, other: &Slot) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.denials += other.denials;
        for (a, b) in self.latency.iter_mut().zip(other.latency.iter()) {
            *a += b;
        }
    }

    /// The bucket bound below which `q` (0..1) of the requests fall.
    fn percentile(&self, q: f64) -> Option<i64> {
        let total: u32 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (f64::from(total) * q).ceil().max(1.0) as u32;
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(BOUNDS_MS[i].min(BOUNDS_MS[BOUNDS_MS.len() - 2]));
            }
        }
        None
    }
}

/// A ring of slots for one thing being counted (everything, a target, a user).
#[derive(Clone, Debug)]
struct Series {
    slots: Box<[Slot; SLOTS]>,
    last: i64,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            slots: Box::new([Slot::default(); SLOTS]),
            last: 0,
        }
    }
}

fn slot_start(unix: i64) -> i64 {
    unix - unix.rem_euclid(SLOT_SECS)
}

impl Series {
    fn slot_mut(&mut self, unix: i64) -> &mut Slot {
        let start = slot_start(unix);
        let idx = ((start / SLOT_SECS) as usize) % SLOTS;
        let slot = &mut self.slots[idx];
        if slot.start != start {
            *slot = Slot {
                start,
                ..Slot::default()
            };
        }
        self.last = self.last.max(unix);
        slot
    }

    fn record(&mut self, unix: i64, ok: bool, denied: bool, duration_ms: i64) {
        let slot = self.slot_mut(unix);
        slot.requests += 1;
        slot.errors += u32::from(!ok && !denied);
        slot.denials += u32::from(denied);
        let bucket = BOUNDS_MS
            .iter()
            .position(|b| duration_ms <= *b)
            .unwrap_or(0);
        slot.latency[bucket] += 1;
    }

    /// The slot starting at `start`, if it is still held.
    fn at(&self, start: i64) -> Option<&Slot> {
        let idx = ((start / SLOT_SECS) as usize) % SLOTS;
        Some(&self.slots[idx]).filter(|s| s.start == start)
    }

    /// Sums the slots of the last `secs` seconds before `now` (the current one included).
    fn window(&self, now: i64, secs: i64) -> Slot {
        let mut sum = Slot::default();
        let mut start = slot_start(now);
        while start > now - secs {
            if let Some(s) = self.at(start) {
                sum.add(s);
            }
            start -= SLOT_SECS;
        }
        sum
    }

    fn stats(&self, now: i64) -> Stats {
        // Requests per second over the current slot and the one before it.
        let recent = self.window(now, SLOT_SECS * 2);
        let elapsed = (now - slot_start(now) + 1 + SLOT_SECS) as f64;
        let minute = self.window(now, 60);
        Stats {
            rps: f64::from(recent.requests) / elapsed,
            p50_ms: minute.percentile(0.5),
            p95_ms: minute.percentile(0.95),
            requests_1m: minute.requests,
            errors_1m: minute.errors,
            denials_1m: minute.denials,
            error_rate_1m: if minute.requests == 0 {
                0.0
            } else {
                f64::from(minute.errors) / f64::from(minute.requests)
            },
        }
    }

    fn points(&self, now: i64) -> Vec<Point> {
        let newest = slot_start(now);
        (0..SLOTS as i64)
            .rev()
            .map(|i| {
                let start = newest - i * SLOT_SECS;
                let s = self.at(start).copied().unwrap_or_default();
                Point {
                    t: start,
                    requests: s.requests,
                    errors: s.errors,
                    denials: s.denials,
                    p95_ms: s.percentile(0.95),
                }
            })
            .collect()
    }
}

/// Headline numbers: rates over the last ~10–20 s, the rest over the last minute.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Stats {
    pub rps: f64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub requests_1m: u32,
    pub errors_1m: u32,
    pub denials_1m: u32,
    pub error_rate_1m: f64,
}

/// One 10-second point of a chart.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub t: i64,
    pub requests: u32,
    pub errors: u32,
    pub denials: u32,
    pub p95_ms: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetStats {
    pub name: String,
    #[serde(flatten)]
    pub stats: Stats,
}

/// What the dashboard shows; `targets` only in the everyone view.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub now: i64,
    pub slot_secs: i64,
    pub totals: Stats,
    pub series: Vec<Point>,
    pub targets: Vec<TargetStats>,
}

/// Whose activity a snapshot covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Everyone,
    User(UserId),
}

/// Rows counted between two prunes of idle targets and users.
const PRUNE_EVERY: u64 = 10_000;

#[derive(Debug, Default)]
struct Counters {
    observed: u64,
    all: Series,
    targets: HashMap<String, Series>,
    users: HashMap<UserId, Series>,
}

impl Counters {
    fn prune(&mut self, now: i64) {
        let horizon = now - SLOT_SECS * SLOTS as i64;
        self.targets.retain(|_, s| s.last > horizon);
        self.users.retain(|_, s| s.last > horizon);
    }
}

#[derive(Debug, Default)]
pub struct Activity {
    counters: Mutex<Counters>,
}

impl Activity {
    /// Counts `row`. Called by the audit log as it records the row, on the request's own
    /// task: a lock and a few additions, where a subscriber task would be woken per request.
    pub fn observe(&self, row: &AuditRecord) {
        let unix = row.created_at.timestamp();
        let denied = row.decision == AuditDecision::Deny;
        let ok = row.error.is_none() && row.response_status.unwrap_or(0) == 0;
        let ms = row.duration_ms;
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.all.record(unix, ok, denied, ms);
        if let Some(t) = &row.target_name {
            match c.targets.get_mut(t) {
                Some(s) => s.record(unix, ok, denied, ms),
                None => {
                    let mut s = Series::default();
                    s.record(unix, ok, denied, ms);
                    c.targets.insert(t.clone(), s);
                }
            }
        }
        if let Some(u) = row.user_id {
            c.users.entry(u).or_default().record(unix, ok, denied, ms);
        }
        c.observed += 1;
        if c.observed.is_multiple_of(PRUNE_EVERY) {
            c.prune(unix);
        }
    }

    /// Forgets targets and users with no activity in the window (`observe` does it now and then).
    #[cfg(test)]
    fn prune(&self, now: i64) {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .prune(now);
    }

    pub fn snapshot(&self, scope: Scope, now: i64) -> Snapshot {
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let empty = Series::default();
        let series = match scope {
            Scope::Everyone => &c.all,
            Scope::User(u) => c.users.get(&u).unwrap_or(&empty),
        };
        let mut targets: Vec<TargetStats> = match scope {
            Scope::Everyone => c
                .targets
                .iter()
                .map(|(name, s)| TargetStats {
                    name: name.clone(),
                    stats: s.stats(now),
                })
                .collect(),
            Scope::User(_) => Vec::new(),
        };
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            now,
            slot_secs: SLOT_SECS,
            totals: series.stats(now),
            series: series.points(now),
            targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, user: UserId, ms: i64, decision: AuditDecision, at: i64) -> AuditRecord {
        AuditRecord {
            id: uuid::Uuid::new_v4(),
            session_id: None,
            user_id: Some(user),
            method: "tools/call".into(),
            target_name: Some(target.into()),
            name: Some("echo".into()),
            decision,
            policy_name: None,
            response_status: Some(0),
            error: None,
            duration_ms: ms,
            request_body: None,
            trace_id: None,
            created_at: chrono::DateTime::from_timestamp(at, 0).unwrap(),
        }
    }

    #[test]
    fn counts_rates_percentiles_and_scopes() {
        let a = Activity::default();
        let (alice, bob) = (UserId::new(), UserId::new());
        let now = 1_000_005;
        for i in 0..19 {
            a.observe(&row("gh", alice, 4 + i % 2, AuditDecision::Allow, now - 1));
        }
        a.observe(&row("docs", bob, 900, AuditDecision::Deny, now));
        let all = a.snapshot(Scope::Everyone, now);
        assert_eq!(all.totals.requests_1m, 20);
        assert_eq!(all.totals.denials_1m, 1);
        assert_eq!(all.totals.p50_ms, Some(5));
        assert_eq!(all.totals.p95_ms, Some(5));
        assert_eq!(all.targets.len(), 2);
        assert_eq!(all.series.len(), SLOTS);
        assert_eq!(all.series.last().unwrap().requests, 20);
        let mine = a.snapshot(Scope::User(bob), now);
        assert_eq!(mine.totals.requests_1m, 1);
        assert_eq!(mine.totals.p95_ms, Some(1000));
        assert!(mine.targets.is_empty());
        // Fifteen minutes later everything has aged out.
        let later = a.snapshot(Scope::Everyone, now + SLOT_SECS * SLOTS as i64);
        assert_eq!(later.totals.requests_1m, 0);
        a.prune(now + SLOT_SECS * SLOTS as i64 + 1);
        assert!(a.snapshot(Scope::Everyone, now).targets.is_empty());
    }
}
