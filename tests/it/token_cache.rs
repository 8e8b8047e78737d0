//! Verified tokens are remembered (a request with a token seen before skips the signature
//! check), yet a remembered token still expires on time, and a token that differs from a
//! remembered one in any byte is verified afresh.

use std::time::Duration;

use reflow::auth::Claims;

use crate::support::TestServer;
use crate::support::server::session_claims;

const PW: &str = "correct horse battery";

#[tokio::test]
async fn a_token_accepted_before_still_expires_and_its_forgeries_are_refused() {
    let s = TestServer::start().await;
    let (_, user) = s.register("a@example.com", PW).await;
    let keys = s.jwt_keys();
    let now = chrono::Utc::now().timestamp();
    let exp = now + 2;
    let claims = session_claims(&user, now, exp, "short-lived");
    let token = keys.sign(&claims);
    for _ in 0..3 {
        assert_eq!(s.get("/api/auth/me", Some(&token)).await.0, 200);
    }

    // Same header and claims, another signature: not the remembered token.
    let (signed, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", "A".repeat(43));
    let (status, body) = s.get("/api/auth/me", Some(&forged)).await;
    assert_eq!(status, 401, "{body}");
    // Claims changed (another user's role), the remembered signature kept.
    let elevated = keys.sign(&Claims {
        role: "user".into(),
        ..claims.clone()
    });
    let (_, elevated_claims) = elevated.split_once('.').unwrap();
    let (_, remembered_sig) = token.rsplit_once('.').unwrap();
    let (elevated_claims, _) = elevated_claims.split_once('.').unwrap();
    let (header, _) = token.split_once('.').unwrap();
    let spliced = format!("{header}.{elevated_claims}.{remembered_sig}");
    assert_ne!(spliced, token);
    assert_eq!(s.get("/api/auth/me", Some(&spliced)).await.0, 401);

    // Past `exp`, the remembered token is refused like any expired one.
    let wait = exp - chrono::Utc::now().timestamp();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64 * 1000 + 100)).await;
    let (status, body) = s.get("/api/auth/me", Some(&token)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "token expired", "{body}");
}
