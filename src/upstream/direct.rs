//! Plain-HTTP/1.1 upstream POSTs driven by the request's own task: the connection is polled by
//! whoever waits for its answer (the head, then the body), not by a connection task of its own,
//! so a call costs no task wake-up or thread hop on the way to the upstream and back. The 2026
//! era's POSTs use it (upstream/modern.rs), for `http://` URLs without credentials in them and
//! with no proxy in the environment; reqwest serves everything else (TLS, proxies, GET streams,
//! and the legacy era, whose log messages on the GET stream are matched to a request in flight
//! by their timing, which a faster POST would change).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use reqwest::header::{HOST, HeaderMap, HeaderValue};
use url::{Position, Url};

use super::UpstreamError;

/// As long as reqwest's pool keeps an idle connection (`pool_idle_timeout` in gateway/mod.rs).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per upstream; more are closed as they come back.
const MAX_IDLE: usize = 64;
/// The environment variables reqwest reads a proxy from: with one set, reqwest keeps the call.
const PROXY_VARS: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    io: http1::Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>,
    /// The connection future completed: it must not be polled again.
    ended: bool,
}

impl Conn {
    /// Moves the connection's I/O along; false once the connection has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.ended && Pin::new(&mut self.io).poll(cx).is_ready() {
            self.ended = true;
        }
        !self.ended
    }

    /// Ready for another request right now (an idle keep-alive connection the server kept).
    fn reusable(&mut self) -> bool {
        std::future::poll_fn(|cx| {
            if !self.drive(cx) {
                return Poll::Ready(false);
            }
            self.send.poll_ready(cx).map(|r| r.is_ok())
        })
        .now_or_never()
        .unwrap_or(false)
    }
}

/// The keep-alive connections to one upstream URL.
pub struct DirectPool {
    host: String,
    port: u16,
    host_header: HeaderValue,
    target: hyper::Uri,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

impl DirectPool {
    /// A pool for `url`, or None when reqwest must make the call (not plain HTTP, credentials
    /// in the URL, or a proxy configured in the environment).
    pub fn for_url(url: &Url) -> Option<Arc<Self>> {
        let proxied = PROXY_VARS
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        if proxied {
            return None;
        }
        Self::plain(url)
    }

    fn plain(url: &Url) -> Option<Arc<Self>> {
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = url.port_or_known_default()?;
        // Host and target as the URL spells them: `host[:port]`, and path with query.
        let authority = &url[Position::BeforeHost..Position::AfterPort];
        let target = &url[Position::BeforePath..Position::AfterQuery];
        Some(Arc::new(Self {
            host: host.to_string(),
            port,
            host_header: HeaderValue::from_str(authority).ok()?,
            target: target.parse().ok()?,
            idle: Mutex::new(Vec::new()),
        }))
    }

    /// POSTs `body` with `headers` and returns the response once its head arrived; reading
    /// its body drives the connection, which returns to the pool when the body has ended.
    pub async fn post(
        self: &Arc<Self>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, DirectError> {
        let mut req = hyper::Request::post(self.target.clone())
            .body(Full::new(body))
            .expect("a POST with a parsed URI is a valid request");
        *req.headers_mut() = headers;
        req.headers_mut().insert(HOST, self.host_header.clone());
        let (conn, resp) = match self.checkout() {
            Some(conn) => match send(conn, req).await {
                Ok(done) => done,
                // The server closed the idle connection as we took it: the request was not
                // sent, so sending it on a new connection cannot repeat it.
                Err(Failed {
                    unsent: Some(req), ..
                }) => send(self.connect().await?, req).await?,
                Err(failed) => return Err(failed.into()),
            },
            None => send(self.connect().await?, req).await?,
        };
        let (parts, incoming) = resp.into_parts();
        // An empty answer (a 202 to a notification) frees the connection now: it may never
        // be read.
        let conn = if incoming.is_end_stream() {
            self.checkin(conn);
            None
        } else {
            Some(conn)
        };
        let body = DrivenBody {
            state: Mutex::new(BodyState {
                incoming,
                conn,
                pool: Arc::downgrade(self),
            }),
        };
        Ok(reqwest::Response::from(hyper::Response::from_parts(
            parts,
            reqwest::Body::wrap(body),
        )))
    }

    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((mut conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT && conn.reusable() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, mut conn: Conn) {
        if !conn.reusable() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Idle connections are not polled, so one the server closed waits here until it is
        // taken or too old: the old ones go now.
        idle.retain(|(_, since)| now.duration_since(*since) < IDLE_TIMEOUT);
        if idle.len() < MAX_IDLE {
            idle.push((conn, now));
        }
    }

    async fn connect(&self) -> Result<Conn, DirectError> {
        let place = || format!("{}:{}", self.host, self.port);
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| DirectError::Connect(place(), e))?;
        // As reqwest does: small JSON-RPC messages must not wait for Nagle.
        tcp.set_nodelay(true)
            .map_err(|e| DirectError::Connect(place(), e))?;
        let (send, io) = http1::handshake(TokioIo::new(tcp)).await?;
        Ok(Conn {
            send,
            io,
            ended: false,
        })
    }
}

/// POSTs a JSON-RPC message to `url`: through `direct` when the URL has a pool, else reqwest.
/// The future borrows nothing, so callers can put a timeout around it or keep it.
pub(super) fn post_message(
    direct: Option<&Arc<DirectPool>>,
    client: &reqwest::Client,
    url: &Url,
    headers: HeaderMap,
    body: Bytes,
) -> impl Future<Output = Result<reqwest::Response, UpstreamError>> + Send + use<> {
    enum Via {
        Direct(Arc<DirectPool>, HeaderMap, Bytes),
        Reqwest(reqwest::RequestBuilder),
    }
    let via = match direct {
        Some(pool) => Via::Direct(pool.clone(), headers, body),
        None => Via::Reqwest(client.post(url.clone()).headers(headers).body(body)),
    };
    async move {
        match via {
            Via::Direct(pool, headers, body) => pool
                .post(headers, body)
                .await
                .map_err(|e| UpstreamError::Connect(e.to_string())),
            Via::Reqwest(req) => req.send().await.map_err(super::send_error),
        }
    }
}

/// A request that failed, with the request back when the connection never sent it.
struct Failed {
    error: hyper::Error,
    unsent: Option<hyper::Request<Full<Bytes>>>,
}

impl From<Failed> for DirectError {
    fn from(f: Failed) -> Self {
        DirectError::Http(f.error)
    }
}

/// Sends `req` on `conn`, driving the connection until the response head has arrived.
async fn send(
    mut conn: Conn,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(Conn, hyper::Response<Incoming>), Failed> {
    let mut pending = std::pin::pin!(conn.send.try_send_request(req));
    let result = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = pending.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        // A connection that ended fails the request through `pending`, polled again next time.
        if !conn.drive(cx) {
            return pending.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await;
    match result {
        Ok(resp) => Ok((conn, resp)),
        Err(mut e) => Err(Failed {
            unsent: e.take_message(),
            error: e.into_error(),
        }),
    }
}

/// A response body that drives its connection while it is read, and hands the connection back
/// to the pool once it has ended. Dropped unfinished, it closes the connection (which is how an
/// abandoned or cancelled call reaches the upstream).
struct DrivenBody {
    /// A lock only to be `Sync` (reqwest's body requires it); `poll_frame` has `&mut`.
    state: Mutex<BodyState>,
}

struct BodyState {
    incoming: Incoming,
    conn: Option<Conn>,
    pool: Weak<DirectPool>,
}

impl Body for DrivenBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let state = self
            .get_mut()
            .state
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = state.conn.as_mut() {
            conn.drive(cx);
        }
        let frame = Pin::new(&mut state.incoming).poll_frame(cx);
        // At the end (seen with the last frame when the length is known): the connection is
        // free for the next request.
        let ended = match &frame {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => state.incoming.is_end_stream(),
            _ => false,
        };
        if ended
            && let Some(conn) = state.conn.take()
            && let Some(pool) = state.pool.upgrade()
        {
            pool.checkin(conn);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.incoming.is_end_stream())
            .unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        self.state
            .lock()
            .map(|s| s.incoming.size_hint())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Either};
    use hyper::service::service_fn;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::mpsc;

    /// How the test server answers.
    #[derive(Clone, Copy)]
    enum Mode {
        /// `{"n":<request number>}`, keep-alive.
        KeepAlive,
        /// The same with `Connection: close`.
        Close,
        /// Headers, then a body that never ends.
        Endless,
    }

    /// A real HTTP/1.1 server (hyper's) on 127.0.0.1:0: counts connections and reports each
    /// connection's end on the returned channel.
    async fn server(mode: Mode) -> (Url, Arc<AtomicUsize>, mpsc::UnboundedReceiver<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/mcp?x=1",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let (conns, served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (ended_tx, ended) = mpsc::unbounded_channel();
        let counted = conns.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let (served, ended_tx) = (served.clone(), ended_tx.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let served = served.clone();
                        async move {
                            assert_eq!(req.uri().path_and_query().unwrap().as_str(), "/mcp?x=1");
                            assert!(req.headers().get(HOST).is_some(), "the Host header is set");
                            let sent = req.into_body().collect().await.unwrap().to_bytes();
                            assert_eq!(&sent[..], b"{\"q\":1}");
                            let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                            let mut resp = hyper::Response::builder()
                                .header("content-type", "application/json");
                            if matches!(mode, Mode::Close) {
                                resp = resp.header("connection", "close");
                            }
                            let body = match mode {
                                Mode::Endless => Either::Right(http_body_util::StreamBody::new(
                                    futures_util::stream::pending::<Result<Frame<Bytes>, Infallible>>(
                                    ),
                                )),
                                _ => Either::Left(Full::new(Bytes::from(format!("{{\"n\":{n}}}")))),
                            };
                            Ok::<_, Infallible>(resp.body(body).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                    let _ = ended_tx.send(());
                });
            }
        });
        (url, conns, ended)
    }

    async fn post_text(pool: &Arc<DirectPool>) -> String {
        let resp = pool
            .post(HeaderMap::new(), Bytes::from_static(b"{\"q\":1}"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    #[tokio::test]
    async fn sequential_posts_share_one_keep_alive_connection() {
        let (url, conns, _) = server(Mode::KeepAlive).await;
        let pool = DirectPool::plain(&url).unwrap();
        for n in 1..=20 {
            assert_eq!(post_text(&pool).await, format!("{{\"n\":{n}}}"));
        }
        assert_eq!(conns.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_server_that_closes_each_connection_gets_a_new_one_per_post() {
        let (url, conns, _) = server(Mode::Close).await;
        let pool = DirectPool::plain(&url).unwrap();
        for n in 1..=5 {
            assert_eq!(post_text(&pool).await, format!("{{\"n\":{n}}}"));
        }
        assert_eq!(conns.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_closes_its_connection() {
        let (url, conns, mut ended) = server(Mode::Endless).await;
        let pool = DirectPool::plain(&url).unwrap();
        let resp = pool
            .post(HeaderMap::new(), Bytes::from_static(b"{\"q\":1}"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        drop(resp);
        // The server sees its connection end: the abandoned call reached it.
        ended.recv().await.unwrap();
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        assert!(pool.idle.lock().unwrap().is_empty(), "not kept for reuse");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let pool = DirectPool::plain(&Url::parse(&format!("http://{addr}/mcp")).unwrap()).unwrap();
        let err = pool
            .post(HeaderMap::new(), Bytes::new())
            .await
            .expect_err("nothing listens there");
        assert!(matches!(err, DirectError::Connect(..)), "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn only_plain_http_without_credentials_is_taken() {
        for url in ["https://example.com/mcp", "http://user:pw@example.com/mcp"] {
            assert!(
                DirectPool::plain(&Url::parse(url).unwrap()).is_none(),
                "{url}"
            );
        }
        let pool = DirectPool::plain(&Url::parse("http://[::1]:8080/a/b?c=d").unwrap()).unwrap();
        assert_eq!((pool.host.as_str(), pool.port), ("::1", 8080));
        assert_eq!(pool.host_header, "[::1]:8080");
        assert_eq!(pool.target.to_string(), "/a/b?c=d");
    }
}
