//! The credentials table on every backend (`support::backends()`): upsert keyed by slot,
//! replace, delete, listing, resealing in one transaction, cascade on target deletion, and
//! a revision bump per write.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reflow::domain::{
    AuthType, CredentialId, CredentialKind, CredentialScope, IsolationBoundary, Statefulness,
    TargetId, TargetName, Transport,
};
use reflow::store::{CredentialRecord, CredentialSlot, Store, StoreError, TargetRecord};

use crate::support;

fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn target(name: &str) -> TargetRecord {
    let at = now_micros();
    TargetRecord {
        id: TargetId::new(),
        name: TargetName::parse(name).unwrap(),
        url: Some("https://x.example.com/mcp".into()),
        transport: Transport::StreamableHttp,
        command: None,
        args: Vec::new(),
        cwd: None,
        image: None,
        port: None,
        health_path: None,
        statefulness: Statefulness::Stateless,
        isolation_boundary: IsolationBoundary::Shared,
        auth_type: AuthType::Bearer,
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

fn slot(t: TargetId, kind: CredentialKind, scope: CredentialScope, value: &str) -> CredentialSlot {
    CredentialSlot {
        target_id: t,
        kind,
        scope,
        scope_value: value.into(),
    }
}

fn record(s: &CredentialSlot, key: &str, bytes: &[u8]) -> CredentialRecord {
    let at = now_micros();
    CredentialRecord {
        id: CredentialId::new(),
        target_id: s.target_id,
        kind: s.kind,
        scope: s.scope,
        scope_value: s.scope_value.clone(),
        key: key.into(),
        ciphertext: bytes.to_vec(),
        key_id: "k1".into(),
        created_at: at,
        updated_at: at,
    }
}

#[tokio::test]
async fn upsert_replace_delete_and_list_on_every_backend() {
    for db in support::backends().await {
        let store = Store::open(&db.url, 2).await.expect("open store");
        let label = db.label;
        let t = target("github");
        store.insert_target(&t).await.unwrap();
        let token_default = slot(t.id, CredentialKind::Token, CredentialScope::Default, "");
        let env_role = slot(t.id, CredentialKind::Env, CredentialScope::Role, "dev");

        let rev = store.revision().await.unwrap();
        let first = record(&token_default, "", b"\x00\xffsealed-1");
        store
            .upsert_credentials(std::slice::from_ref(&first))
            .await
            .unwrap();
        assert_eq!(store.revision().await.unwrap(), rev + 1, "{label}");
        assert_eq!(
            store.target_credentials(t.id).await.unwrap(),
            vec![first.clone()],
            "{label}"
        );

        // Same slot and key: updated in place, keeping id and creation time.
        let mut second = record(&token_default, "", b"sealed-2");
        second.key_id = "k2".into();
        second.updated_at = first.updated_at + chrono::Duration::seconds(1);
        store.upsert_credentials(&[second.clone()]).await.unwrap();
        let got = store.target_credentials(t.id).await.unwrap();
        assert_eq!(got.len(), 1, "{label}");
        assert_eq!(got[0].id, first.id, "{label}");
        assert_eq!(got[0].created_at, first.created_at, "{label}");
        assert_eq!(
            (got[0].ciphertext.as_slice(), got[0].key_id.as_str()),
            (&b"sealed-2"[..], "k2")
        );
        assert_eq!(got[0].updated_at, second.updated_at, "{label}");

        // Replace makes the given records the whole slot, leaving other slots alone.
        let a = record(&env_role, "A", b"a");
        let b = record(&env_role, "B", b"b");
        store
            .upsert_credentials(&[a.clone(), b.clone()])
            .await
            .unwrap();
        let c = record(&env_role, "C", b"c");
        let rev = store.revision().await.unwrap();
        store
            .replace_credentials(&env_role, std::slice::from_ref(&c))
            .await
            .unwrap();
        assert_eq!(store.revision().await.unwrap(), rev + 1, "{label}");
        let keys: Vec<(CredentialKind, String)> = store
            .target_credentials(t.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.kind, r.key))
            .collect();
        assert_eq!(
            keys,
            [
                (CredentialKind::Env, "C".to_string()),
                (CredentialKind::Token, String::new())
            ],
            "{label}"
        );

        // Delete: true once, then false without a revision bump.
        assert!(
            store.delete_credential(&env_role, "C").await.unwrap(),
            "{label}"
        );
        let rev = store.revision().await.unwrap();
        assert!(
            !store.delete_credential(&env_role, "C").await.unwrap(),
            "{label}"
        );
        assert_eq!(store.revision().await.unwrap(), rev, "{label}");

        // A credential for a target that does not exist is refused by the foreign key.
        let ghost = record(
            &slot(
                TargetId::new(),
                CredentialKind::Env,
                CredentialScope::Default,
                "",
            ),
            "X",
            b"x",
        );
        assert!(
            matches!(
                store.upsert_credentials(&[ghost]).await,
                Err(StoreError::Database(_))
            ),
            "{label}"
        );

        // All credentials across targets; deleting a target removes its credentials.
        let t2 = target("other");
        store.insert_target(&t2).await.unwrap();
        let u = record(
            &slot(t2.id, CredentialKind::Env, CredentialScope::User, "u-1"),
            "K",
            b"k",
        );
        store
            .upsert_credentials(std::slice::from_ref(&u))
            .await
            .unwrap();
        assert_eq!(store.all_credentials().await.unwrap().len(), 2, "{label}");
        store.delete_target(t.id).await.unwrap();
        assert_eq!(store.all_credentials().await.unwrap(), vec![u], "{label}");
        store.close().await;
    }
}

#[tokio::test]
async fn reseal_rewrites_every_value_or_none() {
    for db in support::backends().await {
        let store = Store::open(&db.url, 2).await.expect("open store");
        let label = db.label;
        let t = target("github");
        store.insert_target(&t).await.unwrap();
        let s = slot(t.id, CredentialKind::Env, CredentialScope::Default, "");
        store
            .upsert_credentials(&[record(&s, "A", b"a"), record(&s, "B", b"b")])
            .await
            .unwrap();

        // A failure part-way leaves everything as it was.
        let failed = store
            .reseal_credentials(|r| {
                if r.key == "B" {
                    Err(StoreError::Corrupt("refused".into()))
                } else {
                    Ok((b"new".to_vec(), "k9".to_string()))
                }
            })
            .await;
        assert!(failed.is_err(), "{label}");
        assert!(
            store
                .all_credentials()
                .await
                .unwrap()
                .iter()
                .all(|r| r.key_id == "k1"),
            "{label}"
        );

        let rev = store.revision().await.unwrap();
        let n = store
            .reseal_credentials(|r| {
                let mut c = r.ciphertext.clone();
                c.push(b'!');
                Ok::<_, StoreError>((c, "k9".to_string()))
            })
            .await
            .unwrap();
        assert_eq!(n, 2, "{label}");
        assert_eq!(store.revision().await.unwrap(), rev + 1, "{label}");
        let all = store.all_credentials().await.unwrap();
        assert!(all.iter().all(|r| r.key_id == "k9"), "{label}");
        assert_eq!(all[0].ciphertext, b"a!", "{label}");
        store.close().await;
    }
}
