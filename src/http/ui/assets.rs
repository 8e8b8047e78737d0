//! The UI's files, compiled into the binary (rust-embed over `assets/ui/`): `/` serves the page,
//! `/assets/{version}/…` the modules and styles. The version is a digest of every file, so those
//! URLs are immutable and cached for a year; the page itself is revalidated by ETag (weak, as
//! the same ETag covers the gzip and identity encodings). Responses are gzip-compressed when
//! the client accepts it.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::Embed;
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;

use super::super::AppState;

#[derive(Embed)]
#[folder = "assets/ui/"]
struct Assets;

/// Where the page's asset URLs point; replaced in `index.html` and `docs.html`.
const BASE_PLACEHOLDER: &str = "{{ASSETS}}";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/docs", get(docs))
        .route("/assets/{version}/{*path}", get(asset))
        .layer(CompressionLayer::new())
}

/// A digest of every embedded file: changes whenever any asset does.
fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut names: Vec<_> = Assets::iter().collect();
        names.sort();
        let mut h = Sha256::new();
        for name in names {
            if let Some(file) = Assets::get(&name) {
                h.update(name.as_bytes());
                h.update(file.metadata.sha256_hash());
            }
        }
        hex::encode(&h.finalize()[..6])
    })
}

/// An HTML page with its asset base filled in, revalidated on every load.
fn page(name: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(name) else {
        return (StatusCode::NOT_FOUND, "missing page").into_response();
    };
    let base = format!("/assets/{}", asset_version());
    let html = String::from_utf8_lossy(&file.data).replace(BASE_PLACEHOLDER, &base);
    let etag = format!(
        "W/\"{}\"",
        &hex::encode(Sha256::digest(html.as_bytes()))[..16]
    );
    respond(
        headers,
        &etag,
        "text/html; charset=utf-8",
        "no-cache",
        html.into_bytes(),
    )
}

async fn index(headers: HeaderMap) -> Response {
    page("index.html", &headers)
}

async fn docs(headers: HeaderMap) -> Response {
    page("docs.html", &headers)
}

async fn asset(Path((version, path)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let file = Assets::get(&path).filter(|_| !path.ends_with(".html"));
    let Some(file) = file else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    // An old version's URL (a page loaded before an upgrade) still gets today's file, but not
    // cached as immutable.
    let cache = if version == asset_version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let etag = format!("W/\"{}\"", &hex::encode(file.metadata.sha256_hash())[..16]);
    let mime = file.metadata.mimetype().to_string();
    respond(&headers, &etag, &mime, cache, file.data.into_owned())
}

fn respond(headers: &HeaderMap, etag: &str, mime: &str, cache: &str, body: Vec<u8>) -> Response {
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(CACHE_CONTROL, v);
    }
    if !fresh && let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(CONTENT_TYPE, v);
    }
    res
}
