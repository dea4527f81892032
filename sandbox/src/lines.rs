//! Lines from a child's stdout, framed by the protocol's `LineFramer` whatever the read boundaries.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt};
use vf_protocol::{FrameError, LineFramer};

/// An async source of lines. [`Lines::next`] is cancel-safe, so it can sit in a `select!` loop: bytes leave the
/// reader only inside a completed `read`, and a framed line leaves the queue only when it is returned.
pub struct Lines<R> {
    reader: R,
    framer: LineFramer,
    ready: VecDeque<Result<Vec<u8>, FrameError>>,
    buf: Box<[u8]>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    pub fn new(reader: R, max_line_bytes: usize) -> Self {
        Lines {
            reader,
            framer: LineFramer::new(max_line_bytes),
            ready: VecDeque::new(),
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            eof: false,
        }
    }

    /// The next line (without its newline), an over-long line's error, or `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Some(line);
            }
            if self.eof {
                return None;
            }
            let ready = &mut self.ready;
            let mut collect =
                |line: Result<&[u8], FrameError>| ready.push_back(line.map(<[u8]>::to_vec));
            match self.reader.read(&mut self.buf).await {
                Ok(n) if n > 0 => self.framer.push(&self.buf[..n], &mut collect),
                // A read error ends the stream like an EOF: the child is gone either way.
                _ => {
                    self.eof = true;
                    self.framer.finish(&mut collect);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_across_reads_and_reports_long_lines() {
        let (mut tx, rx) = tokio::io::duplex(4);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(b"one\ntoo long a line\ntw").await.unwrap();
            tx.write_all(b"o\nlast").await.unwrap();
        });
        let mut lines = Lines::new(rx, 8);
        assert_eq!(lines.next().await, Some(Ok(b"one".to_vec())));
        assert!(matches!(
            lines.next().await,
            Some(Err(FrameError::LineTooLong { .. }))
        ));
        assert_eq!(lines.next().await, Some(Ok(b"two".to_vec())));
        assert_eq!(lines.next().await, Some(Ok(b"last".to_vec())));
        assert_eq!(lines.next().await, None);
        assert_eq!(lines.next().await, None);
    }
}
