//! The JSON Schemas (OpenAPI 3.1 components) of the admin API's bodies, written next to the
//! operations that use them; `tests/it/ui_openapi.rs` checks real responses against the
//! required fields.

use serde_json::{Map, Value, json};

fn s(t: &str) -> Value {
    json!({ "type": t })
}
fn nullable(t: &str) -> Value {
    json!({ "type": [t, "null"] })
}
fn enum_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}
fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}
fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}
fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}
fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

/// An object schema; `required` lists the fields always present.
fn object(fields: &[(&str, Value)], required: &[&str]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    json!({ "type": "object", "properties": props, "required": required })
}

pub fn components() -> Value {
    let scope = enum_of(&["default", "role", "group", "user"]);
    let schemas = json!({
        "Error": object(&[("error", s("string"))], &["error"]),
        "Credentials": object(&[("email", s("string")), ("password", s("string"))], &["email", "password"]),
        "User": object(&[
            ("id", uuid()), ("email", s("string")), ("role", s("string")),
            ("groups", array(s("string"))), ("created_at", time()), ("updated_at", time()),
        ], &["id", "email", "role", "groups", "created_at", "updated_at"]),
        "NewUser": object(&[
            ("email", s("string")), ("password", s("string")), ("role", s("string")), ("groups", array(s("string"))),
        ], &["email", "password"]),
        "UserUpdate": object(&[("role", s("string")), ("groups", array(s("string")))], &[]),
        "Session": object(&[("user", r("User")), ("token", s("string"))], &["user", "token"]),
        "UiSession": object(&[("user", r("User"))], &["user"]),
        "UiSignIn": json!({ "oneOf": [r("Credentials"), object(&[("id_token", s("string"))], &["id_token"])] }),
        "UiStatus": object(&[
            ("needs_setup", s("boolean")), ("setup_allowed", s("boolean")),
            ("registration_open", s("boolean")), ("oidc_issuer", nullable("string")),
        ], &["needs_setup", "setup_allowed", "registration_open", "oidc_issuer"]),
        "ApiToken": object(&[
            ("id", uuid()), ("user_id", uuid()), ("name", s("string")), ("created_at", time()),
            ("expires_at", json!({"type": ["string", "null"], "format": "date-time"})),
            ("revoked_at", json!({"type": ["string", "null"], "format": "date-time"})),
        ], &["id", "name", "created_at"]),
        "NewToken": object(&[("name", s("string")), ("expires_in", json!({"type": ["integer", "string"], "description": "seconds, or a duration such as \"30d\""}))], &["name"]),
        "CreatedToken": object(&[("api_token", r("ApiToken")), ("token", s("string"))], &["api_token", "token"]),
        "Recycled": object(&[("recycled", s("integer")), ("user_id", uuid())], &["recycled", "user_id"]),
        "Target": object(&[
            ("id", uuid()), ("name", s("string")), ("url", nullable("string")),
            ("transport_type", enum_of(&["streamable-http", "sse", "stdio", "kubernetes"])),
            ("command", nullable("string")), ("args", array(s("string"))), ("cwd", nullable("string")),
            ("image", nullable("string")), ("port", nullable("integer")), ("health_path", nullable("string")),
            ("statefulness", enum_of(&["stateless", "stateful"])),
            ("isolation_boundary", enum_of(&["shared", "per_role", "per_group", "per_user"])),
            ("auth_type", enum_of(&["none", "bearer", "header"])), ("auth_header_name", nullable("string")),
            ("enabled", s("boolean")), ("prefix", nullable("string")), ("timeout", nullable("number")),
            ("env", json!({"type": "object", "additionalProperties": {"type": "string"}})),
            ("tags", array(s("string"))), ("user_env", array(s("string"))), ("user_token", s("boolean")),
            ("created_at", time()), ("updated_at", time()),
        ], &["id", "name", "transport_type", "enabled", "created_at", "updated_at"]),
        "TargetInput": json!({ "description": "The fields of Target; on POST absent means default, on PUT absent means unchanged, null clears.", "allOf": [r("Target")] }),
        "ProbeReport": object(&[
            ("target", s("string")), ("url", s("string")), ("era", s("string")), ("transport", s("string")),
            ("protocol_version", s("string")), ("server_info", s("object")), ("capabilities", s("object")),
            ("counts", object(&[("tools", s("integer")), ("resources", s("integer")), ("prompts", s("integer"))], &["tools", "resources", "prompts"])),
            ("items", object(&[("tools", array(s("object"))), ("resources", array(s("object"))), ("prompts", array(s("object")))], &["tools", "resources", "prompts"])),
        ], &["target", "era", "counts", "items"]),
        "Instance": object(&[
            ("id", uuid()), ("target_id", uuid()), ("isolation_key", s("string")), ("replica", s("string")),
            ("pid", nullable("integer")), ("status", enum_of(&["running", "stop_requested", "stopped", "crashed"])),
            ("started_at", time()), ("last_used_at", time()), ("stopped_at", json!({"type": ["string", "null"], "format": "date-time"})),
        ], &["id", "target_id", "isolation_key", "status"]),
        "Restarted": object(&[("target", s("string")), ("stopped", s("integer")), ("connections", enum_of(&["dropped"]))], &["target", "stopped"]),
        "TokenValue": object(&[("token", s("string"))], &["token"]),
        "TokenEntry": object(&[("scope", scope.clone()), ("scope_value", nullable("string")), ("created_at", time()), ("updated_at", time())], &["scope"]),
        "TokenStatus": object(&[("scope", scope.clone()), ("scope_value", nullable("string")), ("configured", s("boolean")), ("updated_at", json!({"type": ["string", "null"], "format": "date-time"}))], &["scope", "configured"]),
        "EnvValues": json!({ "type": "object", "additionalProperties": {"type": "string"}, "description": "KEY → value (write-only)" }),
        "EnvScopeKeys": object(&[("scope", scope.clone()), ("scope_value", nullable("string")), ("keys", array(s("string")))], &["scope", "keys"]),
        "EnvKeys": object(&[
            ("default", array(s("string"))),
            ("role", json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}})),
            ("group", json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}})),
            ("user", json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}})),
        ], &["default", "role", "group", "user"]),
        "Resolved": object(&[
            ("token", json!({"oneOf": [{"type": "null"}, r("ResolvedEntry")]})),
            ("env", json!({"type": "object", "additionalProperties": r("ResolvedEntry")})),
        ], &["token", "env"]),
        "ResolvedEntry": object(&[("scope", scope), ("scope_value", nullable("string")), ("masked", s("string"))], &["scope", "masked"]),
        "Subject": object(&[
            ("id", uuid()), ("policy_id", uuid()),
            ("subject_type", enum_of(&["everyone", "role", "group", "user"])), ("subject_value", nullable("string")),
        ], &["subject_type"]),
        "Policy": object(&[
            ("id", uuid()), ("name", s("string")), ("description", s("string")),
            ("target_id", json!({"type": ["string", "null"], "format": "uuid"})), ("target_name", nullable("string")),
            ("resource_type", enum_of(&["all", "tool", "resource", "prompt"])), ("resource_pattern", nullable("string")),
            ("effect", enum_of(&["allow", "deny"])), ("priority", s("integer")), ("enabled", s("boolean")),
            ("subjects", array(r("Subject"))), ("created_at", time()), ("updated_at", time()),
        ], &["id", "name", "resource_type", "effect", "priority", "enabled", "subjects"]),
        "PolicyInput": json!({ "description": "The fields of Policy (target as target_id or target: id or name); on PUT absent means unchanged.", "allOf": [r("Policy")] }),
        "Evaluate": object(&[
            ("user_id", s("string")), ("email", s("string")), ("target", s("string")),
            ("resource_type", enum_of(&["tool", "resource", "prompt"])), ("name", s("string")),
        ], &["target"]),
        "Evaluation": object(&[
            ("decision", enum_of(&["allow", "deny"])), ("policy", json!({"type": ["object", "null"]})),
            ("user", s("object")), ("target", s("object")), ("trace", array(s("object"))),
        ], &["decision", "policy", "trace"]),
        "ExplainRequest": object(&[
            ("email", s("string")), ("user_id", s("string")), ("role", s("string")), ("groups", array(s("string"))),
        ], &[]),
        "Access": object(&[
            ("subject", s("object")),
            ("targets", array(object(&[
                ("name", s("string")), ("enabled", s("boolean")), ("visible", s("boolean")),
                ("policy", nullable("string")), ("credential", nullable("string")),
                ("env", json!({"type": "object", "additionalProperties": {"type": "string"}})),
                ("items", array(object(&[
                    ("kind", enum_of(&["tool", "resource", "prompt"])), ("name", s("string")), ("exposed", s("string")),
                    ("allowed", s("boolean")), ("policy", nullable("string")),
                ], &["kind", "name", "exposed", "allowed", "policy"]))),
                ("error", nullable("string")),
            ], &["name", "visible", "items"]))),
        ], &["subject", "targets"]),
        "AuditEntry": object(&[
            ("id", uuid()), ("session_id", nullable("string")), ("user_id", json!({"type": ["string", "null"], "format": "uuid"})),
            ("method", s("string")), ("target_name", nullable("string")), ("name", nullable("string")),
            ("decision", enum_of(&["allow", "deny"])), ("policy_name", nullable("string")),
            ("response_status", nullable("integer")), ("error", nullable("string")), ("duration_ms", s("integer")),
            ("request_body", s("string")), ("trace_id", nullable("string")), ("created_at", time()),
        ], &["id", "method", "decision", "duration_ms", "created_at"]),
        "Stats": object(&[
            ("rps", s("number")), ("p50_ms", nullable("integer")), ("p95_ms", nullable("integer")),
            ("requests_1m", s("integer")), ("errors_1m", s("integer")), ("denials_1m", s("integer")), ("error_rate_1m", s("number")),
        ], &["rps", "requests_1m"]),
        "Live": object(&[
            ("now", s("integer")), ("slot_secs", s("integer")), ("totals", r("Stats")),
            ("series", array(object(&[("t", s("integer")), ("requests", s("integer")), ("errors", s("integer")), ("denials", s("integer")), ("p95_ms", nullable("integer"))], &["t", "requests"]))),
            ("targets", array(json!({"allOf": [r("Stats")], "properties": {"name": {"type": "string"}}}))),
            ("scope", enum_of(&["everyone", "self"])), ("sessions", nullable("integer")), ("audit_queue", nullable("integer")), ("stdio_processes", nullable("integer")),
            ("per_replica", s("boolean")),
        ], &["now", "totals", "series", "targets", "scope", "per_replica"]),
        "Health": object(&[("status", s("string"))], &["status"]),
        "JsonRpc": json!({ "type": "object", "description": "A JSON-RPC 2.0 message or batch (MCP)" }),
    });
    // Added outside the one big json! above, which is at the macro recursion limit.
    let mut schemas = schemas;
    schemas["Live"]["properties"]["listen_streams"] = nullable("integer");
    let quantities = json!({"type": "object", "additionalProperties": {"type": "string"}});
    schemas["Target"]["properties"]["resources"] = json!({
        "type": "object",
        "description": "kubernetes targets: pod resource requests and limits (cpu, memory, ephemeral-storage), over kubernetes.pod_defaults.resources key by key",
        "properties": {"requests": quantities.clone(), "limits": quantities},
        "additionalProperties": false,
    });
    schemas["TargetSummary"] = object(
        &[
            ("id", uuid()),
            ("name", s("string")),
            ("transport_type", s("string")),
            ("enabled", s("boolean")),
            ("prefix", nullable("string")),
            ("auth_type", s("string")),
            ("era", nullable("string")),
            ("user_env", array(s("string"))),
            ("user_token", s("boolean")),
            ("tags", array(s("string"))),
        ],
        &[
            "id",
            "name",
            "transport_type",
            "enabled",
            "user_env",
            "user_token",
        ],
    );
    schemas["Live"]["properties"]["eras"] = json!({
        "type": ["object", "null"],
        "description": "The era each target speaks (\"legacy\", or \"modern\": 2026-07-28), by target name",
        "additionalProperties": {"type": "string"},
    });
    schemas["UserRemoval"] = object(
        &[
            ("removed", uuid()),
            ("credentials", s("integer")),
            ("tokens", s("integer")),
            ("sessions", s("integer")),
        ],
        &["removed", "credentials", "tokens", "sessions"],
    );
    json!({
        "schemas": schemas,
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "A login session JWT, an API token, or a token of the configured OIDC issuer" },
            "cookie": { "type": "apiKey", "in": "cookie", "name": crate::auth::cookie::SESSION_COOKIE, "description": "The web UI's session (HttpOnly, SameSite=Strict); writes must come from the gateway's own origin" },
        },
        "responses": {
            "Error": { "description": "An error", "content": { "application/json": { "schema": r("Error") } } },
        },
    })
}
