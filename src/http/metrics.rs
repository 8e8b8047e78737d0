//! `GET /metrics`: the Prometheus exposition (text format 0.0.4). Readable with an admin's
//! token, the dedicated `metrics.token`, or by anyone when `metrics.public`; `metrics.listen`
//! serves it alone on a second address for scrapers, under the same rule.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::auth::bearer_token;
use crate::telemetry::metrics::Live;

const CONTENT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers).await?;
    Ok(([(CONTENT_TYPE, CONTENT)], state.metrics.encode()).into_response())
}

async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let settings = &state.settings.metrics;
    if settings.public {
        return Ok(());
    }
    let header = headers.get(AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let token = bearer_token(header)?;
    if let Some(expected) = &settings.token
        // Digests compared, so the time taken says nothing about how much of the token matched.
        && Sha256::digest(token.as_bytes()) == Sha256::digest(expected.expose().as_bytes())
    {
        return Ok(());
    }
    let caller = state.authn.authenticate(token).await?;
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "reading /metrics needs an admin's token or metrics.token",
        ))
    }
}

impl AppState {
    /// The values the metrics read at scrape time from their owners.
    pub fn live_metrics(&self, spans_dropped: u64) -> Live {
        use std::sync::atomic::Ordering::Relaxed;
        Live {
            sessions: self.gateway.session_count() as i64,
            listen_streams: self.gateway.listen_stream_count() as i64,
            processes: self.gateway.process_census(),
            audit_queue: self.audit.queue_depth() as i64,
            audit_written: self.audit.written.load(Relaxed),
            audit_dropped: self.audit.failed.load(Relaxed),
            audit_backpressure: self.audit.backpressure.load(Relaxed),
            spans_dropped,
        }
    }
}

/// The router of the `metrics.listen` address: `/metrics` and nothing else.
pub fn scrape_router(state: Arc<AppState>) -> axum::Router {
    routes()
        .fallback(|| async { ApiError::not_found("this address serves only /metrics") })
        .with_state(state)
}
