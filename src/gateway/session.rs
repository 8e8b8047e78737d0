//! Downstream sessions of the legacy era: who owns them, the client's declared capabilities,
//! and their SSE streams kept replayable so a client can resume with `Last-Event-ID`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::auth::Principal;
use crate::domain::TargetId;
use crate::mcp::modern::ParamHeaders;

use super::upstreams::UpstreamHandle;

/// How the client talks to us: Streamable HTTP (`/mcp`) or the legacy HTTP+SSE pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionTransport {
    StreamableHttp,
    LegacySse,
}

/// The standalone stream (GET /mcp, or the legacy SSE stream) has stream id 0.
pub const STANDALONE: u64 = 0;
/// Events kept per stream for resumption.
const REPLAY_EVENTS: usize = 512;
/// Finished request streams kept for resumption.
const REPLAY_STREAMS: usize = 64;

/// A stream event: its sequence number and the message as JSON text, serialized once when
/// pushed (replays and live delivery share it).
pub type Event = (u64, Arc<str>);

/// One SSE stream's history and its live listener, if connected.
#[derive(Default)]
struct StreamBuf {
    next_seq: u64,
    events: VecDeque<Event>,
    live: Option<mpsc::UnboundedSender<Event>>,
    /// The last event handed to a live listener; a fresh listener starts after it.
    delivered: u64,
    done: bool,
}

pub struct Session {
    pub id: String,
    pub principal: Principal,
    pub transport: SessionTransport,
    pub protocol_version: Mutex<String>,
    pub client_capabilities: Mutex<Value>,
    pub client_info: Mutex<Value>,
    last_seen: AtomicI64,
    next_stream: AtomicU64,
    next_client_request: AtomicU64,
    streams: Mutex<HashMap<u64, StreamBuf>>,
    finished: Mutex<VecDeque<u64>>,
    /// Requests we sent to the client (sampling, elicitation, roots) awaiting its answer.
    pub(crate) pending_client: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Downstream request id (as JSON text) → the upstream and the id it got there.
    pub(crate) in_flight: Mutex<HashMap<String, (Arc<UpstreamHandle>, Value)>>,
    /// (target, original URI) this session subscribed to.
    pub(crate) subscriptions: Mutex<HashSet<(TargetId, String)>>,
    /// Per-session upstream connections of stateful targets.
    pub(crate) upstreams: tokio::sync::Mutex<HashMap<TargetId, Arc<UpstreamHandle>>>,
    ended: std::sync::atomic::AtomicBool,
    /// A 2026-07-28 request's context: never registered, never persisted, gone with its
    /// request (or its parked `input_required` round).
    pub modern: bool,
    /// Answers a modern client gave in `inputResponses` (method, result), handed to the
    /// upstream's matching server→client requests when a retry re-issues the call.
    pub(crate) prefilled: Mutex<Vec<(String, Value)>>,
    /// A modern request's `Mcp-Param-*` headers, checked once its tool is located.
    pub(crate) param_headers: ParamHeaders,
    /// What the client set with `logging/setLevel`; log messages below it are not relayed to it
    /// (upstream connections may be shared, so the gateway filters per caller).
    pub(crate) log_level: Mutex<Option<String>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a session is bound to besides the user: role and groups. A change recycles the session.
pub fn principal_hash(p: &Principal) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(p.role.as_str().as_bytes());
    for g in &p.groups {
        h.update(b"\0");
        h.update(g.as_str().as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// Milliseconds since the epoch: seconds were too coarse to tell which of a busy user's
/// sessions was used last (every one touched within the same second tied).
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Session {
    /// Whether a log message at `level` is for this session's client.
    pub fn wants_log(&self, level: Option<&str>) -> bool {
        crate::mcp::modern::log_at_least(self.log_level.lock().unwrap().as_deref(), level)
    }

    pub fn new(principal: Principal, transport: SessionTransport) -> Self {
        Self::with_id(
            hex::encode(crate::crypto::random_bytes::<16>()),
            principal,
            transport,
        )
    }

    /// A session under a known id: restored from the store on another replica or after restart.
    pub fn with_id(id: String, principal: Principal, transport: SessionTransport) -> Self {
        let mut streams = HashMap::new();
        streams.insert(STANDALONE, StreamBuf::default());
        Self {
            id,
            principal,
            transport,
            protocol_version: Mutex::new(crate::mcp::LATEST_LEGACY_VERSION.to_string()),
            client_capabilities: Mutex::new(Value::Object(Default::default())),
            client_info: Mutex::new(Value::Null),
            last_seen: AtomicI64::new(now_ms()),
            next_stream: AtomicU64::new(1),
            next_client_request: AtomicU64::new(1),
            streams: Mutex::new(streams),
            finished: Mutex::new(VecDeque::new()),
            pending_client: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
            upstreams: tokio::sync::Mutex::new(HashMap::new()),
            ended: std::sync::atomic::AtomicBool::new(false),
            modern: false,
            prefilled: Mutex::new(Vec::new()),
            param_headers: ParamHeaders::default(),
            log_level: Mutex::new(None),
        }
    }

    /// The context of one 2026-07-28 request: the caller and the capabilities its `_meta`
    /// declared. It uses the shared upstream pool, so nothing outlives the request.
    pub fn modern(
        principal: Principal,
        protocol_version: &str,
        capabilities: Value,
        param_headers: ParamHeaders,
    ) -> Self {
        let mut s = Self::new(principal, SessionTransport::StreamableHttp);
        s.modern = true;
        s.param_headers = param_headers;
        *s.protocol_version.get_mut().unwrap() = protocol_version.to_string();
        *s.client_capabilities.get_mut().unwrap() = capabilities;
        s
    }

    /// Takes the first prefilled answer for a server→client request of `method`.
    pub(crate) fn take_prefilled(&self, method: &str) -> Option<Value> {
        let mut answers = self.prefilled.lock().unwrap();
        let at = answers.iter().position(|(m, _)| m == method)?;
        Some(answers.remove(at).1)
    }

    pub fn touch(&self) {
        self.last_seen.store(now_ms(), Ordering::Relaxed);
    }

    pub fn idle_secs(&self) -> i64 {
        (now_ms() - self.last_seen.load(Ordering::Relaxed)) / 1000
    }

    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    /// Marks the session ended and closes its streams; upstreams are closed by the registry.
    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
        let mut streams = self.streams.lock().unwrap();
        for buf in streams.values_mut() {
            buf.live = None;
            buf.done = true;
        }
        self.pending_client.lock().unwrap().clear();
    }

    pub fn client_supports(&self, capability: &str) -> bool {
        self.client_capabilities
            .lock()
            .unwrap()
            .get(capability)
            .is_some_and(|v| !v.is_null())
    }

    /// Opens a new request stream (a POST answered with SSE) and returns its id.
    pub fn open_stream(&self) -> u64 {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.streams
            .lock()
            .unwrap()
            .insert(id, StreamBuf::default());
        id
    }

    /// Appends a message to a stream, delivering it live if a listener is attached.
    /// Returns the event sequence number.
    pub fn push(&self, stream: u64, message: Value) -> u64 {
        self.push_text(stream, message.to_string().into())
    }

    /// `push` for a message already serialized.
    pub fn push_text(&self, stream: u64, message: Arc<str>) -> u64 {
        let mut streams = self.streams.lock().unwrap();
        let buf = streams.entry(stream).or_default();
        buf.next_seq += 1;
        let seq = buf.next_seq;
        if buf.events.len() == REPLAY_EVENTS {
            buf.events.pop_front();
        }
        buf.events.push_back((seq, message.clone()));
        if let Some(live) = &buf.live {
            if live.send((seq, message)).is_ok() {
                buf.delivered = seq;
            } else {
                buf.live = None;
            }
        }
        seq
    }

    /// Ends the live listener of `stream` (its HTTP response) while the stream keeps recording,
    /// so a client that reconnects with `Last-Event-ID` gets what it missed.
    pub fn detach(&self, stream: u64) {
        if let Some(buf) = self.streams.lock().unwrap().get_mut(&stream) {
            buf.live = None;
        }
    }

    /// Marks a request stream complete: its listener ends after the last event.
    pub fn finish_stream(&self, stream: u64) {
        {
            let mut streams = self.streams.lock().unwrap();
            if let Some(buf) = streams.get_mut(&stream) {
                buf.done = true;
                buf.live = None;
            }
        }
        let mut finished = self.finished.lock().unwrap();
        finished.push_back(stream);
        if finished.len() > REPLAY_STREAMS
            && let Some(old) = finished.pop_front()
        {
            self.streams.lock().unwrap().remove(&old);
        }
    }

    /// Attaches a listener to `stream`, replaying events after `after_seq` (None: after the
    /// last one delivered, so nothing queued while no one listened is lost). Returns None for an
    /// unknown stream. A finished stream replays and then ends. A new listener replaces an older
    /// one (one GET stream per session).
    pub fn attach(
        &self,
        stream: u64,
        after_seq: Option<u64>,
    ) -> Option<mpsc::UnboundedReceiver<Event>> {
        let mut streams = self.streams.lock().unwrap();
        let buf = streams.get_mut(&stream)?;
        let after_seq = after_seq.unwrap_or(buf.delivered);
        let (tx, rx) = mpsc::unbounded_channel();
        for (seq, msg) in &buf.events {
            if *seq > after_seq && tx.send((*seq, msg.clone())).is_ok() {
                buf.delivered = buf.delivered.max(*seq);
            }
        }
        if !buf.done {
            buf.live = Some(tx);
        }
        Some(rx)
    }

    /// True when a listener is attached to the standalone stream.
    pub fn standalone_connected(&self) -> bool {
        self.streams
            .lock()
            .unwrap()
            .get(&STANDALONE)
            .is_some_and(|b| b.live.as_ref().is_some_and(|l| !l.is_closed()))
    }

    /// A fresh id for a request the gateway sends to the client.
    pub fn next_client_request_id(&self) -> String {
        format!(
            "reflow-{}",
            self.next_client_request.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Parses an SSE event id of ours, `"{stream}.{seq}"`.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (stream, seq) = id.split_once('.')?;
    Some((stream.parse().ok()?, seq.parse().ok()?))
}

pub fn event_id(stream: u64, seq: u64) -> String {
    format!("{stream}.{seq}")
}

/// All live sessions of this process.
#[derive(Default)]
pub struct SessionRegistry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl SessionRegistry {
    pub fn insert(&self, session: Arc<Session>) {
        self.sessions
            .lock()
            .unwrap()
            .insert(session.id.clone(), session);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().unwrap().get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().unwrap().remove(id)
    }

    /// Removes `session` unless its id now names another session.
    pub fn remove_exact(&self, session: &Arc<Session>) {
        let mut sessions = self.sessions.lock().unwrap();
        if sessions
            .get(&session.id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(&session.id);
        }
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.lock().unwrap().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }

    /// The live sessions of one user.
    pub fn of_user(&self, user: crate::domain::UserId) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.principal.user_id == user && !s.is_ended())
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `n` sessions idle longest (to the millisecond), most idle first. Each last use is read
/// once, before sorting: other requests touch these sessions meanwhile, and a sort whose keys
/// change under it breaks its total order, which Rust's sort may answer with a panic (one that
/// took down a client's connection in the soak).
pub(crate) fn least_recently_used(mut sessions: Vec<Arc<Session>>, n: usize) -> Vec<Arc<Session>> {
    sessions.sort_by_cached_key(|s| s.last_seen.load(Ordering::Relaxed));
    sessions.truncate(n);
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_survives_sessions_touched_while_it_sorts() {
        let sessions: Vec<Arc<Session>> = (0..100).map(|_| Arc::new(session())).collect();
        for (i, s) in sessions.iter().enumerate() {
            s.last_seen.store(1_000 + i as i64, Ordering::Relaxed);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Other requests, touching the same sessions at random times.
        let toucher = {
            let (sessions, stop) = (sessions.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let s = &sessions[(x % 100) as usize];
                    s.last_seen
                        .store(1_000 + (x >> 8) as i64 % 200, Ordering::Relaxed);
                }
            })
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..3_000 {
                let lru = least_recently_used(sessions.clone(), 3);
                assert_eq!(lru.len(), 3);
            }
        }));
        stop.store(true, Ordering::Relaxed);
        toucher.join().unwrap();
        assert!(outcome.is_ok(), "choosing sessions to end panicked");

        // With nobody touching them, used a millisecond apart within the last second (a busy
        // user's sessions): the three least recently used, oldest first, whatever the order
        // they are listed in. Whole seconds made them all tie.
        let base = now_ms() - 500;
        for (i, s) in sessions.iter().enumerate() {
            s.last_seen.store(base + i as i64, Ordering::Relaxed);
        }
        let listed: Vec<Arc<Session>> = sessions.iter().rev().cloned().collect();
        let lru = least_recently_used(listed, 3);
        let ids: Vec<&str> = lru.iter().map(|s| s.id.as_str()).collect();
        let want: Vec<&str> = sessions[..3].iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, want);
    }

    fn session() -> Session {
        Session::new(Principal::test_admin(), SessionTransport::StreamableHttp)
    }

    #[test]
    fn streams_replay_after_a_seq_and_continue_live() {
        let s = session();
        let id = s.open_stream();
        s.push(id, serde_json::json!(1));
        s.push(id, serde_json::json!(2));
        let mut rx = s.attach(id, Some(1)).unwrap();
        assert_eq!(rx.try_recv().unwrap(), (2, "2".into()));
        s.push(id, serde_json::json!(3));
        assert_eq!(rx.try_recv().unwrap().0, 3);
        s.finish_stream(id);
        assert!(rx.try_recv().is_err());
        let mut again = s.attach(id, Some(0)).unwrap();
        assert_eq!(
            again.try_recv().unwrap().0,
            1,
            "a finished stream still replays"
        );
        assert!(s.attach(999, None).is_none());
        s.push(STANDALONE, serde_json::json!("queued"));
        let mut fresh = s.attach(STANDALONE, None).unwrap();
        assert_eq!(
            &*fresh.try_recv().unwrap().1,
            "\"queued\"",
            "queued while nobody listened"
        );
        s.push(STANDALONE, serde_json::json!("live"));
        assert_eq!(&*fresh.try_recv().unwrap().1, "\"live\"");
        let mut again = s.attach(STANDALONE, None).unwrap();
        assert!(
            again.try_recv().is_err(),
            "delivered events are not repeated to a fresh listener"
        );
        assert_eq!(parse_event_id(&event_id(7, 9)), Some((7, 9)));
        assert_eq!(parse_event_id("x.1"), None);
    }
}
