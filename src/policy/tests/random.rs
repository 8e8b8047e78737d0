//! Randomized checks: the indexed engine agrees with a naive reference evaluation, a caller
//! no policy names is always denied and sees no target, and an allowed item's target is
//! always visible.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;

const ROLES: &[&str] = &["admin", "user", "dev"];
const GROUPS: &[&str] = &["ops", "qa", "eng"];
const EMAILS: &[&str] = &["a@x.io", "b@x.io", "c@x.io"];
/// Patterns as written, with their anchored forms spelled out by hand.
const PATTERNS: &[(&str, &str)] = &[
    ("delete_.*", "^delete_.*$"),
    ("read_.*|list", "^(read_.*|list)$"),
    ("p[0-9]", "^p[0-9]$"),
];
const NAMES: &[&str] = &["read_file", "delete_repo", "undelete_x", "list", "p1"];

fn random_policies(rng: &mut StdRng, targets: &[TargetId], users: &[UserId]) -> Vec<PolicyRecord> {
    let types = [
        ResourceType::All,
        ResourceType::Tool,
        ResourceType::Resource,
        ResourceType::Prompt,
    ];
    (0..rng.random_range(0..8))
        .map(|i| {
            let n = rng.random_range(0..3);
            let mut subjects = Vec::new();
            let user_strings: Vec<String> = users.iter().map(|u| u.to_string()).collect();
            for _ in 0..n {
                subjects.push(match rng.random_range(0..9) {
                    0 => EVERYONE,
                    1 | 2 => role(ROLES[rng.random_range(0..ROLES.len())]),
                    3 | 4 => group(GROUPS[rng.random_range(0..GROUPS.len())]),
                    5 | 6 => user(EMAILS[rng.random_range(0..EMAILS.len())]),
                    _ => (SubjectType::User, ""),
                });
            }
            let mut p = policy(
                &format!("p{i}"),
                rng.random_range(-3..3),
                if rng.random_bool(0.5) {
                    Effect::Allow
                } else {
                    Effect::Deny
                },
                &subjects,
            );
            // The `(User, "")` placeholders become user-id subjects.
            for s in &mut p.subjects {
                if s.subject_value.as_deref() == Some("") {
                    s.subject_value = Some(user_strings[rng.random_range(0..users.len())].clone());
                }
            }
            p.enabled = rng.random_bool(0.85);
            p.target_id = rng
                .random_bool(0.5)
                .then(|| targets[rng.random_range(0..targets.len())]);
            p.resource_type = types[rng.random_range(0..types.len())];
            // One time in four, no pattern.
            let k = rng.random_range(0..=PATTERNS.len());
            p.resource_pattern = PATTERNS.get(k).map(|(p, _)| p.to_string());
            p
        })
        .collect()
}

/// The rules written out naively, as the reference the indexed engine must agree with.
fn reference_decide(
    ps: &[PolicyRecord],
    regexes: &HashMap<&str, regex::Regex>,
    w: &Who,
    target: TargetId,
    item: ItemType,
    name: &str,
) -> Option<(bool, String)> {
    let mut sorted: Vec<&PolicyRecord> = ps.iter().filter(|p| p.enabled).collect();
    sorted.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
    sorted
        .into_iter()
        .find(|p| {
            let subject = p.subjects.iter().any(|s| match s.subject_type {
                SubjectType::Everyone => true,
                SubjectType::Role => s.subject_value.as_deref() == Some(&w.role),
                SubjectType::Group => w
                    .groups
                    .iter()
                    .any(|g| Some(g.as_str()) == s.subject_value.as_deref()),
                SubjectType::User => {
                    let v = s.subject_value.as_deref().unwrap();
                    v == w.id.to_string() || v == w.email
                }
            });
            let pattern = p
                .resource_pattern
                .as_deref()
                .is_none_or(|re| regexes[re].is_match(name));
            subject
                && p.target_id.is_none_or(|t| t == target)
                && item.covered_by(p.resource_type)
                && pattern
        })
        .map(|p| (p.effect == Effect::Allow, p.name.to_string()))
}

#[test]
fn randomized_agreement_with_the_reference_and_default_deny() {
    let mut rng = StdRng::seed_from_u64(0x5eed_2026);
    let targets = [TargetId::new(), TargetId::new()];
    let items = [ItemType::Tool, ItemType::Resource, ItemType::Prompt];
    // Written out independently of compile_pattern: anchoring is part of what is checked.
    let regexes: HashMap<&str, regex::Regex> = PATTERNS
        .iter()
        .map(|(p, anchored)| (*p, regex::Regex::new(anchored).unwrap()))
        .collect();
    for round in 0..400 {
        let mut whos: Vec<Who> = (0..3)
            .map(|i| {
                let groups: Vec<&str> = GROUPS
                    .iter()
                    .copied()
                    .filter(|_| rng.random_bool(0.4))
                    .collect();
                Who::new(EMAILS[i], ROLES[rng.random_range(0..ROLES.len())], &groups)
            })
            .collect();
        // A stranger: a role, groups and identity that no policy can name.
        whos.push(Who::new("nobody@x.io", "guest", &["outsiders"]));
        let ids: Vec<UserId> = whos.iter().map(|w| w.id).collect();
        let mut policies = random_policies(&mut rng, &targets, &ids[..3]);
        // Strangers only ever meet policies without an `everyone` subject.
        let no_everyone = round % 2 == 0;
        if no_everyone {
            for p in &mut policies {
                p.subjects
                    .retain(|s| s.subject_type != SubjectType::Everyone);
            }
        }
        let set = PolicySet::compile(&policies).unwrap();
        for w in &whos {
            for &t in &targets {
                for &item in &items {
                    let name = NAMES[rng.random_range(0..NAMES.len())];
                    let d = set.decide(&w.subject(), t, item, name);
                    let expected = reference_decide(&policies, &regexes, w, t, item, name);
                    assert_eq!(
                        (d.allowed, d.policy.as_ref().map(|p| p.name.to_string())),
                        expected.map_or((false, None), |(a, n)| (a, Some(n))),
                        "round {round}: {policies:#?}"
                    );
                    assert_eq!(
                        set.explain(&w.subject(), t, Some(item), Some(name))
                            .decision,
                        d
                    );
                }
                let visible = set.target_visible(&w.subject(), t);
                assert_eq!(
                    set.explain(&w.subject(), t, None, None).decision.allowed,
                    visible
                );
                if w.email == "nobody@x.io" && no_everyone {
                    // Matched by no policy: never an allow, never a visible target.
                    assert!(!visible, "round {round}: stranger sees a target");
                    for name in NAMES {
                        for &item in &items {
                            let d = set.decide(&w.subject(), t, item, name);
                            assert!(!d.allowed && d.policy.is_none(), "round {round}");
                        }
                    }
                }
                // Anything allowed implies the target is visible.
                for name in NAMES {
                    for &item in &items {
                        if set.decide(&w.subject(), t, item, name).allowed {
                            assert!(visible, "round {round}: allowed {name} on a hidden target");
                        }
                    }
                }
            }
        }
    }
}
