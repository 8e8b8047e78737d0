//! `requestState` of the era bridge: when a legacy upstream asks a modern client for input
//! (sampling, elicitation, roots), the client gets an `input_required` result whose state is
//! sealed here (AES-GCM under a key derived with HKDF from the encryption key) and bound to the
//! principal, the method, a digest of the params, an expiry and a one-time id. The waiting
//! upstream request stays parked in memory under that id until the retry resumes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::auth::Principal;
use crate::crypto::{KeyId, SecretBox};
use crate::mcp::RpcError;

use super::Outgoing;
use super::session::{Session, principal_hash};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// Authenticated with every state: a cursor or any other sealed value never opens as one.
const CONTEXT: &[u8] = b"reflow requestState v1";

/// What a sealed `requestState` says. Short names keep the token small.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// One-time id: the parked request's key and the replay guard's.
    pub sid: String,
    pub uid: String,
    /// Role and groups at the time: a changed principal cannot resume.
    pub ph: String,
    pub m: String,
    /// Digest of the request's salient params (name or URI, and arguments).
    pub d: String,
    /// Expiry, milliseconds since the epoch.
    pub exp: i64,
    /// `inputRequests` key → the server→client method it stands for.
    pub keys: BTreeMap<String, String>,
    /// The round came from a 2026-07-28 upstream's own `input_required`: the retry goes to it
    /// with the client's `inputResponses`, and the upstream answers its own questions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pt: bool,
    /// That upstream's own `requestState`, handed back to it on the retry (never to the client
    /// in the clear: it is sealed inside ours, bound to the principal like every state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<String>,
}

/// Why a `requestState` is refused; each names the problem for the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("requestState is malformed or was tampered with")]
    Tampered,
    #[error("requestState was issued to another principal")]
    Foreign,
    #[error("requestState belongs to a different request (method or params changed)")]
    Mismatch,
    #[error("requestState has expired; send the request again without it")]
    Expired,
    #[error("requestState was already used")]
    Replayed,
    #[error("inputResponses has no answer for input request {0:?}")]
    MissingResponse(String),
}

impl StateError {
    /// The `outcome` label of `reflow_request_state_redemptions_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Tampered => "tampered",
            Self::Foreign => "foreign",
            Self::Mismatch => "mismatch",
            Self::Expired => "expired",
            Self::Replayed => "replayed",
            Self::MissingResponse(_) => "missing_response",
        }
    }

    pub fn to_rpc(&self) -> RpcError {
        RpcError::invalid_params(self.to_string())
            .with_data(json!({ "reason": "invalid_request_state" }))
    }
}

/// An upstream request waiting for a modern client's `inputResponses`.
pub struct Parked {
    pub session: Arc<Session>,
    pub rx: UnboundedReceiver<Outgoing>,
    /// The id the request runs under in the router.
    pub inner_id: Value,
    /// The server→client request ids awaiting answers, by `inputRequests` key.
    pub pending: BTreeMap<String, Value>,
}

pub struct RequestStates {
    sealer: SecretBox,
    key_id: KeyId,
    pub ttl: Duration,
    parked: Mutex<HashMap<String, Parked>>,
    /// Consumed state ids and their expiry (ms), pruned as they expire.
    used: Mutex<HashMap<String, i64>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The salient identity of a request: method, the name or URI, and the arguments (canonical
/// JSON: serde_json's map is ordered).
pub fn digest(method: &str, params: Option<&Value>) -> String {
    let p = params.cloned().unwrap_or(Value::Null);
    let target = p
        .get("name")
        .or_else(|| p.get("uri"))
        .cloned()
        .unwrap_or(Value::Null);
    let args = p.get("arguments").cloned().unwrap_or_else(|| json!({}));
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\0");
    h.update(target.to_string().as_bytes());
    h.update(b"\0");
    h.update(args.to_string().as_bytes());
    B64.encode(&h.finalize()[..16])
}

impl RequestStates {
    pub fn new(encryption_key: &[u8; 32], ttl: Duration) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"reflow"), encryption_key);
        let mut key = [0u8; 32];
        hk.expand(CONTEXT, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let sealer = SecretBox::new(&key);
        let key_id = sealer.current_key_id().clone();
        Self {
            sealer,
            key_id,
            ttl,
            parked: Mutex::new(HashMap::new()),
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Claims for a new round of `principal`'s request.
    pub fn claims(
        &self,
        principal: &Principal,
        method: &str,
        params: Option<&Value>,
        keys: BTreeMap<String, String>,
    ) -> Claims {
        Claims {
            sid: hex::encode(crate::crypto::random_bytes::<16>()),
            uid: principal.user_id.to_string(),
            ph: principal_hash(principal),
            m: method.to_string(),
            d: digest(method, params),
            exp: now_ms() + self.ttl.as_millis() as i64,
            keys,
            pt: false,
            up: None,
        }
    }

    pub fn seal(&self, claims: &Claims) -> String {
        let plain = serde_json::to_vec(claims).expect("claims serialize");
        let (sealed, _) = self.sealer.seal(&plain, CONTEXT);
        B64.encode(sealed)
    }

    fn open(&self, token: &str) -> Result<Claims, StateError> {
        let sealed = B64.decode(token).map_err(|_| StateError::Tampered)?;
        let plain = self
            .sealer
            .open(&sealed, &self.key_id, CONTEXT)
            .map_err(|_| StateError::Tampered)?;
        serde_json::from_slice(&plain).map_err(|_| StateError::Tampered)
    }

    /// Opens and checks a retry's state and consumes it: a second use is a replay.
    pub fn redeem(
        &self,
        token: &str,
        principal: &Principal,
        method: &str,
        params: Option<&Value>,
    ) -> Result<Claims, StateError> {
        let claims = self.open(token)?;
        if claims.uid != principal.user_id.to_string() || claims.ph != principal_hash(principal) {
            return Err(StateError::Foreign);
        }
        if claims.m != method || claims.d != digest(method, params) {
            return Err(StateError::Mismatch);
        }
        let now = now_ms();
        if claims.exp <= now {
            return Err(StateError::Expired);
        }
        let mut used = self.used.lock().unwrap();
        used.retain(|_, exp| *exp > now);
        if used.insert(claims.sid.clone(), claims.exp).is_some() {
            return Err(StateError::Replayed);
        }
        Ok(claims)
    }

    pub fn park(&self, sid: String, parked: Parked) {
        self.parked.lock().unwrap().insert(sid, parked);
    }

    pub fn take(&self, sid: &str) -> Option<Parked> {
        self.parked.lock().unwrap().remove(sid)
    }

    pub fn clear(&self) {
        let parked: Vec<Parked> = self
            .parked
            .lock()
            .unwrap()
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in parked {
            p.session.end();
        }
    }

    pub fn parked_count(&self) -> usize {
        self.parked.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal::test_admin()
    }

    #[test]
    fn states_bind_principal_request_expiry_and_use() {
        let states = RequestStates::new(&[7; 32], Duration::from_secs(60));
        let p = principal();
        let params = json!({"name": "ask", "arguments": {"q": 1}});
        let c = states.claims(&p, "tools/call", Some(&params), BTreeMap::new());
        let token = states.seal(&c);
        assert_eq!(
            states.redeem(&token, &principal(), "tools/call", Some(&params)),
            Err(StateError::Foreign)
        );
        let other = json!({"name": "ask", "arguments": {"q": 2}});
        assert_eq!(
            states.redeem(&token, &p, "tools/call", Some(&other)),
            Err(StateError::Mismatch)
        );
        let mut bytes = B64.decode(&token).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            states.redeem(&B64.encode(bytes), &p, "tools/call", Some(&params)),
            Err(StateError::Tampered)
        );
        assert_eq!(
            states.redeem(&token, &p, "tools/call", Some(&params)),
            Ok(c)
        );
        assert_eq!(
            states.redeem(&token, &p, "tools/call", Some(&params)),
            Err(StateError::Replayed)
        );
        let mut old = states.claims(&p, "tools/call", Some(&params), BTreeMap::new());
        old.exp = now_ms() - 1;
        assert_eq!(
            states.redeem(&states.seal(&old), &p, "tools/call", Some(&params)),
            Err(StateError::Expired)
        );
        let foreign_key = RequestStates::new(&[8; 32], Duration::from_secs(60));
        assert_eq!(
            foreign_key.redeem(&token, &p, "tools/call", Some(&params)),
            Err(StateError::Tampered)
        );
    }
}
