//! How large one message from an upstream may be: a JSON answer, an SSE event or a stdout line
//! of `MAX_MESSAGE` bytes at most. A bigger one is never buffered whole: a JSON answer fails its
//! request with an error naming the limit, an SSE stream ends (as a broken stream does), a
//! stdout line is skipped and, when its id can be read from its first or last bytes, its
//! request fails with the same error.

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::UpstreamError;

/// The default of `gateway.max_upstream_message`.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

fn too_large(max: usize) -> UpstreamError {
    UpstreamError::Protocol(format!(
        "the upstream's answer is larger than {} (gateway.max_upstream_message); reflow does not relay it",
        size(max)
    ))
}

/// `max` bytes as people say it: "16 MiB", "512 KiB", "1000 bytes".
fn size(max: usize) -> String {
    match max {
        m if m % (1024 * 1024) == 0 => format!("{} MiB", m / (1024 * 1024)),
        m if m % 1024 == 0 => format!("{} KiB", m / 1024),
        m => format!("{m} bytes"),
    }
}

/// The error an oversized answer gives its request.
pub fn too_large_message(max: usize) -> String {
    too_large(max).to_string()
}

/// The id of a JSON-RPC message too large to parse whole, from its first and last bytes: the
/// SDKs put it among the first members (`{"jsonrpc":"2.0","id":…`) or last (`…,"id":3}`).
pub fn oversized_id(head: &[u8], tail: &[u8]) -> Option<serde_json::Value> {
    head_id(head)
        .or_else(|| tail_id(tail))
        .filter(|id| id.is_string() || id.is_number())
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// One JSON value at the start of `b` and how many bytes it took.
fn value_at<T: serde::de::DeserializeOwned>(b: &[u8]) -> Option<(T, usize)> {
    let mut values = serde_json::Deserializer::from_slice(b).into_iter::<T>();
    let v = values.next()?.ok()?;
    Some((v, values.byte_offset()))
}

/// Walks the leading scalar members of the top-level object until `"id"`.
fn head_id(head: &[u8]) -> Option<serde_json::Value> {
    let mut rest = trim(head).strip_prefix(b"{")?;
    loop {
        let (key, used) = value_at::<String>(trim(rest))?;
        rest = trim(&trim(rest)[used..]).strip_prefix(b":")?;
        let value = trim(rest);
        if key == "id" {
            return value_at(value).map(|(v, _)| v);
        }
        // The large member (the result) is an object or array: the id is not before it.
        if matches!(value.first(), Some(b'{' | b'[')) {
            return None;
        }
        let (_, used) = value_at::<serde_json::Value>(value)?;
        rest = trim(&value[used..]).strip_prefix(b",")?;
    }
}

/// `"id"` as the last member of the top-level object: `,"id":<value>}` at the very end.
fn tail_id(tail: &[u8]) -> Option<serde_json::Value> {
    let body = trim(tail).strip_suffix(b"}")?;
    let at = body.windows(4).rposition(|w| w == b"\"id\"")?;
    if !trim(&body[..at]).ends_with(b",") {
        return None;
    }
    let value = trim(trim(&body[at + 4..]).strip_prefix(b":")?);
    let (id, used) = value_at::<serde_json::Value>(value)?;
    trim(&value[used..]).is_empty().then_some(id)
}

/// The whole body, refused as soon as it passes `max` (or says it will).
pub async fn body(resp: reqwest::Response, max: usize) -> Result<Bytes, UpstreamError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let mut out = BytesMut::new();
    let mut chunks = resp.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(super::send_error)?;
        if out.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    #[error("an SSE event larger than {0} bytes (gateway.max_upstream_message)")]
    Oversized(usize),
}

/// The body as a stream that fails once one event (bytes between blank lines) passes
/// `max`, before the SSE parser has buffered it all.
pub fn bounded_stream(
    resp: reqwest::Response,
    max: usize,
) -> impl Stream<Item = Result<Bytes, StreamError>> + Send {
    let mut since_boundary = 0usize;
    resp.bytes_stream().map(move |chunk| {
        let chunk = chunk?;
        since_boundary = match last_boundary(&chunk) {
            Some(end) => chunk.len() - end,
            None => since_boundary + chunk.len(),
        };
        if since_boundary > max {
            return Err(StreamError::Oversized(max));
        }
        Ok(chunk)
    })
}

/// Where the last event boundary (a blank line) in `chunk` ends.
fn last_boundary(chunk: &[u8]) -> Option<usize> {
    chunk.windows(2).rposition(|w| w == b"\n\n").map(|i| i + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_blank_lines() {
        assert_eq!(last_boundary(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(last_boundary(b"data: a\n"), None);
        assert_eq!(last_boundary(b"\n\n"), Some(2));
    }

    #[test]
    fn the_id_of_an_oversized_answer_is_read_from_either_end() {
        use serde_json::json;
        let head = br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"xxxx"#;
        assert_eq!(oversized_id(head, b"xx\"}]}}"), Some(json!(7)));
        // The TypeScript SDK writes the result first and the id last.
        let head = br#"{"result":{"content":[{"type":"text","text":"xxxx"#;
        let tail = br#"xxxx"}]},"jsonrpc":"2.0","id":"a-9"}"#;
        assert_eq!(oversized_id(head, tail), Some(json!("a-9")));
        // An "id" inside the result is not the message's.
        assert_eq!(oversized_id(head, br#"x","id":3}]}}"#), None);
        assert_eq!(oversized_id(head, br#"xx \"id\":3}"#), None);
        assert_eq!(oversized_id(br#"{"id":{"a":1}"#, b""), None);
        assert_eq!(oversized_id(b"not json", b"at all"), None);
    }
}
