//! The targets aggregate on every backend (`support::backends()`): every field round-trips,
//! names are unique, and every write bumps the revision.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reflow::domain::{AuthType, IsolationBoundary, Statefulness, TargetId, TargetName, Transport};
use reflow::store::{Store, StoreError, TargetRecord};

use crate::support;

/// Now, truncated to what both backends store exactly (Postgres keeps microseconds).
fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn http_target(name: &str) -> TargetRecord {
    let at = now_micros();
    TargetRecord {
        id: TargetId::new(),
        name: TargetName::parse(name).unwrap(),
        url: Some(format!("https://{name}.example.com/mcp")),
        transport: Transport::StreamableHttp,
        command: None,
        args: Vec::new(),
        cwd: None,
        image: None,
        port: None,
        health_path: None,
        statefulness: Statefulness::Stateless,
        isolation_boundary: IsolationBoundary::Shared,
        auth_type: AuthType::None,
        auth_header_name: None,
        enabled: true,
        prefix: None,
        timeout: None,
        env: BTreeMap::new(),
        tags: Vec::new(),
        user_env: Vec::new(),
        user_token: false,
        resources: Default::default(),
        created_at: at,
        updated_at: at,
        restarts: 0,
    }
}

/// A record with every optional field set to a non-default value.
fn full_target(name: &str) -> TargetRecord {
    TargetRecord {
        url: None,
        transport: Transport::Stdio,
        command: Some("npx".into()),
        args: vec![
            "-y".into(),
            "--flag=a b".into(),
            "ünïcode".into(),
            String::new(),
        ],
        cwd: Some("/srv/mcp".into()),
        image: Some("ghcr.io/x/y:1".into()),
        port: Some(65535),
        health_path: Some("/healthz".into()),
        statefulness: Statefulness::Stateful,
        isolation_boundary: IsolationBoundary::PerGroup,
        auth_type: AuthType::Header,
        auth_header_name: Some("X-Api-Key".into()),
        enabled: false,
        prefix: Some("".into()),
        timeout: Some(Duration::from_millis(1500)),
        env: BTreeMap::from([
            ("LOG_LEVEL".to_string(), "debug".to_string()),
            ("QUOTE".to_string(), "a \"b\" = c".to_string()),
        ]),
        tags: vec!["prod".into(), "team.a".into()],
        user_env: vec!["GITHUB_TOKEN".into()],
        user_token: true,
        resources: Default::default(),
        ..http_target(name)
    }
}

async fn open(db: &support::TestDb) -> Store {
    Store::open(&db.url, 2).await.expect("open store")
}

#[tokio::test]
async fn every_field_round_trips_through_insert_get_and_list() {
    for db in support::backends().await {
        let store = open(&db).await;
        let full = full_target("full");
        let plain = http_target("alpha");
        store.insert_target(&full).await.unwrap();
        store.insert_target(&plain).await.unwrap();

        assert_eq!(
            store.target(full.id).await.unwrap().as_ref(),
            Some(&full),
            "{}",
            db.label
        );
        assert_eq!(
            store.target(plain.id).await.unwrap().as_ref(),
            Some(&plain),
            "{}",
            db.label
        );
        let by_name = store.target_by_name(&full.name).await.unwrap();
        assert_eq!(by_name.as_ref(), Some(&full), "{}", db.label);
        assert_eq!(
            store
                .target_by_name(&TargetName::parse("nope").unwrap())
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.target(TargetId::new()).await.unwrap(), None);

        let list = store.list_targets().await.unwrap();
        assert_eq!(
            list,
            vec![plain.clone(), full.clone()],
            "by name: {}",
            db.label
        );

        // Prefix: Some("") (unprefixed) and None (the name) are different states.
        assert_eq!(list[1].prefix.as_deref(), Some(""));
        assert_eq!(list[1].effective_prefix(), "");
        assert_eq!(list[0].prefix, None);
        assert_eq!(list[0].effective_prefix(), "alpha");
        store.close().await;
    }
}

#[tokio::test]
async fn update_replaces_every_field_and_delete_removes() {
    for db in support::backends().await {
        let store = open(&db).await;
        let original = http_target("one");
        store.insert_target(&original).await.unwrap();

        let mut changed = full_target("renamed");
        changed.id = original.id;
        changed.created_at = original.created_at;
        changed.updated_at = now_micros() + chrono::Duration::seconds(5);
        assert!(store.update_target(&changed).await.unwrap(), "{}", db.label);
        assert_eq!(
            store.target(original.id).await.unwrap(),
            Some(changed.clone())
        );
        assert_eq!(
            store
                .target_by_name(&TargetName::parse("one").unwrap())
                .await
                .unwrap(),
            None,
            "the old name is gone"
        );

        // And back: optional fields cleared, prefix None again.
        let mut back = original.clone();
        back.updated_at = changed.updated_at;
        assert!(store.update_target(&back).await.unwrap());
        assert_eq!(store.target(original.id).await.unwrap(), Some(back));

        let ghost = http_target("ghost");
        assert!(!store.update_target(&ghost).await.unwrap(), "absent id");

        assert!(store.delete_target(original.id).await.unwrap());
        assert!(!store.delete_target(original.id).await.unwrap(), "twice");
        assert_eq!(store.target(original.id).await.unwrap(), None);
        assert!(store.list_targets().await.unwrap().is_empty());
        store.close().await;
    }
}

#[tokio::test]
async fn names_are_unique_on_insert_and_rename() {
    for db in support::backends().await {
        let store = open(&db).await;
        let a = http_target("a");
        let b = http_target("b");
        store.insert_target(&a).await.unwrap();
        store.insert_target(&b).await.unwrap();

        let dup = http_target("a");
        match store.insert_target(&dup).await {
            Err(StoreError::Conflict(what)) => assert!(what.contains("named a"), "{what}"),
            other => panic!("{}: expected Conflict, got {other:?}", db.label),
        }
        assert_eq!(store.target(dup.id).await.unwrap(), None, "nothing stored");

        let mut renamed = b.clone();
        renamed.name = TargetName::parse("a").unwrap();
        assert!(
            matches!(
                store.update_target(&renamed).await,
                Err(StoreError::Conflict(_))
            ),
            "{}",
            db.label
        );
        assert_eq!(store.target(b.id).await.unwrap(), Some(b), "unchanged");
        store.close().await;
    }
}

#[tokio::test]
async fn writes_bump_the_revision_and_failed_ones_do_not() {
    for db in support::backends().await {
        let store = open(&db).await;
        let r0 = store.revision().await.unwrap();
        let t = http_target("rev");
        store.insert_target(&t).await.unwrap();
        let r1 = store.revision().await.unwrap();
        assert_eq!(r1, r0 + 1, "insert: {}", db.label);

        assert!(store.insert_target(&http_target("rev")).await.is_err());
        assert_eq!(store.revision().await.unwrap(), r1, "failed insert");

        let mut t2 = t.clone();
        t2.enabled = false;
        store.update_target(&t2).await.unwrap();
        let r2 = store.revision().await.unwrap();
        assert_eq!(r2, r1 + 1, "update");

        assert!(!store.update_target(&http_target("absent")).await.unwrap());
        assert!(!store.delete_target(TargetId::new()).await.unwrap());
        assert_eq!(store.revision().await.unwrap(), r2, "no-op writes");

        store.delete_target(t.id).await.unwrap();
        assert_eq!(store.revision().await.unwrap(), r2 + 1, "delete");
        store.close().await;
    }
}
