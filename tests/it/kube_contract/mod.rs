//! Kubernetes API contract tests: `reflow serve` against an in-memory Kubernetes API (PyPI
//! `kmock`), with the test playing kubelet (support/kmock.rs) and a real MCP server behind each
//! pod. Not cluster tests: they show the requests reflow makes and what it does with the
//! answers. Run by .ci/run with REFLOW_KMOCK_PYTHON (tests/kube/setup).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Value, json};

use crate::support::TestServerOptions;
use crate::support::gw::{Gw, PW, eventually, tool_text};
use crate::support::kmock::{Kmock, Kubelet, NAMESPACE, Node};
use crate::support::mcp_client::McpClient;

mod forward;
mod lifecycle;

struct Cluster {
    kmock: Kmock,
    pods: Api<Pod>,
    secrets: Api<Secret>,
}

impl Cluster {
    async fn start() -> Self {
        let kmock = Kmock::start().await;
        let client = kmock.client().await;
        Self {
            pods: Api::namespaced(client.clone(), NAMESPACE),
            secrets: Api::namespaced(client, NAMESPACE),
            kmock,
        }
    }

    async fn pod_names(&self) -> Vec<String> {
        names(&self.pods).await
    }

    async fn secret_names(&self) -> Vec<String> {
        names(&self.secrets).await
    }
}

/// The names of what `api` lists, sorted: the tests compare whole lists of pods.
async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = api.list(&ListParams::default()).await.unwrap();
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|o| o.meta().name.clone())
        .collect();
    names.sort();
    names
}

/// A cluster whose kubelet starts every pod's server healthy, and a gateway using it with
/// `tweak`ed settings.
async fn healthy(
    tweak: impl FnOnce(&mut reflow::config::KubernetesSettings),
) -> (Cluster, Kubelet, Gw) {
    let k = Cluster::start().await;
    let kubelet = Kubelet::start(k.kmock.client().await, Node::Healthy, &["echo"], "slow");
    let gw = Gw::start_with(options(&k.kmock, tweak)).await;
    (k, kubelet, gw)
}

fn options(
    k: &Kmock,
    tweak: impl FnOnce(&mut reflow::config::KubernetesSettings),
) -> TestServerOptions {
    let mut settings = k.settings();
    tweak(&mut settings);
    TestServerOptions {
        kubernetes: Some(settings),
        ..TestServerOptions::default()
    }
}

/// A kubernetes target everyone may use; returns its id. Each gets its own port: the tests
/// run in parallel and their "pods" share the loopback addresses.
async fn pod_target(gw: &Gw, name: &str, isolation: &str) -> String {
    static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(18731);
    let port = NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    gw.target_for_everyone(json!({
        "name": name,
        "transport_type": "kubernetes",
        "image": "ghcr.io/example/mcp-server:1.2",
        "port": port,
        "health_path": "/healthz",
        "args": ["--transport", "http"],
        "env": {"LOG_LEVEL": "info"},
        "isolation_boundary": isolation,
        "timeout": 30,
    }))
    .await
}

/// `PUT path` as the admin.
async fn admin_put(gw: &Gw, path: &str, body: Value) -> (u16, Value) {
    gw.server
        .send(reqwest::Method::PUT, path, Some(&gw.admin), Some(body))
        .await
}

async fn set_env(gw: &Gw, target: &str, scope: &str, body: Value) {
    let (status, b) = admin_put(gw, &format!("/api/targets/{target}/env/{scope}"), body).await;
    assert!(status < 300, "set env {scope}: {status} {b}");
}

/// Calls `tool` and returns what the pod's server says about itself: `{"pod", "env"}`.
async fn whoami(client: &McpClient, tool: &str) -> Value {
    let result = client
        .result("tools/call", json!({"name": tool, "arguments": {}}))
        .await;
    serde_json::from_str(tool_text(&result)["server"].as_str().unwrap()).unwrap()
}

async fn client_of(gw: &Gw, token: &str) -> McpClient {
    let mut c = McpClient::new(&gw.server, token);
    c.initialize().await;
    c
}

/// A shared target `target` whose pod the admin's call of its `echo` started, with a call of its
/// `slow` in flight on the same session: (the admin's client, the pod's name, the slow call's
/// answer to come).
async fn pod_under_a_slow_call(
    gw: &Gw,
    target: &str,
) -> (McpClient, String, tokio::task::JoinHandle<Value>) {
    pod_target(gw, target, "shared").await;
    let mut admin = McpClient::new(&gw.server, &gw.admin);
    let session = admin.initialize().await;
    let pod = whoami(&admin, &format!("{target}__echo")).await["pod"]
        .as_str()
        .unwrap()
        .to_string();
    let slow = McpClient::with_session(&gw.server, &gw.admin, &session);
    let call = json!({"name": format!("{target}__slow"), "arguments": {}, "_meta": {"progressToken": "p"}});
    let slow = tokio::spawn(async move { slow.request("tools/call", call).await });
    (admin, pod, slow)
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn per_user_gives_two_users_two_pods_shared_gives_one_and_credentials_go_through_a_secret() {
    let (k, _kubelet, gw) = healthy(|_| {}).await;
    let mine = pod_target(&gw, "mine", "per_user").await;
    let limits = json!({"resources": {"limits": {"memory": "1Gi", "cpu": "500m"}}});
    let (status, body) = admin_put(&gw, &format!("/api/targets/{mine}"), limits).await;
    assert_eq!(status, 200, "{body}");
    let shared = pod_target(&gw, "team", "shared").await;
    let (user_token, user) = gw.server.register("bob@example.com", PW).await;
    let (_, me) = gw.server.get("/api/auth/me", Some(&gw.admin)).await;
    let admin_id = me["id"]
        .as_str()
        .or(me["user"]["id"].as_str())
        .unwrap()
        .to_string();
    let bob_id = user["id"].as_str().unwrap().to_string();
    for (target, scope, env) in [
        (
            &mine,
            format!("user/{admin_id}"),
            json!({"API_KEY": "admin-key-1"}),
        ),
        (
            &mine,
            format!("user/{bob_id}"),
            json!({"API_KEY": "bob-key-2"}),
        ),
        (
            &shared,
            "default".into(),
            json!({"TEAM_TOKEN": "team-secret-3"}),
        ),
    ] {
        set_env(&gw, target, &scope, env).await;
    }

    let admin = client_of(&gw, &gw.admin).await;
    let bob = client_of(&gw, &user_token).await;
    let a = whoami(&admin, "mine__echo").await;
    let b = whoami(&bob, "mine__echo").await;
    assert_ne!(a["pod"], b["pod"], "per_user: one pod each");
    // The credentials reached each user's server, through the pod's Secret only.
    assert_eq!(a["env"]["API_KEY"], "admin-key-1");
    assert_eq!(b["env"]["API_KEY"], "bob-key-2");
    assert_eq!(a["env"]["LOG_LEVEL"], "info");
    let ta = whoami(&admin, "team__echo").await;
    let tb = whoami(&bob, "team__echo").await;
    assert_eq!(ta["pod"], tb["pod"], "shared: one pod for everyone");
    assert_eq!(tb["env"]["TEAM_TOKEN"], "team-secret-3");
    assert_eq!(k.pod_names().await.len(), 3);

    let pod = k.pods.get(a["pod"].as_str().unwrap()).await.unwrap();
    let mut manifest = serde_json::to_value(&pod).unwrap();
    manifest.as_object_mut().unwrap().remove("status");
    let text = serde_json::to_string_pretty(&manifest).unwrap();
    eprintln!("the pod reflow created for a per_user target:\n{text}");
    for secret in ["admin-key-1", "bob-key-2", "team-secret-3"] {
        assert!(
            !text.contains(secret),
            "a credential in the pod spec: {text}"
        );
    }
    let labels = &manifest["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "reflow");
    assert_eq!(labels["reflow.dev/target"], mine.as_str());
    let spec = &manifest["spec"];
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &spec["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], a["pod"]);
    // The target's own limits over kubernetes.pod_defaults, whose requests stay.
    assert_eq!(
        c["resources"]["limits"],
        json!({"cpu": "500m", "memory": "1Gi"})
    );
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "50m", "memory": "64Mi"})
    );
    let secret = k.secrets.get(a["pod"].as_str().unwrap()).await.unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data["API_KEY"].0, b"admin-key-1");

    // The pods are instances, like stdio processes.
    let (status, rows) = gw
        .server
        .get(&format!("/api/targets/{mine}/instances"), Some(&gw.admin))
        .await;
    assert_eq!(status, 200, "{rows}");
    let pods: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["pod"].as_str())
        .collect();
    assert_eq!(pods.len(), 2, "{rows}");
    assert!(
        pods.iter().all(|p| p.starts_with("mcp/reflow-mine-")),
        "{rows}"
    );
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn idle_pods_and_their_secrets_are_deleted() {
    let (k, _kubelet, gw) = healthy(|s| s.idle_ttl = Duration::from_secs(2)).await;
    let t = pod_target(&gw, "idle", "per_user").await;
    set_env(&gw, &t, "default", json!({"API_KEY": "k"})).await;
    let admin = client_of(&gw, &gw.admin).await;
    whoami(&admin, "idle__echo").await;
    assert_eq!(k.pod_names().await.len(), 1);
    assert_eq!(k.secret_names().await.len(), 1);
    let gone = eventually(Duration::from_secs(15), || async {
        (k.pod_names().await.is_empty() && k.secret_names().await.is_empty()).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "idle pod still there: {:?}",
        k.pod_names().await
    );
    let (_, rows) = gw
        .server
        .get(&format!("/api/targets/{t}/instances"), Some(&gw.admin))
        .await;
    assert_eq!(rows[0]["status"], "stopped", "{rows}");
    // The next call starts it again.
    whoami(&admin, "idle__echo").await;
    assert_eq!(k.pod_names().await.len(), 1);
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn a_credential_change_replaces_the_pod() {
    let (k, _kubelet, gw) = healthy(|_| {}).await;
    let t = pod_target(&gw, "rot", "shared").await;
    set_env(&gw, &t, "default", json!({"API_KEY": "old-key"})).await;
    let admin = client_of(&gw, &gw.admin).await;
    let before = whoami(&admin, "rot__echo").await;
    assert_eq!(before["env"]["API_KEY"], "old-key");
    set_env(&gw, &t, "default", json!({"API_KEY": "new-key"})).await;
    let after = eventually(Duration::from_secs(5), || async {
        let w = whoami(&admin, "rot__echo").await;
        (w["env"]["API_KEY"] == "new-key").then_some(w)
    })
    .await
    .expect("the next call reaches a pod with the new credentials");
    assert_ne!(before["pod"], after["pod"]);
    // The old pod and its Secret are collected.
    let old = before["pod"].as_str().unwrap().to_string();
    let gone = eventually(Duration::from_secs(10), || async {
        let pods = k.pod_names().await;
        let secrets = k.secret_names().await;
        (!pods.contains(&old) && !secrets.contains(&old)).then_some(pods)
    })
    .await
    .expect("the old pod is deleted");
    assert_eq!(gone, [after["pod"].as_str().unwrap().to_string()]);
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn a_pod_deleted_under_a_call_fails_it_promptly_and_the_next_call_recreates_it() {
    let (k, _kubelet, gw) = healthy(|_| {}).await;
    let (admin, pod, slow) = pod_under_a_slow_call(&gw, "frail").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let deleted_at = Instant::now();
    k.pods.delete(&pod, &DeleteParams::default()).await.unwrap();
    let answer = slow.await.unwrap();
    let took = deleted_at.elapsed();
    assert!(answer.get("error").is_some(), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("went away"), "{message}");
    // The slow tool would have run ~10 s more.
    assert!(took < Duration::from_secs(3), "failed after {took:?}");
    let again = whoami(&admin, "frail__echo").await;
    assert_eq!(
        again["pod"],
        pod.as_str(),
        "the same deterministic name, a new pod"
    );
    assert_eq!(k.pod_names().await, [pod]);
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn a_second_replica_uses_the_first_ones_pod() {
    let (k, _kubelet, gw) = healthy(|_| {}).await;
    let t = pod_target(&gw, "both", "per_user").await;
    set_env(&gw, &t, "default", json!({"API_KEY": "shared-by-replicas"})).await;
    let first = whoami(&client_of(&gw, &gw.admin).await, "both__echo").await;
    let replica = gw.server.replica().await;
    let mut c = McpClient::new(&replica, &gw.admin);
    c.initialize().await;
    let second = whoami(&c, "both__echo").await;
    assert_eq!(first["pod"], second["pod"]);
    assert_eq!(k.pod_names().await.len(), 1);
    let (_, rows) = gw
        .server
        .get(&format!("/api/targets/{t}/instances"), Some(&gw.admin))
        .await;
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "one row for the shared pod: {rows}"
    );
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn a_pod_that_never_becomes_ready_fails_clearly_within_the_timeout() {
    let k = Cluster::start().await;
    let _kubelet = Kubelet::start(
        k.kmock.client().await,
        Node::ImagePullBackOff,
        &["echo"],
        "slow",
    );
    let gw = Gw::start_with(options(&k.kmock, |s| {
        s.ready_timeout = Duration::from_secs(2)
    }))
    .await;
    pod_target(&gw, "stuck", "shared").await;
    let mut admin = McpClient::new(&gw.server, &gw.admin);
    let started = Instant::now();
    admin.initialize().await;
    let answer = admin
        .request(
            "tools/call",
            json!({"name": "stuck__echo", "arguments": {}}),
        )
        .await;
    let took = started.elapsed();
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pod = k.pod_names().await.pop().expect("the pod was created");
    assert!(message.contains(&format!("{NAMESPACE}/{pod}")), "{answer}");
    assert!(
        message.contains("did not become Ready within 2s"),
        "{message}"
    );
    assert!(message.contains("ImagePullBackOff"), "{message}");
    assert!(message.contains("Failed to pull image"), "{message}");
    // initialize waited once (2 s), the call fails at once (backoff) or waits once more.
    assert!(took < Duration::from_secs(8), "took {took:?}");
}
