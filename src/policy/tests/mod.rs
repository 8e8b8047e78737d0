//! Engine tests: table-driven semantics and explanations; `random` checks the engine against
//! a naive reference on random policy sets.

mod random;

use chrono::Utc;

use super::*;
use crate::domain::{PolicyName, PolicySubjectId};
use crate::store::PolicySubject;

pub(super) fn policy(
    name: &str,
    priority: i32,
    effect: Effect,
    subjects: &[(SubjectType, &str)],
) -> PolicyRecord {
    let id = PolicyId::new();
    PolicyRecord {
        id,
        name: PolicyName::parse(name).unwrap(),
        description: String::new(),
        target_id: None,
        resource_type: ResourceType::All,
        resource_pattern: None,
        effect,
        priority,
        enabled: true,
        subjects: subjects
            .iter()
            .map(|(t, v)| PolicySubject {
                id: PolicySubjectId::new(),
                policy_id: id,
                subject_type: *t,
                subject_value: (*t != SubjectType::Everyone).then(|| v.to_string()),
            })
            .collect(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

pub(super) fn allow(name: &str, priority: i32, subjects: &[(SubjectType, &str)]) -> PolicyRecord {
    policy(name, priority, Effect::Allow, subjects)
}

pub(super) fn deny(name: &str, priority: i32, subjects: &[(SubjectType, &str)]) -> PolicyRecord {
    policy(name, priority, Effect::Deny, subjects)
}

pub(super) trait Tweak {
    fn on(self, t: TargetId) -> Self;
    fn of(self, rt: ResourceType) -> Self;
    fn pattern(self, p: &str) -> Self;
    fn disabled(self) -> Self;
}

impl Tweak for PolicyRecord {
    fn on(mut self, t: TargetId) -> Self {
        self.target_id = Some(t);
        self
    }
    fn of(mut self, rt: ResourceType) -> Self {
        self.resource_type = rt;
        self
    }
    fn pattern(mut self, p: &str) -> Self {
        self.resource_pattern = Some(p.into());
        self
    }
    fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

pub(super) const EVERYONE: (SubjectType, &str) = (SubjectType::Everyone, "");
pub(super) fn role(r: &str) -> (SubjectType, &str) {
    (SubjectType::Role, r)
}
pub(super) fn group(g: &str) -> (SubjectType, &str) {
    (SubjectType::Group, g)
}
pub(super) fn user(u: &str) -> (SubjectType, &str) {
    (SubjectType::User, u)
}

pub(super) struct Who {
    pub(super) id: UserId,
    pub(super) email: String,
    pub(super) role: String,
    pub(super) groups: Vec<GroupName>,
}

impl Who {
    pub(super) fn new(email: &str, role: &str, groups: &[&str]) -> Self {
        Self {
            id: UserId::new(),
            email: email.into(),
            role: role.into(),
            groups: groups
                .iter()
                .map(|g| GroupName::parse(g).unwrap())
                .collect(),
        }
    }
    pub(super) fn subject(&self) -> Subject<'_> {
        Subject {
            user_id: self.id,
            email: &self.email,
            role: &self.role,
            groups: &self.groups,
        }
    }
}

/// (what, policies, target, item, name, deciding policy or None for default deny, allowed)
type DecisionCase<'a> = (
    &'a str,
    Vec<PolicyRecord>,
    TargetId,
    ItemType,
    &'a str,
    Option<&'a str>,
    bool,
);

#[test]
fn decision_table() {
    let alice = Who::new("alice@example.com", "dev", &["ops", "qa"]);
    let t1 = TargetId::new();
    let t2 = TargetId::new();
    let alice_id = alice.id.to_string();
    use ItemType::{Prompt, Resource, Tool};
    // (what, policies, target, item, name, expected decider or None for default deny, allowed)
    let cases: Vec<DecisionCase> = vec![
        ("no policy denies", vec![], t1, Tool, "x", None, false),
        (
            "unrelated policies deny",
            vec![
                allow("a", 0, &[role("admin")]),
                allow("b", 0, &[group("sales")]),
            ],
            t1,
            Tool,
            "x",
            None,
            false,
        ),
        (
            "everyone",
            vec![allow("a", 0, &[EVERYONE])],
            t1,
            Tool,
            "x",
            Some("a"),
            true,
        ),
        (
            "role",
            vec![allow("a", 0, &[role("dev")])],
            t1,
            Tool,
            "x",
            Some("a"),
            true,
        ),
        (
            "second group",
            vec![allow("a", 0, &[group("qa")])],
            t1,
            Prompt,
            "p",
            Some("a"),
            true,
        ),
        (
            "user by id",
            vec![allow("a", 0, &[user(&alice_id)])],
            t1,
            Tool,
            "x",
            Some("a"),
            true,
        ),
        (
            "user by email",
            vec![allow("a", 0, &[user("Alice@Example.com")])],
            t1,
            Tool,
            "x",
            Some("a"),
            true,
        ),
        (
            "priority: the higher deny overrides a lower allow",
            vec![allow("a", 10, &[EVERYONE]), deny("d", 20, &[role("dev")])],
            t1,
            Tool,
            "x",
            Some("d"),
            false,
        ),
        (
            "priority: the higher allow beats a lower deny",
            vec![allow("a", 30, &[EVERYONE]), deny("d", 20, &[role("dev")])],
            t1,
            Tool,
            "x",
            Some("a"),
            true,
        ),
        (
            "equal priority: name order decides",
            vec![
                deny("b-deny", 5, &[EVERYONE]),
                allow("a-allow", 5, &[EVERYONE]),
            ],
            t1,
            Tool,
            "x",
            Some("a-allow"),
            true,
        ),
        (
            "a deny for another name does not apply",
            vec![
                deny("d", 20, &[EVERYONE]).pattern("delete_.*"),
                allow("a", 10, &[EVERYONE]),
            ],
            t1,
            Tool,
            "read_file",
            Some("a"),
            true,
        ),
        (
            "a deny pattern matches the whole name",
            vec![
                deny("d", 20, &[EVERYONE]).pattern("delete_.*"),
                allow("a", 10, &[EVERYONE]),
            ],
            t1,
            Tool,
            "delete_repo",
            Some("d"),
            false,
        ),
        (
            "anchored: delete_.* does not match undelete_x",
            vec![
                deny("d", 20, &[EVERYONE]).pattern("delete_.*"),
                allow("a", 10, &[EVERYONE]),
            ],
            t1,
            Tool,
            "undelete_x",
            Some("a"),
            true,
        ),
        (
            "anchored: alternation is grouped",
            vec![allow("a", 0, &[EVERYONE]).pattern("read|list")],
            t1,
            Tool,
            "readme_list",
            None,
            false,
        ),
        (
            "resource URIs match as a whole",
            vec![
                allow("a", 0, &[EVERYONE])
                    .of(ResourceType::Resource)
                    .pattern(r"file:///srv/.*"),
            ],
            t1,
            Resource,
            "file:///srv/a.txt",
            Some("a"),
            true,
        ),
        (
            "disabled policies are ignored",
            vec![
                deny("d", 20, &[EVERYONE]).disabled(),
                allow("a", 10, &[EVERYONE]),
            ],
            t1,
            Tool,
            "x",
            Some("a"),
            true,
        ),
        (
            "a disabled allow leaves default deny",
            vec![allow("a", 10, &[EVERYONE]).disabled()],
            t1,
            Tool,
            "x",
            None,
            false,
        ),
        (
            "target-scoped policy on its target",
            vec![allow("a", 0, &[EVERYONE]).on(t1)],
            t1,
            Tool,
            "x",
            Some("a"),
            true,
        ),
        (
            "target-scoped policy elsewhere",
            vec![allow("a", 0, &[EVERYONE]).on(t1)],
            t2,
            Tool,
            "x",
            None,
            false,
        ),
        (
            "a target-scoped deny above a global allow",
            vec![deny("d", 5, &[EVERYONE]).on(t2), allow("a", 1, &[EVERYONE])],
            t2,
            Tool,
            "x",
            Some("d"),
            false,
        ),
        (
            "type all covers prompts",
            vec![allow("a", 0, &[EVERYONE]).of(ResourceType::All)],
            t1,
            Prompt,
            "p",
            Some("a"),
            true,
        ),
        (
            "a tool policy does not cover prompts",
            vec![allow("a", 0, &[EVERYONE]).of(ResourceType::Tool)],
            t1,
            Prompt,
            "p",
            None,
            false,
        ),
        (
            "a tool-only deny leaves prompts to the allow below",
            vec![
                deny("d", 9, &[EVERYONE]).of(ResourceType::Tool),
                allow("a", 1, &[EVERYONE]),
            ],
            t1,
            Prompt,
            "p",
            Some("a"),
            true,
        ),
    ];
    for (what, policies, target, item, name, decider, allowed) in cases {
        let set = PolicySet::compile(&policies).unwrap();
        let d = set.decide(&alice.subject(), target, item, name);
        assert_eq!(d.allowed, allowed, "{what}");
        assert_eq!(d.policy.as_ref().map(|p| &*p.name), decider, "{what}");
        // The explanation reaches the same verdict.
        let e = set.explain(&alice.subject(), target, Some(item), Some(name));
        assert_eq!(e.decision, d, "{what}: explain agrees");
    }
}

#[test]
fn target_visibility_table() {
    let bob = Who::new("bob@example.com", "user", &["eng"]);
    let t1 = TargetId::new();
    let t2 = TargetId::new();
    let cases: Vec<(&str, Vec<PolicyRecord>, TargetId, bool)> = vec![
        ("no policy: hidden", vec![], t1, false),
        (
            "any allow: visible",
            vec![allow("a", 0, &[EVERYONE])],
            t1,
            true,
        ),
        (
            "an allow for one tool is enough",
            vec![
                allow("a", 0, &[group("eng")])
                    .on(t1)
                    .of(ResourceType::Tool)
                    .pattern("read"),
            ],
            t1,
            true,
        ),
        (
            "an allow for another target",
            vec![allow("a", 0, &[EVERYONE]).on(t2)],
            t1,
            false,
        ),
        (
            "an allow for someone else",
            vec![allow("a", 0, &[role("admin")])],
            t1,
            false,
        ),
        (
            "a whole-target deny above hides it",
            vec![
                deny("d", 10, &[EVERYONE]).on(t1),
                allow("a", 0, &[EVERYONE]),
            ],
            t1,
            false,
        ),
        (
            "the whole-target deny is scoped to t1 only",
            vec![
                deny("d", 10, &[EVERYONE]).on(t1),
                allow("a", 0, &[EVERYONE]),
            ],
            t2,
            true,
        ),
        (
            "a deny with a pattern hides only some items",
            vec![
                deny("d", 10, &[EVERYONE]).pattern(".*"),
                allow("a", 0, &[EVERYONE]),
            ],
            t1,
            true,
        ),
        (
            "a typed deny hides only some items",
            vec![
                deny("d", 10, &[EVERYONE]).of(ResourceType::Tool),
                allow("a", 0, &[EVERYONE]),
            ],
            t1,
            true,
        ),
        (
            "an allow above a whole-target deny wins",
            vec![
                allow("a", 10, &[role("user")]).of(ResourceType::Prompt),
                deny("d", 5, &[EVERYONE]),
            ],
            t1,
            true,
        ),
        (
            "a disabled deny does not hide",
            vec![
                deny("d", 10, &[EVERYONE]).disabled(),
                allow("a", 0, &[EVERYONE]),
            ],
            t1,
            true,
        ),
    ];
    for (what, policies, target, visible) in cases {
        let set = PolicySet::compile(&policies).unwrap();
        assert_eq!(
            set.target_visible(&bob.subject(), target),
            visible,
            "{what}"
        );
        let e = set.explain(&bob.subject(), target, None, None);
        assert_eq!(e.decision.allowed, visible, "{what}: explain agrees");
    }
}

#[test]
fn explain_names_each_reason() {
    let carol = Who::new("carol@example.com", "dev", &["qa"]);
    let t1 = TargetId::new();
    let policies = vec![
        deny("p1-disabled", 60, &[EVERYONE]).disabled(),
        deny("p2-subject", 50, &[role("admin"), group("ops")]),
        deny("p3-target", 40, &[EVERYONE]).on(TargetId::new()),
        deny("p4-type", 30, &[EVERYONE]).of(ResourceType::Prompt),
        deny("p5-pattern", 20, &[EVERYONE]).pattern("delete_.*"),
        allow("p6-match", 10, &[role("dev")]),
        deny("p7-never-reached", 0, &[EVERYONE]),
    ];
    let set = PolicySet::compile(&policies).unwrap();
    let e = set.explain(
        &carol.subject(),
        t1,
        Some(ItemType::Tool),
        Some("undelete_x"),
    );
    let got: Vec<(&str, bool, Option<SkipReason>)> = e
        .trace
        .iter()
        .map(|s| (&*s.policy.name, s.matched, s.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            ("p1-disabled", false, Some(SkipReason::Disabled)),
            ("p2-subject", false, Some(SkipReason::Subject)),
            ("p3-target", false, Some(SkipReason::Target)),
            ("p4-type", false, Some(SkipReason::Type)),
            ("p5-pattern", false, Some(SkipReason::Pattern)),
            ("p6-match", true, None),
        ]
    );
    assert!(e.decision.allowed);
    assert!(
        e.trace[1].detail.contains("role admin"),
        "{}",
        e.trace[1].detail
    );
    assert!(
        e.trace[4].detail.contains("undelete_x"),
        "{}",
        e.trace[4].detail
    );

    // Visibility mode names partial denies.
    let e = set.explain(&carol.subject(), t1, None, None);
    assert_eq!(e.trace[3].reason, Some(SkipReason::PartialDeny));
    assert_eq!(e.trace[4].reason, Some(SkipReason::PartialDeny));
    assert!(e.decision.allowed);
}

#[test]
fn compile_rejects_bad_patterns_and_valueless_subjects() {
    let err = PolicySet::compile(&[allow("a", 0, &[EVERYONE]).pattern("(")]).unwrap_err();
    assert!(matches!(err, PolicyError::Pattern { .. }), "{err}");
    let mut p = allow("b", 0, &[role("x")]);
    p.subjects[0].subject_value = None;
    let err = PolicySet::compile(&[p]).unwrap_err();
    assert!(
        matches!(err, PolicyError::MissingSubjectValue { .. }),
        "{err}"
    );
}
