//! External OIDC tokens end to end, without the internet: an in-test identity provider on
//! 127.0.0.1 serves discovery and a JWKS from keys generated here, and reflow is configured
//! with it as `auth.oidc`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Json;
use axum::routing::get;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::mcp_client::McpClient;
use crate::support::{TestServer, TestServerOptions};

const AUDIENCE: &str = "reflow-it";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key and its public JWK.
pub(crate) struct SigningKey {
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

pub(crate) fn es256_key(kid: &str) -> SigningKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = pair.to_pkcs8v1().unwrap();
    // Uncompressed point: 0x04 || x || y.
    let point = pair.public_key().as_ref();
    assert_eq!(point.len(), 65);
    SigningKey {
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        }),
    }
}

fn rs256_key(kid: &str) -> SigningKey {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
    let public = pair.public_key();
    SigningKey {
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(pkcs1_of(pkcs8.as_ref())),
        jwk: json!({
            "kty": "RSA", "use": "sig", "kid": kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        }),
    }
}

/// The RSAPrivateKey (PKCS#1) inside a PKCS#8 document: its last element, a SEQUENCE with a
/// two-byte length that runs to the end.
fn pkcs1_of(pkcs8: &[u8]) -> &[u8] {
    (1..pkcs8.len() - 4)
        .find(|&i| {
            pkcs8[i] == 0x30
                && pkcs8[i + 1] == 0x82
                && i + 4 + usize::from(u16::from_be_bytes([pkcs8[i + 2], pkcs8[i + 3]]))
                    == pkcs8.len()
        })
        .map(|i| &pkcs8[i..])
        .expect("a PKCS#1 key inside the PKCS#8 document")
}

/// The identity provider: discovery and the JWKS, which a test can replace at any time.
pub(crate) struct Idp {
    pub(crate) issuer: String,
    jwks: Arc<Mutex<Value>>,
    jwks_fetches: Arc<AtomicUsize>,
}

impl Idp {
    pub(crate) async fn start(keys: &[&SigningKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(Value::Null));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks") });
        let (served, count) = (jwks.clone(), jwks_fetches.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { Json(discovery) }),
            )
            .route(
                "/jwks",
                get(move || async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    Json(served.lock().unwrap().clone())
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let idp = Self {
            issuer,
            jwks,
            jwks_fetches,
        };
        idp.publish(keys);
        idp
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let keys: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Claims of a valid token for `sub`, to be adjusted per test.
    pub(crate) fn claims(&self, sub: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer, "aud": [AUDIENCE, "other"], "sub": sub,
            "iat": now, "exp": now + 600,
            "email": format!("{sub}@corp.example.com"),
            "role": "operator", "groups": ["ops", "not a group!", "dev"],
        })
    }
}

pub(crate) fn sign(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

pub(crate) async fn reflow_for(idp: &Idp) -> TestServer {
    TestServer::start_with(TestServerOptions {
        oidc: Some(reflow::config::OidcSettings {
            issuer: idp.issuer.clone(),
            audience: AUDIENCE.into(),
            // Found through discovery.
            jwks_url: None,
            role_claim: "role".into(),
            groups_claim: "groups".into(),
        }),
        ..Default::default()
    })
    .await
}

/// GET /api/auth/me with `token`: the status, and whether the challenge says invalid_token.
async fn me(server: &TestServer, token: &str) -> (u16, Value) {
    let res = server
        .http
        .get(server.url("/api/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 401 {
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn oidc_tokens_are_verified_mapped_and_keys_rotate() {
    let k1 = es256_key("k1");
    let idp = Idp::start(&[&k1]).await;
    let server = reflow_for(&idp).await;

    let token = sign(&k1, "k1", &idp.claims("alice"));
    let (status, body) = me(&server, &token).await;
    assert_eq!(status, 200, "{body}");
    let id = reflow::auth::external_user_id(&idp.issuer, "alice");
    assert_eq!(
        body,
        json!({
            "id": id.to_string(), "email": "alice@corp.example.com", "role": "operator",
            "groups": ["dev", "ops"], "external": true,
        })
    );
    // Deterministic: a second token of the same subject is the same user.
    let again = sign(&k1, "k1", &idp.claims("alice"));
    assert_eq!(me(&server, &again).await.1["id"], id.to_string());
    // Without role and email claims: role user, email from sub and the issuer host.
    let mut bare = idp.claims("bob");
    for claim in ["role", "email", "groups"] {
        bare.as_object_mut().unwrap().remove(claim);
    }
    let (status, body) = me(&server, &sign(&k1, "k1", &bare)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "user");
    assert_eq!(body["email"], "bob@127.0.0.1");
    assert_eq!(body["groups"], json!([]));

    // The external user can open an MCP session too.
    McpClient::new(&server, &token).initialize().await;

    let mut wrong_aud = idp.claims("alice");
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = idp.claims("alice");
    wrong_iss["iss"] = json!("http://evil.example.com");
    let mut expired = idp.claims("alice");
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let mut no_exp = idp.claims("alice");
    no_exp.as_object_mut().unwrap().remove("exp");
    // HS256 over the issuer's public JWK: algorithm confusion must not work.
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("k1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &idp.claims("alice"),
        &EncodingKey::from_secret(k1.jwk.to_string().as_bytes()),
    )
    .unwrap();
    let other = es256_key("k1");
    for (label, bad) in [
        ("wrong audience", sign(&k1, "k1", &wrong_aud)),
        ("wrong issuer", sign(&k1, "k1", &wrong_iss)),
        ("expired", sign(&k1, "k1", &expired)),
        ("no exp", sign(&k1, "k1", &no_exp)),
        ("HS256", hs),
        (
            "right kid, wrong key",
            sign(&other, "k1", &idp.claims("alice")),
        ),
    ] {
        let (status, body) = me(&server, &bad).await;
        assert_eq!(status, 401, "{label}: {body}");
    }

    // Rotation: the IdP publishes a new RSA key; a token naming it makes reflow refetch.
    let k2 = rs256_key("k2");
    let before = idp.fetches();
    let rotated = sign(&k2, "k2", &idp.claims("carol"));
    idp.publish(&[&k2]);
    let (status, body) = me(&server, &rotated).await;
    assert_eq!(status, 200, "rotated key: {body}");
    assert_eq!(body["email"], "carol@corp.example.com");
    assert_eq!(idp.fetches(), before + 1, "one refetch for the new kid");
    // A kid the IdP never published: still 401 after the refetch.
    let (status, _) = me(&server, &sign(&k2, "nope", &idp.claims("alice"))).await;
    assert_eq!(status, 401, "unknown kid");
}

#[tokio::test]
async fn unknown_kids_cannot_hammer_the_idp() {
    let k1 = es256_key("k1");
    let idp = Idp::start(&[&k1]).await;
    let server = reflow_for(&idp).await;
    let (status, _) = me(&server, &sign(&k1, "k1", &idp.claims("alice"))).await;
    assert_eq!(status, 200);
    assert_eq!(idp.fetches(), 1, "keys fetched once on first use");
    for i in 0..20 {
        let (status, _) = me(&server, &sign(&k1, &format!("bogus-{i}"), &idp.claims("x"))).await;
        assert_eq!(status, 401);
    }
    let extra = idp.fetches() - 1;
    assert!(
        extra <= 1,
        "20 unknown kids caused {extra} JWKS fetches; at most one per cooldown"
    );
    // Known keys keep working meanwhile.
    let (status, _) = me(&server, &sign(&k1, "k1", &idp.claims("alice"))).await;
    assert_eq!(status, 200);
}
