//! The audit writer on every backend: rows gather for the linger without waking the writer per
//! row, a full batch is written at once, shutdown writes what is lingering, and the dashboard's
//! activity counts each row as it is recorded.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reflow::activity::{Activity, Scope};
use reflow::audit::AuditLog;
use reflow::domain::UserId;
use reflow::store::{AuditDecision, AuditFilter, AuditRecord, Store};

fn row(user: UserId) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::new_v4(),
        session_id: None,
        user_id: Some(user),
        method: "tools/call".into(),
        target_name: Some("up".into()),
        name: Some("up__echo".into()),
        decision: AuditDecision::Allow,
        policy_name: Some("p".into()),
        response_status: Some(0),
        error: None,
        duration_ms: 1,
        request_body: None,
        trace_id: None,
        created_at: chrono::Utc::now(),
    }
}

/// Waits (bounded) until the writer has written `n` rows; the bound is far below the linger.
async fn written(log: &AuditLog, n: u64) -> u64 {
    for _ in 0..400 {
        if log.written.load(Ordering::Relaxed) >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    log.written.load(Ordering::Relaxed)
}

#[tokio::test]
async fn a_full_batch_is_written_at_once_and_shutdown_writes_the_lingering_rows() {
    for db in crate::support::backends().await {
        let store = Store::open(&db.url, 2).await.unwrap();
        let activity = Arc::new(Activity::default());
        // A queue of 3 makes a batch of 3; the hour-long linger would hold any smaller batch
        // for the rest of the test.
        let (log, writer) = AuditLog::start_lingering(
            store.clone(),
            3,
            false,
            activity.clone(),
            Duration::from_secs(3600),
        );
        let user = UserId::new();
        for _ in 0..3 {
            log.record(row(user)).await;
        }
        assert_eq!(
            written(&log, 3).await,
            3,
            "a full batch is written without waiting out the linger ({})",
            db.label
        );
        // Counted as recorded, not when written and not by a task that must first run.
        let now = chrono::Utc::now().timestamp();
        log.record(row(user)).await;
        assert_eq!(
            activity.snapshot(Scope::User(user), now).totals.requests_1m,
            4,
            "{}",
            db.label
        );
        writer.finish(Duration::from_secs(20)).await;
        assert_eq!(
            log.written.load(Ordering::Relaxed),
            4,
            "shutdown ends the linger and writes the row ({})",
            db.label
        );
        assert_eq!(log.failed.load(Ordering::Relaxed), 0, "{}", db.label);
        let of_user = AuditFilter {
            limit: 10,
            user_id: Some(user),
            ..Default::default()
        };
        assert_eq!(
            store.query_audit(&of_user).await.unwrap().len(),
            4,
            "{}",
            db.label
        );
    }
}
