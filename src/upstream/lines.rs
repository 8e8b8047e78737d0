//! Reading a child's output a line at a time without ever holding a whole oversized line: at
//! most `keep` bytes of its start (and optionally its last bytes) are kept, the rest is read
//! and thrown away.

use tokio::io::AsyncBufReadExt;

/// Reads one line (without its newline) keeping at most `keep` bytes of it in `buf`; the rest
/// is read and thrown away, so a child's endless line costs no memory. Returns the line's whole
/// length, or None at the end of the stream.
pub(super) async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    keep: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
    read_line_with_tail(reader, keep, buf, &mut Vec::new(), 0).await
}

/// `read_line_bounded` that also keeps the line's last `tail_len` bytes in `tail`.
pub(super) async fn read_line_with_tail<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    keep: usize,
    buf: &mut Vec<u8>,
    tail: &mut Vec<u8>,
    tail_len: usize,
) -> std::io::Result<Option<usize>> {
    buf.clear();
    tail.clear();
    let mut total = 0usize;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((total > 0).then_some(total));
        }
        let newline = available.iter().position(|b| *b == b'\n');
        let content = newline.unwrap_or(available.len());
        let room = keep.saturating_sub(buf.len());
        buf.extend_from_slice(&available[..content.min(room)]);
        if tail_len > 0 {
            tail.extend_from_slice(&available[content.saturating_sub(tail_len)..content]);
            let excess = tail.len().saturating_sub(tail_len);
            tail.drain(..excess);
        }
        total += content;
        let consumed = newline.map_or(content, |n| n + 1);
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(Some(total));
        }
    }
}
