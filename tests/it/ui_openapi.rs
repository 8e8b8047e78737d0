//! `/openapi.json` covers the router: every route registered in `src/http` (found by reading
//! the sources, so a new route without documentation fails here) has its path and methods in
//! the document; `/docs` is served; documented shapes match real responses.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::TestServer;

/// The UI's page and asset routes, which are not API operations.
const UI_ROUTES: &[&str] = &["/", "/index.html", "/docs", "/assets/{version}/{*path}"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text of a call's arguments: from just after `(` to its matching `)`.
fn call_args(text: &str) -> &str {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

/// (METHOD, path) of every `.route(…)` in the HTTP sources.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"),
        &mut files,
    );
    let mut routes = BTreeSet::new();
    for file in files {
        let src = std::fs::read_to_string(&file).unwrap();
        for (at, _) in src.match_indices(".route(") {
            let args = call_args(&src[at + ".route(".len()..]);
            let first = args.trim_start();
            let path = if let Some(rest) = first.strip_prefix("METADATA_PATH") {
                assert!(rest.trim_start().starts_with(','), "{file:?}: {args}");
                "/.well-known/oauth-protected-resource".to_string()
            } else {
                let quoted = first
                    .split('"')
                    .nth(1)
                    .unwrap_or_else(|| panic!("{file:?}: cannot read the path of .route({args})"));
                quoted
                    .replace("{METADATA_PATH}", "/.well-known/oauth-protected-resource")
                    .replace("{t}", "/api/targets/{id}")
                    .replace("{{", "{")
                    .replace("}}", "}")
            };
            if UI_ROUTES.contains(&path.as_str()) {
                continue;
            }
            let handlers = &args[args.find(',').expect("a handler") + 1..];
            let mut found = false;
            for method in ["get", "post", "put", "delete", "patch"] {
                let token = format!("{method}(");
                let mut rest = handlers;
                while let Some(i) = rest.find(&token) {
                    let before = rest[..i].chars().last();
                    if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
                        routes.insert((method.to_string(), path.clone()));
                        found = true;
                    }
                    rest = &rest[i + token.len()..];
                }
            }
            assert!(found, "{file:?}: no method handler in .route({args})");
        }
    }
    routes
}

#[tokio::test]
async fn every_route_of_the_router_is_documented() {
    let routes = routes_in_source();
    assert!(routes.len() > 60, "the source scan found only {routes:?}");
    let s = TestServer::start().await;
    let (status, doc) = s.get("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut missing = Vec::new();
    for (method, path) in &routes {
        if doc["paths"][path][method].is_null() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    // And nothing documented that the router does not serve.
    let mut extra = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if !routes.contains(&(method.clone(), path.clone())) {
                extra.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            !doc["components"]["schemas"][name].is_null(),
            "dangling $ref {name}"
        );
    }
    let (status, same) = s.get("/docs/openapi.json", None).await;
    assert_eq!((status, same), (200, doc));
    let page = s.http.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("docs.js"));
}

/// The required fields of a documented schema are present in a real response.
fn conforms(doc: &Value, schema: &str, value: &Value) {
    let required = doc["components"]["schemas"][schema]["required"]
        .as_array()
        .unwrap_or_else(|| panic!("schema {schema} has no required list"));
    for field in required {
        let f = field.as_str().unwrap();
        assert!(value.get(f).is_some(), "{schema}.{f} missing in {value}");
    }
}

#[tokio::test]
async fn documented_shapes_match_real_responses() {
    let s = TestServer::start().await;
    let (_, doc) = s.get("/openapi.json", None).await;
    let (admin, user) = s
        .register("admin@example.com", "correct horse battery")
        .await;
    conforms(&doc, "User", &user);
    let (_, created) = s
        .post("/api/auth/tokens", Some(&admin), json!({"name": "x"}))
        .await;
    conforms(&doc, "CreatedToken", &created);
    conforms(&doc, "ApiToken", &created["api_token"]);
    let (_, target) = s
        .post(
            "/api/targets",
            Some(&admin),
            json!({"name": "t", "url": "http://127.0.0.1:9/mcp"}),
        )
        .await;
    conforms(&doc, "Target", &target);
    let (_, policies) = s.get("/api/policies", Some(&admin)).await;
    conforms(&doc, "Policy", &policies[0]);
    let (_, live) = s.get("/api/observability/snapshot", Some(&admin)).await;
    conforms(&doc, "Live", &live);
    conforms(&doc, "Stats", &live["totals"]);
    let (_, status) = s.get("/api/ui/status", None).await;
    conforms(&doc, "UiStatus", &status);
    let (_, access) = s
        .post(
            "/api/policies/explain",
            Some(&admin),
            json!({"role": "dev"}),
        )
        .await;
    conforms(&doc, "Access", &access);
    let (_, error) = s.get("/api/users", None).await;
    conforms(&doc, "Error", &error);
}
