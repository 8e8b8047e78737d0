//! Faults and abuse at the edges, connection level: duplicate `Host` headers, slow and idle
//! connections cut off by the header deadline, one address's connection cap, the per-user
//! session cap, and ending a session while the store is slow. Refused requests are in
//! `refusals`, faulty upstreams in `upstreams`.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::gw::Gw;
use crate::support::mcp_client::McpClient;
use crate::support::server::TestServerOptions;

mod refusals;
mod upstreams;

#[tokio::test]
async fn two_host_headers_are_a_bad_request() {
    let gw = Gw::start().await;
    let mut tcp = tokio::net::TcpStream::connect(gw.server.addr)
        .await
        .unwrap();
    let request = format!(
        "GET /api/auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example.com\r\n\
         Authorization: Bearer {}\r\nConnection: close\r\n\r\n",
        gw.admin
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("more than one Host header"), "{answer}");
}

/// Reads until the server closes the connection; None if it is still open after `wait`.
async fn closed_within(
    stream: &mut tokio::net::TcpStream,
    wait: std::time::Duration,
) -> Option<()> {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_one_address_cannot_take_every_connection() {
    use std::time::{Duration, Instant};
    let gw = Gw::start_with(TestServerOptions {
        connection_limits: Some((Duration::from_secs(1), 4)),
        ..TestServerOptions::default()
    })
    .await;
    let addr = gw.server.addr;
    // Four slowloris clients: headers trickle in and never end.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fifth connection from the same address is closed at once.
    let mut fifth = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert!(
        closed_within(&mut fifth, Duration::from_millis(500))
            .await
            .is_some(),
        "the fifth connection from one address was served"
    );
    // The slow ones are closed by the header deadline (1 s), not held for ever.
    let started = Instant::now();
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(3)).await.is_some(),
            "a client trickling headers kept its connection"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    // Their slots are free again: a normal request is served.
    let (status, _) = gw.server.get("/health", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_user_over_the_session_cap_loses_their_least_recently_used_session() {
    let gw = Gw::start_with(TestServerOptions {
        sessions_per_user: Some(3),
        ..TestServerOptions::default()
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = McpClient::new(&gw.server, &gw.admin);
        c.initialize().await;
        clients.push(c);
    }
    // The first session is used again: the second is now the least recently used.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    clients[0].result("ping", json!({})).await;
    clients[2].result("ping", json!({})).await;
    let mut fourth = McpClient::new(&gw.server, &gw.admin);
    fourth.initialize().await;
    let (status, body) = clients[1]
        .raw_post(
            json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}).to_string(),
            &[],
        )
        .await;
    assert_eq!(status, 404, "the least recently used session ended: {body}");
    for c in [&clients[0], &clients[2], &fourth] {
        c.result("ping", json!({})).await;
    }
    // Another user is not affected by this one's sessions.
    let (other, _) = gw
        .server
        .register("other@example.com", crate::support::gw::PW)
        .await;
    let mut theirs = McpClient::new(&gw.server, &other);
    theirs.initialize().await;
    theirs.result("ping", json!({})).await;
    clients[0].result("ping", json!({})).await;
}

/// A session ends in memory at once, its end reaches the store later: a request in between
/// must not resume it from the store as live (the per-user cap's eviction and DELETE share
/// this path). The store's write is held back here, as a busy database would.
#[tokio::test]
async fn a_session_being_ended_is_not_resumed_from_the_store_meanwhile() {
    use std::time::{Duration, Instant};
    let gw = Gw::start().await;
    let mut client = McpClient::new(&gw.server, &gw.admin);
    client.initialize().await;
    client.result("ping", json!({})).await;
    let id = client.session.clone().expect("a legacy session");
    let hold = crate::support::db::SessionWriteHold::take(&gw.server.db, &id).await;
    let mut deleter = McpClient::new(&gw.server, &gw.admin);
    deleter.session = Some(id);
    let delete = tokio::spawn(async move { deleter.delete().await });
    let ping = || async {
        client
            .raw_post(
                json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}).to_string(),
                &[],
            )
            .await
    };
    // Served until the DELETE arrives, refused from then on (well before the database's own
    // busy timeout, 10 s, could end the hold).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = ping().await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "a session being ended was still served (resumed from the store): {body}"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        !delete.is_finished(),
        "the DELETE waits for the store, or the test proved nothing"
    );
    hold.release().await;
    assert!(
        (200..300).contains(&delete.await.unwrap()),
        "the DELETE succeeded once the store took the end"
    );
    let (status, body) = ping().await;
    assert_eq!(status, 404, "an ended session stays ended: {body}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    use std::time::{Duration, Instant};
    let gw = Gw::start_with(TestServerOptions {
        connection_limits: Some((Duration::from_secs(1), 4)),
        ..TestServerOptions::default()
    })
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.server.addr)
        .await
        .unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "served first"
    );
    // Now idle, kept alive: closed by the deadline, not held for ever.
    let idle = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "an idle keep-alive connection was held"
    );
    eprintln!(
        "idle keep-alive connection closed after {:?}",
        idle.elapsed()
    );
    assert!(idle.elapsed() >= Duration::from_millis(900));
}
