//! `/openapi.json` (also `/docs/openapi.json`): the OpenAPI 3.1 document of every HTTP route,
//! built from the operation table below and the schemas in `schemas.rs`. `/docs` renders it
//! with the UI's own offline page. `tests/it/ui_openapi.rs` fails when a route of the router is
//! missing here.

mod schemas;

use std::sync::{Arc, OnceLock};

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/docs/openapi.json", get(openapi))
}

async fn openapi() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(document).clone())
}

/// Who may call an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Any authenticated caller (bearer token or UI cookie).
    Any,
    Admin,
}

/// One operation: method, path, tag, summary, who, request and success response schemas.
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub access: Access,
    pub body: Option<&'static str>,
    pub status: u16,
    /// A component schema name, `[Name]` for an array of it, or a media type marker.
    pub response: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)] // one row of the table below, positional on purpose
const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    access: Access,
    body: Option<&'static str>,
    status: u16,
    response: Option<&'static str>,
) -> Op {
    Op {
        method,
        path,
        tag,
        summary,
        access,
        body,
        status,
        response,
    }
}

use Access::{Admin, Any, Public};

const T: &str = "/api/targets/{id}";

/// Every route of the router, except the UI's page and asset routes.
#[rustfmt::skip]
pub const OPS: &[Op] = &[
    op("get", "/health", "health", "Liveness", Public, None, 200, Some("Health")),
    op("get", "/ready", "health", "Readiness (checks the database)", Public, None, 200, Some("Health")),
    op("post", "/api/auth/logout", "auth", "End every login session of the caller (API tokens stay valid)", Any, None, 204, None),
    op("get", "/metrics", "health", "Prometheus metrics (text format 0.0.4): an admin's token or metrics.token; anyone with metrics.public", Admin, None, 200, Some("text/plain")),
    op("get", "/.well-known/oauth-protected-resource", "health", "RFC 9728 protected-resource metadata", Public, None, 200, Some("object")),
    op("get", "/.well-known/oauth-protected-resource/mcp", "health", "RFC 9728 metadata for /mcp", Public, None, 200, Some("object")),
    op("get", "/openapi.json", "docs", "This document", Public, None, 200, Some("object")),
    op("get", "/docs/openapi.json", "docs", "This document (alias)", Public, None, 200, Some("object")),
    op("post", "/api/auth/register", "auth", "Register (the first account becomes admin)", Public, Some("Credentials"), 201, Some("Session")),
    op("post", "/api/auth/login", "auth", "Log in: a session token", Public, Some("Credentials"), 200, Some("Session")),
    op("get", "/api/auth/me", "auth", "The caller's account", Any, None, 200, Some("User")),
    op("get", "/api/auth/tokens", "tokens", "The caller's API tokens", Any, None, 200, Some("[ApiToken]")),
    op("post", "/api/auth/tokens", "tokens", "Create an API token (the secret is returned once)", Any, Some("NewToken"), 201, Some("CreatedToken")),
    op("delete", "/api/auth/tokens/{id}", "tokens", "Revoke a token (own; admin: any)", Any, None, 204, None),
    op("get", "/api/ui/status", "ui", "Sign-in page state: is there a user yet, may one register", Public, None, 200, Some("UiStatus")),
    op("post", "/api/ui/setup", "ui", "Create the first admin and sign in (sets the session cookie)", Public, Some("Credentials"), 200, Some("UiSession")),
    op("post", "/api/ui/login", "ui", "Sign in with email and password or an OIDC id_token (sets the session cookie)", Public, Some("UiSignIn"), 200, Some("UiSession")),
    op("post", "/api/ui/logout", "ui", "Sign out (ends the session, deletes the cookie)", Public, None, 204, None),
    op("get", "/api/users", "users", "List users", Admin, None, 200, Some("[User]")),
    op("post", "/api/users", "users", "Create a user", Admin, Some("NewUser"), 201, Some("User")),
    op("get", "/api/users/{id}", "users", "Show a user", Admin, None, 200, Some("User")),
    op("put", "/api/users/{id}", "users", "Change role and groups", Admin, Some("UserUpdate"), 200, Some("User")),
    op("delete", "/api/users/{id}", "users", "Remove a user with their user-scope credentials, API tokens and sessions (one transaction)", Admin, None, 200, Some("UserRemoval")),
    op("post", "/api/users/{id}/recycle", "users", "End a user's MCP sessions", Admin, None, 200, Some("Recycled")),
    op("post", "/api/sessions/recycle", "users", "End the caller's own MCP sessions", Any, None, 200, Some("Recycled")),
    op("get", "/api/targets", "targets", "List targets (admin: every target, every field; others: the targets they may use, as TargetSummary: never URL, command, args, cwd, env or image)", Any, None, 200, Some("[Target]")),
    op("post", "/api/targets", "targets", "Create a target", Admin, Some("TargetInput"), 201, Some("Target")),
    op("get", T, "targets", "Show a target (id or name)", Admin, None, 200, Some("Target")),
    op("put", T, "targets", "Update a target (also enable/disable)", Admin, Some("TargetInput"), 200, Some("Target")),
    op("delete", T, "targets", "Remove a target", Admin, None, 204, None),
    op("post", "/api/targets/{id}/test", "targets", "Test the connection: era, server info, counts and items", Admin, None, 200, Some("ProbeReport")),
    op("get", "/api/targets/{id}/instances", "targets", "stdio processes of a target", Admin, None, 200, Some("[Instance]")),
    op("post", "/api/targets/{id}/restart-instances", "targets", "Stop a target's processes or pods on every replica; for an HTTP target, drop every replica's upstream sessions", Admin, None, 200, Some("Restarted")),
    op("get", "/api/targets/{id}/tokens", "credentials", "Which scopes have a token (never values)", Admin, None, 200, Some("[TokenEntry]")),
    op("get", "/api/targets/{id}/token", "credentials", "Whether the caller's own token is set", Any, None, 200, Some("TokenStatus")),
    op("put", "/api/targets/{id}/token", "credentials", "Set the caller's own token", Any, Some("TokenValue"), 200, Some("TokenStatus")),
    op("delete", "/api/targets/{id}/token", "credentials", "Remove the caller's own token", Any, None, 200, Some("TokenStatus")),
    op("put", "/api/targets/{id}/tokens/default", "credentials", "Set the default token", Admin, Some("TokenValue"), 200, Some("TokenStatus")),
    op("delete", "/api/targets/{id}/tokens/default", "credentials", "Remove the default token", Admin, None, 200, Some("TokenStatus")),
    op("put", "/api/targets/{id}/tokens/{scope}", "credentials", "Set a role/group/user token (value in the body)", Admin, Some("TokenValue"), 200, Some("TokenStatus")),
    op("put", "/api/targets/{id}/tokens/{scope}/{value}", "credentials", "Set a role/group/user token", Admin, Some("TokenValue"), 200, Some("TokenStatus")),
    op("delete", "/api/targets/{id}/tokens/{scope}/{value}", "credentials", "Remove a role/group/user token", Admin, None, 200, Some("TokenStatus")),
    op("get", "/api/targets/{id}/env", "credentials", "Env keys per scope (never values)", Admin, None, 200, Some("EnvKeys")),
    op("get", "/api/targets/{id}/env/resolve", "credentials", "Where each key resolves from for the caller (masked)", Any, None, 200, Some("Resolved")),
    op("get", "/api/targets/{id}/env/default", "credentials", "Default env keys", Any, None, 200, Some("EnvScopeKeys")),
    op("put", "/api/targets/{id}/env/default", "credentials", "Replace the default env", Admin, Some("EnvValues"), 200, Some("EnvScopeKeys")),
    op("post", "/api/targets/{id}/env/default", "credentials", "Add or change default env entries", Admin, Some("EnvValues"), 200, Some("EnvScopeKeys")),
    op("delete", "/api/targets/{id}/env/default/{key}", "credentials", "Remove a default env entry", Admin, None, 204, None),
    op("get", "/api/targets/{id}/env/{scope}/{value}", "credentials", "Env keys of a scope (user scope: also self)", Any, None, 200, Some("EnvScopeKeys")),
    op("put", "/api/targets/{id}/env/{scope}/{value}", "credentials", "Replace a scope's env (user scope: also self)", Any, Some("EnvValues"), 200, Some("EnvScopeKeys")),
    op("post", "/api/targets/{id}/env/{scope}/{value}", "credentials", "Add or change a scope's env entries (user scope: also self)", Any, Some("EnvValues"), 200, Some("EnvScopeKeys")),
    op("delete", "/api/targets/{id}/env/{scope}/{value}/{key}", "credentials", "Remove a scope's env entry (user scope: also self)", Any, None, 204, None),
    op("get", "/api/policies", "policies", "List policies", Admin, None, 200, Some("[Policy]")),
    op("post", "/api/policies", "policies", "Create a policy", Admin, Some("PolicyInput"), 201, Some("Policy")),
    op("get", "/api/policies/{id}", "policies", "Show a policy (id or name)", Admin, None, 200, Some("Policy")),
    op("put", "/api/policies/{id}", "policies", "Update a policy (also enable/disable)", Admin, Some("PolicyInput"), 200, Some("Policy")),
    op("delete", "/api/policies/{id}", "policies", "Remove a policy", Admin, None, 204, None),
    op("post", "/api/policies/{id}/subjects", "policies", "Add a subject", Admin, Some("Subject"), 201, Some("Subject")),
    op("delete", "/api/policies/{id}/subjects/{subject_id}", "policies", "Remove a subject", Admin, None, 204, None),
    op("post", "/api/policies/evaluate", "policies", "Decide one item for a user, with the trace", Admin, Some("Evaluate"), 200, Some("Evaluation")),
    op("post", "/api/policies/explain", "policies", "Effective access of a user (or role and groups): every target and item", Admin, Some("ExplainRequest"), 200, Some("Access")),
    op("get", "/api/logs", "audit", "Audit rows, newest first (admin: all; others: their own)", Any, None, 200, Some("[AuditEntry]")),
    op("get", "/api/logs/export", "audit", "Export the filtered audit rows as CSV or JSON", Any, None, 200, Some("text/csv")),
    op("get", "/api/observability/snapshot", "observability", "Dashboard numbers of this replica (admin: everyone; others: own)", Any, None, 200, Some("Live")),
    op("get", "/api/observability/stream", "observability", "Server-Sent Events: `stats` each second, `activity` batches of new audit rows", Any, None, 200, Some("text/event-stream")),
    op("post", "/mcp", "mcp", "MCP Streamable HTTP (both protocol eras)", Any, Some("JsonRpc"), 200, Some("JsonRpc")),
    op("get", "/mcp", "mcp", "MCP server-to-client stream (legacy sessions), or legacy SSE without a session", Any, None, 200, Some("text/event-stream")),
    op("delete", "/mcp", "mcp", "End an MCP session", Any, None, 204, None),
    op("get", "/sse", "mcp", "Legacy HTTP+SSE transport: the event stream", Any, None, 200, Some("text/event-stream")),
    op("post", "/message", "mcp", "Legacy HTTP+SSE transport: a client message (?session_id=)", Any, Some("JsonRpc"), 202, None),
];

#[rustfmt::skip]
const QUERY: &[(&str, &[&str])] = &[
    ("/api/logs", &["limit", "offset", "user_id", "target", "method", "decision", "since", "until", "trace_id"]),
    ("/api/logs/export", &["format", "limit", "user_id", "target", "method", "decision", "since", "until"]),
    ("/message", &["session_id"]),
];

fn schema_ref(name: &str) -> Value {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(inner) => json!({ "type": "array", "items": schema_ref(inner) }),
        None if name == "object" => json!({ "type": "object" }),
        None => json!({ "$ref": format!("#/components/schemas/{name}") }),
    }
}

fn operation(o: &Op) -> Value {
    let mut responses = Map::new();
    let ok = match o.response {
        None => json!({ "description": "Done" }),
        Some(media) if media.contains('/') => {
            json!({ "description": "OK", "content": { media: { "schema": { "type": "string" } } } })
        }
        Some(name) => {
            json!({ "description": "OK", "content": { "application/json": { "schema": schema_ref(name) } } })
        }
    };
    responses.insert(o.status.to_string(), ok);
    let error = json!({ "$ref": "#/components/responses/Error" });
    let mut codes = vec!["400", "422", "429"];
    if o.access != Access::Public {
        codes.push("401");
        codes.push("403");
    }
    if o.path.contains('{') {
        codes.push("404");
    }
    for c in codes {
        responses.insert(c.to_string(), error.clone());
    }
    let mut params: Vec<Value> = o
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    if o.method == "get"
        && let Some((_, names)) = QUERY.iter().find(|(p, _)| *p == o.path)
    {
        params.extend(names.iter().map(|n| {
            json!({ "name": n, "in": "query", "required": *n == "format" || *n == "session_id", "schema": { "type": "string" } })
        }));
    }
    let mut v = json!({
        "tags": [o.tag],
        "summary": o.summary,
        "operationId": format!("{}_{}", o.method, o.path.trim_matches('/').replace(['/', '{', '}', '.', '-'], "_")),
        "parameters": params,
        "responses": responses,
    });
    v["security"] = match o.access {
        Access::Public => json!([]),
        Access::Any | Access::Admin => json!([{ "bearer": [] }, { "cookie": [] }]),
    };
    if o.access == Access::Admin {
        v["description"] = json!("Admin role required.");
    }
    if let Some(body) = o.body {
        v["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema_ref(body) } } });
    }
    v
}

/// The whole OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPS {
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation(o);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "reflow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The reflow MCP gateway's HTTP API. Errors are {\"error\": \"message\"}. Authenticate with `Authorization: Bearer <token>` (a login session, an API token or an OIDC token) or the web UI's session cookie.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "paths": paths,
        "components": schemas::components(),
    })
}
