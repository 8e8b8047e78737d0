//! Policies: creation, patching and removal of access rules and their subjects, every rule a
//! policy must satisfy before it is stored, and evaluation for admins (`evaluate`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ServiceError;
use crate::domain::{
    Effect, Email, GroupName, PolicyId, PolicyName, PolicySubjectId, ResourceType, Role,
    SubjectType, TargetId, TargetName, UserId,
};
use crate::policy::{Explanation, ItemType, PolicySet, Subject, compile_pattern};
use crate::store::{PolicyRecord, PolicySubject, Store, TargetRecord, UserRecord, sort_subjects};

pub const MIN_PRIORITY: i64 = -10_000;
pub const MAX_PRIORITY: i64 = 10_000;
const MAX_DESCRIPTION: usize = 1000;

/// One subject as given: text, so a bad value becomes a 422 naming its field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectInput {
    pub subject_type: String,
    pub subject_value: Option<String>,
}

/// Raw input for create (absent = default) and update (absent = unchanged). `target` is an id
/// or a name; `Some(None)` means every target. `subjects`, when given, replaces the set.
#[derive(Clone, Debug, Default)]
pub struct PolicyInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub target: Option<Option<String>>,
    pub resource_type: Option<String>,
    pub resource_pattern: Option<Option<String>>,
    pub effect: Option<String>,
    /// Wider than i32 so an out-of-range priority is reported, not truncated.
    pub priority: Option<i64>,
    pub enabled: Option<bool>,
    pub subjects: Option<Vec<SubjectInput>>,
}

#[derive(Clone, Debug)]
pub struct PolicyService {
    store: Store,
}

impl PolicyService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn create(&self, input: PolicyInput) -> Result<PolicyRecord, ServiceError> {
        let record = self.build(input).await?;
        self.store.insert_policy(&record).await?;
        Ok(record)
    }

    /// Validates input into a new record without storing it (`policy apply --dry-run`).
    pub async fn build(&self, input: PolicyInput) -> Result<PolicyRecord, ServiceError> {
        let name = input
            .name
            .as_deref()
            .ok_or_else(|| ServiceError::invalid("name", "is required"))?;
        if input.effect.is_none() {
            return Err(ServiceError::invalid(
                "effect",
                "is required: allow or deny",
            ));
        }
        let now = now_micros();
        let mut record = PolicyRecord {
            id: PolicyId::new(),
            name: PolicyName::parse(name)?,
            description: String::new(),
            target_id: None,
            resource_type: ResourceType::All,
            resource_pattern: None,
            effect: Effect::Deny,
            priority: 0,
            enabled: true,
            subjects: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.apply(&mut record, input).await?;
        Ok(record)
    }

    pub async fn get(&self, id: PolicyId) -> Result<PolicyRecord, ServiceError> {
        self.store
            .policy(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("policy {id}")))
    }

    /// Finds a policy by id or by name, whichever `key` is.
    pub async fn find(&self, key: &str) -> Result<PolicyRecord, ServiceError> {
        if let Ok(id) = key.parse::<PolicyId>() {
            return self.get(id).await;
        }
        let found = match PolicyName::parse(key) {
            Ok(name) => self.store.policy_by_name(&name).await?,
            Err(_) => None,
        };
        found.ok_or_else(|| ServiceError::NotFound(format!("policy {key:?}")))
    }

    /// All policies in evaluation order (priority desc, then name).
    pub async fn list(&self) -> Result<Vec<PolicyRecord>, ServiceError> {
        Ok(self.store.list_policies().await?)
    }

    /// Applies the given fields onto the stored policy and validates the result.
    pub async fn update(
        &self,
        id: PolicyId,
        patch: PolicyInput,
    ) -> Result<PolicyRecord, ServiceError> {
        let mut record = self.get(id).await?;
        self.apply(&mut record, patch).await?;
        record.updated_at = now_micros();
        if self.store.update_policy(&record).await? {
            Ok(record)
        } else {
            Err(ServiceError::NotFound(format!("policy {id}")))
        }
    }

    pub async fn set_enabled(
        &self,
        id: PolicyId,
        enabled: bool,
    ) -> Result<PolicyRecord, ServiceError> {
        let patch = PolicyInput {
            enabled: Some(enabled),
            ..PolicyInput::default()
        };
        self.update(id, patch).await
    }

    pub async fn remove(&self, id: PolicyId) -> Result<(), ServiceError> {
        if self.store.delete_policy(id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("policy {id}")))
        }
    }

    /// Adds a subject; one equal to an existing subject is a conflict.
    pub async fn add_subject(
        &self,
        id: PolicyId,
        input: SubjectInput,
    ) -> Result<PolicySubject, ServiceError> {
        let policy = self.get(id).await?;
        let (subject_type, subject_value) = self.resolve_subject(&input).await?;
        if policy
            .subjects
            .iter()
            .any(|s| s.subject_type == subject_type && s.subject_value == subject_value)
        {
            return Err(ServiceError::Conflict(format!(
                "policy {} already has that subject",
                policy.name
            )));
        }
        let subject = PolicySubject {
            id: PolicySubjectId::new(),
            policy_id: id,
            subject_type,
            subject_value,
        };
        if self.store.add_policy_subject(&subject).await? {
            Ok(subject)
        } else {
            Err(ServiceError::NotFound(format!("policy {id}")))
        }
    }

    pub async fn remove_subject(
        &self,
        id: PolicyId,
        subject: PolicySubjectId,
    ) -> Result<(), ServiceError> {
        if self.store.remove_policy_subject(id, subject).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "subject {subject} of policy {id}"
            )))
        }
    }

    /// Explains what the stored policies decide for `user` (id or email) on `target` (id or
    /// name): for one item when `item` is given, else whether the target is visible at all.
    pub async fn evaluate(
        &self,
        user: &str,
        target: &str,
        item: Option<ItemType>,
        name: Option<&str>,
    ) -> Result<Evaluation, ServiceError> {
        let user = self.find_user(user, "user").await?;
        let target = self.find_target(target).await?;
        let policies = self.list().await?;
        let set = PolicySet::compile(&policies)
            .map_err(|e| ServiceError::Internal(format!("stored policies do not compile: {e}")))?;
        let subject = Subject {
            user_id: user.id,
            email: user.email.as_str(),
            role: user.role.as_str(),
            groups: &user.groups,
        };
        let explanation = set.explain(&subject, target.id, item, name);
        Ok(Evaluation {
            user,
            target,
            explanation,
        })
    }

    /// The public shapes of `policies`, with target names filled in.
    pub async fn views(&self, policies: &[PolicyRecord]) -> Result<Vec<PolicyView>, ServiceError> {
        let names = self.target_names().await?;
        Ok(policies
            .iter()
            .map(|p| PolicyView::new(p, &names))
            .collect())
    }

    pub async fn view(&self, policy: &PolicyRecord) -> Result<PolicyView, ServiceError> {
        Ok(self.views(std::slice::from_ref(policy)).await?.remove(0))
    }

    pub async fn target_names(&self) -> Result<HashMap<TargetId, TargetName>, ServiceError> {
        Ok(self
            .store
            .list_targets()
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect())
    }

    pub(super) async fn find_target(&self, key: &str) -> Result<TargetRecord, ServiceError> {
        let found = if let Ok(id) = key.parse::<TargetId>() {
            self.store.target(id).await?
        } else {
            match TargetName::parse(key) {
                Ok(name) => self.store.target_by_name(&name).await?,
                Err(_) => None,
            }
        };
        found.ok_or_else(|| ServiceError::invalid("target", format!("no target {key:?}")))
    }

    /// A user by id or email; absent is a 422 naming `field`.
    async fn find_user(&self, key: &str, field: &'static str) -> Result<UserRecord, ServiceError> {
        let found = match key.parse::<UserId>() {
            Ok(id) => self.store.user(id).await?,
            Err(_) => {
                let email =
                    Email::parse(key).map_err(|e| ServiceError::invalid(field, e.message))?;
                self.store.user_by_email(&email).await?
            }
        };
        found.ok_or_else(|| ServiceError::invalid(field, format!("no user {key:?}")))
    }

    /// Checks a subject and normalizes its value: users are stored by id, so that an
    /// exported (email) and a stored (id) subject compare equal after resolution.
    pub(super) async fn resolve_subject(
        &self,
        s: &SubjectInput,
    ) -> Result<(SubjectType, Option<String>), ServiceError> {
        let subject_type = SubjectType::parse(s.subject_type.trim())?;
        let value = s
            .subject_value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let as_value =
            |e: crate::domain::NameError| ServiceError::invalid("subject_value", e.message);
        let value = match (subject_type, value) {
            (SubjectType::Everyone, None) => None,
            (SubjectType::Everyone, Some(v)) => {
                return Err(ServiceError::invalid(
                    "subject_value",
                    format!("an everyone subject takes no value (got {v:?})"),
                ));
            }
            (t, None) => {
                return Err(ServiceError::invalid(
                    "subject_value",
                    format!("is required for a {t} subject"),
                ));
            }
            (SubjectType::Role, Some(v)) => Some(Role::parse(v).map_err(as_value)?.to_string()),
            (SubjectType::Group, Some(v)) => {
                Some(GroupName::parse(v).map_err(as_value)?.to_string())
            }
            (SubjectType::User, Some(v)) => {
                Some(self.find_user(v, "subject_value").await?.id.to_string())
            }
        };
        Ok((subject_type, value))
    }

    async fn apply(&self, r: &mut PolicyRecord, p: PolicyInput) -> Result<(), ServiceError> {
        if let Some(name) = p.name {
            r.name = PolicyName::parse(&name)?;
        }
        if let Some(d) = p.description {
            let d = d.trim().to_string();
            if d.chars().count() > MAX_DESCRIPTION {
                return Err(ServiceError::invalid(
                    "description",
                    format!("is longer than {MAX_DESCRIPTION} characters"),
                ));
            }
            r.description = d;
        }
        if let Some(v) = p.resource_type {
            r.resource_type = ResourceType::parse(&v)?;
        }
        if let Some(v) = p.effect {
            r.effect = Effect::parse(&v)?;
        }
        if let Some(pattern) = p.resource_pattern {
            r.resource_pattern = pattern.filter(|s| !s.is_empty());
            if let Some(text) = &r.resource_pattern {
                // The pattern as written first, so the error quotes the admin's text rather
                // than the anchored wrapper.
                regex::Regex::new(text)
                    .map(drop)
                    .and_then(|()| compile_pattern(text).map(drop))
                    .map_err(|e| {
                        ServiceError::invalid(
                            "resource_pattern",
                            format!("{text:?} is not a valid regular expression: {e}"),
                        )
                    })?;
            }
        }
        if let Some(priority) = p.priority {
            r.priority = i32::try_from(priority)
                .ok()
                .filter(|n| (MIN_PRIORITY..=MAX_PRIORITY).contains(&i64::from(*n)))
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "priority",
                        format!("{priority} is not between {MIN_PRIORITY} and {MAX_PRIORITY}"),
                    )
                })?;
        }
        if let Some(v) = p.enabled {
            r.enabled = v;
        }
        if let Some(target) = p.target {
            r.target_id = match target.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => None,
                Some(key) => Some(self.find_target(key).await?.id),
            };
        }
        if let Some(subjects) = p.subjects {
            let mut out: Vec<PolicySubject> = Vec::with_capacity(subjects.len());
            for s in &subjects {
                let (subject_type, subject_value) = self.resolve_subject(s).await?;
                // Keep the id of a subject that stays, so updates do not churn ids.
                let id = r
                    .subjects
                    .iter()
                    .find(|old| {
                        old.subject_type == subject_type && old.subject_value == subject_value
                    })
                    .map_or_else(PolicySubjectId::new, |old| old.id);
                if !out
                    .iter()
                    .any(|o| o.subject_type == subject_type && o.subject_value == subject_value)
                {
                    out.push(PolicySubject {
                        id,
                        policy_id: r.id,
                        subject_type,
                        subject_value,
                    });
                }
            }
            sort_subjects(&mut out);
            r.subjects = out;
        }
        Ok(())
    }
}

/// What `evaluate` found: who, where, and the explained decision.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub user: UserRecord,
    pub target: TargetRecord,
    pub explanation: Explanation,
}

/// Now at the precision both backends store (Postgres keeps microseconds).
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicySubjectView {
    pub id: PolicySubjectId,
    pub policy_id: PolicyId,
    pub subject_type: SubjectType,
    pub subject_value: Option<String>,
}

impl From<&PolicySubject> for PolicySubjectView {
    fn from(s: &PolicySubject) -> Self {
        Self {
            id: s.id,
            policy_id: s.policy_id,
            subject_type: s.subject_type,
            subject_value: s.subject_value.clone(),
        }
    }
}

/// The public shape of a policy (CONTRACT.md), plus `target_name` for convenience.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyView {
    pub id: PolicyId,
    pub name: PolicyName,
    pub description: String,
    pub target_id: Option<TargetId>,
    pub target_name: Option<TargetName>,
    pub resource_type: ResourceType,
    pub resource_pattern: Option<String>,
    pub effect: Effect,
    pub priority: i32,
    pub enabled: bool,
    pub subjects: Vec<PolicySubjectView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PolicyView {
    pub fn new(p: &PolicyRecord, target_names: &HashMap<TargetId, TargetName>) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            description: p.description.clone(),
            target_id: p.target_id,
            target_name: p.target_id.and_then(|t| target_names.get(&t).cloned()),
            resource_type: p.resource_type,
            resource_pattern: p.resource_pattern.clone(),
            effect: p.effect,
            priority: p.priority,
            enabled: p.enabled,
            subjects: p.subjects.iter().map(PolicySubjectView::from).collect(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}
