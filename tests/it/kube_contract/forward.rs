//! `connect: port_forward`, the default outside a cluster. kmock has no portforward
//! subresource, so a front stands in for that one subresource of the API server (a mock, named
//! as such): it answers `GET …/pods/{name}/portforward` as the API server does (WebSocket
//! `v4.channel.k8s.io`, a port frame on the data and error channels, then data on channel 0),
//! carrying the bytes to the pod's IP, and passes every other request through to kmock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Cluster, client_of, options, pod_target, set_env, whoami};
use crate::support::gw::Gw;
use crate::support::kmock::{Kmock, Kubelet, Node};

struct FrontState {
    kmock: String,
    pods: kube::Client,
    http: reqwest::Client,
    forwards: AtomicUsize,
}

struct Front {
    state: Arc<FrontState>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Front {
    async fn start(kmock: &Kmock) -> Self {
        let state = Arc::new(FrontState {
            kmock: kmock.url.clone(),
            pods: kmock.client().await,
            http: reqwest::Client::new(),
            forwards: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/portforward",
                axum::routing::get(portforward),
            )
            .fallback(pass_to_kmock)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let original = std::fs::read_to_string(&kmock.kubeconfig).unwrap();
        std::fs::write(&kubeconfig, original.replace(&kmock.url, &url)).unwrap();
        Self {
            state,
            kubeconfig,
            _dir: dir,
        }
    }

    fn forwards(&self) -> usize {
        self.state.forwards.load(Ordering::SeqCst)
    }
}

async fn portforward(
    State(st): State<Arc<FrontState>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let port: u16 = q["ports"].parse().expect("one port");
    let pod = Api::<Pod>::namespaced(st.pods.clone(), &ns)
        .get(&name)
        .await
        .expect("the forwarded pod exists");
    let ip = pod
        .status
        .and_then(|s| s.pod_ip)
        .expect("the pod has an IP");
    st.forwards.fetch_add(1, Ordering::SeqCst);
    ws.protocols(["v4.channel.k8s.io"])
        .on_upgrade(move |socket| relay(socket, ip, port))
}

/// The API server's side of one forwarded connection.
async fn relay(mut socket: WebSocket, ip: String, port: u16) {
    let [lo, hi] = port.to_le_bytes();
    for channel in [0u8, 1] {
        if socket
            .send(Message::Binary(vec![channel, lo, hi].into()))
            .await
            .is_err()
        {
            return;
        }
    }
    let Ok(tcp) = tokio::net::TcpStream::connect((ip.as_str(), port)).await else {
        let _ = socket
            .send(Message::Binary(b"\x01connection refused".to_vec().into()))
            .await;
        return;
    };
    let (mut rd, mut wr) = tcp.into_split();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if b.len() > 1 && b[0] == 0 && wr.write_all(&b[1..]).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            n = rd.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut out = Vec::with_capacity(n + 1);
                    out.push(0);
                    out.extend_from_slice(&buf[..n]);
                    if socket.send(Message::Binary(out.into())).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn pass_to_kmock(State(st): State<Arc<FrontState>>, req: Request) -> Response {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", st.kmock);
    crate::support::proxy::pass(&st.http, &url, req).await
}

#[tokio::test]
#[ignore = "needs kmock (tests/kube/setup; REFLOW_KMOCK_PYTHON)"]
async fn out_of_a_cluster_calls_reach_the_pod_through_the_api_servers_portforward() {
    let k = Cluster::start().await;
    let _kubelet = Kubelet::start(k.kmock.client().await, Node::Healthy, &["echo"], "slow");
    let front = Front::start(&k.kmock).await;
    // `connect` unset: what a user gets by default out of a cluster (no
    // KUBERNETES_SERVICE_HOST in the test's environment) is port_forward.
    assert!(std::env::var_os("KUBERNETES_SERVICE_HOST").is_none());
    let gw = Gw::start_with(options(&k.kmock, |s| {
        s.kubeconfig = Some(front.kubeconfig.clone());
        s.connect = None;
    }))
    .await;
    let t = pod_target(&gw, "fwd", "shared").await;
    set_env(
        &gw,
        &t,
        "default",
        json!({"API_KEY": "through-the-forward"}),
    )
    .await;
    let client = client_of(&gw, &gw.admin).await;
    let me = whoami(&client, "fwd__echo").await;
    assert_eq!(me["env"]["API_KEY"], "through-the-forward", "{me}");
    let forwards = front.forwards();
    assert!(forwards >= 1, "the call went through the portforward");
    // A second call and a second session reach the same pod through the same forward.
    let again = whoami(&client_of(&gw, &gw.admin).await, "fwd__echo").await;
    assert_eq!(again["pod"], me["pod"]);
    assert_eq!(k.pod_names().await.len(), 1);
}
