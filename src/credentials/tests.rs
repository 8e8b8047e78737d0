//! Resolution precedence, reserved keys, fingerprints and redaction of the credential snapshot.

use super::*;
use crate::domain::CredentialId;

const KEY: [u8; 32] = [9u8; 32];

struct Builder {
    sealer: SecretBox,
    target: TargetId,
    records: Vec<CredentialRecord>,
}

impl Builder {
    fn new() -> Self {
        Self {
            sealer: SecretBox::new(&KEY),
            target: TargetId::new(),
            records: Vec::new(),
        }
    }

    fn put(
        mut self,
        kind: CredentialKind,
        scope: CredentialScope,
        scope_value: &str,
        key: &str,
        value: &str,
    ) -> Self {
        let ctx = seal_context(self.target, kind, scope, scope_value, key);
        let (ciphertext, key_id) = self.sealer.seal(value.as_bytes(), &ctx);
        let now = chrono::Utc::now();
        self.records.push(CredentialRecord {
            id: CredentialId::new(),
            target_id: self.target,
            kind,
            scope,
            scope_value: scope_value.into(),
            key: key.into(),
            ciphertext,
            key_id: key_id.as_str().into(),
            created_at: now,
            updated_at: now,
        });
        self
    }

    fn token(self, scope: CredentialScope, scope_value: &str, value: &str) -> Self {
        self.put(CredentialKind::Token, scope, scope_value, "", value)
    }

    fn env(self, scope: CredentialScope, scope_value: &str, key: &str, value: &str) -> Self {
        self.put(CredentialKind::Env, scope, scope_value, key, value)
    }

    fn snapshot(&self) -> CredentialSnapshot {
        CredentialSnapshot::from_records(&self.records, &self.sealer).unwrap()
    }
}

struct Who {
    user: UserId,
    role: Role,
    groups: Vec<GroupName>,
}

fn who(role: &str, groups: &[&str]) -> Who {
    Who {
        user: UserId::new(),
        role: Role::parse(role).unwrap(),
        groups: groups
            .iter()
            .map(|g| GroupName::parse(g).unwrap())
            .collect(),
    }
}

fn resolve(b: &Builder, w: &Who) -> Resolved {
    b.snapshot().resolve(b.target, w.user, &w.role, &w.groups)
}

fn value_of(r: &Resolved, key: &str) -> Option<(String, String)> {
    r.env
        .get(key)
        .map(|(v, s)| (v.expose().to_string(), s.to_string()))
}

use CredentialScope::{Default as D, Group as G, Role as R, User as U};

#[test]
fn user_beats_group_beats_role_beats_default_per_key() {
    let alice = who("dev", &["eng"]);
    let uid = alice.user.to_string();
    let b = Builder::new()
        .env(D, "", "A", "a-default")
        .env(R, "dev", "A", "a-role")
        .env(G, "eng", "A", "a-group")
        .env(U, &uid, "A", "a-user")
        .env(D, "", "B", "b-default")
        .env(R, "dev", "B", "b-role")
        .env(G, "eng", "B", "b-group")
        .env(D, "", "C", "c-default")
        .env(R, "dev", "C", "c-role")
        .env(D, "", "E", "e-default")
        .env(R, "other", "E", "e-other-role")
        .env(G, "other", "E", "e-other-group");
    let r = resolve(&b, &alice);
    assert_eq!(
        value_of(&r, "A"),
        Some(("a-user".into(), format!("user:{uid}")))
    );
    assert_eq!(
        value_of(&r, "B"),
        Some(("b-group".into(), "group:eng".into()))
    );
    assert_eq!(
        value_of(&r, "C"),
        Some(("c-role".into(), "role:dev".into()))
    );
    assert_eq!(
        value_of(&r, "E"),
        Some(("e-default".into(), "default".into()))
    );
    assert_eq!(r.env.len(), 4);

    // Another user in the same role and group does not get alice's user value.
    let bob = who("dev", &["eng"]);
    assert_eq!(value_of(&resolve(&b, &bob), "A").unwrap().0, "a-group");
}

#[test]
fn tokens_resolve_with_the_same_precedence() {
    let alice = who("dev", &[]);
    let b = Builder::new()
        .token(D, "", "t-default")
        .token(R, "dev", "t-role");
    let (t, s) = resolve(&b, &alice).token.unwrap();
    assert_eq!((t.expose(), s.to_string().as_str()), ("t-role", "role:dev"));
    let b = b.token(U, &alice.user.to_string(), "t-user");
    assert_eq!(resolve(&b, &alice).token.unwrap().0.expose(), "t-user");
    assert_eq!(
        resolve(&b, &who("ops", &[])).token.unwrap().0.expose(),
        "t-default"
    );
    assert!(
        Builder::new()
            .snapshot()
            .resolve(TargetId::new(), alice.user, &alice.role, &[])
            .token
            .is_none()
    );
}

#[test]
fn groups_are_tried_in_name_order_whatever_order_the_user_lists_them() {
    let b = Builder::new()
        .env(G, "zeta", "K", "from-zeta")
        .env(G, "alpha", "K", "from-alpha")
        .env(G, "mid", "K", "from-mid");
    for groups in [
        &["zeta", "mid", "alpha"][..],
        &["alpha", "zeta"],
        &["mid", "zeta"],
    ] {
        let expected = {
            let mut g = groups.to_vec();
            g.sort();
            format!("from-{}", g[0])
        };
        assert_eq!(
            value_of(&resolve(&b, &who("user", groups)), "K").unwrap().0,
            expected
        );
    }
}

#[test]
fn base_url_is_never_taken_from_user_scope() {
    let alice = who("user", &[]);
    let uid = alice.user.to_string();
    let b = Builder::new().env(U, &uid, BASE_URL, "https://evil.example");
    let r = resolve(&b, &alice);
    assert!(r.base_url().is_none());
    assert!(r.env.is_empty());
    let b = b.env(D, "", BASE_URL, "https://api.example");
    let r = resolve(&b, &alice);
    assert_eq!(r.base_url(), Some("https://api.example"));
    // Other keys at user scope still win.
    let b = b.env(U, &uid, "X", "mine").env(D, "", "X", "shared");
    assert_eq!(value_of(&resolve(&b, &alice), "X").unwrap().0, "mine");
}

#[test]
fn bearer_and_header_auth_with_env_overrides() {
    let alice = who("user", &[]);
    let b = Builder::new()
        .token(D, "", "tok-123")
        .env(D, "", "REGION", "eu")
        .env(D, "", TIMEOUT, "30")
        .env(D, "", BASE_URL, "https://x.example");
    let r = resolve(&b, &alice);
    let h = http_headers(&r, AuthType::Bearer, None).unwrap();
    assert_eq!(h["authorization"], "Bearer tok-123");
    assert!(h["authorization"].is_sensitive());
    assert_eq!(h["x-env-region"], "eu");
    assert_eq!(h.len(), 2, "TIMEOUT and BASE_URL are not headers: {h:?}");

    let h = http_headers(&r, AuthType::Header, Some("X-Api-Key")).unwrap();
    assert_eq!(h["x-api-key"], "tok-123");
    assert!(h.get("authorization").is_none());

    let h = http_headers(&r, AuthType::None, None).unwrap();
    assert_eq!(h.len(), 1);

    // AUTH_TOKEN replaces the token, AUTH_HEADER the header name; neither is sent as X-Env.
    let b = b
        .env(D, "", AUTH_TOKEN, "override-tok")
        .env(D, "", AUTH_HEADER, "X-Other");
    let r = resolve(&b, &alice);
    let h = http_headers(&r, AuthType::Header, Some("X-Api-Key")).unwrap();
    assert_eq!(h["x-other"], "override-tok");
    assert!(h.get("x-api-key").is_none());
    assert!(h.keys().all(|k| !k.as_str().starts_with("x-env-auth")));
    let h = http_headers(&r, AuthType::Bearer, None).unwrap();
    assert_eq!(h["authorization"], "Bearer override-tok");
}

#[test]
fn a_missing_token_names_what_is_missing_and_no_value() {
    let alice = who("user", &[]);
    let b = Builder::new().env(D, "", "REGION", "secret-region-value");
    let r = resolve(&b, &alice);
    let err = http_headers(&r, AuthType::Bearer, None).unwrap_err();
    assert_eq!(err.what, "token");
    assert_eq!(err.target, b.target);
    let msg = err.to_string();
    assert!(
        msg.contains("token") && !msg.contains("secret-region-value"),
        "{msg}"
    );

    let b = b.token(D, "", "t");
    let r = resolve(&b, &alice);
    assert_eq!(
        http_headers(&r, AuthType::Header, None).unwrap_err().what,
        "auth header name"
    );
    assert!(http_headers(&r, AuthType::Header, Some("Host")).is_err());
}

#[test]
fn process_env_adds_the_token_as_auth_token_unless_set() {
    let alice = who("user", &[]);
    let b = Builder::new().token(D, "", "tok").env(D, "", "A", "1");
    let env = resolve(&b, &alice).process_env();
    assert_eq!(env["AUTH_TOKEN"].expose(), "tok");
    assert_eq!(env["A"].expose(), "1");
    let b = b.env(D, "", AUTH_TOKEN, "explicit");
    assert_eq!(
        resolve(&b, &alice).process_env()["AUTH_TOKEN"].expose(),
        "explicit"
    );
}

#[test]
fn fingerprint_follows_values_not_sources() {
    let alice = who("dev", &[]);
    let base = Builder::new().token(D, "", "tok").env(D, "", "A", "1");
    let fp = resolve(&base, &alice).fingerprint;
    assert_eq!(fp.len(), 16);
    assert_eq!(resolve(&base, &alice).fingerprint, fp, "stable");
    // Same values from another scope: same fingerprint.
    let b = base.token(R, "dev", "tok");
    assert_eq!(resolve(&b, &alice).fingerprint, fp);
    // A changed value, an added key, a value moved to another key: all differ.
    let b = Builder {
        target: base_target(&b),
        ..Builder::new()
    };
    let changed = b.token(D, "", "tok2").env(D, "", "A", "1");
    assert_ne!(resolve(&changed, &alice).fingerprint, fp);
    let b2 = Builder::new()
        .token(D, "", "tok")
        .env(D, "", "A", "1")
        .env(D, "", "B", "2");
    assert_ne!(resolve(&b2, &alice).fingerprint, fp);
    let b3 = Builder::new().token(D, "", "tok").env(D, "", "B", "1");
    assert_ne!(resolve(&b3, &alice).fingerprint, fp);
    // Nothing at all still has a fingerprint, distinct from any set.
    let empty = Builder::new();
    assert_ne!(resolve(&empty, &alice).fingerprint, fp);
}

fn base_target(b: &Builder) -> TargetId {
    b.target
}

#[test]
fn debug_output_never_shows_values() {
    let alice = who("dev", &[]);
    let b =
        Builder::new()
            .token(D, "", "ghp_supersecret_token")
            .env(D, "", "A", "env-secret-value");
    let snap = b.snapshot();
    let r = snap.resolve(b.target, alice.user, &alice.role, &[]);
    for text in [
        format!("{snap:?}"),
        format!("{r:?}"),
        format!("{:?}", b.records),
    ] {
        assert!(!text.contains("supersecret"), "{text}");
        assert!(!text.contains("env-secret-value"), "{text}");
    }
    let headers = http_headers(&r, AuthType::Bearer, None).unwrap();
    assert!(!format!("{headers:?}").contains("supersecret"));
}

#[test]
fn a_value_moved_to_another_row_does_not_open() {
    let mut b = Builder::new().token(D, "", "tok");
    b.records[0].scope = R;
    b.records[0].scope_value = "dev".into();
    let err = CredentialSnapshot::from_records(&b.records, &b.sealer).unwrap_err();
    assert!(matches!(err, CredentialError::Open { .. }));
    assert!(!err.to_string().contains("tok\""));
    let other = SecretBox::new(&[1u8; 32]);
    let b = Builder::new().token(D, "", "tok");
    assert!(CredentialSnapshot::from_records(&b.records, &other).is_err());
}

#[test]
fn masking_shows_at_most_two_characters_each_side() {
    assert_eq!(mask("ghp_0123456789ab3f"), "gh…3f");
    assert_eq!(mask("123456789012"), "12…12");
    assert_eq!(mask("12345678901"), "****");
    assert_eq!(mask(""), "****");
    assert_eq!(mask("ééééééééééééé"), "éé…éé");
}
