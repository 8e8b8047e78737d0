//! The audit log on every backend: batch insert, filtered queries, retention pruning.

use chrono::{DateTime, Duration, Utc};
use reflow::domain::UserId;
use reflow::store::{AuditDecision, AuditFilter, AuditRecord, Store};

fn row(user: UserId, method: &str, decision: AuditDecision, at: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::new_v4(),
        session_id: Some("s1".into()),
        user_id: Some(user),
        method: method.into(),
        target_name: Some("github".into()),
        name: Some("github__x".into()),
        decision,
        policy_name: Some("p".into()),
        response_status: Some(-32602),
        error: Some("unknown tool: github__x".into()),
        duration_ms: 12,
        request_body: None,
        trace_id: Some(format!("{:032x}", at.timestamp_micros())),
        created_at: DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap(),
    }
}

#[tokio::test]
async fn audit_rows_round_trip_filter_and_prune() {
    for db in crate::support::backends().await {
        let store = Store::open(&db.url, 5).await.unwrap();
        let (a, b) = (UserId::new(), UserId::new());
        let now = Utc::now();
        let old = row(
            a,
            "tools/call",
            AuditDecision::Allow,
            now - Duration::days(40),
        );
        let rows = vec![
            old.clone(),
            row(
                a,
                "tools/call",
                AuditDecision::Deny,
                now - Duration::seconds(2),
            ),
            row(
                b,
                "tools/list",
                AuditDecision::Allow,
                now - Duration::seconds(1),
            ),
        ];
        store.insert_audit(&rows).await.unwrap();
        let all = store
            .query_audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 3, "{}", db.label);
        assert_eq!(
            all[0], rows[2],
            "newest first, every field round-trips ({})",
            db.label
        );
        let denied = AuditFilter {
            limit: 10,
            decision: Some(AuditDecision::Deny),
            ..Default::default()
        };
        assert_eq!(
            store.query_audit(&denied).await.unwrap(),
            vec![rows[1].clone()],
            "{}",
            db.label
        );
        let of_a = AuditFilter {
            limit: 10,
            user_id: Some(a),
            method: Some("tools/call".into()),
            ..Default::default()
        };
        assert_eq!(
            store.query_audit(&of_a).await.unwrap().len(),
            2,
            "{}",
            db.label
        );
        let recent = AuditFilter {
            limit: 10,
            since: Some(now - Duration::hours(1)),
            ..Default::default()
        };
        assert_eq!(
            store.query_audit(&recent).await.unwrap().len(),
            2,
            "{}",
            db.label
        );
        let by_trace = AuditFilter {
            limit: 10,
            trace_id: rows[1].trace_id.clone(),
            ..Default::default()
        };
        assert_eq!(
            store.query_audit(&by_trace).await.unwrap(),
            vec![rows[1].clone()],
            "{}",
            db.label
        );
        let paged = AuditFilter {
            limit: 1,
            offset: 1,
            ..Default::default()
        };
        assert_eq!(
            store.query_audit(&paged).await.unwrap(),
            vec![rows[1].clone()],
            "{}",
            db.label
        );
        assert_eq!(
            store.prune_audit(now - Duration::days(30)).await.unwrap(),
            1,
            "{}",
            db.label
        );
        let left = store
            .query_audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(!left.contains(&old), "{}", db.label);
        store.close().await;
    }
}
