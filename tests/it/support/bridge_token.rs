//! A `reflow bridge` guarded by a bearer token, and a gateway target that reaches it with that
//! token: the setup the bridge tests share when the gateway stands in front of the bridge.

use reqwest::Method;
use serde_json::{Value, json};

use super::bridge::Bridge;
use super::gw::Gw;

/// `reflow bridge --token-env VAR FLAGS -- COMMAND…` with `VAR=token` and `env` set.
pub async fn guarded(
    (var, token): (&str, &str),
    flags: &[&str],
    env: &[(&str, &str)],
    command: &[&str],
) -> Bridge {
    let flags: Vec<&str> = ["--token-env", var]
        .into_iter()
        .chain(flags.iter().copied())
        .collect();
    let env: Vec<(&str, &str)> = std::iter::once((var, token))
        .chain(env.iter().copied())
        .collect();
    Bridge::start(&flags, &env, command).await
}

/// Creates the target `body` describes, open to everyone, with `token` as its default bearer
/// credential; returns its id.
pub async fn bearer_target(gw: &Gw, body: Value, token: &str) -> String {
    let tid = gw.target_for_everyone(body).await;
    let (status, res) = gw
        .server
        .send(
            Method::PUT,
            &format!("/api/targets/{tid}/tokens/default"),
            Some(&gw.admin),
            Some(json!({"token": token})),
        )
        .await;
    assert!(status == 200 || status == 204, "{status} {res}");
    tid
}
