//! `reflow probe URL` (hidden): connects to one HTTP MCP upstream the way the gateway does,
//! prints what it serves, and optionally calls tools. A diagnostic for operators and the command
//! the official conformance suite drives in client mode.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::{Context, output};
use crate::mcp::jsonrpc::{Kind, RpcError, classify};
use crate::upstream::{Handshake, HttpTransport, UpstreamConnection, UpstreamSpec};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TransportArg {
    Auto,
    StreamableHttp,
    Sse,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The upstream's MCP URL (Streamable HTTP endpoint, or the legacy SSE URL).
    url: url::Url,
    /// auto: probe the era (2026-07-28 `server/discover`, then legacy `initialize`, then legacy
    /// SSE); streamable-http: legacy Streamable HTTP only; sse: legacy HTTP+SSE only.
    #[arg(long, value_enum, default_value = "auto")]
    transport: TransportArg,
    /// A request header, `'Name: value'` (repeatable); values are never printed.
    #[arg(long = "header", short = 'H', value_name = "'K: V'")]
    headers: Vec<String>,
    /// Call this tool after listing.
    #[arg(long, value_name = "TOOL")]
    call: Option<String>,
    /// Arguments for --call, a JSON object.
    #[arg(long, value_name = "JSON", requires = "call")]
    args: Option<String>,
    /// Call every listed tool, with arguments made up from each input schema.
    #[arg(long, conflicts_with = "call")]
    call_each: bool,
    /// Per request timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Set by the conformance harness in client mode: a JSON object whose `toolCalls`
    /// (`[{name, arguments}]`) replace the made-up calls of --call-each.
    #[arg(
        long,
        env = "MCP_CONFORMANCE_CONTEXT",
        hide = true,
        hide_env_values = true
    )]
    conformance_context: Option<String>,
}

pub async fn run(ctx: &Context, args: ProbeArgs) -> anyhow::Result<()> {
    let spec = UpstreamSpec {
        name: args.url.host_str().unwrap_or("upstream").to_string(),
        url: args.url.clone(),
        transport: match args.transport {
            TransportArg::Auto => HttpTransport::Auto,
            TransportArg::StreamableHttp => HttpTransport::StreamableHttp,
            TransportArg::Sse => HttpTransport::Sse,
        },
        headers: parse_headers(&args.headers)?,
        timeout: args.timeout,
        max_message: crate::upstream::limits::MAX_MESSAGE,
    };
    let call_args = match &args.args {
        Some(raw) => {
            let v: Value = serde_json::from_str(raw).context("--args must be a JSON object")?;
            if !v.is_object() {
                bail!("--args must be a JSON object");
            }
            Some(v)
        }
        None => None,
    };
    // Elicitation is declared so servers that ask can be exercised; with nobody to ask, the
    // probe declines every one.
    let handshake = Handshake {
        protocol_version: crate::mcp::LATEST_LEGACY_VERSION.to_string(),
        capabilities: json!({ "elicitation": { "form": {} } }),
        client_info: crate::mcp::implementation_info(),
    };
    let http = reqwest::Client::builder().build()?;
    let (conn, mut inbound) = UpstreamConnection::connect(spec, handshake, http)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.to_rpc(args.url.as_str()).message))?;

    // Answer what the server asks (ping; nothing else is offered) so it never waits on us.
    let answering = conn.clone();
    tokio::spawn(async move {
        while let Some(msg) = inbound.recv().await {
            if let Kind::Request { id, method } = classify(&msg.message) {
                let outcome = if method == "ping" {
                    Ok(json!({}))
                } else if method == "elicitation/create" {
                    Ok(json!({ "action": "decline" }))
                } else {
                    Err(RpcError::method_not_found(method))
                };
                let _ = answering.respond(id.clone(), outcome).await;
            }
        }
    });

    let result = explore(&conn, &args, call_args).await;
    conn.close().await;
    let report = result?;
    if ctx.json {
        output::json(&report)?;
    } else {
        print_human(&report);
    }
    match report["calls"].as_array() {
        Some(calls) if calls.iter().any(|c| c["ok"] != true) => bail!("a tool call failed"),
        _ => Ok(()),
    }
}

async fn explore(
    conn: &UpstreamConnection,
    args: &ProbeArgs,
    call_args: Option<Value>,
) -> anyhow::Result<Value> {
    let server = conn.server();
    let mut counts = Map::new();
    let mut tools = Vec::new();
    for (capability, method, field) in [
        ("tools", "tools/list", "tools"),
        ("resources", "resources/list", "resources"),
        ("prompts", "prompts/list", "prompts"),
    ] {
        if server.capabilities.get(capability).is_none() {
            continue;
        }
        let items = list_all(conn, method, field)
            .await
            .with_context(|| format!("{method} failed"))?;
        counts.insert(capability.into(), items.len().into());
        if capability == "tools" {
            tools = items;
        }
    }
    let mut calls = Vec::new();
    if let Some(name) = &args.call {
        calls.push(call(conn, name, call_args.unwrap_or_else(|| json!({}))).await);
    } else if let Some(planned) = args.call_each.then(|| context_calls(args)).flatten() {
        for (name, arguments) in planned? {
            calls.push(call(conn, &name, arguments).await);
        }
    } else if args.call_each {
        for tool in &tools {
            let Some(name) = tool["name"].as_str() else {
                continue;
            };
            calls.push(call(conn, name, made_up_args(&tool["inputSchema"])).await);
        }
    }
    Ok(json!({
        "server": server.server_info,
        "protocolVersion": server.protocol_version,
        "era": server.era().as_str(),
        "transport": server.transport.as_str(),
        "instructions": server.instructions,
        "capabilities": server.capabilities,
        "counts": counts,
        "calls": calls,
    }))
}

/// The calls the conformance harness asks for in its context, if it names any.
fn context_calls(args: &ProbeArgs) -> Option<anyhow::Result<Vec<(String, Value)>>> {
    let raw = args.conformance_context.as_deref()?;
    let context: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            return Some(Err(anyhow::anyhow!(
                "MCP_CONFORMANCE_CONTEXT is not JSON: {e}"
            )));
        }
    };
    let calls = context.get("toolCalls")?.as_array()?;
    Some(
        calls
            .iter()
            .map(|c| {
                let name = c["name"].as_str().ok_or_else(|| {
                    anyhow::anyhow!("MCP_CONFORMANCE_CONTEXT: a toolCalls entry has no name")
                })?;
                Ok((
                    name.to_string(),
                    c.get("arguments").cloned().unwrap_or(json!({})),
                ))
            })
            .collect(),
    )
}

/// Follows `nextCursor` (bounded, in case a server loops).
async fn list_all(
    conn: &UpstreamConnection,
    method: &str,
    field: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
        let mut page = conn.request(method, params).await?;
        if let Some(Value::Array(more)) = page.get_mut(field).map(Value::take) {
            items.extend(more);
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => cursor = Some(next.to_string()),
            _ => break,
        }
    }
    Ok(items)
}

async fn call(conn: &UpstreamConnection, name: &str, arguments: Value) -> Value {
    let params = json!({ "name": name, "arguments": arguments });
    match conn.request("tools/call", Some(params)).await {
        Ok(result) => {
            let ok = result.get("isError") != Some(&Value::Bool(true));
            json!({ "tool": name, "ok": ok, "result": result })
        }
        Err(e) => json!({ "tool": name, "ok": false, "error": e.to_string() }),
    }
}

/// Plausible arguments for a tool from its JSON Schema: required properties get a value of
/// their type (enum members and defaults first).
fn made_up_args(schema: &Value) -> Value {
    let mut args = Map::new();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = schema["properties"].as_object() {
        for (i, (name, prop)) in props.iter().enumerate() {
            if !required.contains(&name.as_str()) {
                continue;
            }
            let value = if let Some(d) = prop.get("default") {
                d.clone()
            } else if let Some(first) = prop["enum"].as_array().and_then(|e| e.first()) {
                first.clone()
            } else {
                match prop["type"].as_str() {
                    Some("number") | Some("integer") => json!(i + 1),
                    Some("boolean") => json!(true),
                    Some("array") => json!([]),
                    Some("object") => json!({}),
                    _ => json!("probe"),
                }
            };
            args.insert(name.clone(), value);
        }
    }
    Value::Object(args)
}

fn parse_headers(raw: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for h in raw {
        let Some((name, value)) = h.split_once(':') else {
            bail!("--header must look like 'Name: value'");
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("invalid header name {:?}", name.trim()))?;
        // The value may be a credential: never echo it, not even in an error.
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| anyhow::anyhow!("invalid value for header {name}"))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

fn print_human(report: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let count = |k: &str| {
        report["counts"]
            .get(k)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into())
    };
    output::fields(&[
        ("server", text(&report["server"]["name"])),
        ("version", text(&report["server"]["version"])),
        ("protocol", text(&report["protocolVersion"])),
        ("era", text(&report["era"])),
        ("transport", text(&report["transport"])),
        ("tools", count("tools")),
        ("resources", count("resources")),
        ("prompts", count("prompts")),
    ]);
    for c in report["calls"].as_array().into_iter().flatten() {
        let outcome = if c["ok"] == true {
            c["result"].to_string()
        } else if c.get("error").is_some() {
            format!("error: {}", text(&c["error"]))
        } else {
            format!("tool error: {}", c["result"])
        };
        println!("call {}: {outcome}", text(&c["tool"]));
    }
}
