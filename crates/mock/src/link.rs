//! A link of limited bandwidth, shared by every connection: the customer's line to the API.
//!
//! Loopback moves gigabytes per second, so on it compression can only cost time; what it buys
//! shows on a real line. With a bandwidth set, every response body leaves the mock in frames
//! of at most [`FRAME`] bytes, each sent once the link would have carried it: the link keeps
//! one clock of when it is next free, and a frame reserves `len / rate` seconds from then (or
//! from now, if it sat idle). Connections share it in arrival order of their frames, like
//! packets through one bottleneck; headers are not counted.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, stream};
use tokio::time::Instant;

/// Largest frame sent at once: small enough that connections interleave finely.
pub(crate) const FRAME: usize = 16 * 1024;

/// A shared link of fixed bandwidth.
#[derive(Debug)]
pub(crate) struct Link {
    bytes_per_sec: f64,
    /// When the link has carried everything reserved so far.
    free_at: Mutex<Instant>,
}

impl Link {
    /// A link carrying `bytes_per_sec` (at least 1).
    pub(crate) fn new(bytes_per_sec: u64) -> Link {
        Link {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            free_at: Mutex::new(Instant::now()),
        }
    }

    /// Reserves the link for `len` bytes after what is queued; returns when they are through.
    fn reserve(&self, len: usize, now: Instant) -> Instant {
        let mut free_at = self.free_at.lock().unwrap_or_else(PoisonError::into_inner);
        let start = (*free_at).max(now);
        *free_at = start + Duration::from_secs_f64(len as f64 / self.bytes_per_sec);
        *free_at
    }

    /// Waits while the link carries `len` bytes.
    pub(crate) async fn carry(&self, len: usize) {
        let done = self.reserve(len, Instant::now());
        tokio::time::sleep_until(done).await;
    }

    /// `body` as frames, each released once the link has carried it.
    pub(crate) fn pace(self: Arc<Self>, body: Bytes) -> impl Stream<Item = Bytes> + Send {
        stream::unfold(0usize, move |offset| {
            let (link, body) = (Arc::clone(&self), body.clone());
            async move {
                if offset >= body.len() {
                    return None;
                }
                let end = (offset + FRAME).min(body.len());
                link.carry(end - offset).await;
                Some((body.slice(offset..end), end))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn reservations_queue_behind_each_other_and_an_idle_link_starts_now() {
        let link = Link::new(1_000_000);
        let t0 = Instant::now();
        let a = link.reserve(500_000, t0);
        let b = link.reserve(500_000, t0);
        assert_eq!(a - t0, Duration::from_millis(500));
        assert_eq!(b - t0, Duration::from_secs(1));
        let later = t0 + Duration::from_secs(5);
        assert_eq!(link.reserve(1_000, later) - later, Duration::from_millis(1));
    }

    #[tokio::test]
    async fn two_bodies_share_the_bandwidth() {
        let link = Arc::new(Link::new(100_000));
        let body = Bytes::from(vec![7u8; 20_000]);
        let started = Instant::now();
        let a = Arc::clone(&link).pace(body.clone()).collect::<Vec<_>>();
        let b = Arc::clone(&link).pace(body.clone()).collect::<Vec<_>>();
        let (a, b) = futures::join!(a, b);
        assert_eq!(a.concat(), body.to_vec());
        assert!(a.iter().all(|f| f.len() <= FRAME));
        assert_eq!(b.concat(), body.to_vec());
        let took = started.elapsed();
        // 40 kB through 100 kB/s: 0.4 s, whoever goes first (more on a busy machine).
        assert!(
            took >= Duration::from_millis(390) && took <= Duration::from_millis(1_500),
            "{took:?}"
        );
    }
}
