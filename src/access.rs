//! Effective access: for one user (or a role and groups), every target, tool, resource and
//! prompt they get, the policy that decided each, and the credential tier (user, group, role,
//! default) that would be injected. Items come from probing each visible HTTP target with the
//! subject's own credentials, so the answer matches what that user's MCP client lists.
//! Used by `POST /api/policies/explain` and `reflow policy explain`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::credentials::{CredentialSnapshot, Resolved, http_headers};
use crate::domain::{GroupName, Role, UserId};
use crate::policy::{ItemType, PolicySet, Subject};
use crate::store::{PolicyRecord, TargetRecord};
use crate::upstream::UpstreamSpec;
use crate::upstream::probe::{self, Offer};

/// How long a probe may take when the target sets no timeout.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("stored policies do not compile: {0}")]
    Policies(String),
    #[error("{0}")]
    NotProbeable(String),
}

/// Who is asked about: a user, or a role and groups (then no user-subject policy matches).
#[derive(Clone, Debug, Serialize)]
pub struct AccessSubject {
    pub user_id: Option<UserId>,
    pub email: Option<String>,
    pub role: Role,
    pub groups: Vec<GroupName>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ItemAccess {
    pub kind: ItemType,
    /// The upstream's own name (tool, prompt) or URI (resource).
    pub name: String,
    /// How a client sees it through the gateway.
    pub exposed: String,
    pub allowed: bool,
    pub policy: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetAccess {
    pub name: String,
    pub enabled: bool,
    /// Listed for this subject at all (enabled, allowed by a policy, credentials present).
    pub visible: bool,
    /// The policy that decided the target's visibility.
    pub policy: Option<String>,
    /// Where the token would come from (`user:…`, `group:eng`, `role:dev`, `default`).
    pub credential: Option<String>,
    /// Where each env key would come from.
    pub env: BTreeMap<String, String>,
    pub items: Vec<ItemAccess>,
    /// Why items are missing (not probeable, missing credential, unreachable).
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Access {
    pub subject: AccessSubject,
    pub targets: Vec<TargetAccess>,
}

/// The spec of an HTTP target with `resolved` credentials (headers, BASE_URL).
pub fn http_spec(target: &TargetRecord, resolved: &Resolved) -> Result<UpstreamSpec, AccessError> {
    if !target.transport.is_http() {
        return Err(AccessError::NotProbeable(format!(
            "target {} uses the {} transport; only streamable-http and sse targets can be probed",
            target.name, target.transport
        )));
    }
    let headers = http_headers(
        resolved,
        target.auth_type,
        target.auth_header_name.as_deref(),
    )
    .map_err(|e| AccessError::NotProbeable(e.to_string()))?;
    let raw = resolved
        .base_url()
        .or(target.url.as_deref())
        .ok_or_else(|| AccessError::NotProbeable(format!("target {} has no url", target.name)))?;
    let url = raw
        .parse()
        .map_err(|_| AccessError::NotProbeable(format!("{raw:?} is not a URL")))?;
    Ok(UpstreamSpec {
        name: target.name.to_string(),
        url,
        transport: probe::transport_for(target.transport),
        headers,
        timeout: target.timeout.unwrap_or(DEFAULT_PROBE_TIMEOUT),
        // A probe reads lists and server info, far below any configured limit.
        max_message: crate::upstream::limits::MAX_MESSAGE,
    })
}

/// A name as the gateway exposes it: `{prefix}{separator}{name}` (prefix defaults to the
/// target name; empty means unprefixed), resources as `{prefix}+{uri}`.
fn exposed(target: &TargetRecord, kind: ItemType, name: &str, separator: &str) -> String {
    let prefix = target.prefix.as_deref().unwrap_or(target.name.as_str());
    match (prefix.is_empty(), kind) {
        (true, _) => name.to_string(),
        (false, ItemType::Resource) => format!("{prefix}+{name}"),
        (false, _) => format!("{prefix}{separator}{name}"),
    }
}

fn items_of(
    set: &PolicySet,
    subject: &Subject,
    target: &TargetRecord,
    offer: &Offer,
    separator: &str,
) -> Vec<ItemAccess> {
    let groups = [
        (ItemType::Tool, &offer.tools, "name"),
        (ItemType::Resource, &offer.resources, "uri"),
        (ItemType::Prompt, &offer.prompts, "name"),
    ];
    let mut out = Vec::new();
    for (kind, list, key) in groups {
        for item in list.iter() {
            let Some(name) = item.get(key).and_then(Value::as_str) else {
                continue;
            };
            let d = set.decide(subject, target.id, kind, name);
            out.push(ItemAccess {
                kind,
                name: name.to_string(),
                exposed: exposed(target, kind, name, separator),
                allowed: d.allowed,
                policy: d.policy.map(|p| p.name.to_string()),
            });
        }
    }
    out
}

/// Explains `who`'s access to every target. Visible HTTP targets are probed concurrently.
pub async fn explain(
    who: AccessSubject,
    policies: &[PolicyRecord],
    targets: &[TargetRecord],
    credentials: &CredentialSnapshot,
    separator: &str,
) -> Result<Access, AccessError> {
    let set = PolicySet::compile(policies).map_err(|e| AccessError::Policies(e.to_string()))?;
    let user_id = who
        .user_id
        .unwrap_or_else(|| UserId::from_uuid(uuid::Uuid::nil()));
    let email = who.email.clone().unwrap_or_default();
    let subject = Subject {
        user_id,
        email: &email,
        role: who.role.as_str(),
        groups: &who.groups,
    };
    let mut rows = Vec::with_capacity(targets.len());
    let mut probes = Vec::new();
    for t in targets {
        let vis = set.explain(&subject, t.id, None, None).decision;
        let resolved = credentials.resolve(t.id, user_id, &who.role, &who.groups);
        let mut row = TargetAccess {
            name: t.name.to_string(),
            enabled: t.enabled,
            visible: t.enabled && vis.allowed,
            policy: vis.policy.map(|p| p.name.to_string()),
            credential: resolved.token.as_ref().map(|(_, s)| s.to_string()),
            env: resolved
                .env
                .iter()
                .map(|(k, (_, s))| (k.clone(), s.to_string()))
                .collect(),
            items: Vec::new(),
            error: None,
        };
        if !t.enabled {
            row.error = Some("the target is disabled".into());
        } else if row.visible {
            match http_spec(t, &resolved) {
                Ok(spec) => probes.push((rows.len(), t, probe::probe(spec))),
                Err(e) => {
                    if t.transport.is_http() {
                        // A missing required credential hides the target, as in the gateway.
                        row.visible = false;
                    }
                    row.error = Some(e.to_string());
                }
            }
        }
        rows.push(row);
    }
    let (slots, futures): (Vec<_>, Vec<_>) =
        probes.into_iter().map(|(i, t, fut)| ((i, t), fut)).unzip();
    let results = futures_util::future::join_all(futures).await;
    for ((i, t), result) in slots.into_iter().zip(results) {
        match result {
            Ok(report) => rows[i].items = items_of(&set, &subject, t, &report.offer, separator),
            Err(e) => rows[i].error = Some(format!("cannot be reached: {e}")),
        }
    }
    Ok(Access {
        subject: who,
        targets: rows,
    })
}
