//! The storage suite: every test runs on every backend (`support::backends()`: SQLite always,
//! Postgres when REFLOW_TEST_POSTGRES_URL is set), each on its own fresh database. Here: the
//! shared record builders, migrations, request states and task owners; users in `users`, API
//! tokens in `tokens`.

use chrono::{DateTime, Duration, Utc};
use reflow::domain::{ApiTokenId, Email, GroupName, Role, TokenName, UserId};
use reflow::store::{ApiTokenRecord, Store, StoreError, UserRecord};

use crate::support;

mod tokens;
mod users;

/// Now, truncated to what both backends store exactly (Postgres keeps microseconds).
fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn groups(names: &[&str]) -> Vec<GroupName> {
    names.iter().map(|g| GroupName::parse(g).unwrap()).collect()
}

fn user_record(email: &str, role: &str, group_names: &[&str], at: DateTime<Utc>) -> UserRecord {
    UserRecord {
        id: UserId::new(),
        email: Email::parse(email).unwrap(),
        password_hash: format!("$argon2id$fake${email}"),
        role: Role::parse(role).unwrap(),
        groups: groups(group_names),
        created_at: at,
        updated_at: at,
        session_generation: 0,
    }
}

fn token_record(
    user: UserId,
    name: &str,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> ApiTokenRecord {
    ApiTokenRecord {
        id: ApiTokenId::new(),
        user_id: user,
        name: TokenName::parse(name).unwrap(),
        jti: uuid::Uuid::new_v4().to_string(),
        created_at,
        expires_at,
        revoked_at: None,
    }
}

async fn open(db: &support::TestDb) -> Store {
    Store::open(&db.url, 5)
        .await
        .unwrap_or_else(|e| panic!("[{}] open {}: {e}", db.label, db.url))
}

#[tokio::test]
async fn migrations_apply_once_and_report_status() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let status = store.migration_status().await.unwrap();
        let known: Vec<(i64, &str)> = status
            .iter()
            .map(|m| (m.version, m.description.as_str()))
            .collect();
        assert_eq!(
            known,
            [
                (1, "init"),
                (2, "modern state"),
                (3, "user credentials"),
                (4, "audit trace id"),
                (5, "session generation"),
                (6, "kubernetes"),
                (7, "revision notify"),
                (8, "target restarts")
            ],
            "[{label}] the known migrations: {status:?}"
        );
        assert!(
            status.iter().all(|m| m.applied_at.is_some()),
            "[{label}] every migration applied: {status:?}"
        );
        let applied = status[0]
            .applied_at
            .unwrap_or_else(|| panic!("[{label}] migration 1 must be applied: {status:?}"));
        let age = Utc::now() - applied;
        assert!(
            age > Duration::seconds(-60) && age < Duration::minutes(10),
            "[{label}] applied_at {applied} is not recent"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            1,
            "[{label}] fresh db revision"
        );

        // Migrating again is a no-op: same status, same applied time, same revision.
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        let again = store.migration_status().await.unwrap();
        assert_eq!(again.len(), 8, "[{label}] {again:?}");
        assert_eq!(
            again[0].applied_at,
            Some(applied),
            "[{label}] re-migrate changed applied_at"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            1,
            "[{label}] re-migrate bumped revision"
        );
        assert!(
            store.list_users().await.unwrap().is_empty(),
            "[{label}] no users"
        );

        // A second Store::open on the same database (e.g. the CLI next to a server) is fine too.
        let other = open(&db).await;
        assert_eq!(
            other.migration_status().await.unwrap()[0].applied_at,
            Some(applied),
            "[{label}]"
        );
        other.close().await;
        store.close().await;
    }
}

#[tokio::test]
async fn connect_without_migrate_reports_pending() {
    for db in support::backends().await {
        let label = db.label;
        let store = Store::connect(&db.url, 2).await.unwrap();
        let status = store.migration_status().await.unwrap();
        assert_eq!(status.len(), 8, "[{label}] {status:?}");
        assert!(
            status.iter().all(|m| m.applied_at.is_none()),
            "[{label}] nothing applied before migrate: {status:?}"
        );
        store.migrate().await.unwrap();
        let status = store.migration_status().await.unwrap();
        assert!(
            status.iter().all(|m| m.applied_at.is_some()),
            "[{label}] applied after migrate: {status:?}"
        );
        assert_eq!(store.revision().await.unwrap(), 1, "[{label}]");
        store.close().await;
    }
}

#[tokio::test]
async fn unsupported_url_is_rejected() {
    let err = Store::connect("mysql://root:pw@localhost/db", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err:?}");
    assert!(
        !err.to_string().contains("pw@"),
        "password must be redacted: {err}"
    );
}

#[tokio::test]
async fn a_request_state_is_claimed_once_until_it_expires() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let now = Utc::now();
        let later = now + Duration::minutes(5);
        assert!(
            store.claim_request_state("s1", later).await.unwrap(),
            "[{label}] first use"
        );
        assert!(
            !store.claim_request_state("s1", later).await.unwrap(),
            "[{label}] second use is a replay"
        );
        assert!(
            store
                .claim_request_state("s0", now - Duration::minutes(1))
                .await
                .unwrap(),
            "[{label}] another state"
        );
        assert_eq!(
            store.prune_request_states(now).await.unwrap(),
            1,
            "[{label}] only the expired one is pruned"
        );
        assert!(
            !store.claim_request_state("s1", later).await.unwrap(),
            "[{label}] a live claim survives pruning"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn task_owners_are_recorded_once_and_pruned() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let t = Utc::now();
        let alice = user_record("alice@example.com", "user", &[], t);
        let bob = user_record("bob@example.com", "user", &[], t);
        store.insert_user(&alice, false).await.unwrap();
        store.insert_user(&bob, false).await.unwrap();
        store
            .record_task_owner("fx/1", alice.id, "slow_compute", t)
            .await
            .unwrap();
        store
            .record_task_owner("fx/1", bob.id, "other", t)
            .await
            .unwrap();
        assert_eq!(
            store.task_owner("fx/1").await.unwrap(),
            Some((alice.id, "slow_compute".to_string())),
            "[{label}] the first owner stays"
        );
        assert_eq!(store.task_owner("fx/2").await.unwrap(), None, "[{label}]");
        store
            .record_task_owner("fx/old", bob.id, "greet", t - Duration::days(2))
            .await
            .unwrap();
        assert_eq!(
            store
                .prune_task_owners(t - Duration::days(1))
                .await
                .unwrap(),
            1,
            "[{label}] only the old record is pruned"
        );
        assert!(
            store.task_owner("fx/1").await.unwrap().is_some(),
            "[{label}]"
        );
        store.close().await;
    }
}
