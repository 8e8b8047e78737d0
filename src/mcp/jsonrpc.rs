//! JSON-RPC 2.0 envelopes over `serde_json::Value`: classify, build, and error codes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// MCP: a resource that does not exist (or that the caller may not see).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// reflow: an upstream could not be reached or failed.
    pub const UPSTREAM_ERROR: i64 = -32003;
    /// reflow: the request timed out waiting for an upstream.
    pub const REQUEST_TIMEOUT: i64 = -32001;
    /// 2026-07-28: an HTTP header disagrees with the body (or is missing).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability its `_meta` did not declare.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the protocol version is not one the server speaks (`data.supported`).
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_REQUEST, message)
    }
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            codes::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, message)
    }
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("RpcError serializes")
    }
}

/// What a JSON value is, as a JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind<'a> {
    Request {
        id: &'a Value,
        method: &'a str,
    },
    Notification {
        method: &'a str,
    },
    Response {
        id: &'a Value,
    },
    Error {
        id: &'a Value,
    },
    /// Not a valid message; the reason names what is wrong.
    Invalid(String),
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

pub fn classify(v: &Value) -> Kind<'_> {
    let Some(obj) = v.as_object() else {
        return Kind::Invalid(if v.is_array() {
            "batches are not supported: send one JSON-RPC message per request".into()
        } else {
            "a JSON-RPC message must be an object".into()
        });
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Kind::Invalid("\"jsonrpc\" must be \"2.0\"".into());
    }
    let id = obj.get("id");
    match (obj.get("method"), id) {
        (Some(Value::String(method)), Some(id)) if valid_id(id) => Kind::Request { id, method },
        (Some(Value::String(_)), Some(_)) => {
            Kind::Invalid("\"id\" must be a string or an integer".into())
        }
        (Some(Value::String(method)), None) => Kind::Notification { method },
        (Some(_), _) => Kind::Invalid("\"method\" must be a string".into()),
        (None, Some(id)) if obj.contains_key("result") => Kind::Response { id },
        (None, Some(id)) if obj.contains_key("error") => Kind::Error { id },
        (None, Some(_)) => Kind::Invalid("a response needs \"result\" or \"error\"".into()),
        (None, None) => Kind::Invalid("missing \"method\"".into()),
    }
}

/// The map key of a JSON-RPC id: its JSON text, so `1` and `"1"` stay distinct.
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

pub fn request(id: Value, method: &str, params: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), "2.0".into());
    m.insert("id".into(), id);
    m.insert("method".into(), method.into());
    if let Some(p) = params {
        m.insert("params".into(), p);
    }
    Value::Object(m)
}

/// `request(id, method, params)` as bytes, serialized from borrowed parts: the same JSON (same
/// member order) without copying the params of a request that may be sent again.
pub fn request_bytes(id: &Value, method: &str, params: Option<&Value>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Request<'a> {
        jsonrpc: &'static str,
        id: &'a Value,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a Value>,
    }
    let request = Request {
        jsonrpc: "2.0",
        id,
        method,
        params,
    };
    serde_json::to_vec(&request).expect("borrowed JSON values always serialize")
}

pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), "2.0".into());
    m.insert("method".into(), method.into());
    if let Some(p) = params {
        m.insert("params".into(), p);
    }
    Value::Object(m)
}

pub fn response(id: Value, result: Value) -> Value {
    // Not `json!`: it would copy `result` (a whole list, say) by serializing it into a new tree.
    let mut m = Map::new();
    m.insert("jsonrpc".into(), "2.0".into());
    m.insert("id".into(), id);
    m.insert("result".into(), result);
    Value::Object(m)
}

pub fn error_response(id: Value, error: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": error.to_value() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_are_the_request_serialized() {
        let params = serde_json::json!({"name": "echo", "arguments": {"z": 1, "a": [true, null]}});
        for (id, params) in [(Value::from(7), Some(&params)), (Value::from("x"), None)] {
            let built = serde_json::to_vec(&request(id.clone(), "tools/call", params.cloned()));
            assert_eq!(request_bytes(&id, "tools/call", params), built.unwrap());
        }
    }

    #[test]
    fn classifies_messages() {
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
            Kind::Request { method: "ping", .. }
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Kind::Notification { .. }
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","id":"a","result":{}})),
            Kind::Response { .. }
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc":"2.0","id":"a","error":{}})),
            Kind::Error { .. }
        ));
        for bad in [
            json!([]),
            json!(1),
            json!({"jsonrpc":"1.0","id":1,"method":"x"}),
            json!({"jsonrpc":"2.0","id":1}),
            json!({"jsonrpc":"2.0"}),
            json!({"jsonrpc":"2.0","id":null,"method":"x"}),
            json!({"jsonrpc":"2.0","id":1.5,"method":"x"}),
            json!({"jsonrpc":"2.0","id":1,"method":5}),
        ] {
            assert!(matches!(classify(&bad), Kind::Invalid(_)), "{bad}");
        }
    }
}
