//! Policies as a document: `export` writes every policy by names (targets by name, users by
//! email, never ids) and `plan`/`execute` make the store match such a document, idempotently
//! and keyed by policy name, so applying an exported file changes nothing.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::ServiceError;
use super::policies::{PolicyInput, PolicyService, SubjectInput};
use crate::domain::{PolicyId, SubjectType, UserId};
use crate::store::{PolicyRecord, Store};

/// The file `policy export` writes and `policy apply` reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub policies: Vec<PolicyDoc>,
}

/// One policy. Subjects are `everyone`, `role:NAME`, `group:NAME` or `user:EMAIL`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A target name; absent or null: every target.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default = "all")]
    pub resource_type: String,
    #[serde(default)]
    pub resource_pattern: Option<String>,
    pub effect: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub subjects: Vec<String>,
}

fn all() -> String {
    "all".into()
}

fn yes() -> bool {
    true
}

impl PolicyDoc {
    fn to_input(&self) -> PolicyInput {
        PolicyInput {
            name: Some(self.name.clone()),
            description: Some(self.description.clone()),
            target: Some(self.target.clone()),
            resource_type: Some(self.resource_type.clone()),
            resource_pattern: Some(self.resource_pattern.clone()),
            effect: Some(self.effect.clone()),
            priority: Some(self.priority),
            enabled: Some(self.enabled),
            subjects: Some(self.subjects.iter().map(|s| parse_subject(s)).collect()),
        }
    }
}

/// `role:admin` → (role, admin); `everyone` → (everyone, none). The type is checked later.
fn parse_subject(text: &str) -> SubjectInput {
    match text.split_once(':') {
        Some((t, v)) => SubjectInput {
            subject_type: t.trim().to_string(),
            subject_value: Some(v.trim().to_string()),
        },
        None => SubjectInput {
            subject_type: text.trim().to_string(),
            subject_value: None,
        },
    }
}

/// One step of a plan, shown as `+ name`, `~ name (fields)` or `- name`.
#[derive(Clone, Debug)]
pub enum PolicyChange {
    Add {
        name: String,
        input: PolicyInput,
    },
    Change {
        id: PolicyId,
        name: String,
        fields: Vec<&'static str>,
        input: PolicyInput,
    },
    Remove {
        id: PolicyId,
        name: String,
    },
}

impl std::fmt::Display for PolicyChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyChange::Add { name, .. } => write!(f, "+ {name}"),
            PolicyChange::Change { name, fields, .. } => {
                write!(f, "~ {name} ({})", fields.join(", "))
            }
            PolicyChange::Remove { name, .. } => write!(f, "- {name}"),
        }
    }
}

impl PolicyService {
    /// Every policy, in evaluation order, by names rather than ids.
    pub async fn export(&self, store: &Store) -> Result<PolicyFile, ServiceError> {
        let targets = self.target_names().await?;
        let emails: HashMap<UserId, String> = store
            .list_users()
            .await?
            .into_iter()
            .map(|u| (u.id, u.email.to_string()))
            .collect();
        let policies = self
            .list()
            .await?
            .iter()
            .map(|p| PolicyDoc {
                name: p.name.to_string(),
                description: p.description.clone(),
                target: p
                    .target_id
                    .map(|t| targets.get(&t).map_or(t.to_string(), |n| n.to_string())),
                resource_type: p.resource_type.to_string(),
                resource_pattern: p.resource_pattern.clone(),
                effect: p.effect.to_string(),
                priority: i64::from(p.priority),
                enabled: p.enabled,
                subjects: p
                    .subjects
                    .iter()
                    .map(|s| match (s.subject_type, s.subject_value.as_deref()) {
                        (SubjectType::Everyone, _) | (_, None) => "everyone".to_string(),
                        (SubjectType::User, Some(v)) => {
                            let email = v.parse::<UserId>().ok().and_then(|id| emails.get(&id));
                            format!("user:{}", email.map_or(v, String::as_str))
                        }
                        (t, Some(v)) => format!("{t}:{v}"),
                    })
                    .collect(),
            })
            .collect();
        Ok(PolicyFile { policies })
    }

    /// What applying `file` would change. Every policy in it is validated first (a bad one
    /// fails the whole plan, naming the policy); `prune` also removes policies not in it.
    pub async fn plan(
        &self,
        file: &PolicyFile,
        prune: bool,
    ) -> Result<Vec<PolicyChange>, ServiceError> {
        let existing: HashMap<String, PolicyRecord> = self
            .list()
            .await?
            .into_iter()
            .map(|p| (p.name.to_string(), p))
            .collect();
        let mut seen = BTreeSet::new();
        let mut changes = Vec::new();
        for doc in &file.policies {
            if !seen.insert(doc.name.clone()) {
                return Err(ServiceError::invalid(
                    "name",
                    format!("policy {:?} appears twice in the file", doc.name),
                ));
            }
            let input = doc.to_input();
            let wanted = self.build(input.clone()).await.map_err(|e| match e {
                ServiceError::Invalid { field, message } => {
                    ServiceError::invalid(field, format!("{message} (in policy {:?})", doc.name))
                }
                other => other,
            })?;
            match existing.get(&doc.name) {
                None => changes.push(PolicyChange::Add {
                    name: doc.name.clone(),
                    input,
                }),
                Some(have) => {
                    let fields = differences(have, &wanted);
                    if !fields.is_empty() {
                        changes.push(PolicyChange::Change {
                            id: have.id,
                            name: doc.name.clone(),
                            fields,
                            input,
                        });
                    }
                }
            }
        }
        if prune {
            let mut gone: Vec<&PolicyRecord> = existing
                .values()
                .filter(|p| !seen.contains(p.name.as_str()))
                .collect();
            gone.sort_by(|a, b| a.name.cmp(&b.name));
            changes.extend(gone.into_iter().map(|p| PolicyChange::Remove {
                id: p.id,
                name: p.name.to_string(),
            }));
        }
        Ok(changes)
    }

    /// Carries out a plan, one policy at a time (each write is its own transaction).
    pub async fn execute(&self, changes: Vec<PolicyChange>) -> Result<(), ServiceError> {
        for change in changes {
            match change {
                PolicyChange::Add { input, .. } => {
                    self.create(input).await?;
                }
                PolicyChange::Change { id, input, .. } => {
                    self.update(id, input).await?;
                }
                PolicyChange::Remove { id, .. } => self.remove(id).await?,
            }
        }
        Ok(())
    }
}

/// The fields in which two policies differ; subjects compare as sets of (type, value).
fn differences(a: &PolicyRecord, b: &PolicyRecord) -> Vec<&'static str> {
    let subjects = |p: &PolicyRecord| -> BTreeSet<(&'static str, Option<String>)> {
        p.subjects
            .iter()
            .map(|s| (s.subject_type.as_str(), s.subject_value.clone()))
            .collect()
    };
    let mut out = Vec::new();
    if a.description != b.description {
        out.push("description");
    }
    if a.target_id != b.target_id {
        out.push("target");
    }
    if a.resource_type != b.resource_type {
        out.push("resource_type");
    }
    if a.resource_pattern != b.resource_pattern {
        out.push("resource_pattern");
    }
    if a.effect != b.effect {
        out.push("effect");
    }
    if a.priority != b.priority {
        out.push("priority");
    }
    if a.enabled != b.enabled {
        out.push("enabled");
    }
    if subjects(a) != subjects(b) {
        out.push("subjects");
    }
    out
}
