//! The Kubernetes API for the API contract tests: PyPI `kmock` (an in-memory emulator of the
//! API server, `tests/kube/kmock_server.py`) on 127.0.0.1, a kubeconfig pointing at it, and a
//! test kubelet that plays the node: for each pod reflow creates it reads the pod's Secret,
//! starts a real MCP server (rmcp, Streamable HTTP) on the pod's own loopback address and
//! port, and patches the pod Running/Ready with that address as its `podIP`.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::upstream::{UpstreamConfig, UpstreamLog, UpstreamServer};

pub const NAMESPACE: &str = "mcp";

/// A running kmock and a kubeconfig for it.
pub struct Kmock {
    pub url: String,
    pub kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Kmock {
    pub async fn start() -> Self {
        let python = std::env::var("REFLOW_KMOCK_PYTHON").unwrap_or_else(|_| {
            panic!(
                "REFLOW_KMOCK_PYTHON is not set (a Python with PyPI kmock): run tests/kube/setup and export it as .ci/run does"
            )
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kube/kmock_server.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start kmock");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("kmock prints its port")
            .unwrap()
            .expect("a first line");
        let port: u16 = first
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("kmock said {first:?}"));
        let url = format!("http://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster:\n    server: {url}\nusers:\n- name: test\n  user: {{}}\ncontexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: test\n    namespace: {NAMESPACE}\ncurrent-context: kmock\n"
            ),
        )
        .unwrap();
        Self {
            url,
            kubeconfig,
            _dir: dir,
            _child: child,
        }
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(cfg).unwrap()
    }

    /// `kubernetes:` settings for a gateway on this API server.
    pub fn settings(&self) -> reflow::config::KubernetesSettings {
        reflow::config::KubernetesSettings {
            enabled: true,
            namespace: NAMESPACE.into(),
            kubeconfig: Some(self.kubeconfig.clone()),
            connect: Some(reflow::config::ConnectMode::PodIp),
            ready_timeout: Duration::from_secs(10),
            gc_interval: Duration::from_secs(1),
            ..Default::default()
        }
    }
}

/// How the test kubelet treats new pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// Start the server and report Ready.
    Healthy,
    /// Report the image unpullable forever (and an event saying so).
    ImagePullBackOff,
}

/// A pod the kubelet runs: its address and server.
struct Running {
    addr: SocketAddr,
    _server: UpstreamServer,
}

/// Plays kubelet for every pod in the namespace until dropped.
pub struct Kubelet {
    task: tokio::task::JoinHandle<()>,
    /// Pod name → the env its server was started with (from the Secret and the pod spec).
    pub envs: Arc<Mutex<HashMap<String, BTreeMap<String, String>>>>,
    /// Pod name → what its server saw (the headers of every request, among others).
    pub logs: Arc<Mutex<HashMap<String, Arc<Mutex<UpstreamLog>>>>>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kubelet {
    /// `tools`: the echo tools every pod's server offers; `slow`: a tool that reports progress
    /// for about 10 s before answering.
    pub fn start(client: kube::Client, node: Node, tools: &[&str], slow: &str) -> Self {
        let envs: Arc<Mutex<HashMap<String, BTreeMap<String, String>>>> = Arc::default();
        let seen = envs.clone();
        let logs: Arc<Mutex<HashMap<String, Arc<Mutex<UpstreamLog>>>>> = Arc::default();
        let heard = logs.clone();
        let tools: Vec<String> = tools.iter().map(|t| t.to_string()).collect();
        let slow = slow.to_string();
        let task = tokio::spawn(async move {
            let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
            let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
            let events: Api<Event> = Api::namespaced(client, NAMESPACE);
            let mut running: HashMap<String, Running> = HashMap::new();
            let mut next_ip = 2u8;
            loop {
                let Ok(list) = pods.list(&ListParams::default()).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                // By uid: a pod deleted and created again under its name is a new pod.
                let uids: Vec<String> = list
                    .items
                    .iter()
                    .filter_map(|p| p.metadata.uid.clone())
                    .collect();
                running.retain(|uid, _| uids.contains(uid));
                for pod in &list.items {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    let has_status = pod.status.as_ref().is_some_and(|s| s.phase.is_some());
                    if running.contains_key(&uid) || has_status {
                        continue;
                    }
                    if node == Node::ImagePullBackOff {
                        patch_status(
                            &pods,
                            &name,
                            json!({
                                "phase": "Pending",
                                "conditions": [{"type": "Ready", "status": "False",
                                    "reason": "ContainersNotReady",
                                    "message": "containers with unready status: [mcp]"}],
                                "containerStatuses": [{"name": "mcp", "ready": false,
                                    "restartCount": 0, "image": "x", "imageID": "",
                                    "state": {"waiting": {"reason": "ImagePullBackOff",
                                        "message": "Back-off pulling image"}}}],
                            }),
                        )
                        .await;
                        let event: Event = serde_json::from_value(json!({
                            "metadata": {"name": format!("{name}.pull"), "namespace": NAMESPACE},
                            "involvedObject": {"kind": "Pod", "name": name, "namespace": NAMESPACE},
                            "reason": "Failed", "type": "Warning",
                            "message": "Failed to pull image: not found",
                        }))
                        .unwrap();
                        let _ = events.create(&PostParams::default(), &event).await;
                        continue;
                    }
                    let env = container_env(pod, &secrets).await;
                    let port = pod_port(pod);
                    let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, next_ip), port));
                    next_ip = next_ip.wrapping_add(1).max(2);
                    let label = json!({"pod": name, "env": env}).to_string();
                    let server = UpstreamServer::start(UpstreamConfig {
                        json_response: true,
                        bind: Some(addr),
                        progress_tool: Some(slow.clone()),
                        progress_steps: 50,
                        progress_interval: Duration::from_millis(200),
                        ..UpstreamConfig::tools(&label, tools.clone())
                    })
                    .await;
                    seen.lock().unwrap().insert(name.clone(), env);
                    heard
                        .lock()
                        .unwrap()
                        .insert(name.clone(), server.log.clone());
                    patch_status(
                        &pods,
                        &name,
                        json!({
                            "phase": "Running",
                            "podIP": addr.ip().to_string(),
                            "conditions": [{"type": "Ready", "status": "True"}],
                        }),
                    )
                    .await;
                    running.insert(
                        uid,
                        Running {
                            addr,
                            _server: server,
                        },
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { task, envs, logs }
    }
}

async fn patch_status(pods: &Api<Pod>, name: &str, status: serde_json::Value) {
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("patch pod status");
}

fn pod_port(pod: &Pod) -> u16 {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|p| p.first())
        .map(|p| p.container_port as u16)
        .expect("the pod names its port")
}

/// What the container's environment would be: the pod's `env`, then its `envFrom` Secrets.
async fn container_env(pod: &Pod, secrets: &Api<Secret>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(c) = pod.spec.as_ref().and_then(|s| s.containers.first()) else {
        return env;
    };
    for e in c.env.iter().flatten() {
        env.insert(e.name.clone(), e.value.clone().unwrap_or_default());
    }
    for from in c.env_from.iter().flatten() {
        let Some(name) = from.secret_ref.as_ref().map(|r| r.name.clone()) else {
            continue;
        };
        let secret = secrets.get(&name).await.expect("the pod's Secret exists");
        for (k, v) in secret.data.unwrap_or_default() {
            env.insert(k, String::from_utf8(v.0).unwrap());
        }
    }
    env
}
