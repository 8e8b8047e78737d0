//! The closed sets that describe a target (an upstream MCP server) and its validated name.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::NameError;

closed_enum!(
    /// How reflow reaches a target.
    Transport, "transport_type" {
        StreamableHttp = "streamable-http",
        /// The legacy HTTP+SSE transport (2024-11-05).
        Sse = "sse",
        Stdio = "stdio",
        Kubernetes = "kubernetes",
    }
);

closed_enum!(
    /// Whether an HTTP target keeps per-client state (one upstream session per downstream one).
    Statefulness, "statefulness" {
        Stateless = "stateless",
        Stateful = "stateful",
    }
);

closed_enum!(
    /// Which callers share one stdio process or pod.
    IsolationBoundary, "isolation_boundary" {
        Shared = "shared",
        PerRole = "per_role",
        PerGroup = "per_group",
        PerUser = "per_user",
    }
);

closed_enum!(
    /// Where one stdio process (an instance) stands.
    InstanceStatus, "status" {
        Running = "running",
        /// Asked to stop (`reflow target restart`); the serving process stops it on reload.
        StopRequested = "stop_requested",
        Stopped = "stopped",
        /// Exited on its own.
        Crashed = "crashed",
    }
);

closed_enum!(
    /// How the resolved upstream token is presented.
    AuthType, "auth_type" {
        None = "none",
        /// `Authorization: Bearer <token>`
        Bearer = "bearer",
        /// `<auth_header_name>: <token>`
        Header = "header",
    }
);

/// A kubernetes target's own resource requests and limits, by resource name (`cpu`, `memory`,
/// `ephemeral-storage`) to quantity; they override `kubernetes.pod_defaults.resources` key by
/// key. Empty for other targets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetResources {
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

impl TargetResources {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }
}

impl Transport {
    pub fn is_http(self) -> bool {
        matches!(self, Transport::StreamableHttp | Transport::Sse)
    }

    /// Runs instances reflow starts and stops (stdio processes, Kubernetes pods).
    pub fn runs_instances(self) -> bool {
        matches!(self, Transport::Stdio | Transport::Kubernetes)
    }
}

/// A target name: `[a-z0-9-]`, 1–48 characters, starting with a letter or digit. It is the
/// default tool prefix, so it must survive inside a 64-character tool name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetName(String);

impl TargetName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let ok = !raw.is_empty()
            && raw.len() <= 48
            && !raw.starts_with('-')
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(NameError {
                field: "name",
                message: format!(
                    "{raw:?} is not a valid target name: use 1 to 48 of a-z, 0-9 and '-', not starting with '-'"
                ),
            })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TargetName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::parse(&s)
    }
}

impl From<TargetName> for String {
    fn from(v: TargetName) -> Self {
        v.0
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_their_wire_names() {
        for t in Transport::ALL {
            assert_eq!(Transport::parse(t.as_str()).unwrap(), *t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(
            IsolationBoundary::parse("per_user").unwrap(),
            IsolationBoundary::PerUser
        );
        let err = Transport::parse("http").unwrap_err();
        assert_eq!(err.field, "transport_type");
        assert!(err.message.contains("streamable-http"), "{}", err.message);
    }

    #[test]
    fn target_names() {
        assert!(TargetName::parse("github-2").is_ok());
        for bad in ["", "GitHub", "a_b", "-x", "a b", &"x".repeat(49)] {
            assert_eq!(TargetName::parse(bad).unwrap_err().field, "name", "{bad:?}");
        }
    }
}
