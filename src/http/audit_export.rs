//! `GET /api/logs/export?format=csv|json`: the audit rows matching the same filters as
//! `/api/logs` (plus `until`), as a download; at most `limit` rows (default and cap 10,000).
//! Admins export everyone's rows, other users their own.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, parse_id};
use super::extract::Caller;
use crate::service::{AuditService, LogQuery, MAX_LOG_PAGE, ServiceError};
use crate::store::AuditRecord;

pub const MAX_EXPORT: i64 = 10_000;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/logs/export", get(export))
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    Csv,
    Json,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    format: Format,
    limit: Option<i64>,
    user_id: Option<String>,
    target: Option<String>,
    method: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

async fn export(
    State(state): State<Arc<AppState>>,
    Caller(caller): Caller,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let limit = p.limit.unwrap_or(MAX_EXPORT);
    if !(1..=MAX_EXPORT).contains(&limit) {
        return Err(
            ServiceError::invalid("limit", format!("must be between 1 and {MAX_EXPORT}")).into(),
        );
    }
    let requested = p
        .user_id
        .as_deref()
        .map(|u| parse_id(u, "user"))
        .transpose()?;
    let mut query = LogQuery {
        user_id: if caller.is_admin() {
            requested
        } else {
            Some(caller.user_id)
        },
        target: p.target,
        method: p.method,
        decision: p.decision,
        since: p.since,
        until: p.until,
        ..LogQuery::default()
    };
    let audit = AuditService::new(state.store.clone());
    let mut rows: Vec<AuditRecord> = Vec::new();
    while (rows.len() as i64) < limit {
        let want = (limit - rows.len() as i64).min(MAX_LOG_PAGE);
        query.limit = Some(want);
        query.offset = Some(rows.len() as i64);
        let page = audit.query(&query).await?;
        let done = (page.len() as i64) < want;
        rows.extend(page);
        if done {
            break;
        }
    }
    let (mime, body, ext) = match p.format {
        Format::Json => (
            "application/json",
            serde_json::to_string_pretty(&rows).unwrap_or_default(),
            "json",
        ),
        Format::Csv => ("text/csv; charset=utf-8", to_csv(&rows), "csv"),
    };
    let disposition = format!("attachment; filename=\"reflow-audit.{ext}\"");
    Ok((
        [
            (CONTENT_TYPE, mime.to_string()),
            (CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

const CSV_COLUMNS: [&str; 13] = [
    "id",
    "created_at",
    "user_id",
    "session_id",
    "method",
    "target_name",
    "name",
    "decision",
    "policy_name",
    "response_status",
    "error",
    "duration_ms",
    "trace_id",
];

/// RFC 4180 quoting; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does
/// not evaluate a field as a formula.
fn csv_field(raw: &str) -> String {
    let guarded = if raw.starts_with(['=', '+', '-', '@']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn to_csv(rows: &[AuditRecord]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let fields = [
            r.id.to_string(),
            r.created_at.to_rfc3339(),
            r.user_id.map(|u| u.to_string()).unwrap_or_default(),
            opt(&r.session_id),
            r.method.clone(),
            opt(&r.target_name),
            opt(&r.name),
            r.decision.as_str().to_string(),
            opt(&r.policy_name),
            r.response_status.map(|s| s.to_string()).unwrap_or_default(),
            opt(&r.error),
            r.duration_ms.to_string(),
            opt(&r.trace_id),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formula_safe() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
