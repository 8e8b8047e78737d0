//! Plain HTTP calls for tests that hold a gateway's base URL or a hand-built request rather
//! than a `TestServer`: send and read the JSON answer.

use serde_json::Value;

/// Sends `req` and reads its JSON body; panics on a transport error or a body not JSON.
pub async fn json_of(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// POSTs `body` to `{base}{path}` (with `token` as the bearer, if any); the status and the
/// JSON body (Null when it is not JSON).
pub async fn post_json(base: &str, token: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The first line of `server`'s `/metrics` (read with `token`) that starts with `prefix`.
pub async fn metric_line(
    server: &super::server::TestServer,
    token: &str,
    prefix: &str,
) -> Option<String> {
    let text = server
        .http
        .get(server.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(prefix))
        .map(str::to_string)
}
