//! `PolicySet::explain`: the decision plus, for every policy tried before the one that
//! decided, why it did not match. For admins debugging rules; allocates freely.

use serde::Serialize;

use super::{Decision, ItemType, PolicyRef, PolicySet, Rule, Subject};
use crate::domain::{Effect, TargetId};

/// Why a policy was passed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Disabled,
    /// None of its subjects names the caller.
    Subject,
    /// It is scoped to another target.
    Target,
    /// Its resource type does not cover the item's.
    Type,
    /// Its pattern does not match the name (or no name was given).
    Pattern,
    /// Visibility only: a deny limited to a type or a pattern hides some items, not the target.
    PartialDeny,
}

/// One policy tried, in evaluation order.
#[derive(Clone, Debug, Serialize)]
pub struct TraceStep {
    pub policy: PolicyRef,
    pub priority: i32,
    pub effect: Effect,
    pub matched: bool,
    /// Set when `matched` is false.
    pub reason: Option<SkipReason>,
    /// The reason in words.
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub decision: Decision,
    /// Every policy tried up to and including the one that decided (all of them on a
    /// default deny).
    pub trace: Vec<TraceStep>,
}

impl PolicySet {
    /// Explains a decision. With `item`, explains `decide` for that item; a policy with a
    /// pattern cannot match when `name` is None. Without `item`, explains `target_visible`.
    /// The decision always equals what `decide` / `target_visible` answer.
    pub fn explain(
        &self,
        s: &Subject,
        target: TargetId,
        item: Option<ItemType>,
        name: Option<&str>,
    ) -> Explanation {
        let mut trace = Vec::new();
        for rule in &self.rules {
            let skip = skip_reason(rule, s, target, item, name);
            let matched = skip.is_none();
            trace.push(TraceStep {
                policy: rule.policy.clone(),
                priority: rule.priority,
                effect: rule.effect,
                matched,
                reason: skip.as_ref().map(|(r, _)| *r),
                detail: match skip {
                    Some((_, detail)) => detail,
                    None => format!("matches; decides {}", rule.effect),
                },
            });
            if matched {
                return Explanation {
                    decision: Decision {
                        allowed: rule.effect == Effect::Allow,
                        policy: Some(rule.policy.clone()),
                    },
                    trace,
                };
            }
        }
        Explanation {
            decision: Decision::DEFAULT_DENY,
            trace,
        }
    }
}

fn skip_reason(
    rule: &Rule,
    s: &Subject,
    target: TargetId,
    item: Option<ItemType>,
    name: Option<&str>,
) -> Option<(SkipReason, String)> {
    if !rule.enabled {
        return Some((SkipReason::Disabled, "disabled".into()));
    }
    if !rule.names(s) {
        let groups: Vec<&str> = s.groups.iter().map(|g| g.as_str()).collect();
        return Some((
            SkipReason::Subject,
            format!(
                "its subjects ({}) do not include role {}, groups [{}] or user {}",
                subjects_text(rule),
                s.role,
                groups.join(", "),
                s.email
            ),
        ));
    }
    if !rule.applies_to_target(target) {
        return Some((SkipReason::Target, "applies to another target".into()));
    }
    let Some(item) = item else {
        if rule.effect == Effect::Deny && !rule.denies_everything() {
            return Some((
                SkipReason::PartialDeny,
                "denies only some items (by type or pattern); the target stays visible".into(),
            ));
        }
        return None;
    };
    if !item.covered_by(rule.resource_type) {
        return Some((
            SkipReason::Type,
            format!(
                "covers {} items, not {}",
                rule.resource_type.as_str(),
                item.as_str()
            ),
        ));
    }
    if let (Some(re), Some(text)) = (&rule.pattern, &rule.pattern_text) {
        match name {
            None => {
                return Some((
                    SkipReason::Pattern,
                    format!("has pattern {text:?} and no name was given"),
                ));
            }
            Some(n) if !re.is_match(n) => {
                return Some((
                    SkipReason::Pattern,
                    format!("pattern {text:?} does not match the whole name {n:?}"),
                ));
            }
            Some(_) => {}
        }
    }
    None
}

fn subjects_text(rule: &Rule) -> String {
    let mut parts = Vec::new();
    if rule.everyone {
        parts.push("everyone".to_string());
    }
    parts.extend(rule.roles.iter().map(|r| format!("role {r}")));
    parts.extend(rule.groups.iter().map(|g| format!("group {g}")));
    parts.extend(rule.user_ids.iter().map(|u| format!("user {u}")));
    parts.extend(rule.emails.iter().map(|e| format!("user {e}")));
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
