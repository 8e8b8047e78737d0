//! The upstream MCP client against real servers: an rmcp Streamable HTTP server in process (always)
//! and the Python conformance fixture (Streamable HTTP and legacy SSE) when
//! `REFLOW_FIXTURE_PYTHON` and `REFLOW_FIXTURE_SERVER` are set; those tests skip, saying so,
//! without them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reflow::mcp::jsonrpc::{Kind, classify};
use reflow::upstream::{
    Handshake, HttpTransport, Inbound, UpstreamConnection, UpstreamError, UpstreamSpec,
};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{schemars, tool, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

use crate::support::fixture::PyFixture;

// ---------------------------------------------------------------- a real Rust MCP upstream

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct EchoArgs {
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SlowArgs {
    ms: u64,
}

#[derive(Clone)]
struct TestTools;

#[tool_router(server_handler)]
impl TestTools {
    #[tool(description = "Answers with its text")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    #[tool(description = "Sleeps for ms milliseconds, then answers")]
    async fn slow(&self, Parameters(SlowArgs { ms }): Parameters<SlowArgs>) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        "done".into()
    }
}

struct RmcpUpstream {
    url: url::Url,
    sessions: Arc<LocalSessionManager>,
    server: tokio::task::JoinHandle<()>,
}

impl RmcpUpstream {
    async fn start() -> Self {
        let sessions = Arc::new(LocalSessionManager::default());
        let service = StreamableHttpService::new(
            || Ok(TestTools),
            sessions.clone(),
            StreamableHttpServerConfig::default(),
        );
        let app = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/mcp").parse().unwrap(),
            sessions,
            server,
        }
    }

    /// What an upstream restart or an idle timeout does to sessions: they are gone.
    async fn expire_sessions(&self) -> usize {
        let ids: Vec<_> = self
            .sessions
            .sessions
            .read()
            .await
            .keys()
            .cloned()
            .collect();
        for id in &ids {
            self.sessions.close_session(id).await.unwrap();
        }
        ids.len()
    }
}

impl Drop for RmcpUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// ---------------------------------------------------------------- the Python fixture

/// The Python fixture as reflow's upstream-client tests use it.
type Fixture = PyFixture;

// ---------------------------------------------------------------- helpers

fn spec(url: url::Url, transport: HttpTransport) -> UpstreamSpec {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-test-secret", "never-logged".parse().unwrap());
    UpstreamSpec {
        name: "test".into(),
        url,
        transport,
        headers,
        timeout: Duration::from_secs(10),
        max_message: reflow::upstream::limits::MAX_MESSAGE,
    }
}

fn handshake(capabilities: Value) -> Handshake {
    Handshake {
        protocol_version: reflow::mcp::LATEST_LEGACY_VERSION.into(),
        capabilities,
        client_info: json!({ "name": "reflow-test", "version": "0" }),
    }
}

async fn connect(
    spec: UpstreamSpec,
    capabilities: Value,
) -> (Arc<UpstreamConnection>, Receiver<Inbound>) {
    UpstreamConnection::connect(spec, handshake(capabilities), reqwest::Client::new())
        .await
        .expect("connect")
}

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn call_tool(conn: &UpstreamConnection, name: &str, args: Value) -> Value {
    conn.request(
        "tools/call",
        Some(json!({ "name": name, "arguments": args })),
    )
    .await
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn tool_names(list: &Value) -> Vec<String> {
    list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- rmcp (no Python needed)

#[tokio::test]
async fn rmcp_initialize_list_and_call() {
    let up = RmcpUpstream::start().await;
    let (conn, _rx) = connect(
        spec(up.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    let server = conn.server();
    assert_eq!(server.transport, HttpTransport::StreamableHttp);
    assert!(reflow::mcp::LEGACY_VERSIONS.contains(&server.protocol_version.as_str()));
    assert!(server.capabilities.get("tools").is_some(), "{server:?}");
    let names = tool_names(&conn.request("tools/list", None).await.unwrap());
    assert!(names.contains(&"echo".to_string()), "{names:?}");
    let result = call_tool(&conn, "echo", json!({ "text": "hello" })).await;
    assert_eq!(text_of(&result), "hello");
    conn.close().await;
    assert!(conn.is_closed());
    assert!(matches!(
        conn.request("tools/list", None).await,
        Err(UpstreamError::Closed)
    ));
}

/// A request's future is what every caller's future embeds (a gateway request awaits one
/// several levels down, and each level is moved whole on its way in): the transports' own
/// futures, several KB each, are boxed behind it.
#[tokio::test]
async fn a_request_future_is_small_whatever_the_transport_behind_it() {
    let up = RmcpUpstream::start().await;
    let (conn, _rx) = connect(
        spec(up.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    let timeout = Duration::from_secs(5);
    let sizes = [
        std::mem::size_of_val(&conn.request("tools/list", None)),
        std::mem::size_of_val(&conn.request_with_id(json!(1), "tools/list", None, timeout)),
        std::mem::size_of_val(&conn.request_passthrough(json!(1), "tools/list", None, timeout)),
    ];
    eprintln!("request future sizes: {sizes:?}");
    assert!(sizes.iter().all(|&s| s <= 2048), "{sizes:?}");
}

#[tokio::test]
async fn rmcp_auto_detects_streamable_http() {
    let up = RmcpUpstream::start().await;
    let (conn, _rx) = connect(spec(up.url.clone(), HttpTransport::Auto), json!({})).await;
    assert_eq!(conn.server().transport, HttpTransport::StreamableHttp);
}

#[tokio::test]
async fn rmcp_concurrent_calls_get_their_own_answers() {
    let up = RmcpUpstream::start().await;
    let (conn, _rx) = connect(
        spec(up.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    let calls = (0..20).map(|i| {
        let conn = conn.clone();
        async move {
            let text = format!("<{i}>");
            let result = call_tool(&conn, "echo", json!({ "text": text })).await;
            (text, text_of(&result))
        }
    });
    for (sent, got) in futures_util::future::join_all(calls).await {
        assert_eq!(sent, got);
    }
}

#[tokio::test]
async fn rmcp_session_expiry_is_recovered_transparently() {
    let up = RmcpUpstream::start().await;
    let (conn, _rx) = connect(
        spec(up.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    call_tool(&conn, "echo", json!({ "text": "before" })).await;
    assert_eq!(up.expire_sessions().await, 1);
    // Several requests notice the expiry at once; one re-initialization serves them all.
    let calls =
        (0..5).map(|i| {
            let conn = conn.clone();
            async move {
                text_of(&call_tool(&conn, "echo", json!({ "text": format!("after{i}") })).await)
            }
        });
    let texts = futures_util::future::join_all(calls).await;
    assert_eq!(
        texts,
        (0..5).map(|i| format!("after{i}")).collect::<Vec<_>>()
    );
    // The GET stream may also have noticed; either way exactly one new session remains in use.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(up.sessions.sessions.read().await.len(), 1);
}

#[tokio::test]
async fn rmcp_timeout_gives_timeout() {
    let up = RmcpUpstream::start().await;
    let (conn, _rx) = connect(
        spec(up.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    let started = Instant::now();
    let outcome = conn
        .request_with_id(
            conn.next_id(),
            "tools/call",
            Some(json!({ "name": "slow", "arguments": { "ms": 5000 } })),
            Duration::from_millis(300),
        )
        .await;
    assert!(
        matches!(outcome, Err(UpstreamError::Timeout)),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // The connection is still good afterwards.
    let result = call_tool(&conn, "echo", json!({ "text": "still here" })).await;
    assert_eq!(text_of(&result), "still here");
    let rpc = UpstreamError::Timeout.to_rpc("slowpoke");
    assert!(rpc.message.contains("slowpoke"), "{rpc:?}");
}

#[tokio::test]
async fn rmcp_upstream_errors_are_rpc_errors() {
    let up = RmcpUpstream::start().await;
    let (conn, _rx) = connect(
        spec(up.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    match conn.request("no/such/method", None).await {
        Err(UpstreamError::Rpc(e)) => assert_eq!(e.code, reflow::mcp::codes::METHOD_NOT_FOUND),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dead_upstream_gives_connect_quickly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for transport in [
        HttpTransport::Auto,
        HttpTransport::StreamableHttp,
        HttpTransport::Sse,
    ] {
        let url = format!("http://127.0.0.1:{port}/mcp").parse().unwrap();
        let started = Instant::now();
        let outcome = UpstreamConnection::connect(
            spec(url, transport),
            handshake(json!({})),
            reqwest::Client::new(),
        )
        .await;
        match outcome {
            Err(e @ UpstreamError::Connect(_)) => {
                let rpc = e.to_rpc("ghost");
                assert!(rpc.message.contains("ghost"), "{rpc:?}");
                assert!(!rpc.message.contains("never-logged"), "{rpc:?}");
            }
            Err(other) => panic!("{transport}: {other:?}"),
            Ok(_) => panic!("{transport}: connected to nothing"),
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{transport}");
    }
}

#[test]
fn spec_debug_hides_header_values() {
    let s = spec(
        "http://127.0.0.1:1/mcp".parse().unwrap(),
        HttpTransport::Auto,
    );
    let text = format!("{s:?}");
    assert!(text.contains("x-test-secret"), "{text}");
    assert!(!text.contains("never-logged"), "{text}");
}

// ---------------------------------------------------------------- the Python fixture

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn fixture_initialize_list_and_call_over_both_transports() {
    for (mode, transport) in [
        ("streamable-http", HttpTransport::StreamableHttp),
        ("sse", HttpTransport::Sse),
    ] {
        let Some(fx) = Fixture::start(mode).await else {
            return;
        };
        let (conn, _rx) = connect(spec(fx.url.clone(), transport), json!({})).await;
        assert_eq!(conn.server().transport, transport);
        assert_eq!(
            conn.server().server_info["name"],
            "reflow-conformance-fixture"
        );
        assert!(conn.server().instructions.is_some());
        let names = tool_names(&conn.request("tools/list", None).await.unwrap());
        assert!(names.contains(&"test_simple_text".to_string()), "{names:?}");
        let result = call_tool(&conn, "test_simple_text", json!({})).await;
        assert_eq!(
            text_of(&result),
            "This is a simple text response for testing."
        );
        conn.close().await;
    }
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn fixture_auto_detects_legacy_sse() {
    let Some(fx) = Fixture::start("sse").await else {
        return;
    };
    let (conn, _rx) = connect(spec(fx.url.clone(), HttpTransport::Auto), json!({})).await;
    assert_eq!(conn.server().transport, HttpTransport::Sse);
    call_tool(&conn, "test_simple_text", json!({})).await;
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn fixture_concurrent_requests_are_demultiplexed() {
    for (mode, transport) in [
        ("sse", HttpTransport::Sse),
        ("streamable-http", HttpTransport::StreamableHttp),
    ] {
        let Some(fx) = Fixture::start(mode).await else {
            return;
        };
        let (conn, _rx) = connect(spec(fx.url.clone(), transport), json!({})).await;
        let calls = (0..20).map(|i| {
            let conn = conn.clone();
            async move {
                let params = json!({
                    "name": "test_prompt_with_arguments",
                    "arguments": { "arg1": format!("<a{i}>"), "arg2": format!("<b{i}>") }
                });
                let result = conn.request("prompts/get", Some(params)).await.unwrap();
                (i, result.to_string())
            }
        });
        for (i, text) in futures_util::future::join_all(calls).await {
            assert!(text.contains(&format!("<a{i}>")), "{mode} {i}: {text}");
            assert!(text.contains(&format!("<b{i}>")), "{mode} {i}: {text}");
        }
    }
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn fixture_progress_arrives_before_the_result_tagged_with_the_request() {
    let Some(fx) = Fixture::start("streamable-http").await else {
        return;
    };
    let (conn, mut rx) = connect(
        spec(fx.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    let id = conn.next_id();
    let params = json!({
        "name": "test_tool_with_progress",
        "arguments": {},
        "_meta": { "progressToken": "p-1" }
    });
    let result = conn
        .request_with_id(
            id.clone(),
            "tools/call",
            Some(params),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(text_of(&result), "Tool with progress executed successfully");
    // Everything sent before the response was delivered before the request resolved.
    let mut progress = Vec::new();
    while let Ok(m) = rx.try_recv() {
        if m.message["method"] == "notifications/progress" {
            assert_eq!(m.related.as_ref(), Some(&id));
            assert_eq!(m.message["params"]["progressToken"], "p-1");
            progress.push(m.message["params"]["progress"].as_f64().unwrap());
        }
    }
    assert_eq!(progress, vec![0.0, 50.0, 100.0]);
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn fixture_sampling_request_is_answered_with_respond() {
    for (mode, transport) in [
        ("streamable-http", HttpTransport::StreamableHttp),
        ("sse", HttpTransport::Sse),
    ] {
        let Some(fx) = Fixture::start(mode).await else {
            return;
        };
        let (conn, mut rx) =
            connect(spec(fx.url.clone(), transport), json!({ "sampling": {} })).await;
        let id = conn.next_id();
        let call = {
            let (conn, id) = (conn.clone(), id.clone());
            tokio::spawn(async move {
                let params = json!({ "name": "test_sampling", "arguments": { "prompt": "ping?" } });
                conn.request_with_id(id, "tools/call", Some(params), Duration::from_secs(10))
                    .await
            })
        };
        let inbound = loop {
            let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a sampling request")
                .unwrap();
            if m.message["method"] == "sampling/createMessage" {
                break m;
            }
        };
        // The fixture sends it on the GET stream (related None); on the call's own stream it
        // would carry the call's id.
        if let Some(related) = &inbound.related {
            assert_eq!(related, &id);
        }
        let Kind::Request {
            id: sampling_id, ..
        } = classify(&inbound.message)
        else {
            panic!("not a request: {}", inbound.message)
        };
        let answer = json!({
            "role": "assistant",
            "content": { "type": "text", "text": "pong!" },
            "model": "test-model",
            "stopReason": "endTurn"
        });
        conn.respond(sampling_id.clone(), Ok(answer)).await.unwrap();
        let result = call.await.unwrap().expect("the call completes");
        assert_eq!(text_of(&result), "LLM response: pong!", "{mode}");
    }
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn fixture_session_expiry_after_restart_is_recovered() {
    let Some(mut fx) = Fixture::start("streamable-http").await else {
        return;
    };
    let (conn, _rx) = connect(
        spec(fx.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    call_tool(&conn, "test_simple_text", json!({})).await;
    fx.restart().await;
    let result = call_tool(&conn, "test_simple_text", json!({})).await;
    assert_eq!(
        text_of(&result),
        "This is a simple text response for testing."
    );
    assert!(!conn.is_closed());
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn fixture_post_stream_closed_mid_call_is_resumed() {
    let Some(fx) = Fixture::start("streamable-http").await else {
        return;
    };
    let (conn, mut rx) = connect(
        spec(fx.url.clone(), HttpTransport::StreamableHttp),
        json!({}),
    )
    .await;
    let id = conn.next_id();
    let params = json!({ "name": "test_reconnection", "arguments": {} });
    let result = conn
        .request_with_id(
            id.clone(),
            "tools/call",
            Some(params),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(text_of(&result), "Reconnection test completed");
    let mut logs = Vec::new();
    while let Ok(m) = rx.try_recv() {
        if m.message["method"] == "notifications/message" {
            logs.push(m.message["params"]["data"].to_string());
        }
    }
    assert_eq!(
        logs.len(),
        2,
        "both log messages, across the reconnection: {logs:?}"
    );
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn fixture_legacy_stream_end_closes_the_connection() {
    let Some(mut fx) = Fixture::start("sse").await else {
        return;
    };
    let (conn, _rx) = connect(spec(fx.url.clone(), HttpTransport::Sse), json!({})).await;
    fx.child.kill().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !conn.is_closed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(conn.is_closed());
    let started = Instant::now();
    assert!(matches!(
        conn.request("tools/list", None).await,
        Err(UpstreamError::Closed)
    ));
    assert!(started.elapsed() < Duration::from_millis(500));
}
