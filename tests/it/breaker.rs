//! The circuit breaker: an upstream that accepts connections and never answers costs its callers
//! one timeout, not one each; meanwhile lists leave it out at once and calls to it fail at once
//! with a clear error; when it answers again, a probe closes the breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Request;
use serde_json::json;

use crate::support::gw::{Gw, all_tool_names, eventually};
use crate::support::mcp_client::ModernClient;
use crate::support::upstream::{UpstreamConfig, UpstreamServer};

/// A front for `upstream` that hangs every request (accepts, never answers) while `hang` is set,
/// and otherwise passes requests and streamed answers through.
async fn front(upstream: String, hang: Arc<AtomicBool>) -> String {
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (client, upstream, hang) = (client.clone(), upstream.clone(), hang.clone());
        async move {
            if hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            crate::support::proxy::pass(&client, &upstream, req).await
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/mcp")
}

async fn metric_line(gw: &Gw, name: &str) -> Option<String> {
    crate::support::requests::metric_line(&gw.server, &gw.admin, name).await
}

#[tokio::test]
async fn a_hung_upstream_is_failed_fast_then_a_probe_closes_its_breaker() {
    let gw = Gw::start().await;
    let good = UpstreamServer::start(UpstreamConfig::tools("good", ["echo"])).await;
    gw.target_for_everyone(json!({"name": "good", "url": good.url}))
        .await;
    let real = UpstreamServer::start(UpstreamConfig::tools("flaky", ["echo"])).await;
    let hang = Arc::new(AtomicBool::new(true));
    let url = front(real.url.clone(), hang.clone()).await;
    gw.target_for_everyone(json!({"name": "flaky", "url": url, "timeout": 1}))
        .await;
    // The session's start and first list wait for the hung target once (its 1 s timeout), not
    // once each, and leave it out.
    let started = Instant::now();
    let client = gw.admin_client().await;
    assert_eq!(all_tool_names(&client).await, ["good__echo"]);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(1900),
        "{waited:?}"
    );
    // Then nobody waits for it: lists skip it and calls fail at once, saying why.
    let started = Instant::now();
    assert_eq!(all_tool_names(&client).await, ["good__echo"]);
    let failed = client
        .request(
            "tools/call",
            json!({"name": "flaky__echo", "arguments": {}}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("upstream flaky is unavailable"),
        "{failed}"
    );
    assert_eq!(
        metric_line(&gw, "reflow_upstream_breaker_open")
            .await
            .as_deref(),
        Some("reflow_upstream_breaker_open{target=\"flaky\"} 1")
    );
    // The good target was never affected.
    let ok = client
        .result("tools/call", json!({"name": "good__echo", "arguments": {}}))
        .await;
    assert!(ok.to_string().contains("good"), "{ok}");

    // The upstream recovers: after the backoff one request probes it and closes the breaker.
    hang.store(false, Ordering::SeqCst);
    let names = eventually(Duration::from_secs(10), || async {
        let names = all_tool_names(&client).await;
        (names.len() == 2).then_some(names)
    })
    .await
    .expect("the recovered target is listed again within 10 s");
    assert_eq!(names, ["flaky__echo", "good__echo"]);
    let ok = client
        .result(
            "tools/call",
            json!({"name": "flaky__echo", "arguments": {"x": 1}}),
        )
        .await;
    assert!(ok.to_string().contains("flaky"), "{ok}");
    assert_eq!(metric_line(&gw, "reflow_upstream_breaker_open").await, None);
}

/// Found by the soak: a half-open probe taken by a use that sends no request of its own (a
/// session's start connecting every target, a list from cache) never reported, so every other
/// caller got "a probe is under way" until the probe was overdue (the target's timeout).
#[tokio::test]
async fn a_probe_that_sends_nothing_does_not_hold_the_target_closed() {
    let gw = Gw::start().await;
    let real = UpstreamServer::start(UpstreamConfig::tools("flaky", ["echo"])).await;
    let hang = Arc::new(AtomicBool::new(true));
    let url = front(real.url.clone(), hang.clone()).await;
    // A timeout longer than the test's patience below: a held probe would show.
    gw.target_for_everyone(json!({"name": "flaky", "url": url, "timeout": 8}))
        .await;
    let client = gw.admin_client().await;
    assert!(all_tool_names(&client).await.is_empty(), "hung: left out");
    hang.store(false, Ordering::SeqCst);
    // Each round: a new session starts (connecting every target: the probe, if the backoff
    // is over), then calls at once. Only "next try in" (backoff) may refuse it.
    let started = Instant::now();
    loop {
        let fresh = gw.admin_client().await;
        let res = fresh
            .request(
                "tools/call",
                json!({"name": "flaky__echo", "arguments": {"n": 1}}),
            )
            .await;
        if res.get("result").is_some() {
            assert!(res.to_string().contains("flaky"), "{res}");
            break;
        }
        let message = res["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.contains("a probe is under way"), "{res}");
        assert!(message.contains("next try in"), "{res}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "still refused after {:?}: {res}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric_line(&gw, "reflow_upstream_breaker_open").await, None);
}

/// A 2026-era call's `Mcp-Param-*` check reads the schema from the called tool's own target
/// only: a hung target the call does not name does not hold it (the check used to fetch every
/// visible target's list, waiting out a hung one's timeout).
#[tokio::test]
async fn a_modern_call_does_not_wait_for_a_hung_target_it_does_not_name() {
    let gw = Gw::start().await;
    let good = UpstreamServer::start(UpstreamConfig::tools("good", ["echo"])).await;
    gw.target_for_everyone(json!({"name": "good", "url": good.url}))
        .await;
    let real = UpstreamServer::start(UpstreamConfig::tools("flaky", ["echo"])).await;
    let url = front(real.url.clone(), Arc::new(AtomicBool::new(true))).await;
    gw.target_for_everyone(json!({"name": "flaky", "url": url, "timeout": 30}))
        .await;
    let client = ModernClient::new(&gw.server, &gw.admin);
    let started = Instant::now();
    let ex = client
        .exchange(
            "tools/call",
            json!({"name": "good__echo", "arguments": {"text": "hi"}}),
        )
        .await;
    let waited = started.elapsed();
    assert_eq!(ex.status, 200, "{}", ex.response);
    assert!(ex.response["result"].is_object(), "{}", ex.response);
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
}
