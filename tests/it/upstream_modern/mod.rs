//! reflow's upstream client against 2026-07-28 servers: the era probe and its cache (the rmcp
//! upstream is legacy-only, the Python fixture speaks both eras over Streamable HTTP and only the
//! legacy era over SSE), and the CLI saying which era. The connection on its own is in
//! `connection`; legacy and modern clients through the gateway to the modern fixture in
//! `gateway`. Fixture tests skip, saying so, without REFLOW_FIXTURE_PYTHON / REFLOW_FIXTURE_SERVER.

use std::time::{Duration, Instant};

use reflow::upstream::{
    Era, EraCache, Handshake, HttpTransport, UpstreamConnection, UpstreamError, UpstreamSpec,
};
use serde_json::{Value, json};

use crate::support::fixture::PyFixture;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

mod connection;
mod gateway;

fn spec(url: &str, transport: HttpTransport) -> UpstreamSpec {
    UpstreamSpec {
        name: "t".into(),
        url: url.parse().unwrap(),
        transport,
        headers: Default::default(),
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
    url: &str,
    transport: HttpTransport,
    eras: &EraCache,
) -> std::sync::Arc<UpstreamConnection> {
    let (conn, _rx) = UpstreamConnection::connect_cached(
        spec(url, transport),
        handshake(json!({})),
        reqwest::Client::new(),
        eras,
    )
    .await
    .expect("connect");
    conn
}

#[tokio::test]
async fn probe_finds_legacy_rmcp_fast_and_caches_the_verdict() {
    for json_response in [false, true] {
        let up = UpstreamServer::start(UpstreamConfig {
            json_response,
            ..UpstreamConfig::tools("r", ["echo"])
        })
        .await;
        let eras = EraCache::default();
        let started = Instant::now();
        let conn = connect(&up.url, HttpTransport::Auto, &eras).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the legacy fallback took {:?}",
            started.elapsed()
        );
        assert_eq!(conn.server().era(), Era::Legacy);
        assert_eq!(conn.server().protocol_version, "2025-11-25");
        assert_eq!(conn.server().transport, HttpTransport::StreamableHttp);
        let r = conn
            .request("tools/call", Some(json!({"name": "echo", "arguments": {}})))
            .await
            .expect("a call on the legacy session");
        assert!(r["content"][0]["text"].as_str().unwrap().contains("echo"));
        assert_eq!(eras.probes(), 1);
        assert_eq!(eras.era(&up.url.parse().unwrap()), Some(Era::Legacy));
        let again = connect(&up.url, HttpTransport::Auto, &eras).await;
        assert_eq!(again.server().era(), Era::Legacy);
        assert_eq!(
            eras.probes(),
            1,
            "the second connection used the cached verdict"
        );
        conn.close().await;
        again.close().await;
    }
}

#[tokio::test]
async fn probe_finds_a_modern_rmcp_upstream() {
    // rmcp 3.11 serves 2026-07-28 too: a second, independent modern implementation.
    let up = UpstreamServer::start(UpstreamConfig {
        modern: true,
        json_response: true,
        ..UpstreamConfig::tools("m", ["echo"])
    })
    .await;
    let eras = EraCache::default();
    let conn = connect(&up.url, HttpTransport::Auto, &eras).await;
    assert_eq!(conn.server().era(), Era::Modern);
    let r = conn
        .request(
            "tools/call",
            Some(json!({"name": "echo", "arguments": {"x": 1}})),
        )
        .await
        .expect("a stateless call to rmcp");
    let text: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["args"], json!({"x": 1}));
    assert_eq!(up.session_count().await, 0, "no session was created");
    assert_eq!(up.calls(), vec!["echo".to_string()]);
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn probe_finds_the_modern_fixture_and_caches_it() {
    let Some(fx) = PyFixture::start("streamable-http").await else {
        return;
    };
    let eras = EraCache::default();
    let conn = connect(fx.url.as_str(), HttpTransport::Auto, &eras).await;
    let server = conn.server();
    assert_eq!(server.era(), Era::Modern);
    assert_eq!(server.protocol_version, "2026-07-28");
    assert_eq!(server.server_info["name"], "reflow-conformance-fixture");
    assert_eq!(server.capabilities["tools"]["listChanged"], true);
    assert!(
        server
            .instructions
            .as_deref()
            .unwrap_or_default()
            .contains("conformance"),
        "instructions from server/discover: {:?}",
        server.instructions
    );
    let r = conn
        .request(
            "tools/call",
            Some(json!({"name": "test_simple_text", "arguments": {}})),
        )
        .await
        .expect("a stateless call");
    assert_eq!(
        r["content"][0]["text"],
        "This is a simple text response for testing."
    );
    assert_eq!(r["resultType"], "complete");
    assert_eq!(eras.probes(), 1);
    let again = connect(fx.url.as_str(), HttpTransport::Auto, &eras).await;
    assert_eq!(again.server().era(), Era::Modern);
    assert_eq!(eras.probes(), 1, "the verdict was cached");
    // Without `sampling` in the handshake the fixture refuses this tool (-32021): the
    // handshake's capabilities are what each request declares.
    let err = again
        .request(
            "tools/call",
            Some(json!({"name": "test_missing_capability", "arguments": {}})),
        )
        .await
        .expect_err("sampling was not declared");
    assert!(
        matches!(&err, UpstreamError::Rpc(e) if e.code == -32021),
        "{err:?}"
    );
    let (with_sampling, _rx) = UpstreamConnection::connect_cached(
        spec(fx.url.as_str(), HttpTransport::Auto),
        handshake(json!({"sampling": {}})),
        reqwest::Client::new(),
        &eras,
    )
    .await
    .unwrap();
    let ok = with_sampling
        .request(
            "tools/call",
            Some(json!({"name": "test_missing_capability", "arguments": {}})),
        )
        .await
        .expect("sampling declared");
    assert_eq!(ok["content"][0]["text"], "The client declared sampling");

    // A dead upstream: the failure closes the connection and forgets the verdict.
    let url = fx.url.clone();
    fx.stop().await;
    let err = conn
        .request("tools/list", None)
        .await
        .expect_err("the fixture is gone");
    assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
    assert!(conn.is_closed(), "a failed modern connection closes itself");
    assert_eq!(eras.era(&url), None, "the verdict is forgotten");
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn probe_falls_back_to_legacy_sse_for_the_fixture_over_sse() {
    let Some(fx) = PyFixture::start("sse").await else {
        return;
    };
    let eras = EraCache::default();
    let started = Instant::now();
    let conn = connect(fx.url.as_str(), HttpTransport::Auto, &eras).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(conn.server().era(), Era::Legacy);
    assert_eq!(conn.server().transport, HttpTransport::Sse);
    let again = connect(fx.url.as_str(), HttpTransport::Auto, &eras).await;
    assert_eq!(again.server().transport, HttpTransport::Sse);
    assert_eq!(eras.probes(), 1);
    let r = again
        .request(
            "tools/call",
            Some(json!({"name": "test_simple_text", "arguments": {}})),
        )
        .await
        .unwrap();
    assert_eq!(
        r["content"][0]["text"],
        "This is a simple text response for testing."
    );
}

#[tokio::test]
#[ignore = "needs the Python fixture (REFLOW_FIXTURE_PYTHON, REFLOW_FIXTURE_SERVER): run tests/interop/setup, then cargo test -- --include-ignored as .ci/run does"]
async fn target_test_and_probe_print_the_era() {
    let legacy = UpstreamServer::start(UpstreamConfig::tools("r", ["echo"])).await;
    let db = crate::support::test_db().await;
    let cli = crate::support::cli::Target::of(&db);
    cli.run(&["target", "add", "old", "--url", &legacy.url])
        .await
        .ok();
    let r = cli.run(&["--json", "target", "test", "old"]).await.json();
    assert_eq!(r["era"], "legacy", "{r}");
    assert_eq!(r["protocol_version"], "2025-11-25");
    let Some(fx) = PyFixture::start("streamable-http").await else {
        return;
    };
    cli.run(&["target", "add", "new", "--url", fx.url.as_str()])
        .await
        .ok();
    let r = cli.run(&["--json", "target", "test", "new"]).await.json();
    assert_eq!(r["era"], "modern", "{r}");
    assert_eq!(r["protocol_version"], "2026-07-28");
    assert!(r["counts"]["tools"].as_u64().unwrap() > 20, "{r}");
    let out = cli.run(&["target", "test", "new"]).await;
    out.ok();
    assert!(
        out.stdout.contains("modern, protocol 2026-07-28"),
        "{}",
        out.describe()
    );
    let r = cli
        .run(&[
            "--json",
            "probe",
            fx.url.as_str(),
            "--call",
            "test_simple_text",
        ])
        .await
        .json();
    assert_eq!(r["era"], "modern", "{r}");
    assert_eq!(r["calls"][0]["ok"], true, "{r}");
}
