//! The `kubernetes:` section: whether and where `reflow serve` runs kubernetes targets as pods,
//! how it reaches them, their lifecycle limits and the pod settings every such pod gets.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_str;

section!(KubernetesSettings {
    enabled: bool = false,
    namespace: String = "default".into(),
    /// None: in-cluster config, else `KUBECONFIG` / `~/.kube/config` (kube's own inference).
    kubeconfig: Option<PathBuf> = None,
    #[serde(with = "duration_str")] idle_ttl: Duration = Duration::from_secs(1800),
    #[serde(with = "duration_str")] max_lifetime: Duration = Duration::from_secs(24 * 3600),
    #[serde(with = "duration_str")] gc_interval: Duration = Duration::from_secs(60),
    max_instances: usize = 20,
    /// None: `pod_ip` inside a cluster (`KUBERNETES_SERVICE_HOST` set), `port_forward` outside.
    connect: Option<ConnectMode> = None,
    /// How long a new pod may take to become Ready before its call fails.
    #[serde(with = "duration_str")] ready_timeout: Duration = Duration::from_secs(120),
    pod_defaults: PodDefaults = PodDefaults::default(),
    /// The reflow image whose binary runs stdio targets' commands (`reflow bridge`); needed
    /// only by kubernetes targets without a port.
    bridge_image: Option<String> = None,
});

/// How the gateway reaches a pod's MCP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectMode {
    /// `http://<pod IP>:<port>/mcp`: the gateway runs in the cluster network.
    PodIp,
    /// Through the API server's portforward subresource, from a local 127.0.0.1 listener.
    PortForward,
}

impl ConnectMode {
    /// The configured mode, or the one that fits where the gateway runs.
    pub fn effective(configured: Option<ConnectMode>) -> ConnectMode {
        configured.unwrap_or(if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            ConnectMode::PodIp
        } else {
            ConnectMode::PortForward
        })
    }
}

section!(
    /// What every reflow pod gets unless its target says otherwise.
    PodDefaults {
    resources: PodResources = PodResources::default(),
    /// File only (a map): `{disktype: ssd}`.
    node_selector: Option<BTreeMap<String, String>> = None,
    tolerations: Vec<TolerationSetting> = Vec::new(),
    runtime_class_name: Option<String> = None,
    /// Names of Secrets (in `namespace`) holding registry credentials.
    image_pull_secrets: Vec<String> = Vec::new(),
});

section!(PodResources {
    requests: Quantities = Quantities {
        cpu: Some("50m".into()),
        memory: Some("64Mi".into()),
        ephemeral_storage: None,
    },
    limits: Quantities = Quantities {
        cpu: None,
        memory: Some("512Mi".into()),
        ephemeral_storage: None,
    },
});

section!(Quantities {
    cpu: Option<String> = None,
    memory: Option<String> = None,
    ephemeral_storage: Option<String> = None,
});

impl Quantities {
    /// As Kubernetes spells them (`ephemeral-storage`), unset ones left out.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("ephemeral-storage", &self.ephemeral_storage),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone())))
        .collect()
    }
}

/// One pod toleration, spelled as in the Pod API (snake_case keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TolerationSetting {
    #[serde(default)]
    pub key: Option<String>,
    /// `Exists` or `Equal` (the API's default).
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default)]
    pub effect: Option<String>,
    #[serde(default)]
    pub toleration_seconds: Option<i64>,
}

impl KubernetesSettings {
    /// Problems `Settings::validate` reports, all at once.
    pub(super) fn problems(&self, problems: &mut Vec<String>) {
        if self.enabled && !cfg!(feature = "kubernetes") {
            problems.push(
                "kubernetes.enabled: this reflow was built without the `kubernetes` feature; rebuild with it (it is on by default) or set enabled: false".into(),
            );
        }
        if self.max_instances == 0 {
            problems.push("kubernetes.max_instances must be at least 1".into());
        }
        for (name, d) in [
            ("kubernetes.idle_ttl", self.idle_ttl),
            ("kubernetes.max_lifetime", self.max_lifetime),
            ("kubernetes.ready_timeout", self.ready_timeout),
        ] {
            if d.is_zero() {
                problems.push(format!("{name} must be greater than zero"));
            }
        }
        if !is_dns_label(&self.namespace) {
            problems.push(format!(
                "kubernetes.namespace {:?} is not a namespace name (1 to 63 of a-z, 0-9 and '-')",
                self.namespace
            ));
        }
        for t in &self.pod_defaults.tolerations {
            if let Some(op) = &t.operator
                && op != "Exists"
                && op != "Equal"
            {
                problems.push(format!(
                    "kubernetes.pod_defaults.tolerations: operator {op:?} must be Exists or Equal"
                ));
            }
        }
    }
}

/// An RFC 1123 label, as namespaces and pod names must be.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
