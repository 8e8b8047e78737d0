//! Part A: the policy engine alone, no I/O.

use super::*;

pub(crate) struct EngineStats {
    pub(crate) label: &'static str,
    pub(crate) policies: usize,
    pub(crate) lists: usize,
    pub(crate) decisions: usize,
    pub(crate) allowed: usize,
    pub(crate) p50_us: f64,
    pub(crate) min_us: f64,
    /// `target_visible` for every target once, p50: what resolving a call's name paid, twice
    /// per call, while it checked every target rather than the one the name points at.
    pub(crate) all_visible_us: f64,
}

impl EngineStats {
    pub(crate) fn ns_per_decision(&self) -> f64 {
        self.p50_us * 1000.0 / self.decisions as f64
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "policies": self.policies, "lists": self.lists, "decisions": self.decisions,
            "allowed": self.allowed, "us_per_list_p50": round(self.p50_us, 1),
            "us_per_list_min": round(self.min_us, 1),
            "ns_per_decision": round(self.ns_per_decision(), 1),
            "all_targets_visible_us": round(self.all_visible_us, 2),
        })
    }
}

/// What one filtered list costs the engine: visibility of every target, then a decision for
/// every tool of each visible target (as `Gateway::list` does). Returns (decisions, allowed).
pub(crate) fn engine_list(
    set: &PolicySet,
    s: &Subject,
    targets: &[TargetId],
    tools: &[String],
) -> (usize, usize) {
    let (mut decisions, mut allowed) = (0, 0);
    for &t in targets {
        if !set.target_visible(s, t) {
            continue;
        }
        for name in tools {
            decisions += 1;
            allowed += usize::from(set.decide(s, t, ItemType::Tool, name).allowed);
        }
    }
    (decisions, allowed)
}

pub(crate) fn bench_engine(
    label: &'static str,
    specs: &[Spec],
    targets: &[TargetId],
    users: &HashMap<&str, UserId>,
    s: &Subject,
    tools: &[String],
) -> EngineStats {
    let records: Vec<PolicyRecord> = specs.iter().map(|p| p.record(targets, users)).collect();
    let set = PolicySet::compile(&records).expect("policies compile");
    let (decisions, allowed) = engine_list(&set, s, targets, tools);
    for _ in 0..20 {
        black_box(engine_list(black_box(&set), s, targets, tools));
    }
    let deadline = Instant::now() + ENGINE_CAP;
    let lists = ENGINE_LISTS / scale();
    let mut lat = Vec::with_capacity(lists);
    while lat.len() < lists && Instant::now() < deadline {
        let started = Instant::now();
        black_box(engine_list(black_box(&set), s, targets, tools));
        lat.push(started.elapsed().as_nanos() as u64);
    }
    lat.sort_unstable();
    let mut visible = Vec::with_capacity(VISIBLE_ROUNDS);
    for _ in 0..VISIBLE_ROUNDS / scale() {
        let started = Instant::now();
        black_box(
            targets
                .iter()
                .filter(|&&t| set.target_visible(black_box(s), t))
                .count(),
        );
        visible.push(started.elapsed().as_nanos() as u64);
    }
    visible.sort_unstable();
    EngineStats {
        label,
        policies: set.len(),
        lists: lat.len(),
        decisions,
        allowed,
        p50_us: percentile(&lat, 50.0),
        min_us: lat[0] as f64 / 1000.0,
        all_visible_us: percentile(&visible, 50.0),
    }
}

/// Part A; also returns how many tools each policy set lets dev see, which part B checks.
pub(crate) fn part_a() -> (EngineStats, EngineStats) {
    let targets: Vec<TargetId> = (0..TARGETS).map(|_| TargetId::new()).collect();
    let dev_id = UserId::new();
    let mut users: HashMap<&str, UserId> = HashMap::from([(DEV_EMAIL, dev_id)]);
    for e in OTHER_EMAILS {
        users.insert(e, UserId::new());
    }
    let groups: Vec<GroupName> = DEV_GROUPS
        .iter()
        .map(|g| GroupName::parse(g).unwrap())
        .collect();
    let subject = Subject {
        user_id: dev_id,
        email: DEV_EMAIL,
        role: DEV_ROLE,
        groups: &groups,
    };
    let tools = tool_names();
    let one = bench_engine("1 policy", &baseline(), &targets, &users, &subject, &tools);
    let many = bench_engine(
        "200 policies",
        &realistic(),
        &targets,
        &users,
        &subject,
        &tools,
    );
    (one, many)
}
