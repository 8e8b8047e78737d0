//! Reading the audit log: filter validation shared by `GET /api/logs` and `reflow logs`.

use chrono::{DateTime, Utc};

use super::ServiceError;
use crate::domain::UserId;
use crate::store::{AuditDecision, AuditFilter, AuditRecord, Store};

pub const MAX_LOG_PAGE: i64 = 1000;

/// Raw filter values as a user gives them (query string or flags).
#[derive(Clone, Debug, Default)]
pub struct LogQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub user_id: Option<UserId>,
    pub target: Option<String>,
    pub method: Option<String>,
    pub decision: Option<String>,
    /// RFC 3339 time, or a duration back from now such as "15m" or "2d".
    pub since: Option<String>,
    /// RFC 3339 time or a duration back from now: rows before it.
    pub until: Option<String>,
    /// A W3C trace id: 32 hex digits.
    pub trace_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AuditService {
    store: Store,
}

pub fn parse_since(raw: &str) -> Result<DateTime<Utc>, ServiceError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = humantime::parse_duration(raw).map_err(|_| {
        ServiceError::invalid(
            "since",
            format!("{raw:?} is neither an RFC 3339 time nor a duration such as \"1h\""),
        )
    })?;
    let d =
        chrono::Duration::from_std(d).map_err(|e| ServiceError::invalid("since", e.to_string()))?;
    Ok(Utc::now() - d)
}

impl AuditService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn query(&self, q: &LogQuery) -> Result<Vec<AuditRecord>, ServiceError> {
        let limit = q.limit.unwrap_or(100);
        if !(1..=MAX_LOG_PAGE).contains(&limit) {
            return Err(ServiceError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LOG_PAGE}"),
            ));
        }
        let offset = q.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ServiceError::invalid("offset", "must not be negative"));
        }
        let decision = q
            .decision
            .as_deref()
            .map(|d| {
                AuditDecision::parse(d)
                    .ok_or_else(|| ServiceError::invalid("decision", "must be allow or deny"))
            })
            .transpose()?;
        let filter = AuditFilter {
            limit,
            offset,
            user_id: q.user_id,
            target: q.target.clone(),
            method: q.method.clone(),
            decision,
            since: q.since.as_deref().map(parse_since).transpose()?,
            until: q
                .until
                .as_deref()
                .map(|u| {
                    parse_since(u).map_err(|_| {
                        ServiceError::invalid(
                            "until",
                            format!(
                                "{u:?} is neither an RFC 3339 time nor a duration such as \"1h\""
                            ),
                        )
                    })
                })
                .transpose()?,
            trace_id: q
                .trace_id
                .as_deref()
                .map(|t| {
                    let t = t.trim().to_ascii_lowercase();
                    if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                        Ok(t)
                    } else {
                        Err(ServiceError::invalid(
                            "trace_id",
                            "must be a W3C trace id: 32 hex digits",
                        ))
                    }
                })
                .transpose()?,
        };
        Ok(self.store.query_audit(&filter).await?)
    }
}
