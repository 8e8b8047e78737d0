//! Who shares a stdio process (its isolation key) and exactly what environment it gets.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::auth::Principal;
use crate::config::Secret;
use crate::credentials::{Resolved, denied_env_key};
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

/// The child's whole environment: the base, the target's non-secret env (admin-defined, so it
/// may set PATH or HOME), then the resolved credentials minus every deny-listed key (a database
/// written before the deny-list may still hold some). REFLOW_* names never pass.
pub(super) fn child_env(
    target: &str,
    cmd: &StdioCommand,
    resolved: &Resolved,
) -> BTreeMap<String, Secret> {
    let mut env = BTreeMap::new();
    for (name, default) in BASE_ENV {
        let value = std::env::var(name).unwrap_or_else(|_| default.to_string());
        env.insert(name.to_string(), Secret::new(value));
    }
    for (k, v) in &cmd.env {
        env.insert(k.clone(), Secret::new(v.clone()));
    }
    for (k, v) in resolved.process_env() {
        match denied_env_key(&k) {
            Some(denied) => tracing::warn!(
                target = %target,
                "not passing a credential to the stdio child: {}",
                denied.explain(&k)
            ),
            None => _ = env.insert(k, v),
        }
    }
    env.retain(|k, _| !k.starts_with("REFLOW_"));
    env
}

/// Where the child's command is looked up: the target's own PATH if the admin set one, else
/// the gateway's. Credentials never take part (PATH is deny-listed for them anyway).
pub(super) fn search_path(cmd: &StdioCommand) -> OsString {
    match cmd.env.get("PATH") {
        Some(p) => OsString::from(p),
        None => std::env::var_os("PATH").unwrap_or_else(|| OsString::from(BASE_ENV[0].1)),
    }
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
            env: [
                ("REGION".to_string(), "eu".to_string()),
                ("PATH".to_string(), "/opt/tools/bin".to_string()),
            ]
            .into(),
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
                // Planted by an older database: deny-listed, never passed.
                (
                    "NODE_OPTIONS",
                    "--require /tmp/x.js",
                    CredentialScope::User,
                    "u",
                ),
                ("LD_PRELOAD", "/tmp/x.so", CredentialScope::User, "u"),
                ("PATH", "/tmp/evil", CredentialScope::User, "u"),
            ],
            Some("tok"),
        );
        let env = child_env("fx", &cmd, &r);
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
        // The admin's PATH stands; the credential's is dropped, and so is the lookup path.
        assert_eq!(env["PATH"].expose(), "/opt/tools/bin");
        assert_eq!(search_path(&cmd), "/opt/tools/bin");
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
            restarts: 0,
            max_message: 1 << 20,
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
