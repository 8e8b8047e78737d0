//! Stdio upstreams on the data path with the dependency-free fixture server: processes per
//! isolation key with exactly the environment they should have, sharing between sessions
//! without crossing answers, and target validation.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::gw::Gw;
use crate::support::stdio::{
    FIXTURE, add_stdio_target, call_text, client, instances, pid_of, put, running_pids, user,
};

/// The child's environment as the fixture reports it.
async fn child_env(c: &crate::support::mcp_client::McpClient, target: &str) -> Value {
    serde_json::from_str(&call_text(c, &format!("{target}__env"), json!({})).await).unwrap()
}

#[tokio::test]
async fn stdio_per_user_processes_get_only_their_own_environment() {
    let gw = Gw::start().await;
    let tid = add_stdio_target(
        &gw,
        "fx",
        &FIXTURE,
        &[],
        "per_user",
        json!({"REGION": "eu"}),
    )
    .await;
    let (alice_id, alice) = user(&gw, "alice@example.com", "dev", &["eng"]).await;
    let (bob_id, bob) = user(&gw, "bob@example.com", "dev", &["eng"]).await;
    put(
        &gw,
        &format!("/api/targets/{tid}/env/user/{alice_id}"),
        json!({"API_KEY": "alice-key-123"}),
    )
    .await;
    put(
        &gw,
        &format!("/api/targets/{tid}/env/user/{bob_id}"),
        json!({"API_KEY": "bob-key-456"}),
    )
    .await;
    put(
        &gw,
        &format!("/api/targets/{tid}/tokens/default"),
        json!({"token": "shared-token"}),
    )
    .await;

    let (a, b) = (client(&gw, &alice).await, client(&gw, &bob).await);
    let (ea, eb) = (child_env(&a, "fx").await, child_env(&b, "fx").await);
    assert_eq!(ea["API_KEY"], "alice-key-123");
    assert_eq!(eb["API_KEY"], "bob-key-456");
    for env in [&ea, &eb] {
        assert_eq!(env["REGION"], "eu", "the target's non-secret env: {env}");
        assert_eq!(env["AUTH_TOKEN"], "shared-token", "the token as AUTH_TOKEN");
        let keys: HashSet<&str> = env
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected: HashSet<&str> = [
            "PATH",
            "HOME",
            "LANG",
            "TMPDIR",
            "REGION",
            "API_KEY",
            "AUTH_TOKEN",
        ]
        .into();
        assert_eq!(
            keys, expected,
            "nothing of the gateway's own environment: {env}"
        );
    }
    // The gateway's secrets never reach a child, in any variable.
    let data = gw.server.settings.data_dir.clone();
    let jwt = std::fs::read_to_string(data.join("jwt_secret")).unwrap();
    let enc = std::fs::read_to_string(data.join("encryption.key")).unwrap();
    for env in [&ea, &eb] {
        let text = env.to_string();
        assert!(!text.contains(jwt.trim()), "JWT secret leaked");
        assert!(!text.contains(enc.trim()), "encryption key leaked");
        assert!(
            !text.contains("REFLOW_"),
            "a REFLOW_* variable leaked: {text}"
        );
    }
    let (pa, pb) = (pid_of(&a, "fx").await, pid_of(&b, "fx").await);
    assert_ne!(pa, pb, "per_user: one process per user");
    let rows = instances(&gw, "fx").await;
    let mut expected = vec![pa, pb];
    expected.sort_unstable();
    assert_eq!(running_pids(&rows), expected, "{rows:?}");
    let keys: HashSet<String> = rows
        .iter()
        .map(|r| r["isolation_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        [format!("user:{alice_id}"), format!("user:{bob_id}")].into()
    );
}

#[tokio::test]
async fn stdio_per_role_shares_one_process_between_users_of_a_role() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "per_role", json!({})).await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let (_, bob) = user(&gw, "bob@example.com", "dev", &["eng"]).await;
    let (_, carol) = user(&gw, "carol@example.com", "ops", &[]).await;
    let (a, b, c) = (
        client(&gw, &alice).await,
        client(&gw, &bob).await,
        client(&gw, &carol).await,
    );
    let (pa, pb, pc) = (
        pid_of(&a, "fx").await,
        pid_of(&b, "fx").await,
        pid_of(&c, "fx").await,
    );
    assert_eq!(pa, pb, "two users of role dev share one process");
    assert_ne!(pa, pc, "role ops has its own");
    let rows = instances(&gw, "fx").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let keys: HashSet<&str> = rows
        .iter()
        .map(|r| r["isolation_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["role:dev", "role:ops"].into());
}

#[tokio::test]
async fn stdio_per_group_keys_on_the_group_the_credentials_come_from() {
    let gw = Gw::start().await;
    let tid = add_stdio_target(&gw, "fx", &FIXTURE, &[], "per_group", json!({})).await;
    put(
        &gw,
        &format!("/api/targets/{tid}/env/group/ops"),
        json!({"API_KEY": "ops-key"}),
    )
    .await;
    // alice: groups eng and ops; her credential comes from ops, so her key is group:ops
    // although eng sorts first. bob: only eng, no group credential: his first group.
    let (_, alice) = user(&gw, "alice@example.com", "dev", &["eng", "ops"]).await;
    let (_, bob) = user(&gw, "bob@example.com", "dev", &["eng"]).await;
    let (a, b) = (client(&gw, &alice).await, client(&gw, &bob).await);
    assert_eq!(
        child_env(&a, "fx").await["API_KEY"],
        "ops-key",
        "alice resolves the ops credential"
    );
    assert_ne!(pid_of(&a, "fx").await, pid_of(&b, "fx").await);
    let keys: HashSet<String> = instances(&gw, "fx")
        .await
        .iter()
        .map(|r| r["isolation_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        ["group:ops".to_string(), "group:eng".to_string()].into()
    );
}

#[tokio::test]
async fn stdio_fifty_concurrent_sessions_on_one_shared_process_get_their_own_answers() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let (_, token) = user(&gw, "alice@example.com", "dev", &[]).await;
    let clients = futures_util::future::join_all((0..50).map(|_| client(&gw, &token))).await;
    let answers =
        futures_util::future::join_all(clients.iter().enumerate().map(|(i, c)| async move {
            let mut got = Vec::new();
            for round in 0..4 {
                let text = format!("session {i} round {round}");
                // Slow calls in between keep many requests in flight at once.
                if round % 2 == 0 {
                    call_text(c, "fx__sleep", json!({"ms": 20})).await;
                }
                got.push((
                    text.clone(),
                    call_text(c, "fx__echo", json!({"text": text})).await,
                ));
            }
            got
        }))
        .await;
    for got in answers.iter().flatten() {
        assert_eq!(got.0, got.1, "an answer reached the wrong request");
    }
    let rows = instances(&gw, "fx").await;
    assert_eq!(running_pids(&rows).len(), 1, "one shared process: {rows:?}");
    assert_eq!(rows[0]["isolation_key"], "shared:fx");
}

#[tokio::test]
async fn stdio_targets_are_validated_with_clear_errors() {
    let gw = Gw::start().await;
    for (body, field, says) in [
        (
            json!({"name": "a", "transport_type": "stdio"}),
            "command",
            "required",
        ),
        (
            json!({"name": "a", "transport_type": "stdio", "command": "  "}),
            "command",
            "empty",
        ),
        (
            json!({"name": "a", "transport_type": "stdio", "command": "x", "cwd": "rel/dir"}),
            "cwd",
            "absolute",
        ),
        (
            json!({"name": "a", "transport_type": "stdio", "command": "x", "env": {"REFLOW_DATABASE_URL": "x"}}),
            "env",
            "reserved",
        ),
        (
            json!({"name": "a", "transport_type": "stdio", "command": "x", "isolation_boundary": "per_team"}),
            "isolation_boundary",
            "per_user",
        ),
    ] {
        let (status, res) = gw
            .server
            .post("/api/targets", Some(&gw.admin), body.clone())
            .await;
        assert_eq!(status, 422, "{body} → {res}");
        let text = res.to_string();
        assert!(
            text.contains(field) && text.contains(says),
            "{body}: expected {field}/{says} in {text}"
        );
    }
    // An HTTP target has no processes: its instances are a clear 422, not an empty list.
    let (status, _) = gw
        .server
        .post(
            "/api/targets",
            Some(&gw.admin),
            json!({"name": "web", "url": "http://127.0.0.1:9/mcp"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, res) = gw
        .server
        .get("/api/targets/web/instances", Some(&gw.admin))
        .await;
    assert_eq!(status, 422, "{res}");
    assert!(
        res.to_string()
            .contains("only stdio and kubernetes targets"),
        "{res}"
    );
}

#[tokio::test]
async fn stdio_server_requests_go_to_the_only_caller_and_are_refused_when_ambiguous() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let (_, bob) = user(&gw, "bob@example.com", "dev", &[]).await;
    let (a, b) = (client(&gw, &alice).await, client(&gw, &bob).await);

    // One request in flight: the server's sampling request goes to its caller, whose session
    // did not declare sampling, so the upstream hears exactly that.
    let alone = call_text(&b, "fx__sample", json!({})).await;
    assert!(
        alone.contains("did not declare the sampling capability"),
        "{alone}"
    );

    // Two clients' requests in flight: stdio says nothing about which one the sampling request
    // is for, so no session gets it and the upstream gets an error it can handle.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("sleeping");
    let marker_arg = marker.to_str().unwrap().to_string();
    let slow = tokio::spawn(async move {
        a.exchange(
            "tools/call",
            json!({"name": "fx__sleep", "arguments": {"ms": 1500, "marker": marker_arg}}),
        )
        .await
    });
    crate::support::gw::eventually(std::time::Duration::from_secs(10), || async {
        marker.exists().then_some(())
    })
    .await
    .expect("the slow call reached the process");
    let ambiguous = call_text(&b, "fx__sample", json!({})).await;
    assert!(
        ambiguous.contains("several clients' requests are in flight"),
        "{ambiguous}"
    );
    let ex = slow.await.unwrap();
    assert!(ex.response.get("result").is_some(), "{}", ex.response);
    assert!(
        !ex.raw.contains("sampling/createMessage"),
        "alice's stream never saw bob's sampling request: {}",
        ex.raw
    );
}

#[tokio::test]
async fn stdio_list_changes_reach_only_the_sessions_of_that_process() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "per_user", json!({})).await;
    let (_, alice) = user(&gw, "alice@example.com", "dev", &[]).await;
    let (_, bob) = user(&gw, "bob@example.com", "dev", &[]).await;
    let (a, b) = (client(&gw, &alice).await, client(&gw, &bob).await);
    let mut a_stream = a.get_stream(None).await;
    let mut b_stream = b.get_stream(None).await;
    assert_eq!((a_stream.status, b_stream.status), (200, 200));
    call_text(&a, "fx__changed", json!({})).await;
    let is_change = |e: &crate::support::mcp_client::SseEvent| {
        e.data["method"] == "notifications/tools/list_changed"
    };
    let mut got = false;
    while let Some(e) = a_stream.try_next(std::time::Duration::from_secs(5)).await {
        if is_change(&e) {
            got = true;
            break;
        }
    }
    assert!(got, "alice's session hears her process's list change");
    // Fan-out to every attached session happens in one step, so had bob been sent it, it
    // would be in his stream already.
    while let Some(e) = b_stream
        .try_next(std::time::Duration::from_millis(500))
        .await
    {
        assert!(!is_change(&e), "bob heard about alice's process: {e:?}");
    }
}

#[tokio::test]
async fn stdio_answers_stream_and_a_log_message_goes_to_the_only_call_in_flight() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let c = client(&gw, &gw.admin).await;
    // stdio relates nothing to a request: with one call in flight, the message is that call's,
    // on that call's stream, before its answer.
    let ex = c
        .exchange(
            "tools/call",
            json!({"name": "fx__log", "arguments": {"text": "hello-from-the-child"}}),
        )
        .await;
    assert!(ex.sse, "a stdio server's answers are streamed: {}", ex.raw);
    let logs: Vec<&Value> = ex
        .events
        .iter()
        .map(|e| &e.data)
        .filter(|m| m["method"] == "notifications/message")
        .collect();
    assert_eq!(logs.len(), 1, "{}", ex.raw);
    assert_eq!(logs[0]["params"]["data"], "hello-from-the-child");
    assert_eq!(
        crate::support::stdio::text(&ex.response["result"]),
        "logged"
    );
}

#[tokio::test]
async fn stdio_a_list_is_streamed_too_and_its_page_arrives_whole() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let c = client(&gw, &gw.admin).await;
    // The page comes from the list cache as JSON text; on a stream it must still be the
    // stream's last event, whole, and the same list a JSON answer gives.
    for round in ["cold", "warm"] {
        let ex = c.exchange("tools/list", json!({})).await;
        assert!(
            ex.sse,
            "{round}: a stdio target's list is streamed: {}",
            ex.raw
        );
        let tools = ex.response["result"]["tools"].as_array().expect("tools");
        assert!(
            tools.iter().any(|t| t["name"] == "fx__log"),
            "{round}: {}",
            ex.raw
        );
        assert!(
            ex.response["result"].get("nextCursor").is_none(),
            "{}",
            ex.raw
        );
    }
}

#[tokio::test]
async fn stdio_processes_declare_what_their_callers_declared() {
    let gw = Gw::start().await;
    add_stdio_target(&gw, "fx", &FIXTURE, &[], "shared", json!({})).await;
    let mut sampling = crate::support::mcp_client::McpClient::new(&gw.server, &gw.admin);
    sampling.initialize_with(json!({"sampling": {}})).await;
    let plain = client(&gw, &gw.admin).await;
    let caps_of = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    assert_eq!(
        caps_of(call_text(&sampling, "fx__caps", json!({})).await),
        json!({"sampling": {}})
    );
    assert_eq!(
        caps_of(call_text(&plain, "fx__caps", json!({})).await),
        json!({})
    );
    assert_ne!(
        pid_of(&sampling, "fx").await,
        pid_of(&plain, "fx").await,
        "one process per declared capability set"
    );
}
