//! The storage suite, API tokens (on every backend, see `store_suite`): insert, list, active
//! set, revoke, the cascade on user delete, and a token of an unknown user.

use chrono::{Duration, Utc};
use reflow::domain::{ApiTokenId, UserId};
use reflow::store::ApiTokenRecord;

use super::{now_micros, open, token_record, user_record};
use crate::support;

#[tokio::test]
async fn api_tokens_lifecycle() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let now = now_micros();
        let alice = user_record("alice@example.com", "user", &[], now);
        let bob = user_record("bob@example.com", "user", &[], now);
        store.insert_user(&alice, false).await.unwrap();
        store.insert_user(&bob, false).await.unwrap();

        let forever = token_record(alice.id, "forever", now - Duration::seconds(30), None);
        let later = token_record(
            alice.id,
            "later",
            now - Duration::seconds(20),
            Some(now + Duration::days(1)),
        );
        let expired = token_record(
            alice.id,
            "expired",
            now - Duration::seconds(10),
            Some(now - Duration::seconds(1)),
        );
        let bobs = token_record(bob.id, "bobs", now, None);
        for t in [&forever, &later, &expired, &bobs] {
            let rev = store.revision().await.unwrap();
            store.insert_api_token(t).await.unwrap();
            assert_eq!(
                store.revision().await.unwrap(),
                rev + 1,
                "[{label}] token insert bumps revision"
            );
        }

        assert_eq!(
            store.api_token(later.id).await.unwrap(),
            Some(later.clone()),
            "[{label}]"
        );
        assert_eq!(
            store.api_token(ApiTokenId::new()).await.unwrap(),
            None,
            "[{label}] unknown token"
        );

        let alices = store.list_api_tokens(Some(alice.id)).await.unwrap();
        assert_eq!(
            alices,
            vec![expired.clone(), later.clone(), forever.clone()],
            "[{label}] a user's tokens, newest first"
        );
        let all = store.list_api_tokens(None).await.unwrap();
        assert_eq!(
            all,
            vec![
                bobs.clone(),
                expired.clone(),
                later.clone(),
                forever.clone()
            ],
            "[{label}] all tokens, newest first"
        );

        let mut active: Vec<String> = store
            .active_api_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.jti)
            .collect();
        active.sort();
        let mut want = vec![forever.jti.clone(), later.jti.clone(), bobs.jti.clone()];
        want.sort();
        assert_eq!(
            active, want,
            "[{label}] active = not revoked and not expired (non-expiring included)"
        );

        let rev = store.revision().await.unwrap();
        let before = Utc::now() - Duration::seconds(1);
        assert!(
            store.revoke_api_token(later.id).await.unwrap(),
            "[{label}] first revoke"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            rev + 1,
            "[{label}] revoke bumps revision"
        );
        assert!(
            !store.revoke_api_token(later.id).await.unwrap(),
            "[{label}] second revoke"
        );
        assert!(
            !store.revoke_api_token(ApiTokenId::new()).await.unwrap(),
            "[{label}] unknown revoke"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            rev + 1,
            "[{label}] no-op revokes must not bump"
        );
        let revoked = store.api_token(later.id).await.unwrap().unwrap();
        let at = revoked.revoked_at.expect("revoked_at set");
        assert!(
            at >= before && at <= Utc::now() + Duration::seconds(1),
            "[{label}] revoked_at {at}"
        );
        assert_eq!(
            revoked,
            ApiTokenRecord {
                revoked_at: Some(at),
                ..later.clone()
            },
            "[{label}]"
        );

        let active: Vec<String> = store
            .active_api_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.jti)
            .collect();
        assert!(
            !active.contains(&later.jti),
            "[{label}] revoked token still active"
        );
        assert!(active.contains(&forever.jti), "[{label}]");
        let row = store
            .active_api_tokens()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.jti == bobs.jti)
            .unwrap();
        assert_eq!(
            (row.user_id, row.expires_at),
            (bob.id, None),
            "[{label}] AuthTokenRow fields"
        );
        assert_eq!(
            store.list_api_tokens(Some(alice.id)).await.unwrap().len(),
            3,
            "[{label}] revoked kept"
        );

        // Deleting the user cascades its tokens, and only its tokens.
        let removed = store
            .delete_user(alice.id)
            .await
            .unwrap()
            .expect("alice existed");
        assert_eq!(removed.tokens, 3, "[{label}] counted");
        assert_eq!(
            store.list_api_tokens(Some(alice.id)).await.unwrap(),
            vec![],
            "[{label}] cascade"
        );
        assert_eq!(
            store.api_token(forever.id).await.unwrap(),
            None,
            "[{label}] cascade"
        );
        assert_eq!(
            store.list_api_tokens(None).await.unwrap(),
            vec![bobs.clone()],
            "[{label}]"
        );
        let active: Vec<String> = store
            .active_api_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.jti)
            .collect();
        assert_eq!(active, vec![bobs.jti.clone()], "[{label}]");
        store.close().await;
    }
}

#[tokio::test]
async fn token_for_unknown_user_is_rejected() {
    for db in support::backends().await {
        let label = db.label;
        let store = open(&db).await;
        let rev = store.revision().await.unwrap();
        let t = token_record(UserId::new(), "orphan", now_micros(), None);
        let err = store.insert_api_token(&t).await;
        assert!(
            err.is_err(),
            "[{label}] foreign key must reject a token of an unknown user"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            rev,
            "[{label}] failed insert must not bump"
        );
        assert!(
            store.list_api_tokens(None).await.unwrap().is_empty(),
            "[{label}]"
        );
        store.close().await;
    }
}
