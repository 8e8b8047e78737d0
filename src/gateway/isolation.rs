//! Who shares a stdio process (its isolation key) and exactly what environment it gets.

use std::collections::BTreeMap;

use crate::auth::Principal;
use crate::config::Secret;
use crate::credentials::Resolved;
use crate::domain::{CredentialScope, IsolationBoundary};

use super::Target;
use super::targets::StdioCommand;

/// Variables the child gets from the gateway's own environment (else a safe default); nothing
/// else of the gateway's environment reaches it.
const BASE_ENV: [(&str, &str); 4] = [
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/tmp"),
    ("LANG", "C.UTF-8"),
    ("TMPDIR", "/tmp"),
];

/// Who shares a process: `shared:<target>`, `role:<role>`, `group:<group>` or `user:<id>`.
/// per_group picks the first group (by name) that the caller's resolved credentials come from,
/// else the caller's first group by name; a caller in no group gets a process of their own.
pub(super) fn isolation_key(
    target: &Target,
    boundary: IsolationBoundary,
    p: &Principal,
    resolved: &Resolved,
) -> String {
    match boundary {
        IsolationBoundary::Shared => format!("shared:{}", target.name),
        IsolationBoundary::PerRole => format!("role:{}", p.role.as_str()),
        IsolationBoundary::PerUser => format!("user:{}", p.user_id),
        IsolationBoundary::PerGroup => {
            let from_credentials = resolved
                .token
                .iter()
                .chain(resolved.env.values())
                .filter(|(_, s)| s.scope == CredentialScope::Group)
                .map(|(_, s)| s.value.as_str())
                .min();
            let first_group = p.groups.iter().map(|g| g.as_str()).min();
            match from_credentials.or(first_group) {
                Some(g) => format!("group:{g}"),
                None => format!("user:{}", p.user_id),
            }
        }
    }
}

/// The child's whole environment: the base, the target's non-secret env, then the resolved
/// credentials. REFLOW_* names never pass, whoever set them.
pub(super) fn child_env(cmd: &StdioCommand, resolved: &Resolved) -> BTreeMap<String, Secret> {
    let mut env = BTreeMap::new();
    for (name, default) in BASE_ENV {
        let value = std::env::var(name).unwrap_or_else(|_| default.to_string());
        env.insert(name.to_string(), Secret::new(value));
    }
    for (k, v) in &cmd.env {
        env.insert(k.clone(), Secret::new(v.clone()));
    }
    env.extend(resolved.process_env());
    env.retain(|k, _| !k.starts_with("REFLOW_"));
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Source;
    use crate::domain::{Role, TargetId, UserId};

    fn resolved(env: &[(&str, &str, CredentialScope, &str)], token: Option<&str>) -> Resolved {
        let source = |scope, value: &str| Source {
            scope,
            value: value.to_string(),
        };
        Resolved {
            target: TargetId::new(),
            token: token.map(|t| (Secret::new(t.into()), source(CredentialScope::Default, ""))),
            env: env
                .iter()
                .map(|(k, v, scope, from)| {
                    (
                        k.to_string(),
                        (Secret::new(v.to_string()), source(*scope, from)),
                    )
                })
                .collect(),
            fingerprint: String::new(),
        }
    }

    #[test]
    fn the_child_env_is_base_target_and_credentials_never_reflow_names() {
        let cmd = StdioCommand {
            command: "x".into(),
            args: vec![],
            env: [("REGION".to_string(), "eu".to_string())].into(),
            cwd: None,
            isolation: IsolationBoundary::Shared,
        };
        let r = resolved(
            &[
                ("API_KEY", "k", CredentialScope::Default, ""),
                (
                    "REFLOW_DATABASE_URL",
                    "postgres://x",
                    CredentialScope::Default,
                    "",
                ),
            ],
            Some("tok"),
        );
        let env = child_env(&cmd, &r);
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "API_KEY",
                "AUTH_TOKEN",
                "HOME",
                "LANG",
                "PATH",
                "REGION",
                "TMPDIR"
            ]
        );
        assert_eq!(env["AUTH_TOKEN"].expose(), "tok");
    }

    #[test]
    fn per_group_prefers_the_group_credentials_come_from() {
        let principal = |groups: &[&str]| Principal {
            user_id: UserId::new(),
            email: crate::domain::Email::parse("a@example.com").unwrap(),
            role: Role::parse("dev").unwrap(),
            groups: groups
                .iter()
                .map(|g| crate::domain::GroupName::parse(g).unwrap())
                .collect(),
            method: crate::auth::AuthMethod::Session,
        };
        let target = Target {
            id: TargetId::new(),
            name: "fx".into(),
            prefix: "fx".into(),
            transport: crate::domain::Transport::Stdio,
            endpoint: super::super::targets::Endpoint::Stdio(StdioCommand {
                command: "x".into(),
                args: vec![],
                env: BTreeMap::new(),
                cwd: None,
                isolation: IsolationBoundary::PerGroup,
            }),
            statefulness: crate::domain::Statefulness::Stateless,
            timeout: std::time::Duration::from_secs(1),
            auth_type: crate::domain::AuthType::None,
            auth_header_name: None,
        };
        let from_ops = resolved(&[("K", "v", CredentialScope::Group, "ops")], None);
        let none = resolved(&[], None);
        let p = principal(&["eng", "ops"]);
        let key = |b, p: &Principal, r: &Resolved| isolation_key(&target, b, p, r);
        assert_eq!(key(IsolationBoundary::PerGroup, &p, &from_ops), "group:ops");
        assert_eq!(key(IsolationBoundary::PerGroup, &p, &none), "group:eng");
        let lonely = principal(&[]);
        assert_eq!(
            key(IsolationBoundary::PerGroup, &lonely, &none),
            format!("user:{}", lonely.user_id)
        );
        assert_eq!(key(IsolationBoundary::Shared, &p, &none), "shared:fx");
        assert_eq!(key(IsolationBoundary::PerRole, &p, &none), "role:dev");
    }
}
