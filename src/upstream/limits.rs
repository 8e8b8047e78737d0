//! How large one message from an upstream may be: a JSON answer, an SSE event or a stdout line
//! of `MAX_MESSAGE` bytes at most. A bigger one is never buffered whole: a JSON answer fails its
//! request with an error naming the limit, an SSE stream ends (as a broken stream does), a
//! stdout line is skipped.

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::UpstreamError;

pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

fn too_large() -> UpstreamError {
    UpstreamError::Protocol(format!(
        "the upstream's answer is larger than {} MiB; reflow does not relay it",
        MAX_MESSAGE / (1024 * 1024)
    ))
}

/// The whole body, refused as soon as it passes `MAX_MESSAGE` (or says it will).
pub async fn body(resp: reqwest::Response) -> Result<Bytes, UpstreamError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_MESSAGE as u64)
    {
        return Err(too_large());
    }
    let mut out = BytesMut::new();
    let mut chunks = resp.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(super::send_error)?;
        if out.len() + chunk.len() > MAX_MESSAGE {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    #[error("an SSE event larger than {MAX_MESSAGE} bytes")]
    Oversized,
}

/// The body as a stream that fails once one event (bytes between blank lines) passes
/// `MAX_MESSAGE`, before the SSE parser has buffered it all.
pub fn bounded_stream(
    resp: reqwest::Response,
) -> impl Stream<Item = Result<Bytes, StreamError>> + Send {
    let mut since_boundary = 0usize;
    resp.bytes_stream().map(move |chunk| {
        let chunk = chunk?;
        since_boundary = match last_boundary(&chunk) {
            Some(end) => chunk.len() - end,
            None => since_boundary + chunk.len(),
        };
        if since_boundary > MAX_MESSAGE {
            return Err(StreamError::Oversized);
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
}
