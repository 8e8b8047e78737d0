//! Stored credential rows that today's rules would refuse: deny-listed keys (ignored at runtime)
//! and user-scope values that the target no longer lets users supply (still applied, since an
//! admin may have written them). Reported, never deleted: the admin decides.

use std::collections::HashMap;

use serde::Serialize;

use super::ServiceError;
use crate::credentials::denied_env_key;
use crate::domain::{CredentialKind, CredentialScope, TargetId};
use crate::store::{CredentialRecord, Store, TargetRecord};

/// What is wrong with a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// On the deny-list: never resolved, never reaches an upstream.
    DeniedKey,
    /// At user scope, but the target does not declare it in `user_env`/`user_token`.
    UndeclaredUserValue,
}

/// One row that needs an admin's look; the value is never part of it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CredentialFinding {
    pub target: String,
    pub kind: CredentialKind,
    pub scope: CredentialScope,
    /// Absent for the default scope.
    pub scope_value: Option<String>,
    /// Absent for a token.
    pub key: Option<String>,
    pub finding: FindingKind,
    pub detail: String,
}

/// Every finding over `records`, in storage order.
pub fn findings(targets: &[TargetRecord], records: &[CredentialRecord]) -> Vec<CredentialFinding> {
    let by_id: HashMap<TargetId, &TargetRecord> = targets.iter().map(|t| (t.id, t)).collect();
    records
        .iter()
        .filter_map(|r| {
            let target = by_id.get(&r.target_id)?;
            let (finding, detail) = classify(target, r)?;
            Some(CredentialFinding {
                target: target.name.to_string(),
                kind: r.kind,
                scope: r.scope,
                scope_value: Some(r.scope_value.clone()).filter(|v| !v.is_empty()),
                key: Some(r.key.clone()).filter(|k| !k.is_empty()),
                finding,
                detail,
            })
        })
        .collect()
}

fn classify(t: &TargetRecord, r: &CredentialRecord) -> Option<(FindingKind, String)> {
    if r.kind == CredentialKind::Env
        && let Some(denied) = denied_env_key(&r.key)
    {
        let detail = format!("ignored at runtime: {}", denied.explain(&r.key));
        return Some((FindingKind::DeniedKey, detail));
    }
    if r.scope != CredentialScope::User {
        return None;
    }
    let declared = match r.kind {
        CredentialKind::Token => t.user_token,
        CredentialKind::Env => t.user_env.contains(&r.key),
    };
    (!declared).then(|| {
        let what = match r.kind {
            CredentialKind::Token => "user_token is off".to_string(),
            CredentialKind::Env => format!("{:?} is not in user_env", r.key),
        };
        let detail = format!(
            "still applied, but a user could not write it now ({what}); if the user wrote it, \
             remove it or declare it on the target"
        );
        (FindingKind::UndeclaredUserValue, detail)
    })
}

/// Reads every target and stored row and reports the findings.
pub async fn audit(store: &Store) -> Result<Vec<CredentialFinding>, ServiceError> {
    let targets = store.list_targets().await?;
    let records = store.all_credentials().await?;
    Ok(findings(&targets, &records))
}
