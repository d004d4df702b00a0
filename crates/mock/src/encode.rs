//! Compressed answers: which content coding a request gets, and every distinct page body
//! compressed once.
//!
//! A real API compresses each answer as it sends it; a mock that did the same would make its
//! own compression what a benchmark measures (gzip at the usual level runs at a few tens of
//! MB/s, slower than the exporter parses). So each body is compressed once per coding and kept,
//! keyed by a 128-bit hash of its exact bytes: a page asked for again (the same query over the
//! same data set) is a lookup, and a body that faults make unrepeatable (shuffled ties, a live
//! listing, damage) simply misses and is compressed on the fly. Nothing can serve a stale body.
//!
//! # Memory usage
//!
//! At most [`CACHE_BUDGET`] bytes of compressed bodies; past it the oldest are dropped. One
//! million contacts (about 490 MB of JSON) take about 60 MB in any one coding.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::header::ACCEPT_ENCODING;

/// Most bytes of compressed bodies kept.
pub(crate) const CACHE_BUDGET: usize = 512 * 1024 * 1024;

/// A content coding the mock can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCoding {
    /// `gzip`, level 6 (zlib's default, and a usual web server setting).
    Gzip,
    /// `zstd`, level 3 (zstd's default).
    Zstd,
    /// `br`: brotli at quality 5, as servers use it for dynamic answers (11 is for static
    /// files: far too slow per request).
    Brotli,
}

impl ContentCoding {
    /// Every coding, in the mock's default order of preference.
    pub const ALL: [ContentCoding; 3] = [
        ContentCoding::Zstd,
        ContentCoding::Brotli,
        ContentCoding::Gzip,
    ];

    /// The coding's name in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Zstd => "zstd",
            ContentCoding::Brotli => "br",
        }
    }

    /// `body` in this coding.
    fn compress(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            ContentCoding::Gzip => {
                let mut out = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::new(6),
                );
                out.write_all(body)?;
                out.finish()
            }
            ContentCoding::Zstd => zstd::stream::encode_all(body, 3),
            ContentCoding::Brotli => {
                let mut out = Vec::with_capacity(body.len() / 4);
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 5,
                    lgwin: 22,
                    size_hint: body.len(),
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &body[..], &mut out, &params)?;
                Ok(out)
            }
        }
    }
}

impl fmt::Display for ContentCoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// A name that is not `gzip`, `zstd` or `br`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a content coding the mock speaks (gzip, zstd, br)")]
pub struct UnknownCoding(pub String);

impl FromStr for ContentCoding {
    type Err = UnknownCoding;

    /// `gzip`, `zstd`, `br` (also `brotli`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gzip" => Ok(ContentCoding::Gzip),
            "zstd" => Ok(ContentCoding::Zstd),
            "br" | "brotli" => Ok(ContentCoding::Brotli),
            _ => Err(UnknownCoding(s.to_owned())),
        }
    }
}

/// The coding to answer in: of those `offered` (in the server's order of preference), the one
/// the request's `Accept-Encoding` weighs highest (`q`, default 1; `*` stands for the codings
/// it does not name); ties go to the server's order. `None`: identity (no header, or nothing
/// offered is acceptable).
pub(crate) fn choose(offered: &[ContentCoding], headers: &HeaderMap) -> Option<ContentCoding> {
    let mut weights: Vec<(String, f32)> = Vec::new();
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            weights.push((name, q));
        }
    }
    let weight = |name: &str| {
        let find = |n: &str| weights.iter().find(|(w, _)| w == n).map(|(_, q)| *q);
        find(name).or_else(|| find("*")).unwrap_or(0.0)
    };
    let mut best: Option<(ContentCoding, f32)> = None;
    for &coding in offered {
        let q = weight(coding.token());
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((coding, q));
        }
    }
    best.map(|(coding, _)| coding)
}

/// Compresses bodies, keeping each result.
pub(crate) struct Encoder {
    offered: Vec<ContentCoding>,
    cache: Mutex<Cache>,
}

type Key = (u128, usize, ContentCoding);

#[derive(Default)]
struct Cache {
    bodies: HashMap<Key, Bytes>,
    /// Keys in insertion order, for eviction.
    order: VecDeque<Key>,
    bytes: usize,
}

impl Encoder {
    /// Compresses in the `offered` codings (none: never).
    pub(crate) fn new(offered: Vec<ContentCoding>) -> Encoder {
        Encoder {
            offered,
            cache: Mutex::default(),
        }
    }

    /// The mock compresses at all: answers then say `Vary: Accept-Encoding`.
    pub(crate) fn offers_any(&self) -> bool {
        !self.offered.is_empty()
    }

    /// `body` as the request with `headers` gets it, and the coding it is in (`None`:
    /// identity).
    pub(crate) fn encode(
        &self,
        headers: &HeaderMap,
        body: Bytes,
    ) -> (Bytes, Option<ContentCoding>) {
        let Some(coding) = choose(&self.offered, headers) else {
            return (body, None);
        };
        let key = (xxhash_rust::xxh3::xxh3_128(&body), body.len(), coding);
        if let Some(hit) = self.lock().bodies.get(&key) {
            return (hit.clone(), Some(coding));
        }
        // Compressed outside the lock: other pages are served meanwhile. Two requests for a new
        // page may both compress it; the second insert replaces the first, same bytes.
        match coding.compress(&body) {
            Ok(compressed) => {
                let compressed = Bytes::from(compressed);
                self.lock().insert(key, compressed.clone());
                (compressed, Some(coding))
            }
            Err(err) => {
                tracing::error!(%err, %coding, "cannot compress a page; sending it as it is");
                (body, None)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Cache {
    fn insert(&mut self, key: Key, body: Bytes) {
        if body.len() > CACHE_BUDGET {
            return;
        }
        let len = body.len();
        match self.bodies.insert(key, body) {
            Some(old) => self.bytes -= old.len(),
            None => self.order.push_back(key),
        }
        self.bytes += len;
        while self.bytes > CACHE_BUDGET {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.bodies.remove(&oldest) {
                self.bytes -= old.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_highest_q_wins_then_the_servers_order() {
        use ContentCoding::*;
        let all = ContentCoding::ALL;
        assert_eq!(choose(&all, &HeaderMap::new()), None);
        assert_eq!(choose(&all, &accept("identity")), None);
        assert_eq!(choose(&all, &accept("gzip, br")), Some(Brotli));
        assert_eq!(choose(&[Gzip, Zstd], &accept("zstd, gzip")), Some(Gzip));
        assert_eq!(
            choose(&all, &accept("br, zstd;q=0.9, gzip;q=0.8")),
            Some(Brotli)
        );
        assert_eq!(
            choose(&[Gzip, Zstd], &accept("br, zstd;q=0.9, gzip;q=0.8")),
            Some(Zstd)
        );
        assert_eq!(
            choose(&[Gzip], &accept("zstd, br;q=0.9, gzip;q=0.8")),
            Some(Gzip)
        );
        assert_eq!(choose(&all, &accept("gzip;q=0.5, br;q=0.7")), Some(Brotli));
        assert_eq!(choose(&all, &accept("zstd;q=0, *")), Some(Brotli));
        assert_eq!(choose(&all, &accept("GZIP; Q=1")), Some(Gzip));
        assert_eq!(choose(&[], &accept("gzip")), None);
        assert_eq!(choose(&[Zstd], &accept("gzip")), None);
    }

    #[test]
    fn each_body_is_compressed_once_and_a_changed_body_is_not_served_stale() {
        let encoder = Encoder::new(vec![ContentCoding::Gzip]);
        let page = Bytes::from(br#"{"contacts":[{"a":1},{"a":1},{"a":1}]}"#.repeat(50));
        let (first, coding) = encoder.encode(&accept("gzip"), page.clone());
        assert_eq!(coding, Some(ContentCoding::Gzip));
        assert!(first.len() < page.len() / 4);
        let (again, _) = encoder.encode(&accept("gzip"), page.clone());
        assert_eq!(again.as_ptr(), first.as_ptr(), "served from the cache");
        let mut changed = page.to_vec();
        changed[20] = b'2';
        let (other, _) = encoder.encode(&accept("gzip"), Bytes::from(changed.clone()));
        assert_ne!(other, first);
        let mut decoded = Vec::new();
        let mut d = flate2::write::GzDecoder::new(&mut decoded);
        d.write_all(&other).unwrap();
        d.finish().unwrap();
        assert_eq!(decoded, changed);
        let (plain, none) = encoder.encode(&HeaderMap::new(), page.clone());
        assert_eq!((plain, none), (page, None));
    }

    #[test]
    fn codings_parse_by_name() {
        assert_eq!("br".parse(), Ok(ContentCoding::Brotli));
        assert_eq!("Brotli".parse(), Ok(ContentCoding::Brotli));
        assert_eq!(" zstd".parse(), Ok(ContentCoding::Zstd));
        assert!("deflate".parse::<ContentCoding>().is_err());
    }
}
