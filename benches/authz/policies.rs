//! The policy sets the bench measures: 200 realistic policies over 50 targets, and one that
//! allows everything.

use super::*;

/// One policy as the API takes it; turned into a `PolicyRecord` for part A and into a
/// `POST /api/policies` body for part B.
pub(crate) struct Spec {
    pub(crate) name: String,
    /// Index of the target, None = every target.
    pub(crate) target: Option<usize>,
    pub(crate) resource_type: &'static str,
    pub(crate) pattern: Option<&'static str>,
    pub(crate) effect: &'static str,
    pub(crate) priority: i32,
    /// (subject_type, subject_value); user values are emails.
    pub(crate) subjects: Vec<(&'static str, Option<&'static str>)>,
}

pub(crate) fn spec(
    name: impl Into<String>,
    target: Option<usize>,
    resource_type: &'static str,
    pattern: Option<&'static str>,
    effect: &'static str,
    priority: i32,
    subjects: &[(&'static str, Option<&'static str>)],
) -> Spec {
    Spec {
        name: name.into(),
        target,
        resource_type,
        pattern,
        effect,
        priority,
        subjects: subjects.to_vec(),
    }
}

pub(crate) const EVERYONE: (&str, Option<&str>) = ("everyone", None);
pub(crate) const fn role(r: &'static str) -> (&'static str, Option<&'static str>) {
    ("role", Some(r))
}
pub(crate) const fn group(g: &'static str) -> (&'static str, Option<&'static str>) {
    ("group", Some(g))
}
pub(crate) const fn user(email: &'static str) -> (&'static str, Option<&'static str>) {
    ("user", Some(email))
}

/// The single-policy baseline: role dev may do everything (it is also the first of the 200).
pub(crate) fn baseline() -> Vec<Spec> {
    vec![spec(
        "dev-all",
        None,
        "all",
        None,
        "allow",
        0,
        &[role(DEV_ROLE)],
    )]
}

/// 200 policies in the shape a real deployment grows: 21 global (role, group, user and
/// everyone subjects; anchored tool patterns; denies carved out of allows and allows carved
/// out of denies) and 179 scoped to one target each (3–4 per target). Roughly half name the
/// bench user (role dev, groups eng/oncall, or the user itself); the rest name other roles,
/// groups and users and are skipped by the subject index. Every target stays visible to dev.
#[rustfmt::skip]
pub(crate) fn realistic() -> Vec<Spec> {
    let mut p = baseline();
    p.extend([
        spec("deny-admin-tools", None, "tool", Some("admin_.*"), "deny", 1000, &[EVERYONE]),
        spec("deny-dev-delete", None, "tool", Some("delete_.*"), "deny", 100, &[role(DEV_ROLE)]),
        spec("oncall-delete", None, "tool", Some("delete_(job|record)"), "allow", 200, &[group("oncall")]),
        spec("deny-secrets", None, "tool", Some(".*_secret"), "deny", 900, &[EVERYONE]),
        spec("secops-secrets", None, "tool", Some(".*_secret"), "allow", 950, &[group("secops")]),
        spec("viewer-read", None, "tool", Some("(get|list|search)_.*"), "allow", 10, &[role("viewer")]),
        spec("contractors-no-write", None, "tool", Some("(create|update|delete)_.*"), "deny", 300, &[group("contractors")]),
        spec("contractors-read", None, "tool", Some("(get|list|search)_.*"), "allow", 20, &[group("contractors")]),
        spec("interns-off", None, "all", None, "deny", 400, &[group("interns")]),
        spec("eng-sync", None, "tool", Some("sync_.*"), "allow", 50, &[group("eng")]),
        spec("deny-dev-export-invoice", None, "tool", Some("export_invoice"), "deny", 120, &[role(DEV_ROLE)]),
        spec("auditor-all", None, "all", None, "allow", 5, &[role("auditor")]),
        spec("alice-all", None, "all", None, "allow", 30, &[user(OTHER_EMAILS[0])]),
        spec("bob-off", None, "all", None, "deny", 600, &[user(OTHER_EMAILS[1])]),
        spec("deny-run", None, "tool", Some("run_.*"), "deny", 80, &[EVERYONE]),
        spec("eng-run", None, "tool", Some("run_(job|report)"), "allow", 90, &[group("eng")]),
        spec("finance-invoices", None, "tool", Some(".*_invoice"), "allow", 110, &[group("finance"), role("accountant")]),
        spec("dev-prompts", None, "prompt", None, "allow", 15, &[role(DEV_ROLE)]),
        spec("deny-dev-secret-resources", None, "resource", Some("secret://.*"), "deny", 130, &[role(DEV_ROLE)]),
        spec("ops-metrics", None, "tool", Some(".*_metric"), "allow", 40, &[group("ops"), role("sre")]),
    ]);
    for i in 0..POLICIES - p.len() {
        let k = i % TARGETS;
        let t = Some(k);
        let prio = (k % 5) as i32;
        p.push(match i / TARGETS {
            0 => spec(format!("t{k:02}-eng-read"), t, "tool", Some("(get|list|search)_.*"), "allow", 60, &[group("eng")]),
            1 if k.is_multiple_of(2) => spec(format!("t{k:02}-deny-writes"), t, "tool", Some("(create|update)_(project|user)"), "deny", 70 + prio, &[role(DEV_ROLE)]),
            1 => spec(format!("t{k:02}-deny-updates"), t, "tool", Some("update_.*"), "deny", 70 + prio, &[role(DEV_ROLE), group("contractors")]),
            2 => match k % 5 {
                0 => spec(format!("t{k:02}-interns-off"), t, "all", None, "deny", 500, &[group("interns")]),
                1 => spec(format!("t{k:02}-alice-admin"), t, "tool", Some("admin_.*"), "allow", 1100, &[user(OTHER_EMAILS[0])]),
                2 => spec(format!("t{k:02}-dev-exports"), t, "tool", Some("export_(report|metric)"), "allow", 125, &[user(DEV_EMAIL)]),
                3 => spec(format!("t{k:02}-oncall-run"), t, "tool", Some("run_.*"), "allow", 85, &[group("oncall")]),
                _ => spec(format!("t{k:02}-contractors-off"), t, "all", None, "deny", 450, &[group("contractors")]),
            },
            _ if k.is_multiple_of(2) => spec(format!("t{k:02}-viewer-files"), t, "tool", Some(".*_file"), "allow", 12, &[role("viewer")]),
            _ => spec(format!("t{k:02}-no-sync-secrets"), t, "tool", Some("sync_(secret|user)"), "deny", 95, &[EVERYONE]),
        });
    }
    assert_eq!(p.len(), POLICIES);
    p
}

impl Spec {
    pub(crate) fn record(
        &self,
        targets: &[TargetId],
        users: &HashMap<&str, UserId>,
    ) -> PolicyRecord {
        let id = PolicyId::new();
        let now = Utc::now();
        PolicyRecord {
            id,
            name: PolicyName::parse(&self.name).expect("policy name"),
            description: String::new(),
            target_id: self.target.map(|k| targets[k]),
            resource_type: ResourceType::parse(self.resource_type).unwrap(),
            resource_pattern: self.pattern.map(str::to_string),
            effect: Effect::parse(self.effect).unwrap(),
            priority: self.priority,
            enabled: true,
            // As the API stores them: a user subject by the user's id.
            subjects: self
                .subjects
                .iter()
                .map(|(t, v)| PolicySubject {
                    id: PolicySubjectId::new(),
                    policy_id: id,
                    subject_type: SubjectType::parse(t).unwrap(),
                    subject_value: match (*t, v) {
                        ("user", Some(email)) => Some(users[email].to_string()),
                        (_, v) => v.map(str::to_string),
                    },
                })
                .collect(),
            created_at: now,
            updated_at: now,
        }
    }

    pub(crate) fn body(&self) -> Value {
        let subjects: Vec<Value> = self
            .subjects
            .iter()
            .map(|(t, v)| json!({ "subject_type": t, "subject_value": v }))
            .collect();
        json!({
            "name": self.name,
            "target": self.target.map(target_name),
            "resource_type": self.resource_type,
            "resource_pattern": self.pattern,
            "effect": self.effect,
            "priority": self.priority,
            "subjects": subjects,
        })
    }
}
