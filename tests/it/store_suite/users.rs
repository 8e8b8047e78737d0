//! The storage suite, users (on every backend, see `store_suite`): insert, read, list order,
//! conflicts, patches and deletes, exact round trips, and concurrent first registrations.

use chrono::{DateTime, Duration, Utc};
use reflow::domain::{Email, GroupName, Role, UserId};
use reflow::store::{StoreError, UserPatch, UserRecord};

use super::{groups, now_micros, open, token_record, user_record};
use crate::support;

#[tokio::test]
async fn users_insert_read_list_and_first_admin() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let t0 = now_micros();

        let first = user_record("First@Example.COM", "user", &[], t0);
        assert_eq!(
            first.email.as_str(),
            "first@example.com",
            "Email::parse lowercases"
        );
        let role = store.insert_user(&first, true).await.unwrap();
        assert_eq!(
            role,
            Role::admin(),
            "[{label}] first user on an empty table becomes admin"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            2,
            "[{label}] insert bumps revision"
        );

        let second = user_record(
            "second@example.com",
            "user",
            &["ops"],
            t0 + Duration::seconds(1),
        );
        let role = store.insert_user(&second, true).await.unwrap();
        assert_eq!(
            role,
            Role::user(),
            "[{label}] second user keeps the requested role"
        );
        assert_eq!(store.revision().await.unwrap(), 3, "[{label}]");

        let third = user_record("third@example.com", "dev", &[], t0 + Duration::seconds(2));
        let role = store.insert_user(&third, false).await.unwrap();
        assert_eq!(role, Role::parse("dev").unwrap(), "[{label}]");

        let got = store.user(first.id).await.unwrap().expect("first by id");
        let expected_first = UserRecord {
            role: Role::admin(),
            ..first.clone()
        };
        assert_eq!(
            got, expected_first,
            "[{label}] user() round-trips the stored role"
        );

        let by_email = store
            .user_by_email(&Email::parse("FIRST@example.com").unwrap())
            .await
            .unwrap()
            .expect("first by email (case-insensitive through Email::parse)");
        assert_eq!(by_email, expected_first, "[{label}]");
        assert_eq!(
            store.user(UserId::new()).await.unwrap(),
            None,
            "[{label}] unknown id"
        );
        assert_eq!(
            store
                .user_by_email(&Email::parse("nobody@example.com").unwrap())
                .await
                .unwrap(),
            None,
            "[{label}] unknown email"
        );

        let list = store.list_users().await.unwrap();
        let emails: Vec<&str> = list.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(
            emails,
            [
                "first@example.com",
                "second@example.com",
                "third@example.com"
            ],
            "[{label}] list_users is ordered by created_at"
        );
        assert_eq!(list[1], second, "[{label}]");
        assert_eq!(list[2], third, "[{label}]");
        store.close().await;
    }
}

#[tokio::test]
async fn list_users_orders_by_created_at_then_email_across_precisions() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        // Whole second, millisecond and microsecond timestamps in the same second: the order
        // must be chronological whatever the stored text form looks like.
        let base = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |micros: i64| base + Duration::microseconds(micros);
        let rows = [
            ("d@example.com", at(100_200)),
            ("a@example.com", at(500_000)),
            ("c@example.com", at(0)),
            ("b@example.com", at(100_000)),
            ("e@example.com", at(100_000)), // ties with b: email decides
            ("f@example.com", at(1_000_000)),
        ];
        for (email, t) in rows {
            store
                .insert_user(&user_record(email, "user", &[], t), false)
                .await
                .unwrap();
        }
        let emails: Vec<String> = store
            .list_users()
            .await
            .unwrap()
            .iter()
            .map(|u| u.email.to_string())
            .collect();
        assert_eq!(
            emails,
            [
                "c@example.com",
                "b@example.com",
                "e@example.com",
                "d@example.com",
                "a@example.com",
                "f@example.com"
            ],
            "[{label}] chronological order, then email"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn duplicate_email_is_a_conflict() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let a = user_record("dup@example.com", "user", &[], now_micros());
        store.insert_user(&a, false).await.unwrap();
        let rev = store.revision().await.unwrap();
        // Same email, different case: Email::parse lowercases, so it is the same account.
        let b = user_record("DUP@example.com", "admin", &[], now_micros());
        let err = store.insert_user(&b, false).await.unwrap_err();
        match &err {
            StoreError::Conflict(what) => {
                assert!(
                    what.contains("dup@example.com"),
                    "[{label}] conflict names the email: {what}"
                )
            }
            other => panic!("[{label}] expected Conflict, got {other:?}"),
        }
        assert!(
            err.to_string().contains("already exists"),
            "[{label}] {err}"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            rev,
            "[{label}] failed insert must not bump revision"
        );
        assert_eq!(
            store.list_users().await.unwrap(),
            vec![a],
            "[{label}] the original is untouched"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn update_and_delete_users() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let t0 = now_micros() - Duration::minutes(5);
        let u = user_record("pat@example.com", "user", &["ops"], t0);
        store.insert_user(&u, false).await.unwrap();
        let rev = store.revision().await.unwrap();

        let patch = UserPatch {
            role: Some(Role::parse("dev").unwrap()),
            groups: Some(groups(&["a", "b"])),
            password_hash: Some("$argon2id$new".into()),
            end_sessions: true,
        };
        let before = Utc::now();
        let updated = store
            .update_user(u.id, &patch)
            .await
            .unwrap()
            .expect("user exists");
        assert_eq!(
            store.revision().await.unwrap(),
            rev + 1,
            "[{label}] update bumps revision by one"
        );
        assert_eq!(updated.role, Role::parse("dev").unwrap(), "[{label}]");
        assert_eq!(updated.groups, groups(&["a", "b"]), "[{label}]");
        assert_eq!(updated.password_hash, "$argon2id$new", "[{label}]");
        assert_eq!(updated.session_generation, 1, "[{label}] sessions ended");
        assert_eq!(updated.email, u.email, "[{label}]");
        assert_eq!(updated.created_at, t0, "[{label}] created_at is kept");
        assert!(
            updated.updated_at > t0 && updated.updated_at >= before - Duration::milliseconds(1),
            "[{label}] updated_at moved forward: {} (was {t0})",
            updated.updated_at
        );
        assert_eq!(
            store.user(u.id).await.unwrap(),
            Some(updated.clone()),
            "[{label}] returned = stored"
        );

        // A partial patch changes only what it names.
        let only_groups = UserPatch {
            groups: Some(vec![]),
            ..UserPatch::default()
        };
        let updated2 = store
            .update_user(u.id, &only_groups)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(updated2.groups, Vec::<GroupName>::new(), "[{label}]");
        assert_eq!(updated2.role, updated.role, "[{label}] role untouched");
        assert_eq!(
            updated2.password_hash, updated.password_hash,
            "[{label}] hash untouched"
        );
        assert_eq!(store.revision().await.unwrap(), rev + 2, "[{label}]");

        // Unknown id: None and no revision bump.
        let none = store.update_user(UserId::new(), &patch).await.unwrap();
        assert_eq!(none, None, "[{label}] update of an unknown id");
        assert_eq!(
            store.revision().await.unwrap(),
            rev + 2,
            "[{label}] no-op update must not bump"
        );

        assert!(
            store.delete_user(u.id).await.unwrap().is_some(),
            "[{label}] first delete"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            rev + 3,
            "[{label}] delete bumps by one"
        );
        assert!(
            store.delete_user(u.id).await.unwrap().is_none(),
            "[{label}] second delete"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            rev + 3,
            "[{label}] no-op delete must not bump"
        );
        assert_eq!(store.user(u.id).await.unwrap(), None, "[{label}]");
        assert!(store.list_users().await.unwrap().is_empty(), "[{label}]");
        store.close().await;
    }
}

#[tokio::test]
async fn timestamps_and_groups_round_trip_exactly() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let created = now_micros() - Duration::days(400);
        let mut u = user_record(
            "rt@example.com",
            "user",
            &["zeta", "alpha", "ops-team", "g_1"],
            created,
        );
        // Microsecond precision with and without trailing zeros, distinct created/updated.
        u.updated_at = now_micros();
        store.insert_user(&u, false).await.unwrap();
        let back = store.user(u.id).await.unwrap().unwrap();
        assert_eq!(back, u, "[{label}] user round-trip");
        assert_eq!(
            back.created_at.timestamp_micros(),
            created.timestamp_micros(),
            "[{label}]"
        );
        assert_eq!(
            back.groups, u.groups,
            "[{label}] group order kept as written"
        );

        let whole_second = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let t = token_record(
            u.id,
            "laptop ✓ (work)",
            created + Duration::microseconds(7),
            Some(whole_second),
        );
        store.insert_api_token(&t).await.unwrap();
        assert_eq!(
            store.api_token(t.id).await.unwrap(),
            Some(t.clone()),
            "[{label}] token round-trip"
        );
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_registrations_make_exactly_one_admin() {
    // Availability failures are collected so that every backend is still checked.
    let mut availability = Vec::new();
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let u = user_record(&format!("racer{i}@example.com"), "user", &[], now_micros());
                store.insert_user(&u, true).await
            }));
        }
        let mut roles = Vec::new();
        let mut errors = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(role) => roles.push(role),
                Err(e) => errors.push(e.to_string()),
            }
        }
        // The invariant first: however many inserts got through, at most one is admin.
        let admins = roles.iter().filter(|r| r.is_admin()).count();
        assert_eq!(
            admins, 1,
            "[{label}] returned roles: {roles:?} (errors: {errors:?})"
        );
        let users = store.list_users().await.unwrap();
        assert_eq!(
            users.iter().filter(|u| u.role.is_admin()).count(),
            1,
            "[{label}] stored admins"
        );
        // Then availability: a registration must not fail just because another one raced it.
        if errors.is_empty() {
            assert_eq!(users.len(), 20, "[{label}]");
            assert_eq!(
                store.revision().await.unwrap(),
                21,
                "[{label}] one bump per insert"
            );
        } else {
            assert_eq!(
                users.len(),
                20 - errors.len(),
                "[{label}] failed inserts left nothing"
            );
            availability.push(format!(
                "[{label}] {} of 20 failed: {errors:?}",
                errors.len()
            ));
        }
        store.close().await;
    }
    assert!(
        availability.is_empty(),
        "BUG (src/store/users.rs, Store::insert_user): concurrent \
         insert_user(first_is_admin=true) calls failed. On SQLite the transaction is DEFERRED: \
         SELECT COUNT(*) takes a read snapshot and the INSERT then has to upgrade it to a write \
         lock, which SQLite refuses at once with SQLITE_BUSY (5) / SQLITE_BUSY_SNAPSHOT (517); \
         busy_timeout does not apply. Fix: begin that transaction with BEGIN IMMEDIATE on \
         SQLite. {availability:#?}"
    );
}
