//! The 2026-07-28 (stateless) wire: the per-request `_meta` envelope, the header ladder that
//! checks `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` against the body,
//! the methods of the era, and the HTTP status each error code maps to. No I/O.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::{MODERN_VERSION, RpcError, codes, headers};

pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub const CLIENT_INFO_KEY: &str = "io.modelcontextprotocol/clientInfo";
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";
pub const SUBSCRIPTION_ID_KEY: &str = "io.modelcontextprotocol/subscriptionId";
/// The least severe log level a request wants `notifications/message` for (none without it).
pub const LOG_LEVEL_KEY: &str = "io.modelcontextprotocol/logLevel";

/// The tasks extension (SEP-2663): declared under `capabilities.extensions` by both sides.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// Versions served statelessly.
pub const MODERN_VERSIONS: &[&str] = &[MODERN_VERSION];

/// The request methods of 2026-07-28. Everything else (ping, logging/setLevel,
/// resources/subscribe, the 2025-11-25 tasks methods, initialize) is unknown on this path.
/// The tasks extension's methods are served only to requests that declare the extension.
pub const METHODS: &[&str] = &[
    "server/discover",
    "subscriptions/listen",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "completion/complete",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
];

/// Methods of the tasks extension (`tasks/result` and `tasks/list` did not survive into it).
pub fn task_method(method: &str) -> bool {
    matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel")
}

/// Whether client capabilities declare the tasks extension.
pub fn declares_tasks(capabilities: &Value) -> bool {
    capabilities
        .get("extensions")
        .and_then(|e| e.get(TASKS_EXTENSION))
        .is_some_and(|v| !v.is_null())
}

/// Methods of the legacy era that 2026-07-28 removed: 404 before any envelope check.
pub const REMOVED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
    "tasks/result",
    "tasks/list",
];

/// Syslog severities, least severe first.
const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// Whether `level` is one of the eight syslog levels MCP logging uses.
pub fn is_log_level(level: &str) -> bool {
    LOG_LEVELS.contains(&level)
}

/// Whether a `notifications/message` at `level` goes to a legacy session whose client set
/// `min` with `logging/setLevel`: everything before it set one, else that severity or above.
pub fn log_at_least(min: Option<&str>, level: Option<&str>) -> bool {
    min.is_none() || log_wanted(min, level)
}

/// Whether a `notifications/message` at `level` goes to a request that asked for
/// `wanted` (its `_meta` logLevel): never without one, else at that severity or above.
pub fn log_wanted(wanted: Option<&str>, level: Option<&str>) -> bool {
    let rank = |l: &str| LOG_LEVELS.iter().position(|x| *x == l);
    match (wanted.and_then(rank), level.and_then(rank)) {
        (Some(w), Some(l)) => l >= w,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Results that carry `ttlMs` and `cacheScope`.
pub fn cacheable(method: &str) -> bool {
    matches!(
        method,
        "server/discover"
            | "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
    )
}

/// Methods whose result may be `input_required` (and whose retry carries `requestState`).
pub fn interactive(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// The body field `Mcp-Name` mirrors.
pub fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        m if task_method(m) => Some("taskId"),
        _ => None,
    }
}

/// The HTTP status of a JSON-RPC error answered as plain JSON.
pub fn http_status(code: i64) -> u16 {
    match code {
        codes::PARSE_ERROR
        | codes::INVALID_REQUEST
        | codes::INVALID_PARAMS
        | codes::HEADER_MISMATCH
        | codes::MISSING_CLIENT_CAPABILITY
        | codes::UNSUPPORTED_PROTOCOL_VERSION => 400,
        codes::METHOD_NOT_FOUND => 404,
        _ => 200,
    }
}

/// Whether a POST speaks the stateless era: its body carries the envelope, or its version
/// header names a version that is not a legacy one. `initialize` and requests with a session
/// are legacy by definition.
pub fn is_modern(body: &Value, version_header: Option<&str>, has_session: bool) -> bool {
    if has_session {
        return false;
    }
    if body.get("method").and_then(Value::as_str) == Some("initialize") {
        // Only an initialize that names a stateless version is a modern (removed) method.
        return version_header.is_some_and(|v| MODERN_VERSIONS.contains(&v));
    }
    let in_body = body
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(PROTOCOL_VERSION_KEY))
        .is_some();
    in_body || version_header.is_some_and(|v| !super::LEGACY_VERSIONS.contains(&v))
}

/// What a request's envelope declares once it passed the ladder.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub protocol_version: String,
    pub client_capabilities: Value,
    pub client_info: Value,
}

/// A header value as the 2026 era writes it: as is when it is visible ASCII without edge
/// spaces (and does not look like the sentinel), else `=?base64?…?=`. `decode_header_value`
/// reverses it; the two are the one codec of `Mcp-Name` / `Mcp-Param-*`.
pub fn encode_header_value(v: &str) -> String {
    let safe = v.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && v.trim() == v
        && !(v.starts_with("=?base64?") && v.ends_with("?="));
    if safe {
        v.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
        )
    }
}

/// Decodes a header value that may use the `=?base64?…?=` sentinel; None when malformed.
pub fn decode_header_value(raw: &str) -> Option<String> {
    let Some(payload) = raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    else {
        return Some(raw.to_string());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn mismatch(message: impl Into<String>) -> RpcError {
    RpcError::new(codes::HEADER_MISMATCH, message)
}

/// The validation ladder, first failure wins: the `_meta` envelope (-32602), the headers
/// against the body (-32020), then the version (-32022 naming the supported ones).
/// `header` looks a header up by lowercase name; `None` for duplicates is the caller's job.
pub fn check_envelope<'a>(
    body: &Value,
    header: impl Fn(&str) -> Option<&'a str>,
) -> Result<Envelope, RpcError> {
    let method = body.get("method").and_then(Value::as_str).unwrap_or("");
    let meta = body
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "params._meta must be an object carrying {PROTOCOL_VERSION_KEY:?} and {CLIENT_CAPABILITIES_KEY:?}"
            ))
        })?;
    let missing: Vec<&str> = [PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(RpcError::invalid_params(format!(
            "params._meta is missing {}",
            missing.join(", ")
        )));
    }
    let version = &meta[PROTOCOL_VERSION_KEY];
    match header(headers::PROTOCOL_VERSION) {
        None => return Err(mismatch("the MCP-Protocol-Version header is missing")),
        Some(h) if Some(h) != version.as_str() => {
            return Err(mismatch(format!(
                "the MCP-Protocol-Version header ({h}) does not match params._meta[{PROTOCOL_VERSION_KEY:?}] ({version})"
            )));
        }
        Some(_) => {}
    }
    match header(headers::METHOD) {
        Some(h) if h == method => {}
        Some(h) => {
            return Err(mismatch(format!(
                "the Mcp-Method header ({h}) does not match the body's method ({method})"
            )));
        }
        None => return Err(mismatch("the Mcp-Method header is missing")),
    }
    if let Some(field) = name_field(method)
        && let Some(value) = body["params"].get(field).and_then(Value::as_str)
    {
        match header(headers::NAME).map(decode_header_value) {
            Some(Some(h)) if h == value => {}
            None => {
                return Err(mismatch(format!(
                    "the Mcp-Name header is missing; {method} must mirror params.{field}"
                )));
            }
            Some(_) => {
                return Err(mismatch(format!(
                    "the Mcp-Name header does not match params.{field} ({value})"
                )));
            }
        }
    }
    let version = version.as_str().unwrap_or_default();
    if !MODERN_VERSIONS.contains(&version) {
        return Err(RpcError::new(
            codes::UNSUPPORTED_PROTOCOL_VERSION,
            format!("unsupported protocol version {version:?}"),
        )
        .with_data(json!({ "supported": MODERN_VERSIONS, "requested": version })));
    }
    Ok(Envelope {
        protocol_version: version.to_string(),
        client_capabilities: meta[CLIENT_CAPABILITIES_KEY].clone(),
        client_info: meta.get(CLIENT_INFO_KEY).cloned().unwrap_or(Value::Null),
    })
}

/// Every property of an input schema annotated with `x-mcp-header`, reachable through a pure
/// `properties` chain: (path, header token, declared type).
fn annotated(schema: &Value) -> Vec<(Vec<String>, String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![(Vec::<String>::new(), schema)];
    while let Some((path, node)) = stack.pop() {
        if let (false, Some(token)) = (
            path.is_empty(),
            node.get("x-mcp-header").and_then(Value::as_str),
        ) {
            let kind = node.get("type").and_then(Value::as_str).unwrap_or("");
            out.push((path.clone(), token.to_string(), kind.to_string()));
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let mut p = path.clone();
                p.push(name.clone());
                stack.push((p, sub));
            }
        }
    }
    out
}

fn render(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The argument a schema path points at (`path` is never empty: see `annotated`).
fn argument_at<'v>(arguments: &'v Map<String, Value>, path: &[String]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(arguments.get(first)?, |v, key| v.get(key))
}

/// The `Mcp-Param-*` headers of one 2026-07-28 request (lower-case names, UTF-8 values), kept
/// with the request until the router has located the called tool and can check them against
/// its schema (`check_call_headers`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamHeaders(Vec<(String, String)>);

impl ParamHeaders {
    /// The headers named `mcp-param-*` among `(name, value)` pairs; values that are not UTF-8
    /// are left out (read as absent, as a header lookup would).
    pub fn of<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        Self(
            pairs
                .into_iter()
                .filter(|(name, _)| name.starts_with(headers::PARAM_PREFIX))
                .filter_map(|(name, value)| Some((name.to_ascii_lowercase(), value?.to_string())))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A `tools/call`'s `Mcp-Param-*` headers against its arguments, as `tool` (the called tool's
/// entry in its upstream's list) declares them in its input schema.
pub fn check_call_headers(
    tool: &Value,
    params: &Value,
    headers: &ParamHeaders,
) -> Result<(), RpcError> {
    let empty = Map::new();
    let arguments = params
        .get("arguments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    match tool.get("inputSchema") {
        Some(schema) if !(arguments.is_empty() && headers.is_empty()) => {
            check_param_headers(schema, arguments, |n| headers.get(n))
        }
        _ => Ok(()),
    }
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` against its arguments, as the tool's
/// input schema declares them: present together and equal, or absent together.
pub fn check_param_headers<'a>(
    schema: &Value,
    arguments: &Map<String, Value>,
    header: impl Fn(&str) -> Option<&'a str>,
) -> Result<(), RpcError> {
    for (path, token, kind) in annotated(schema) {
        let name = format!("Mcp-Param-{token}");
        let raw = header(&format!(
            "{}{}",
            headers::PARAM_PREFIX,
            token.to_ascii_lowercase()
        ));
        let value = argument_at(arguments, &path).filter(|v| !v.is_null());
        match (raw, value) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(mismatch(format!(
                    "the {name} header is present but argument {} is absent",
                    path.join(".")
                )));
            }
            (None, Some(_)) => {
                return Err(mismatch(format!(
                    "the {name} header is missing but argument {} is present",
                    path.join(".")
                )));
            }
            (Some(raw), Some(value)) => {
                let decoded = decode_header_value(raw)
                    .ok_or_else(|| mismatch(format!("the {name} header has a malformed value")))?;
                let equal = match (kind.as_str(), value.as_f64(), decoded.parse::<f64>()) {
                    ("integer", Some(a), Ok(b)) => a == b,
                    _ => render(value).as_deref() == Some(decoded.as_str()),
                };
                if !equal {
                    return Err(mismatch(format!(
                        "the {name} header does not match argument {}",
                        path.join(".")
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    }

    fn meta() -> Value {
        json!({PROTOCOL_VERSION_KEY: MODERN_VERSION, CLIENT_CAPABILITIES_KEY: {}})
    }

    fn hs<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn the_ladder_names_the_first_failure() {
        let ok = [
            ("mcp-protocol-version", MODERN_VERSION),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ];
        let b = body("tools/call", json!({"name": "echo", "_meta": meta()}));
        assert!(check_envelope(&b, hs(&ok)).is_ok());
        let no_meta = body("tools/call", json!({"name": "echo"}));
        assert_eq!(
            check_envelope(&no_meta, hs(&ok)).unwrap_err().code,
            codes::INVALID_PARAMS
        );
        let no_name = [
            ("mcp-protocol-version", MODERN_VERSION),
            ("mcp-method", "tools/call"),
        ];
        let e = check_envelope(&b, hs(&no_name)).unwrap_err();
        assert_eq!(e.code, codes::HEADER_MISMATCH);
        assert!(e.message.contains("Mcp-Name"), "{}", e.message);
        let wrong_method = [
            ("mcp-protocol-version", MODERN_VERSION),
            ("mcp-method", "tools/list"),
            ("mcp-name", "echo"),
        ];
        assert_eq!(
            check_envelope(&b, hs(&wrong_method)).unwrap_err().code,
            codes::HEADER_MISMATCH
        );
        let old = body(
            "tools/list",
            json!({"_meta": {PROTOCOL_VERSION_KEY: "2099-01-01", CLIENT_CAPABILITIES_KEY: {}}}),
        );
        let e = check_envelope(
            &old,
            hs(&[
                ("mcp-protocol-version", "2099-01-01"),
                ("mcp-method", "tools/list"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.code, codes::UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(e.data.unwrap()["supported"], json!([MODERN_VERSION]));
    }

    #[test]
    fn logs_need_a_level_and_respect_it() {
        assert!(!log_wanted(None, Some("error")));
        assert!(log_wanted(Some("warning"), Some("error")));
        assert!(!log_wanted(Some("warning"), Some("info")));
        assert!(log_at_least(None, Some("debug")));
        assert!(log_at_least(Some("error"), Some("critical")));
        assert!(!log_at_least(Some("error"), Some("warning")));
        assert!(is_log_level("notice") && !is_log_level("verbose"));
        assert!(is_modern(
            &json!({"method": "initialize"}),
            Some(MODERN_VERSION),
            false
        ));
        assert!(!is_modern(&json!({"method": "initialize"}), None, false));
        assert!(!is_modern(
            &json!({"method": "initialize"}),
            Some("2025-11-25"),
            false
        ));
    }

    #[test]
    fn param_headers_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"}}});
        let args = json!({"region": "eu", "n": 3});
        let args = args.as_object().unwrap();
        let good = |n: &str| match n {
            "mcp-param-region" => Some("eu"),
            "mcp-param-n" => Some("3"),
            _ => None,
        };
        assert!(check_param_headers(&schema, args, good).is_ok());
        let bad = |n: &str| match n {
            "mcp-param-region" => Some("us"),
            "mcp-param-n" => Some("3"),
            _ => None,
        };
        assert_eq!(
            check_param_headers(&schema, args, bad).unwrap_err().code,
            codes::HEADER_MISMATCH
        );
        let missing = |n: &str| (n == "mcp-param-n").then_some("3");
        assert!(check_param_headers(&schema, args, missing).is_err());
        assert_eq!(
            decode_header_value("=?base64?aGk=?=").as_deref(),
            Some("hi")
        );
    }

    /// What the router checks once the tool is located: only `mcp-param-*` headers are kept,
    /// a nested argument is found through its `properties` path, and a tool without a schema
    /// or a call with neither arguments nor headers is not checked.
    #[test]
    fn a_call_is_checked_against_its_tool_entry() {
        let tool = json!({"name": "routed", "inputSchema": {"type": "object", "properties": {
            "where": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"}}}}}});
        let params = json!({"name": "routed", "arguments": {"where": {"region": "eu"}}});
        let headers = |region: Option<&'static str>| {
            ParamHeaders::of([
                ("accept", Some("application/json")),
                ("mcp-param-region", region),
                ("mcp-param-other", Some("x")),
            ])
        };
        let eu = headers(Some("eu"));
        assert_eq!(eu.get("mcp-param-region"), Some("eu"));
        assert_eq!(eu.get("accept"), None, "only Mcp-Param-* headers are kept");
        assert!(check_call_headers(&tool, &params, &eu).is_ok());
        let us = check_call_headers(&tool, &params, &headers(Some("us"))).unwrap_err();
        assert_eq!(us.code, codes::HEADER_MISMATCH);
        assert!(
            us.message.contains("argument where.region"),
            "{}",
            us.message
        );
        // A value that is not UTF-8 reads as absent: the argument is then unmatched.
        let missing = check_call_headers(&tool, &params, &headers(None)).unwrap_err();
        assert!(
            missing.message.contains("is missing"),
            "{}",
            missing.message
        );
        let bare = json!({"name": "routed"});
        assert!(check_call_headers(&tool, &bare, &ParamHeaders::default()).is_ok());
        assert!(
            check_call_headers(&tool, &bare, &eu).is_err(),
            "a header without its argument"
        );
        let schemaless = json!({"name": "routed"});
        assert!(check_call_headers(&schemaless, &params, &headers(Some("us"))).is_ok());
    }
}
