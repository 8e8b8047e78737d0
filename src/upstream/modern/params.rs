//! `Mcp-Name` / `Mcp-Param-*` header values and the `x-mcp-header` annotations of tool input
//! schemas (SEP-2243): which arguments are mirrored into headers, and how values are encoded.

use reqwest::header::HeaderValue;
use serde_json::Value;

use super::super::UpstreamError;
use super::HeaderParams;

pub(super) fn header_value(v: &str) -> Result<HeaderValue, UpstreamError> {
    HeaderValue::from_str(v)
        .map_err(|_| UpstreamError::Protocol(format!("{v:?} cannot be sent as a header value")))
}

/// Printable ASCII without edge whitespace passes verbatim; anything else is sent as
/// `=?base64?…?=` so the server recovers the exact text (SEP-2243).
pub(super) use crate::mcp::modern::encode_header_value;

pub(super) fn lookup<'a>(args: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(args, |v, k| v.get(k))
}

pub(super) fn render_scalar(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `x-mcp-header` annotations of an inputSchema (argument path → header token), or why they
/// are invalid: an annotation must sit on a string, integer or boolean property reached from the
/// root through `properties` only, name a non-empty HTTP token, and be unique ignoring case.
pub(super) fn header_annotations(schema: &Value) -> Result<HeaderParams, String> {
    const SINGLE: &[&str] = &[
        "items",
        "contains",
        "unevaluatedItems",
        "additionalProperties",
        "propertyNames",
        "unevaluatedProperties",
        "not",
        "if",
        "then",
        "else",
        "contentSchema",
    ];
    const LIST: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
    const MAP: &[&str] = &[
        "patternProperties",
        "dependentSchemas",
        "$defs",
        "definitions",
    ];
    let mut found: HeaderParams = Vec::new();
    // `None` once the walk left the pure `properties` chain.
    let mut stack: Vec<(Option<Vec<String>>, &Value)> = vec![(Some(Vec::new()), schema)];
    while let Some((path, node)) = stack.pop() {
        let Some(obj) = node.as_object() else {
            continue;
        };
        if let Some(token) = obj.get("x-mcp-header") {
            let Some(path) = path.clone().filter(|p| !p.is_empty()) else {
                return Err("x-mcp-header outside a property reached through properties".into());
            };
            let token = token
                .as_str()
                .ok_or_else(|| "x-mcp-header must be a string".to_string())?;
            let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if token.is_empty() || !token.bytes().all(tchar) {
                return Err(format!("x-mcp-header {token:?} is not an HTTP token"));
            }
            if !matches!(
                obj.get("type").and_then(Value::as_str),
                Some("string" | "integer" | "boolean")
            ) {
                return Err(format!(
                    "x-mcp-header {token:?} must be on a string, integer or boolean property"
                ));
            }
            if found.iter().any(|(_, t)| t.eq_ignore_ascii_case(token)) {
                return Err(format!("x-mcp-header {token:?} is declared twice"));
            }
            found.push((path, token.to_string()));
        }
        for (kw, val) in obj {
            let kw = kw.as_str();
            if kw == "properties" {
                for (name, sub) in val.as_object().into_iter().flatten() {
                    let sub_path = path.as_ref().map(|p| {
                        let mut p = p.clone();
                        p.push(name.clone());
                        p
                    });
                    stack.push((sub_path, sub));
                }
            } else if SINGLE.contains(&kw) {
                stack.push((None, val));
            } else if LIST.contains(&kw) {
                stack.extend(val.as_array().into_iter().flatten().map(|v| (None, v)));
            } else if MAP.contains(&kw) {
                stack.extend(
                    val.as_object()
                        .into_iter()
                        .flatten()
                        .map(|(_, v)| (None, v)),
                );
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn header_values_are_mirrored_or_base64_wrapped() {
        assert_eq!(encode_header_value("us-west1"), "us-west1");
        assert_eq!(encode_header_value(" edge"), "=?base64?IGVkZ2U=?=");
        assert_eq!(encode_header_value("héllo"), "=?base64?aMOpbGxv?=");
    }

    #[test]
    fn annotations_are_found_on_property_paths_only() {
        let schema = json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "opts": {"type": "object", "properties": {"tier": {"type": "integer", "x-mcp-header": "Tier"}}},
                "list": {"type": "array"}
            }
        });
        let mut found = header_annotations(&schema).unwrap();
        found.sort();
        assert_eq!(
            found,
            vec![
                (
                    vec!["opts".to_string(), "tier".to_string()],
                    "Tier".to_string()
                ),
                (vec!["region".to_string()], "Region".to_string()),
            ]
        );
        for bad in [
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "object", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"},
                                  "b": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "with space"}}}),
            json!({"properties": {"l": {"type": "array", "items": {"type": "string", "x-mcp-header": "I"}}}}),
        ] {
            assert!(header_annotations(&bad).is_err(), "{bad}");
        }
        let args = json!({"region": "eu", "opts": {"tier": 3}});
        assert_eq!(
            lookup(&args, &found[0].0).and_then(render_scalar),
            Some("3".into())
        );
    }
}
