//! NDJSON framing: turns arbitrary byte chunks into lines, whatever the chunk boundaries.
//!
//! Chunk boundaries are not line boundaries (workerd splits single lines at random points), so the framer keeps
//! the unfinished tail of the previous chunk. A line over the size limit is reported once, as an error, and
//! skipped up to its newline; the lines after it are framed as usual, so one bad line never ends a stream.

use thiserror::Error;

/// The largest agent line the DO accepts: well under SQLite's 2 MB row limit in a Durable Object.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// How many leading bytes of an over-long line the framer keeps: enough for a reader to recognize what the line
/// was (an agent line's `{"aseq":N,` prefix) without holding the line.
pub const HEAD_BYTES: usize = 32;

/// A line the framer could not deliver.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// `head` is the line's first [`HEAD_BYTES`] bytes (fewer if the line starts with less).
    #[error("line of {len} bytes exceeds the {max}-byte limit")]
    LineTooLong {
        len: usize,
        max: usize,
        head: Vec<u8>,
    },
}

/// Splits a byte stream into lines; `\r\n` and `\n` both end a line, blank lines are skipped.
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    max: usize,
    /// Bytes of an over-long line seen so far and its first bytes, while it is being skipped.
    skipping: Option<(usize, Vec<u8>)>,
}

impl Default for LineFramer {
    fn default() -> Self {
        LineFramer::new(MAX_LINE_BYTES)
    }
}

impl LineFramer {
    pub fn new(max_line_bytes: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            max: max_line_bytes,
            skipping: None,
        }
    }

    /// Feeds one chunk; calls `on_line` for every line it completes, in order.
    pub fn push(&mut self, mut chunk: &[u8], mut on_line: impl FnMut(Result<&[u8], FrameError>)) {
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&chunk[..pos], &chunk[pos + 1..]);
            chunk = rest;
            if let Some((skipped, mut start)) = self.skipping.take() {
                keep_head(&mut start, head);
                on_line(Err(self.too_long(skipped + head.len(), start)));
            } else if self.buf.is_empty() {
                // The common case: a whole line inside one chunk is handed out without a copy.
                self.emit(head, &mut on_line);
            } else {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(head);
                self.emit(&line, &mut on_line);
                line.clear();
                self.buf = line;
            }
        }
        match self.skipping.as_mut() {
            Some((skipped, start)) => {
                *skipped += chunk.len();
                keep_head(start, chunk);
            }
            None if self.buf.len() + chunk.len() > self.max + 1 => {
                // +1 leaves room for the `\r` of a line that is exactly at the limit.
                let len = self.buf.len() + chunk.len();
                let mut start = std::mem::take(&mut self.buf);
                start.truncate(HEAD_BYTES);
                keep_head(&mut start, chunk);
                self.skipping = Some((len, start));
            }
            None => self.buf.extend_from_slice(chunk),
        }
    }

    /// Ends the stream: a last line without a newline is still a line.
    pub fn finish(&mut self, mut on_line: impl FnMut(Result<&[u8], FrameError>)) {
        if let Some((skipped, start)) = self.skipping.take() {
            on_line(Err(self.too_long(skipped, start)));
        } else if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.emit(&line, &mut on_line);
        }
    }

    /// Bytes held for an unfinished line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn emit(&self, line: &[u8], on_line: &mut impl FnMut(Result<&[u8], FrameError>)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            on_line(Err(self.too_long(
                line.len(),
                line[..HEAD_BYTES.min(line.len())].to_vec(),
            )));
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            on_line(Ok(line));
        }
    }

    fn too_long(&self, len: usize, head: Vec<u8>) -> FrameError {
        FrameError::LineTooLong {
            len,
            max: self.max,
            head,
        }
    }
}

/// Appends to `start` what it lacks of its first [`HEAD_BYTES`] bytes from `more`.
fn keep_head(start: &mut Vec<u8>, more: &[u8]) {
    let room = HEAD_BYTES.saturating_sub(start.len());
    start.extend_from_slice(&more[..room.min(more.len())]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(max: usize, chunks: &[&[u8]]) -> Vec<Result<String, FrameError>> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        let mut collect = |r: Result<&[u8], FrameError>| {
            out.push(r.map(|l| String::from_utf8(l.to_vec()).unwrap()))
        };
        for chunk in chunks {
            framer.push(chunk, &mut collect);
        }
        framer.finish(&mut collect);
        out
    }

    fn ok(lines: &[&str]) -> Vec<Result<String, FrameError>> {
        lines.iter().map(|l| Ok(l.to_string())).collect()
    }

    #[test]
    fn a_line_split_across_chunks() {
        assert_eq!(frame(100, &[b"{\"a\"", b":1", b"}\n"]), ok(&["{\"a\":1}"]));
    }

    #[test]
    fn several_lines_in_one_chunk() {
        assert_eq!(frame(100, &[b"a\nb\nc\n"]), ok(&["a", "b", "c"]));
    }

    #[test]
    fn crlf_and_blank_lines() {
        assert_eq!(frame(100, &[b"a\r\n\r\n\n  \nb\r", b"\n"]), ok(&["a", "b"]));
    }

    #[test]
    fn a_last_line_without_newline() {
        assert_eq!(frame(100, &[b"a\nlast"]), ok(&["a", "last"]));
    }

    #[test]
    fn every_split_point_gives_the_same_lines() {
        let input = b"one\r\ntwo\n\nthree\nfour";
        for cut in 0..input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(
                frame(100, &[a, b]),
                ok(&["one", "two", "three", "four"]),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_over_long_line_is_reported_and_the_stream_goes_on() {
        let long = "x".repeat(25);
        let input = format!("a\n{long}\nb\n");
        let out = frame(10, &[input.as_bytes()]);
        assert_eq!(
            out,
            vec![
                Ok("a".into()),
                Err(FrameError::LineTooLong {
                    len: 25,
                    max: 10,
                    head: long.as_bytes().to_vec()
                }),
                Ok("b".into())
            ]
        );
        // Same line arriving a byte at a time: reported once, with its full length.
        let bytes: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
        assert_eq!(frame(10, &bytes), out);
    }

    #[test]
    fn an_over_long_last_line_without_newline() {
        assert_eq!(
            frame(3, &[b"ok\n", b"toolong"]),
            vec![
                Ok("ok".into()),
                Err(FrameError::LineTooLong {
                    len: 7,
                    max: 3,
                    head: b"toolong".to_vec()
                })
            ]
        );
    }

    #[test]
    fn a_line_exactly_at_the_limit_passes_even_with_crlf() {
        assert_eq!(frame(3, &[b"abc\r", b"\nabcd\n"]).len(), 2);
        assert_eq!(frame(3, &[b"abc\r\n"]), ok(&["abc"]));
    }
}
