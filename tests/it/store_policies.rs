//! The policies aggregate on every backend (`support::backends()`): round-trip with subjects,
//! the seeded `admin-all`, subject add/remove, cascade on target delete, revision bumps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reflow::domain::{
    AuthType, Effect, IsolationBoundary, PolicyId, PolicyName, PolicySubjectId, ResourceType,
    Statefulness, SubjectType, TargetId, TargetName, Transport,
};
use reflow::store::{PolicyRecord, PolicySubject, Store, StoreError, TargetRecord, sort_subjects};

use crate::support;

fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn target(name: &str) -> TargetRecord {
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

fn subject(policy: PolicyId, t: SubjectType, v: Option<&str>) -> PolicySubject {
    PolicySubject {
        id: PolicySubjectId::new(),
        policy_id: policy,
        subject_type: t,
        subject_value: v.map(String::from),
    }
}

fn policy(name: &str, target: Option<TargetId>) -> PolicyRecord {
    let at = now_micros();
    let id = PolicyId::new();
    let mut subjects = vec![
        subject(id, SubjectType::Role, Some("dev")),
        subject(id, SubjectType::Everyone, None),
        subject(id, SubjectType::Group, Some("ops")),
        subject(id, SubjectType::User, Some("alice@example.com")),
    ];
    sort_subjects(&mut subjects);
    PolicyRecord {
        id,
        name: PolicyName::parse(name).unwrap(),
        description: "ünïcode \"quoted\"".into(),
        target_id: target,
        resource_type: ResourceType::Tool,
        resource_pattern: Some("delete_.*".into()),
        effect: Effect::Deny,
        priority: -42,
        enabled: false,
        subjects,
        created_at: at,
        updated_at: at,
    }
}

async fn open(db: &support::TestDb) -> Store {
    Store::open(&db.url, 2).await.expect("open store")
}

#[tokio::test]
async fn policies_round_trip_with_subjects_and_list_in_evaluation_order() {
    for db in support::backends().await {
        let store = open(&db).await;
        // A fresh database holds exactly the default policy.
        let seeded = store.list_policies().await.unwrap();
        assert_eq!(seeded.len(), 1, "{}", db.label);
        assert_eq!(seeded[0].name.as_str(), "admin-all");
        assert_eq!(seeded[0].priority, 1000);
        assert_eq!(seeded[0].effect, Effect::Allow);
        assert_eq!(seeded[0].resource_type, ResourceType::All);
        assert_eq!(seeded[0].subjects.len(), 1);
        assert_eq!(seeded[0].subjects[0].subject_type, SubjectType::Role);
        assert_eq!(
            seeded[0].subjects[0].subject_value.as_deref(),
            Some("admin")
        );

        let t = target("github");
        store.insert_target(&t).await.unwrap();
        let scoped = policy("scoped", Some(t.id));
        let mut global = policy("global", None);
        global.priority = 7;
        global.resource_pattern = None;
        global.subjects.clear();
        store.insert_policy(&scoped).await.unwrap();
        store.insert_policy(&global).await.unwrap();

        assert_eq!(
            store.policy(scoped.id).await.unwrap().as_ref(),
            Some(&scoped),
            "{}",
            db.label
        );
        assert_eq!(
            store.policy_by_name(&global.name).await.unwrap().as_ref(),
            Some(&global),
            "{}",
            db.label
        );
        assert_eq!(store.policy(PolicyId::new()).await.unwrap(), None);
        let names: Vec<String> = store
            .list_policies()
            .await
            .unwrap()
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        assert_eq!(names, ["admin-all", "global", "scoped"], "{}", db.label);
        let listed = store.list_policies().await.unwrap();
        assert_eq!(listed[2], scoped, "list carries subjects: {}", db.label);

        // Update replaces fields and the subject set.
        let mut changed = scoped.clone();
        changed.name = PolicyName::parse("renamed").unwrap();
        changed.target_id = None;
        changed.resource_pattern = None;
        changed.effect = Effect::Allow;
        changed.subjects.truncate(1);
        changed.updated_at = now_micros();
        assert!(store.update_policy(&changed).await.unwrap());
        assert_eq!(
            store.policy(scoped.id).await.unwrap(),
            Some(changed.clone()),
            "{}",
            db.label
        );
        let mut ghost = changed.clone();
        ghost.id = PolicyId::new();
        ghost.name = PolicyName::parse("ghost").unwrap();
        assert!(!store.update_policy(&ghost).await.unwrap());

        // Subjects one at a time.
        let extra = subject(changed.id, SubjectType::Group, Some("qa"));
        assert!(store.add_policy_subject(&extra).await.unwrap());
        let got = store.policy(changed.id).await.unwrap().unwrap();
        assert!(got.subjects.contains(&extra), "{}", db.label);
        assert!(
            !store
                .add_policy_subject(&subject(PolicyId::new(), SubjectType::Everyone, None))
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_policy_subject(global.id, extra.id)
                .await
                .unwrap(),
            "subject of another policy"
        );
        assert!(
            store
                .remove_policy_subject(changed.id, extra.id)
                .await
                .unwrap()
        );
        assert_eq!(
            store.policy(changed.id).await.unwrap().unwrap().subjects,
            changed.subjects
        );

        assert!(store.delete_policy(global.id).await.unwrap());
        assert!(!store.delete_policy(global.id).await.unwrap());
        assert_eq!(store.policy(global.id).await.unwrap(), None);
        store.close().await;
    }
}

#[tokio::test]
async fn names_are_unique_and_target_deletion_cascades() {
    for db in support::backends().await {
        let store = open(&db).await;
        let t = target("fs");
        store.insert_target(&t).await.unwrap();
        let p = policy("on-fs", Some(t.id));
        store.insert_policy(&p).await.unwrap();
        let mut dup = policy("on-fs", None);
        dup.subjects.clear();
        match store.insert_policy(&dup).await {
            Err(StoreError::Conflict(what)) => assert!(what.contains("on-fs"), "{what}"),
            other => panic!("{}: expected a conflict, got {other:?}", db.label),
        }
        // A failed insert leaves none of its subjects behind.
        assert_eq!(store.policy(dup.id).await.unwrap(), None);

        assert!(store.delete_target(t.id).await.unwrap());
        assert_eq!(
            store.policy(p.id).await.unwrap(),
            None,
            "cascade: {}",
            db.label
        );
        let names: Vec<String> = store
            .list_policies()
            .await
            .unwrap()
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        assert_eq!(names, ["admin-all"], "{}", db.label);
        store.close().await;
    }
}

#[tokio::test]
async fn every_policy_write_bumps_the_revision_and_failed_ones_do_not() {
    for db in support::backends().await {
        let store = open(&db).await;
        let mut rev = store.revision().await.unwrap();
        let mut bumped = |new: i64, what: &str| {
            assert_eq!(new, rev + 1, "{what}: {}", db.label);
            rev = new;
        };
        let p = policy("rev", None);
        store.insert_policy(&p).await.unwrap();
        bumped(store.revision().await.unwrap(), "insert");
        let mut q = p.clone();
        q.priority = 1;
        store.update_policy(&q).await.unwrap();
        bumped(store.revision().await.unwrap(), "update");
        let s = subject(p.id, SubjectType::Role, Some("x"));
        store.add_policy_subject(&s).await.unwrap();
        bumped(store.revision().await.unwrap(), "add subject");
        store.remove_policy_subject(p.id, s.id).await.unwrap();
        bumped(store.revision().await.unwrap(), "remove subject");
        store.delete_policy(p.id).await.unwrap();
        bumped(store.revision().await.unwrap(), "delete");

        // Writes that change nothing leave the revision alone.
        assert!(
            store
                .insert_policy(&policy("admin-all", None))
                .await
                .is_err()
        );
        assert!(!store.delete_policy(p.id).await.unwrap());
        assert!(!store.update_policy(&q).await.unwrap());
        assert!(!store.remove_policy_subject(p.id, s.id).await.unwrap());
        assert_eq!(store.revision().await.unwrap(), rev, "{}", db.label);
        store.close().await;
    }
}
