//! Passing a request on, as the test fronts (a hanging upstream, an API server stand-in) do for
//! whatever they do not answer themselves: headers and body forwarded, the answer streamed back.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;

pub async fn pass(client: &reqwest::Client, url: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut out = client.request(parts.method, url).body(body);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let res = out.send().await.unwrap();
    let mut builder = Response::builder().status(res.status().as_u16());
    for (k, v) in res.headers() {
        builder = builder.header(k, v);
    }
    builder.body(Body::from_stream(res.bytes_stream())).unwrap()
}
