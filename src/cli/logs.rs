//! `reflow logs`: the audit log straight from the database, as a table or JSON lines, optionally
//! following new entries until Ctrl-C.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;

use super::{Context, output};
use crate::app::open_store;
use crate::domain::UserId;
use crate::service::{AuditService, LogQuery, MAX_LOG_PAGE, UserService, parse_since};
use crate::store::AuditRecord;

/// How often `--follow` looks for new entries.
const POLL: Duration = Duration::from_secs(1);
/// `--follow` re-reads this far behind the newest entry printed: rows are stamped when a request
/// ends but written a moment later (batched, or by another replica with its own clock).
const LAG: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing new entries, in time order, until Ctrl-C.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only entries of this user (email or user id).
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// Only entries for this target (name).
    #[arg(long, value_name = "T")]
    target: Option<String>,
    /// Only this MCP method, e.g. tools/call.
    #[arg(long, value_name = "M")]
    method: Option<String>,
    /// Only allowed or only denied requests: allow or deny.
    #[arg(long)]
    decision: Option<String>,
    /// Only entries since this time: a duration back from now ("1h", "2d") or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Only the entry of this request: its W3C trace id (32 hex digits), as in a trace viewer.
    #[arg(long, value_name = "ID")]
    trace_id: Option<String>,
    /// How many of the most recent entries to print first (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

pub async fn run(ctx: &Context, args: LogsArgs) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    super::init_logging(&settings, true);
    let store = open_store(&settings).await?;
    let result = print_logs(ctx, &store, args).await;
    store.close().await;
    result
}

async fn print_logs(
    ctx: &Context,
    store: &crate::store::Store,
    args: LogsArgs,
) -> anyhow::Result<()> {
    let users = UserService::new(store.clone());
    let user_id = match &args.user {
        None => None,
        // An id need not be an account: external (OIDC) users have none.
        Some(u) => match u.parse::<UserId>() {
            Ok(id) => Some(id),
            Err(_) => Some(users.find(u).await?.id),
        },
    };
    let emails: HashMap<UserId, String> = users
        .list()
        .await?
        .into_iter()
        .map(|u| (u.id, u.email.to_string()))
        .collect();
    let mut printer = Printer {
        json: ctx.json,
        emails,
        header_done: false,
    };
    // Registered up front, so a Ctrl-C arriving at any point (even during a poll) ends the
    // loop cleanly instead of being lost or killing the process mid-line.
    let interrupt = args
        .follow
        .then(|| tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()))
        .transpose()?;
    let audit = AuditService::new(store.clone());
    let mut query = LogQuery {
        limit: Some(args.limit),
        user_id,
        target: args.target,
        method: args.method,
        decision: args.decision,
        since: args.since,
        trace_id: args.trace_id,
        ..LogQuery::default()
    };
    let mut rows = audit.query(&query).await?;
    let truncated = rows.len() as i64 == args.limit;
    rows.reverse();
    if rows.is_empty() && !ctx.json && !args.follow {
        println!("(no entries)");
    }
    printer.print(&rows)?;

    // Seen ids in the look-back window, so overlapping polls print each row once.
    let mut seen: HashMap<uuid::Uuid, DateTime<Utc>> =
        rows.iter().map(|r| (r.id, r.created_at)).collect();
    let mut newest = rows.last().map(|r| r.created_at).unwrap_or_else(Utc::now);
    // The look-back must not reach before --since, nor before the first row printed when
    // --limit left older ones out on purpose.
    let since = query.since.as_deref().map(parse_since).transpose()?;
    let first = rows.first().filter(|_| truncated).map(|r| r.created_at);
    let floor = since.max(first);
    query.limit = Some(MAX_LOG_PAGE);
    let Some(mut interrupt) = interrupt else {
        return Ok(());
    };
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
        let from = newest - LAG;
        query.since = Some(from.to_rfc3339_opts(SecondsFormat::Nanos, true));
        let mut fresh = Vec::new();
        for page in 0.. {
            query.offset = Some(page * MAX_LOG_PAGE);
            let batch = audit.query(&query).await?;
            let full = batch.len() as i64 == MAX_LOG_PAGE;
            fresh.extend(
                batch.into_iter().filter(|r| {
                    !seen.contains_key(&r.id) && floor.is_none_or(|f| r.created_at >= f)
                }),
            );
            if !full {
                break;
            }
        }
        fresh.sort_by_key(|r| (r.created_at, r.id));
        printer.print(&fresh)?;
        for r in &fresh {
            seen.insert(r.id, r.created_at);
            newest = newest.max(r.created_at);
        }
        let keep_from = newest - LAG - LAG;
        seen.retain(|_, t| *t >= keep_from);
    }
}

struct Printer {
    json: bool,
    emails: HashMap<UserId, String>,
    header_done: bool,
}

const COLUMNS: [(&str, usize); 10] = [
    ("TIME", 20),
    ("USER", 24),
    ("METHOD", 16),
    ("TARGET", 14),
    ("NAME", 24),
    ("DECISION", 8),
    ("POLICY", 16),
    ("STATUS", 6),
    ("MS", 6),
    ("TRACE", 0),
];

impl Printer {
    /// One line per entry: followed output appends, so no table borders to close.
    fn print(&mut self, rows: &[AuditRecord]) -> anyhow::Result<()> {
        if self.json {
            for r in rows {
                println!("{}", serde_json::to_string(r)?);
            }
            return Ok(());
        }
        if rows.is_empty() {
            return Ok(());
        }
        if !self.header_done {
            self.header_done = true;
            println!("{}", line(COLUMNS.map(|(h, _)| h.to_string())));
        }
        let dash = || "-".to_string();
        for r in rows {
            let user = r
                .user_id
                .map(|u| {
                    self.emails
                        .get(&u)
                        .cloned()
                        .unwrap_or_else(|| u.to_string())
                })
                .unwrap_or_else(dash);
            println!(
                "{}",
                line([
                    output::time(&r.created_at),
                    user,
                    r.method.clone(),
                    r.target_name.clone().unwrap_or_else(dash),
                    r.name.clone().unwrap_or_else(dash),
                    r.decision.as_str().to_string(),
                    r.policy_name.clone().unwrap_or_else(dash),
                    r.response_status
                        .map(|s| s.to_string())
                        .unwrap_or_else(dash),
                    r.duration_ms.to_string(),
                    r.trace_id.clone().unwrap_or_else(dash),
                ])
            );
        }
        Ok(())
    }
}

fn line(cells: [String; 10]) -> String {
    let mut out = String::new();
    for ((_, width), cell) in COLUMNS.iter().zip(cells) {
        out.push_str(&format!("{cell:<width$} "));
    }
    out.trim_end().to_string()
}
