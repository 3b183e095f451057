//! [`ResponseLimit`]: how much of an API server's answer the client reads
//! before it gives up, and [`ResponseTooLarge`], the error naming the
//! request that went over.
//!
//! kube's client reads a list answer (or an error body) whole into memory
//! before it parses it, and a watch body line by line with no cap on a
//! line, so a server (or a proxy, or a corrupted object) could make the
//! provider buffer without bound. The provider's client counts the bytes as
//! they arrive and fails the response at [`MAX_RESPONSE_BYTES`]: per answer
//! for lists, per line for watches (a watch runs for minutes, so only a
//! single event is bounded). Network-free, so the fuzz harnesses run the
//! same framing check.

use std::fmt;

/// The most a list answer (one page of [`LIST_PAGE_SIZE`] objects) or a
/// single watch line may hold: 64 MiB, as the etcd backend's largest gRPC
/// message. The API server refuses objects over about 1.5 MiB (its etcd
/// request limit), so a real page stays far below this.
///
/// [`LIST_PAGE_SIZE`]: crate::LIST_PAGE_SIZE
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// How a response body is read, and so what the limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseFraming {
    /// Read whole (a list, an error answer, `GET /version`): the limit
    /// applies to the body.
    Whole,
    /// Newline-delimited watch events: the limit applies to each line (the
    /// bytes between two `\n`).
    Lines,
}

/// A response whose body (or one watch line) went over the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseTooLarge {
    /// The request answered: what it was for and its path, such as
    /// `list GET /api/v1/namespaces/apps/pods`.
    pub request: String,
    /// What the limit applied to.
    pub framing: ResponseFraming,
    /// The limit, in bytes.
    pub limit: usize,
}

impl fmt::Display for ResponseTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.framing {
            ResponseFraming::Whole => write!(
                f,
                "{}: answer larger than {} bytes",
                self.request, self.limit
            ),
            ResponseFraming::Lines => write!(
                f,
                "{}: a watch line longer than {} bytes",
                self.request, self.limit
            ),
        }
    }
}

impl std::error::Error for ResponseTooLarge {}

/// Counts one response body against its limit, chunk by chunk, wherever the
/// chunks happen to split it.
#[derive(Debug, Clone)]
pub struct ResponseLimit {
    request: String,
    framing: ResponseFraming,
    limit: usize,
    /// Bytes of the body so far (`Whole`) or of the unfinished line.
    current: usize,
    exceeded: bool,
}

impl ResponseLimit {
    /// A limit of `limit` bytes under `framing` for the answer to `request`
    /// (named in the error).
    pub fn new(request: impl Into<String>, framing: ResponseFraming, limit: usize) -> Self {
        Self {
            request: request.into(),
            framing,
            limit,
            current: 0,
            exceeded: false,
        }
    }

    /// Accounts for the next `chunk` of the body. Once an error is returned,
    /// every later call returns it too: the response is beyond use.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ResponseTooLarge> {
        if !self.exceeded {
            self.exceeded = match self.framing {
                ResponseFraming::Whole => {
                    self.current = self.current.saturating_add(chunk.len());
                    self.current > self.limit
                }
                ResponseFraming::Lines => self.feed_lines(chunk),
            };
        }
        if self.exceeded {
            Err(self.error())
        } else {
            Ok(())
        }
    }

    /// Checks a body of `len` bytes announced up front (`Content-Length`):
    /// a `Whole` body that cannot fit is refused before it is read.
    pub fn announce(&mut self, len: u64) -> Result<(), ResponseTooLarge> {
        let fits = usize::try_from(len).is_ok_and(|n| n <= self.limit);
        if self.framing == ResponseFraming::Whole && !fits {
            self.exceeded = true;
            return Err(self.error());
        }
        Ok(())
    }

    /// Whether a line grew past the limit.
    fn feed_lines(&mut self, chunk: &[u8]) -> bool {
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            if self.current.saturating_add(at) > self.limit {
                return true;
            }
            self.current = 0;
            rest = &rest[at + 1..];
        }
        self.current = self.current.saturating_add(rest.len());
        self.current > self.limit
    }

    fn error(&self) -> ResponseTooLarge {
        ResponseTooLarge {
            request: self.request.clone(),
            framing: self.framing,
            limit: self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(limit: usize) -> ResponseLimit {
        ResponseLimit::new(
            "watch GET /api/v1/namespaces/apps/pods",
            ResponseFraming::Lines,
            limit,
        )
    }

    #[test]
    fn a_line_may_reach_the_limit_but_not_pass_it_wherever_chunks_split() {
        let body = b"12345\n1234\n123456\n";
        for split in 0..=body.len() {
            let (a, b) = body.split_at(split);
            let mut at_six = lines(6);
            assert!(
                at_six.feed(a).and_then(|()| at_six.feed(b)).is_ok(),
                "{split}"
            );
            let mut at_five = lines(5);
            let err = at_five.feed(a).and_then(|()| at_five.feed(b));
            assert!(err.is_err(), "split at {split}");
        }
    }

    #[test]
    fn an_unfinished_line_counts_and_the_error_sticks() {
        let mut limit = lines(4);
        assert!(limit.feed(b"ab\nabcd").is_ok());
        let err = limit.feed(b"e").unwrap_err();
        assert_eq!(
            err.to_string(),
            "watch GET /api/v1/namespaces/apps/pods: a watch line longer than 4 bytes"
        );
        assert_eq!(limit.feed(b"\n"), Err(err));
    }

    #[test]
    fn a_whole_body_counts_every_byte_and_an_announced_length() {
        let mut whole = ResponseLimit::new("list GET /api/v1/pods", ResponseFraming::Whole, 10);
        assert!(whole.feed(b"12345\n").is_ok());
        assert!(whole.feed(b"1234").is_ok());
        let err = whole.feed(b"1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "list GET /api/v1/pods: answer larger than 10 bytes"
        );
        let mut announced = ResponseLimit::new("list GET /api/v1/pods", ResponseFraming::Whole, 10);
        assert!(announced.announce(10).is_ok());
        assert!(announced.announce(11).is_err());
        assert!(announced.feed(b"").is_err());
        assert!(lines(10).announce(u64::MAX).is_ok());
    }
}
