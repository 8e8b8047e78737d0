//! Kubernetes API contract tests, continued: restarts, limits, a restarted gateway, evictions,
//! lifetimes, and stdio servers under the bridge.

use super::*;

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn restart_deletes_the_pods_and_max_instances_bounds_them() {
    let (k, _kubelet, gw) = healthy(|s| s.max_instances = 1).await;
    let t = pod_target(&gw, "one", "per_user").await;
    let (bob_token, _) = gw.server.register("bob@example.com", PW).await;
    let admin = client_of(&gw, &gw.admin).await;
    let first = whoami(&admin, "one__echo").await;
    // A second user's pod would be the second in the namespace.
    let bob = client_of(&gw, &bob_token).await;
    let refused = bob
        .request("tools/call", json!({"name": "one__echo", "arguments": {}}))
        .await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("kubernetes.max_instances"), "{refused}");
    assert_eq!(k.pod_names().await.len(), 1);

    let (status, body) = gw
        .server
        .post(
            &format!("/api/targets/{t}/restart-instances"),
            Some(&gw.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stopped"], 1, "{body}");
    assert!(k.pod_names().await.is_empty(), "restart deletes the pod");
    assert!(k.secret_names().await.is_empty());
    let again = whoami(&admin, "one__echo").await;
    assert_eq!(again["pod"], first["pod"], "recreated under its name");
    let (_, rows) = gw
        .server
        .get(&format!("/api/targets/{t}/instances"), Some(&gw.admin))
        .await;
    let statuses: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["running", "stopped"], "{rows}");
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn a_restarted_gateway_uses_its_pods_and_deletes_those_of_a_changed_target() {
    let k = Cluster::start().await;
    let _kubelet = Kubelet::start(k.kmock.client().await, Node::Healthy, &["echo"], "slow");
    let opts = || options(&k.kmock, |_| {});
    let gw = Gw::start_with(opts()).await;
    let t = pod_target(&gw, "keep", "shared").await;
    let before = whoami(&client_of(&gw, &gw.admin).await, "keep__echo").await;
    let admin = gw.admin.clone();
    let db = gw.server.stop().await;

    let server = crate::support::TestServer::start_on(db, opts()).await;
    let mut c = McpClient::new(&server, &admin);
    c.initialize().await;
    let after = whoami(&c, "keep__echo").await;
    assert_eq!(
        before["pod"], after["pod"],
        "the pod outlived the gateway and is used again"
    );
    assert_eq!(k.pod_names().await.len(), 1);

    // A changed target gets new pods; the old one is deleted at once, not at the next GC.
    let (status, body) = server
        .send(
            reqwest::Method::PUT,
            &format!("/api/targets/{t}"),
            Some(&admin),
            Some(json!({"image": "ghcr.io/example/mcp-server:1.3"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let old = before["pod"].as_str().unwrap().to_string();
    let deleted = eventually(Duration::from_secs(5), || async {
        (!k.pod_names().await.contains(&old)).then_some(())
    })
    .await;
    assert!(deleted.is_some(), "{:?}", k.pod_names().await);
    let newer = eventually(Duration::from_secs(5), || async {
        let w = whoami(&c, "keep__echo").await;
        (w["pod"] != before["pod"]).then_some(w)
    })
    .await;
    assert!(newer.is_some());
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn a_target_without_a_port_runs_its_command_under_the_bridge_with_a_per_pod_token() {
    let (k, kubelet, gw) =
        healthy(|s| s.bridge_image = Some("ghcr.io/example/reflow:0.1.0".into())).await;
    gw.target_for_everyone(json!({
        "name": "memory",
        "transport_type": "kubernetes",
        "image": "node:22-bookworm-slim",
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-memory"],
        "isolation_boundary": "shared",
    }))
    .await;
    let admin = client_of(&gw, &gw.admin).await;
    // The test kubelet cannot run the bridge; it serves MCP where the bridge would (port 8080).
    let pod = whoami(&admin, "memory__echo").await["pod"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = serde_json::to_value(k.pods.get(&pod).await.unwrap()).unwrap();
    let spec = &manifest["spec"];
    assert_eq!(
        spec["initContainers"][0]["image"],
        "ghcr.io/example/reflow:0.1.0"
    );
    let c = &spec["containers"][0];
    assert_eq!(c["command"], json!(["/reflow-bridge/reflow"]));
    assert_eq!(c["args"][0], "bridge");
    assert_eq!(c["args"][6], "npx");
    let token = kubelet.envs.lock().unwrap()[&pod]["REFLOW_BRIDGE_TOKEN"].clone();
    assert!(
        !manifest.to_string().contains(&token),
        "the token is only in the Secret"
    );
    let log = kubelet.logs.lock().unwrap()[&pod].clone();
    let auth: Vec<String> = log
        .lock()
        .unwrap()
        .headers
        .iter()
        .filter(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone())
        .collect();
    assert!(!auth.is_empty());
    assert!(
        auth.iter().all(|a| *a == format!("Bearer {token}")),
        "{auth:?}"
    );
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn an_evicted_pod_fails_its_call_and_a_pod_past_max_lifetime_is_replaced() {
    let (k, _kubelet, gw) = healthy(|s| s.max_lifetime = Duration::from_secs(3)).await;
    let (admin, pod, slow) = pod_under_a_slow_call(&gw, "evict").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let evicted_at = Instant::now();
    k.pods
        .patch_status(
            &pod,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"status": {"phase": "Failed", "reason": "Evicted",
                "message": "The node was low on resource: memory."}})),
        )
        .await
        .unwrap();
    let answer = slow.await.unwrap();
    assert!(evicted_at.elapsed() < Duration::from_secs(3));
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("went away") && message.contains("Evicted"),
        "{answer}"
    );
    // The next call replaces the ended pod (same name, a new pod).
    let again = whoami(&admin, "evict__echo").await;
    assert_eq!(again["pod"], pod.as_str());
    let uid = k.pods.get(&pod).await.unwrap().metadata.uid;
    // Past max_lifetime (3 s) and quiet, it is deleted; the next call makes a fresh one.
    let replaced = eventually(Duration::from_secs(10), || async {
        let now = k.pods.get_opt(&pod).await.ok().flatten();
        now.is_none_or(|p| p.metadata.uid != uid).then_some(())
    })
    .await;
    assert!(replaced.is_some(), "the pod outlived max_lifetime");
    whoami(&admin, "evict__echo").await;
}
