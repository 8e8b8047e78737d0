//! The policy engine: compiles the stored policies once per revision into an immutable
//! `PolicySet` and answers "may this subject use this item?" without I/O or allocation.
//!
//! Semantics (DESIGN §4): policies are tried by priority (highest first, then by name); the
//! first that matches decides; none matching means deny. A policy matches when it is enabled,
//! one of its subjects names the caller, its target is unset or the item's target, its
//! resource type is `all` or the item's type, and its pattern (if any) matches the item's
//! whole, unprefixed name or URI.

mod explain;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;
use serde::Serialize;

use crate::domain::{Effect, GroupName, PolicyId, ResourceType, SubjectType, TargetId, UserId};
use crate::store::PolicyRecord;

pub use explain::{Explanation, SkipReason, TraceStep};

/// The caller a decision is about. `email` is the normalized (lower-case) address, as
/// `domain::Email` holds it: user subjects given by email are compared exactly.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub user_id: UserId,
    pub email: &'a str,
    pub role: &'a str,
    pub groups: &'a [GroupName],
}

/// The kind of item a request touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    Tool,
    Resource,
    Prompt,
}

impl ItemType {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Tool => "tool",
            ItemType::Resource => "resource",
            ItemType::Prompt => "prompt",
        }
    }

    /// Whether a policy of resource type `rt` covers items of this type.
    pub fn covered_by(self, rt: ResourceType) -> bool {
        matches!(
            (rt, self),
            (ResourceType::All, _)
                | (ResourceType::Tool, ItemType::Tool)
                | (ResourceType::Resource, ItemType::Resource)
                | (ResourceType::Prompt, ItemType::Prompt)
        )
    }
}

/// Names the policy that decided. The name is shared, so copying a decision never allocates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyRef {
    pub id: PolicyId,
    pub name: Arc<str>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The policy that matched; None when none did (default deny).
    pub policy: Option<PolicyRef>,
}

impl Decision {
    const DEFAULT_DENY: Decision = Decision {
        allowed: false,
        policy: None,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "policy {policy}: resource_pattern {pattern:?} is not a valid regular expression: {source}"
    )]
    Pattern {
        policy: String,
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
    #[error("policy {policy}: a {subject_type} subject needs a value")]
    MissingSubjectValue {
        policy: String,
        subject_type: SubjectType,
    },
}

/// Compiles a resource pattern the way the engine uses it: anchored at both ends, so
/// `delete_.*` matches `delete_x` but not `undelete_x`.
pub fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// One compiled policy.
#[derive(Debug)]
struct Rule {
    policy: PolicyRef,
    priority: i32,
    effect: Effect,
    enabled: bool,
    target: Option<TargetId>,
    resource_type: ResourceType,
    /// The pattern as written, for explanations.
    pattern_text: Option<String>,
    pattern: Option<Regex>,
    everyone: bool,
    roles: Vec<String>,
    groups: Vec<String>,
    user_ids: Vec<UserId>,
    emails: Vec<String>,
}

impl Rule {
    fn applies_to_target(&self, target: TargetId) -> bool {
        self.target.is_none_or(|t| t == target)
    }

    fn matches_item(&self, target: TargetId, item: ItemType, name: &str) -> bool {
        self.applies_to_target(target)
            && item.covered_by(self.resource_type)
            && self.pattern.as_ref().is_none_or(|re| re.is_match(name))
    }

    /// True for a deny that hides a whole target: type `all` and no pattern.
    fn denies_everything(&self) -> bool {
        self.effect == Effect::Deny
            && self.resource_type == ResourceType::All
            && self.pattern.is_none()
    }

    /// The unindexed subject test, used by explanations (speed does not matter there).
    fn names(&self, s: &Subject) -> bool {
        self.everyone
            || self.roles.iter().any(|r| r == s.role)
            || self
                .groups
                .iter()
                .any(|g| s.groups.iter().any(|sg| sg.as_str() == g))
            || self.user_ids.contains(&s.user_id)
            || self.emails.iter().any(|e| e == s.email)
    }
}

/// The compiled, immutable policy set of one revision; share it in an `Arc`.
#[derive(Debug, Default)]
pub struct PolicySet {
    /// Every policy (disabled ones too, for explanations) in evaluation order.
    rules: Vec<Rule>,
    // Indexes of enabled rules into `rules`, ascending (= evaluation order), by subject kind.
    everyone: Vec<u32>,
    by_role: HashMap<String, Vec<u32>>,
    by_group: HashMap<String, Vec<u32>>,
    by_user: HashMap<UserId, Vec<u32>>,
    by_email: HashMap<String, Vec<u32>>,
}

impl PolicySet {
    /// Compiles every pattern once (anchored), orders by priority desc then name, and indexes
    /// the enabled policies by subject. Disabled policies never match.
    pub fn compile(policies: &[PolicyRecord]) -> Result<PolicySet, PolicyError> {
        let mut sorted: Vec<&PolicyRecord> = policies.iter().collect();
        sorted.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        let mut set = PolicySet::default();
        for (index, p) in sorted.into_iter().enumerate() {
            let pattern = p
                .resource_pattern
                .as_deref()
                .map(compile_pattern)
                .transpose()
                .map_err(|e| PolicyError::Pattern {
                    policy: p.name.to_string(),
                    pattern: p.resource_pattern.clone().unwrap_or_default(),
                    source: Box::new(e),
                })?;
            let mut rule = Rule {
                policy: PolicyRef {
                    id: p.id,
                    name: Arc::from(p.name.as_str()),
                },
                priority: p.priority,
                effect: p.effect,
                enabled: p.enabled,
                target: p.target_id,
                resource_type: p.resource_type,
                pattern_text: p.resource_pattern.clone(),
                pattern,
                everyone: false,
                roles: Vec::new(),
                groups: Vec::new(),
                user_ids: Vec::new(),
                emails: Vec::new(),
            };
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            for subject in &p.subjects {
                let value = || match subject.subject_value.as_deref() {
                    Some(v) if !v.is_empty() => Ok(v),
                    _ => Err(PolicyError::MissingSubjectValue {
                        policy: p.name.to_string(),
                        subject_type: subject.subject_type,
                    }),
                };
                let push = |list: &mut Vec<u32>| {
                    // A policy naming the caller twice must appear once per list.
                    if p.enabled && list.last() != Some(&index) {
                        list.push(index);
                    }
                };
                match subject.subject_type {
                    SubjectType::Everyone => {
                        rule.everyone = true;
                        push(&mut set.everyone);
                    }
                    SubjectType::Role => {
                        let v = value()?;
                        rule.roles.push(v.to_string());
                        push(set.by_role.entry(v.to_string()).or_default());
                    }
                    SubjectType::Group => {
                        let v = value()?;
                        rule.groups.push(v.to_string());
                        push(set.by_group.entry(v.to_string()).or_default());
                    }
                    SubjectType::User => match value()?.parse::<UserId>() {
                        Ok(id) => {
                            rule.user_ids.push(id);
                            push(set.by_user.entry(id).or_default());
                        }
                        Err(_) => {
                            let email = value()?.trim().to_lowercase();
                            rule.emails.push(email.clone());
                            push(set.by_email.entry(email).or_default());
                        }
                    },
                }
            }
            set.rules.push(rule);
        }
        Ok(set)
    }

    /// The number of policies compiled, disabled ones included.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first enabled rule (in evaluation order) that names `s` and satisfies `pred`.
    /// Each subject index is ascending, so the answer is the smallest first hit over the
    /// caller's lists; a list's scan stops once it passes the best hit so far.
    fn first_match(&self, s: &Subject, pred: impl Fn(&Rule) -> bool) -> Option<&Rule> {
        let mut best = usize::MAX;
        let mut scan = |list: &[u32]| {
            for &i in list {
                let i = i as usize;
                if i >= best {
                    break;
                }
                if pred(&self.rules[i]) {
                    best = i;
                    break;
                }
            }
        };
        scan(&self.everyone);
        if let Some(list) = self.by_role.get(s.role) {
            scan(list);
        }
        for g in s.groups {
            if let Some(list) = self.by_group.get(g.as_str()) {
                scan(list);
            }
        }
        if let Some(list) = self.by_user.get(&s.user_id) {
            scan(list);
        }
        if let Some(list) = self.by_email.get(s.email) {
            scan(list);
        }
        self.rules.get(best)
    }

    /// May `s` use the item `name` (the original, unprefixed tool/prompt name or resource URI)
    /// of type `item` on `target`? First matching policy wins; none → deny.
    pub fn decide(&self, s: &Subject, target: TargetId, item: ItemType, name: &str) -> Decision {
        match self.first_match(s, |r| r.matches_item(target, item, name)) {
            Some(rule) => Decision {
                allowed: rule.effect == Effect::Allow,
                policy: Some(rule.policy.clone()),
            },
            None => Decision::DEFAULT_DENY,
        }
    }

    /// Whether `target` may be shown to `s` at all (in target lists, and as a source of items).
    ///
    /// Rule: walk the enabled policies that name `s` and apply to `target` (target unset or
    /// equal), in evaluation order, and stop at the first that is either
    /// - an **allow** of any type and pattern → visible (some item of the target could be
    ///   allowed; which ones is `decide`'s business), or
    /// - a **deny of type `all` without a pattern** → hidden (it denies every item, so
    ///   nothing below it can allow anything).
    ///
    /// Denies limited to a type or a pattern are passed over: they hide only some items.
    /// If no policy stops the walk, the target is hidden (default deny).
    pub fn target_visible(&self, s: &Subject, target: TargetId) -> bool {
        self.first_match(s, |r| {
            r.applies_to_target(target) && (r.effect == Effect::Allow || r.denies_everything())
        })
        .is_some_and(|r| r.effect == Effect::Allow)
    }
}
