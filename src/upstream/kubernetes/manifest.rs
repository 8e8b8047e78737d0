//! The Pod and Secret reflow creates for one (target, isolation key, credential set): their
//! deterministic name, labels, and a locked-down pod spec. Pure: no API calls here.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    HTTPGetAction, LocalObjectReference, Pod, PodSecurityContext, PodSpec, Probe,
    ResourceRequirements, SeccompProfile, Secret, SecretEnvSource, SecurityContext,
    TCPSocketAction, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use crate::config::{PodDefaults, Secret as SecretValue};
use crate::domain::TargetResources;

/// Every object reflow manages carries this label (`app.kubernetes.io/managed-by: reflow`):
/// replicas and restarted gateways find their pods by it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "reflow");
pub const LABEL_TARGET: &str = "reflow.dev/target";
pub const LABEL_TARGET_NAME: &str = "reflow.dev/target-name";
pub const LABEL_ISOLATION: &str = "reflow.dev/isolation";
pub const LABEL_FINGERPRINT: &str = "reflow.dev/fingerprint";
pub const LABEL_SPEC: &str = "reflow.dev/spec";
/// RFC 3339; set by reflow (not every API server fills `creationTimestamp` the same way).
pub const ANNOTATION_CREATED: &str = "reflow.dev/created-at";
/// The isolation key in clear (`user:<id>`, `role:<r>`…), for `kubectl describe`; label
/// values cannot hold it (charset, length), so the label is its hash.
pub const ANNOTATION_ISOLATION: &str = "reflow.dev/isolation-key";
pub const CONTAINER: &str = "mcp";
/// A non-root uid/gid (distroless' "nonroot"): runAsNonRoot needs a numeric user to verify.
const RUN_AS: i64 = 65532;
/// Where `reflow bridge` listens in a stdio pod (`/health` answers its readiness probe).
pub const BRIDGE_PORT: u16 = 8080;
/// The Secret key of the bridge's bearer token (`reflow bridge --token-env`); the bridge keeps
/// it from the stdio server.
pub const BRIDGE_TOKEN_ENV: &str = "REFLOW_BRIDGE_TOKEN";
/// Where the init container puts the reflow binary, and where it is in the reflow image.
const BRIDGE_DIR: &str = "/reflow-bridge";
const REFLOW_IN_IMAGE: &str = "/usr/local/bin/reflow";

/// How the pod's server speaks MCP.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Serve {
    /// The image serves Streamable HTTP itself on `port` at `/mcp`.
    Http {
        port: u16,
        health_path: Option<String>,
    },
    /// The image's command speaks stdio: it runs under `reflow bridge`, copied into the pod
    /// from `kubernetes.bridge_image` by an init container.
    Stdio,
}

/// What the pod of one target runs (the target's configuration, no credentials).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodTemplate {
    pub image: String,
    pub serve: Serve,
    /// Overrides the image's entrypoint when set (required for `Serve::Stdio`).
    pub command: Option<String>,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    /// Non-secret environment (the target's `env`), in the pod spec in clear.
    pub env: BTreeMap<String, String>,
    /// The target's own requests and limits, over the defaults key by key.
    pub resources: TargetResources,
}

impl PodTemplate {
    /// The port the pod's MCP endpoint listens on.
    pub fn port(&self) -> u16 {
        match &self.serve {
            Serve::Http { port, .. } => *port,
            Serve::Stdio => BRIDGE_PORT,
        }
    }

    /// A short hash of everything that shapes the pod: a changed target gets new pods. The
    /// bridge image counts for stdio pods only.
    pub fn spec_hash(&self, defaults: &PodDefaults, bridge_image: Option<&str>) -> String {
        let bridge = if self.serve == Serve::Stdio {
            bridge_image
        } else {
            None
        };
        let mut h = Sha256::new();
        h.update(format!("{self:?}|{defaults:?}|{bridge:?}").as_bytes());
        hex::encode(&h.finalize()[..6])
    }
}

/// One pod to run: where, for whom (hashed), with which credentials.
pub struct PodPlan<'a> {
    pub namespace: &'a str,
    pub target_id: String,
    pub target_name: &'a str,
    pub isolation_key: &'a str,
    /// Stable across replicas (keyed by the shared encryption key), unlike connection-pool ones.
    pub fingerprint: &'a str,
    pub template: &'a PodTemplate,
    pub defaults: &'a PodDefaults,
    /// Env entries for the container, stored only in the Secret.
    pub secret_env: &'a BTreeMap<String, SecretValue>,
    /// `kubernetes.bridge_image`, for `Serve::Stdio` pods.
    pub bridge_image: Option<&'a str>,
}

pub fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..8])
}

impl PodPlan<'_> {
    /// `reflow-<target>-<hash>`: the same inputs give the same name on every replica, so a
    /// second replica's create answers AlreadyExists and it uses the first one's pod.
    pub fn name(&self) -> String {
        let spec = self.template.spec_hash(self.defaults, self.bridge_image);
        let digest = Sha256::digest(
            format!(
                "{}\n{}\n{}\n{spec}",
                self.target_id, self.isolation_key, self.fingerprint
            )
            .as_bytes(),
        );
        let mut target: String = self.target_name.chars().take(44).collect();
        while target.ends_with('-') {
            target.pop();
        }
        format!("reflow-{target}-{}", &hex::encode(digest)[..10])
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
            (LABEL_TARGET.into(), self.target_id.clone()),
            (LABEL_TARGET_NAME.into(), self.target_name.into()),
            (LABEL_ISOLATION.into(), short_hash(self.isolation_key)),
            (LABEL_FINGERPRINT.into(), self.fingerprint.into()),
            (
                LABEL_SPEC.into(),
                self.template.spec_hash(self.defaults, self.bridge_image),
            ),
        ])
    }

    fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.into()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    /// The Secret holding the resolved credentials; None when there are none.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        if self.secret_env.is_empty() {
            return None;
        }
        let data = self
            .secret_env
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.expose().as_bytes().to_vec())))
            .collect();
        Some(Secret {
            metadata: self.meta(name),
            data: Some(data),
            type_: Some("Opaque".into()),
            immutable: Some(true),
            ..Secret::default()
        })
    }

    /// The pod: one container, credentials only by reference to the Secret, and the
    /// restricted security profile (non-root, read-only root, no capabilities, RuntimeDefault
    /// seccomp, no service-account token).
    pub fn pod(&self, name: &str, created_at: &str) -> Pod {
        let t = self.template;
        let d = self.defaults;
        let mut meta = self.meta(name);
        meta.annotations = Some(BTreeMap::from([
            (ANNOTATION_CREATED.into(), created_at.into()),
            (ANNOTATION_ISOLATION.into(), self.isolation_key.into()),
        ]));
        let mut env: BTreeMap<String, String> = BTreeMap::from([("HOME".into(), "/tmp".into())]);
        env.extend(t.env.clone());
        let port = t.port();
        let health = match &t.serve {
            Serve::Http { health_path, .. } => health_path.clone(),
            Serve::Stdio => Some("/health".into()),
        };
        let probe_handler = match health {
            Some(path) => Probe {
                http_get: Some(HTTPGetAction {
                    path: Some(path),
                    port: IntOrString::Int(port.into()),
                    ..HTTPGetAction::default()
                }),
                ..Probe::default()
            },
            None => Probe {
                tcp_socket: Some(TCPSocketAction {
                    port: IntOrString::Int(port.into()),
                    ..TCPSocketAction::default()
                }),
                ..Probe::default()
            },
        };
        let (command, args) = match &t.serve {
            Serve::Http { .. } => (
                t.command.clone().map(|c| vec![c]),
                (!t.args.is_empty()).then(|| t.args.clone()),
            ),
            // The bridge runs the server's command; the token keeps others in the cluster
            // network from running its tools.
            Serve::Stdio => {
                let mut args = vec![
                    "bridge".to_string(),
                    "--listen".into(),
                    format!("0.0.0.0:{BRIDGE_PORT}"),
                    "--token-env".into(),
                    BRIDGE_TOKEN_ENV.into(),
                    "--".into(),
                ];
                args.extend(t.command.clone());
                args.extend(t.args.iter().cloned());
                (Some(vec![format!("{BRIDGE_DIR}/reflow")]), Some(args))
            }
        };
        let mut mounts = vec![VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        }];
        let mut volumes = vec![Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        }];
        let mut init = None;
        if t.serve == Serve::Stdio {
            mounts.push(VolumeMount {
                name: "reflow-bridge".into(),
                mount_path: BRIDGE_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
            volumes.push(Volume {
                name: "reflow-bridge".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            });
            init = Some(vec![Container {
                name: "reflow-bridge".into(),
                image: self.bridge_image.map(str::to_string),
                command: Some(vec![
                    "cp".into(),
                    REFLOW_IN_IMAGE.into(),
                    format!("{BRIDGE_DIR}/reflow"),
                ]),
                volume_mounts: Some(vec![VolumeMount {
                    name: "reflow-bridge".into(),
                    mount_path: BRIDGE_DIR.into(),
                    ..VolumeMount::default()
                }]),
                resources: Some(resources(d, &t.resources)),
                security_context: Some(restricted()),
                ..Container::default()
            }]);
        }
        let container = Container {
            name: CONTAINER.into(),
            image: Some(t.image.clone()),
            command,
            args,
            working_dir: t.working_dir.clone(),
            ports: Some(vec![ContainerPort {
                name: Some("mcp".into()),
                container_port: port.into(),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            env: Some(
                env.into_iter()
                    .map(|(name, value)| EnvVar {
                        name,
                        value: Some(value),
                        ..EnvVar::default()
                    })
                    .collect(),
            ),
            env_from: (!self.secret_env.is_empty()).then(|| {
                vec![EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: name.into(),
                        optional: Some(false),
                    }),
                    ..EnvFromSource::default()
                }]
            }),
            readiness_probe: Some(Probe {
                period_seconds: Some(2),
                failure_threshold: Some(3),
                timeout_seconds: Some(2),
                ..probe_handler
            }),
            resources: Some(resources(d, &t.resources)),
            security_context: Some(restricted()),
            // A read-only root needs somewhere to write: HOME and TMPDIR are /tmp.
            volume_mounts: Some(mounts),
            ..Container::default()
        };
        Pod {
            metadata: meta,
            spec: Some(PodSpec {
                automount_service_account_token: Some(false),
                enable_service_links: Some(false),
                restart_policy: Some("Always".into()),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(RUN_AS),
                    run_as_group: Some(RUN_AS),
                    fs_group: Some(RUN_AS),
                    seccomp_profile: Some(SeccompProfile {
                        type_: "RuntimeDefault".into(),
                        ..SeccompProfile::default()
                    }),
                    ..PodSecurityContext::default()
                }),
                init_containers: init,
                containers: vec![container],
                volumes: Some(volumes),
                node_selector: d.node_selector.clone(),
                tolerations: (!d.tolerations.is_empty()).then(|| {
                    d.tolerations
                        .iter()
                        .map(|t| Toleration {
                            key: t.key.clone(),
                            operator: t.operator.clone(),
                            value: t.value.clone(),
                            effect: t.effect.clone(),
                            toleration_seconds: t.toleration_seconds,
                        })
                        .collect()
                }),
                runtime_class_name: d.runtime_class_name.clone(),
                image_pull_secrets: (!d.image_pull_secrets.is_empty()).then(|| {
                    d.image_pull_secrets
                        .iter()
                        .map(|n| LocalObjectReference { name: n.clone() })
                        .collect()
                }),
                ..PodSpec::default()
            }),
            status: None,
        }
    }
}

/// Every container's: no privilege escalation, read-only root, non-root, no capabilities.
fn restricted() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// The defaults, with the target's own entries over them key by key.
fn resources(d: &PodDefaults, target: &TargetResources) -> ResourceRequirements {
    let q = |mut m: BTreeMap<String, String>, own: &BTreeMap<String, String>| {
        m.extend(own.clone());
        (!m.is_empty()).then(|| m.into_iter().map(|(k, v)| (k, Quantity(v))).collect())
    };
    ResourceRequirements {
        requests: q(d.resources.requests.to_map(), &target.requests),
        limits: q(d.resources.limits.to_map(), &target.limits),
        ..ResourceRequirements::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> PodTemplate {
        PodTemplate {
            image: "ghcr.io/example/mcp:1".into(),
            serve: Serve::Http {
                port: 8000,
                health_path: Some("/healthz".into()),
            },
            command: None,
            args: vec!["--http".into()],
            working_dir: None,
            env: BTreeMap::from([("REGION".into(), "eu".into())]),
            resources: TargetResources {
                limits: BTreeMap::from([("memory".into(), "1Gi".into())]),
                ..TargetResources::default()
            },
        }
    }

    #[test]
    fn names_are_deterministic_and_change_with_credentials() {
        let t = template();
        let d = PodDefaults::default();
        let env = BTreeMap::from([("API_KEY".to_string(), SecretValue::new("s3cret".into()))]);
        let plan = |fp| PodPlan {
            namespace: "mcp",
            target_id: "0b8f".into(),
            target_name: "github",
            isolation_key: "user:1",
            fingerprint: fp,
            template: &t,
            defaults: &d,
            secret_env: &env,
            bridge_image: None,
        };
        assert_eq!(plan("aa").name(), plan("aa").name());
        assert_ne!(plan("aa").name(), plan("bb").name());
        assert!(plan("aa").name().starts_with("reflow-github-"));
        assert!(crate::config::is_dns_label(&plan("aa").name()));
        let pod = serde_json::to_string(&plan("aa").pod("n", "now")).unwrap();
        assert!(!pod.contains("s3cret"), "{pod}");
        assert!(pod.contains("\"secretRef\":{\"name\":\"n\""), "{pod}");
        let resources = &serde_json::to_value(plan("aa").pod("n", "now")).unwrap()["spec"]["containers"]
            [0]["resources"];
        assert_eq!(resources["limits"]["memory"], "1Gi", "the target's own");
        assert_eq!(resources["requests"]["cpu"], "50m", "the default");
        let secret = serde_json::to_value(plan("aa").secret("n").unwrap()).unwrap();
        assert_eq!(secret["data"]["API_KEY"], "czNjcmV0");
    }

    #[test]
    fn a_stdio_pod_runs_its_command_under_the_bridge_copied_in_by_an_init_container() {
        let t = PodTemplate {
            serve: Serve::Stdio,
            command: Some("npx".into()),
            args: vec!["-y".into(), "@modelcontextprotocol/server-memory".into()],
            ..template()
        };
        let d = PodDefaults::default();
        let env = BTreeMap::from([(BRIDGE_TOKEN_ENV.to_string(), SecretValue::new("tok".into()))]);
        let plan = PodPlan {
            namespace: "mcp",
            target_id: "1".into(),
            target_name: "memory",
            isolation_key: "shared:memory",
            fingerprint: "ff",
            template: &t,
            defaults: &d,
            secret_env: &env,
            bridge_image: Some("ghcr.io/example/reflow:1"),
        };
        let pod = serde_json::to_value(plan.pod("p", "now")).unwrap();
        let spec = &pod["spec"];
        let init = &spec["initContainers"][0];
        assert_eq!(init["image"], "ghcr.io/example/reflow:1");
        assert_eq!(
            init["command"],
            json!(["cp", "/usr/local/bin/reflow", "/reflow-bridge/reflow"])
        );
        let c = &spec["containers"][0];
        assert_eq!(c["command"], json!(["/reflow-bridge/reflow"]));
        assert_eq!(
            c["args"],
            json!([
                "bridge",
                "--listen",
                "0.0.0.0:8080",
                "--token-env",
                "REFLOW_BRIDGE_TOKEN",
                "--",
                "npx",
                "-y",
                "@modelcontextprotocol/server-memory"
            ])
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health");
        assert_eq!(c["ports"][0]["containerPort"], 8080);
        assert_eq!(c["volumeMounts"][1]["readOnly"], true);
        assert!(!pod.to_string().contains("\"tok\""));
    }
}
