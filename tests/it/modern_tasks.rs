//! The MCP 2026 tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) through reflow to
//! the Python fixture: offered in `server/discover` to clients that declare it, a task-augmented
//! `tools/call` answered with a task id prefixed `{target}/`, `tasks/get` polled to completion
//! with that id, `tasks/update` answering a task's input request, the removed `tasks/result`
//! (404/-32601), the -32021 gate without the extension, and a task unusable by another user.
//! Ignored unless asked for: they need REFLOW_FIXTURE_PYTHON / REFLOW_FIXTURE_SERVER.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fixture::PyFixture;
use crate::support::gw::{Gw, PW, eventually};
use crate::support::mcp_client::{Exchange, ModernClient};
use crate::support::server::TestServer;

const TASKS: &str = "io.modelcontextprotocol/tasks";

/// reflow with the modern fixture as target `fx` (empty prefix: tool names pass unchanged),
/// visible to every user.
async fn gateway_with_fixture() -> Option<(Gw, PyFixture)> {
    let fx = PyFixture::start("streamable-http").await?;
    let gw = Gw::start().await;
    gw.add_target("fx", fx.url.as_str(), Some(""), 20).await;
    let (status, p) = gw
        .server
        .post(
            "/api/policies",
            Some(&gw.admin),
            json!({"name": "everyone-fx", "target": "fx", "resource_type": "all",
                   "effect": "allow", "priority": 10, "subjects": [{"subject_type": "everyone"}]}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    Some((gw, fx))
}

fn tasks_client(server: &TestServer, token: &str) -> ModernClient {
    ModernClient::new(server, token)
        .with_capabilities(json!({"elicitation": {}, "extensions": { TASKS: {} }}))
}

/// A tasks-extension request with the `Mcp-Name: <taskId>` header SEP-2663 asks for
/// (`name_header` overrides it, to send a wrong one).
async fn task_request(
    c: &ModernClient,
    method: &str,
    params: Value,
    name_header: Option<&str>,
) -> Exchange {
    let (id, body) = c.body(method, params);
    let mut headers = ModernClient::headers_for(&body);
    let task_id = body["params"]["taskId"].as_str().unwrap_or_default();
    headers.push((
        "mcp-name".to_string(),
        name_header.unwrap_or(task_id).to_string(),
    ));
    c.send(&id, body, &headers).await
}

async fn task_get(c: &ModernClient, task_id: &str) -> Exchange {
    task_request(c, "tasks/get", json!({ "taskId": task_id }), None).await
}

/// Polls tasks/get until the task reaches `status` (or a terminal one); returns the task.
async fn poll_until(c: &ModernClient, task_id: &str, status: &str) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let found = eventually(Duration::from_secs(15), || async {
        let ex = task_get(c, task_id).await;
        assert_eq!(ex.status, 200, "tasks/get: {}", ex.response);
        let task = ex.response["result"].clone();
        *last.lock().unwrap() = task.clone();
        let s = task["status"].as_str().unwrap_or_default();
        (s == status || ["completed", "failed", "cancelled"].contains(&s)).then_some(task)
    })
    .await;
    found.unwrap_or_else(|| {
        panic!(
            "task {task_id} never reached {status}; last: {}",
            last.lock().unwrap()
        )
    })
}

/// A task-augmented call: the `CreateTaskResult` with its exposed task id.
async fn create_task(c: &ModernClient, tool: &str, arguments: Value) -> (Value, String) {
    let created = c
        .result("tools/call", json!({"name": tool, "arguments": arguments}))
        .await;
    assert_eq!(created["resultType"], "task", "{created}");
    let id = created["taskId"].as_str().expect("taskId").to_string();
    (created, id)
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn task_augmented_call_is_polled_to_completion_with_the_prefixed_id() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let c = tasks_client(&gw.server, &gw.admin);

    let discovered = c.result("server/discover", json!({})).await;
    assert!(
        discovered["capabilities"]["extensions"][TASKS].is_object(),
        "the extension is offered to a client that declares it: {discovered}"
    );

    let (created, task_id) =
        create_task(&c, "slow_compute", json!({"seconds": 0.3, "label": "it"})).await;
    let upstream_id = task_id
        .strip_prefix("fx/")
        .unwrap_or_else(|| panic!("task id not prefixed with the target: {created}"));
    assert!(!upstream_id.is_empty() && !created.as_object().unwrap().contains_key("result"));
    assert_eq!(
        created["ttlMs"], 300_000,
        "the upstream's envelope passes: {created}"
    );

    let done = poll_until(&c, &task_id, "completed").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["taskId"], task_id.as_str());
    assert_eq!(done["resultType"], "complete");
    assert_eq!(
        done["result"]["content"][0]["text"], "Computed it after 0.3s",
        "{done}"
    );

    // The bare upstream id names no target: unknown here.
    let bare = task_get(&c, upstream_id).await;
    assert_eq!(bare.status, 400, "{}", bare.response);
    assert_eq!(bare.response["error"]["code"], -32602, "{}", bare.response);

    // Mcp-Name must mirror params.taskId.
    let wrong = task_request(
        &c,
        "tasks/get",
        json!({ "taskId": task_id }),
        Some("fx/other"),
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.response);
    assert_eq!(
        wrong.response["error"]["code"], -32020,
        "{}",
        wrong.response
    );

    // tasks/result did not survive into the extension.
    let removed = task_request(&c, "tasks/result", json!({ "taskId": task_id }), None).await;
    assert_eq!(removed.status, 404, "{}", removed.response);
    assert_eq!(
        removed.response["error"]["code"], -32601,
        "{}",
        removed.response
    );

    // Without the extension: no offer in discover, the task methods answer -32021, and an
    // optional task tool runs synchronously.
    let plain = ModernClient::new(&gw.server, &gw.admin);
    let discovered = plain.result("server/discover", json!({})).await;
    assert!(
        discovered["capabilities"].get("extensions").is_none(),
        "{discovered}"
    );
    let gated = task_get(&plain, &task_id).await;
    assert_eq!(gated.status, 400, "{}", gated.response);
    assert_eq!(
        gated.response["error"]["code"], -32021,
        "{}",
        gated.response
    );
    assert!(
        gated.response["error"]["data"]["requiredCapabilities"]["extensions"][TASKS].is_object(),
        "{}",
        gated.response
    );
    let sync = plain
        .result(
            "tools/call",
            json!({"name": "slow_compute", "arguments": {"seconds": 0, "label": "sync"}}),
        )
        .await;
    assert_eq!(sync["resultType"], "complete", "{sync}");
    assert!(sync.get("taskId").is_none(), "{sync}");
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn tasks_update_answers_a_task_input_request_through_reflow() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let c = tasks_client(&gw.server, &gw.admin);
    let (_, task_id) = create_task(&c, "confirm_delete", json!({"filename": "a.txt"})).await;
    let waiting = poll_until(&c, &task_id, "input_required").await;
    assert_eq!(waiting["status"], "input_required", "{waiting}");
    let requests = waiting["inputRequests"].as_object().expect("inputRequests");
    let (key, request) = requests.iter().next().expect("one input request");
    assert_eq!(request["method"], "elicitation/create", "{waiting}");

    let ack = task_request(
        &c,
        "tasks/update",
        json!({"taskId": task_id, "inputResponses": { key: {"action": "accept", "content": {"confirm": true}} }}),
        None,
    )
    .await;
    assert_eq!(ack.status, 200, "{}", ack.response);
    assert_eq!(ack.response["result"]["resultType"], "complete");
    assert!(ack.response["result"].get("taskId").is_none());

    let done = poll_until(&c, &task_id, "completed").await;
    assert_eq!(
        done["result"]["content"][0]["text"], "Deleted a.txt",
        "{done}"
    );

    // Cancel on a terminal task: the same empty ack.
    let cancel = task_request(&c, "tasks/cancel", json!({ "taskId": task_id }), None).await;
    assert_eq!(cancel.status, 200, "{}", cancel.response);
    assert_eq!(cancel.response["result"]["resultType"], "complete");
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn another_user_cannot_read_or_cancel_a_task() {
    let Some((gw, _fx)) = gateway_with_fixture().await else {
        return;
    };
    let owner = tasks_client(&gw.server, &gw.admin);
    let (_, task_id) = create_task(
        &owner,
        "slow_compute",
        json!({"seconds": 30, "label": "mine"}),
    )
    .await;

    let (other_token, _) = gw.server.register("other@example.com", PW).await;
    let other = tasks_client(&gw.server, &other_token);
    // The other user sees the tool (the policy allows everyone) but not the owner's task.
    let listed = other.result("tools/list", json!({})).await;
    assert!(
        listed["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "slow_compute"),
        "{listed}"
    );
    for method in ["tasks/get", "tasks/cancel"] {
        let ex = task_request(&other, method, json!({ "taskId": task_id }), None).await;
        assert_eq!(ex.status, 400, "{method}: {}", ex.response);
        assert_eq!(ex.response["error"]["code"], -32602, "{}", ex.response);
        assert_eq!(
            ex.response["error"]["message"],
            format!("unknown task: {task_id}")
        );
    }
    // Owners are recorded in the store: after a restart (or on another replica) the task is
    // still its creator's alone.
    let admin = gw.admin.clone();
    let db = gw.server.stop().await;
    let server = crate::support::TestServer::start_on(db, Default::default()).await;
    let other = tasks_client(&server, &other_token);
    let ex = task_request(&other, "tasks/get", json!({ "taskId": task_id }), None).await;
    assert_eq!(
        ex.response["error"]["code"], -32602,
        "after a restart: {}",
        ex.response
    );
    let owner = tasks_client(&server, &admin);
    // The foreign cancel did not reach the upstream: the task still runs for its owner.
    let mine = task_get(&owner, &task_id).await;
    assert_eq!(
        mine.response["result"]["status"], "working",
        "{}",
        mine.response
    );
    let cancel = task_request(&owner, "tasks/cancel", json!({ "taskId": task_id }), None).await;
    assert_eq!(cancel.status, 200, "{}", cancel.response);
    let settled = poll_until(&owner, &task_id, "cancelled").await;
    assert_eq!(settled["status"], "cancelled", "{settled}");
}
