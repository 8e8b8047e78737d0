//! `connect: port_forward`: a listener on 127.0.0.1 whose every connection is carried to the
//! pod's port through the API server's portforward subresource, so the ordinary HTTP client
//! (sessions, SSE streams, keep-alive) reaches a pod from outside the cluster network.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running forward; dropping it closes the listener and every carried connection.
pub struct Forward {
    pub local: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forward {
    pub async fn start(api: Api<Pod>, pod: String, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let (api, pod) = (api.clone(), pod.clone());
                conns.spawn(async move {
                    let mut pf = match api.portforward(&pod, &[port]).await {
                        Ok(pf) => pf,
                        Err(e) => {
                            tracing::warn!(pod = %pod, error = %e, "port-forward to a pod failed");
                            return;
                        }
                    };
                    let Some(mut upstream) = pf.take_stream(port) else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                    drop(upstream);
                    let _ = pf.join().await;
                });
                // Reap finished connections so the set does not grow without bound.
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(Self { local, task })
    }
}
