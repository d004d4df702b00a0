//! Content codings on the wire: what the client asks for (`Accept-Encoding`) and the push-style
//! decoder that turns a compressed body back into the JSON, chunk by chunk as it arrives.
//!
//! reqwest could decompress for us, but then the bytes we see are the decoded ones and what
//! actually crossed the network would go uncounted. So the client asks for compression itself,
//! receives the body as it was sent, counts it, and feeds each chunk to a [`BodyDecoder`]:
//!
//! ```ignore
//! let mut decoder = BodyDecoder::new(Coding::from_header(Some(b"gzip"))?, 0, 1 << 20)?;
//! for chunk in chunks {
//!     decoder.push(&chunk)?;
//! }
//! let json = decoder.finish()?;
//! ```
//!
//! A body that is corrupt, cut short, or followed by bytes after the end of its compressed
//! stream is an error (the client retries it as an invalid body), and so is one that decodes to
//! more than the limit: a small compressed body must not be able to exhaust memory.
//!
//! # Memory usage
//!
//! The decoded body (at most the limit), plus the decoder's state: 32 KiB for gzip and
//! deflate; for zstd the window the frame declares (up to 128 MiB, zstd's default ceiling; a
//! server compressing at its usual levels uses a few MiB); for brotli up to 16 MiB of window.

use std::io::{self, Write};

use bytes::{Bytes, BytesMut};

/// `Accept-Encoding` with compression on. Brotli first: at the levels servers use for dynamic
/// answers it makes JSON the smallest (10x against zstd's 8x and gzip's 9x on the mock's pages),
/// and decoding it costs the export about as little CPU as zstd does (BENCHMARKS.md,
/// Compression on the wire); then zstd, then gzip, which every server that compresses speaks.
pub(crate) const ACCEPT_COMPRESSED: &str = "br, zstd;q=0.9, gzip;q=0.8";
/// `Accept-Encoding` with compression off: the body as it is. Sent rather than no header at
/// all, which by the letter of HTTP would accept any coding.
pub(crate) const ACCEPT_IDENTITY: &str = "identity";

/// Output buffer of the brotli decoder, between its window and the decoded body.
const BROTLI_BUFFER: usize = 32 * 1024;
/// The most a compressed body's `Content-Length` may reserve up front.
const MAX_COMPRESSED_HINT: usize = 8 * 1024 * 1024;

/// A content coding the client decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// No coding: the body is the JSON.
    Identity,
    /// `gzip` (RFC 1952; also `x-gzip`).
    Gzip,
    /// `deflate`: a zlib stream (RFC 1950), as HTTP defines it. Not asked for, but decoded
    /// when a server sends it anyway.
    Deflate,
    /// `zstd` (RFC 8878).
    Zstd,
    /// `br`: brotli (RFC 7932).
    Brotli,
}

impl Coding {
    /// The coding named by a `Content-Encoding` header (none: identity). Codings applied one
    /// over another (`deflate, gzip`) are not supported; `identity` entries are ignored.
    pub(crate) fn from_header(value: Option<&[u8]>) -> Result<Coding, UnsupportedCoding> {
        let Some(value) = value else {
            return Ok(Coding::Identity);
        };
        let text = std::str::from_utf8(value)
            .map_err(|_| UnsupportedCoding(String::from_utf8_lossy(value).into_owned()))?;
        let mut codings = text
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
        let Some(first) = codings.next() else {
            return Ok(Coding::Identity);
        };
        if codings.next().is_some() {
            return Err(UnsupportedCoding(text.trim().to_owned()));
        }
        match first.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Ok(Coding::Gzip),
            "deflate" => Ok(Coding::Deflate),
            "zstd" => Ok(Coding::Zstd),
            "br" => Ok(Coding::Brotli),
            _ => Err(UnsupportedCoding(first.to_owned())),
        }
    }

    /// The coding's name in HTTP, as the statistics count it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Zstd => "zstd",
            Coding::Brotli => "br",
        }
    }
}

/// A `Content-Encoding` this client cannot decode (the header's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the API sent Content-Encoding {0:?}, which this client cannot decode (it asks for {ACCEPT_COMPRESSED}, or identity with compression off)"
)]
pub(crate) struct UnsupportedCoding(pub(crate) String);

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The decoded body outgrew the limit (a decompression bomb, or a runaway body).
    #[error("the body exceeds {limit} bytes{}", decoded_from(*.coding))]
    TooLarge {
        /// The limit, in decoded bytes.
        limit: usize,
        /// The coding it arrived in.
        coding: Coding,
    },
    /// The compressed stream is damaged or cut short.
    #[error("the {} body is corrupt or cut short: {source}", .coding.name())]
    Corrupt {
        /// The coding it arrived in.
        coding: Coding,
        /// What the decoder said.
        #[source]
        source: io::Error,
    },
    /// The decoder could not be set up (zstd could not allocate its context).
    #[error("cannot start decoding the {} body: {source}", .coding.name())]
    Setup {
        /// The coding it arrived in.
        coding: Coding,
        /// What the decoder said.
        #[source]
        source: io::Error,
    },
    /// Bytes follow the end of the compressed stream.
    #[error(
        "the {} body has {} after the end of its compressed stream",
        .coding.name(),
        crate::retry::count(*extra as u64, "byte", "bytes")
    )]
    TrailingData {
        /// The coding it arrived in.
        coding: Coding,
        /// Bytes left over in the chunk where the stream ended.
        extra: usize,
    },
}

fn decoded_from(coding: Coding) -> String {
    match coding {
        Coding::Identity => String::new(),
        other => format!(" once decoded from {}", other.name()),
    }
}

/// Where decoded bytes go: the body, refusing to grow past the limit.
struct Sink {
    body: BytesMut,
    limit: usize,
    /// The limit was hit: the decoder's error is this, not damage.
    over: bool,
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.body.len().saturating_add(data.len()) > self.limit {
            self.over = true;
            return Err(io::Error::other("decoded body over the limit"));
        }
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum State {
    Identity(Sink),
    Gzip(flate2::write::GzDecoder<Sink>),
    Deflate(flate2::write::ZlibDecoder<Sink>),
    Zstd(zstd::stream::write::Decoder<'static, Sink>),
    // Boxed: the brotli state is several KiB, the others a few words.
    Brotli(Box<brotli_decompressor::DecompressorWriter<Sink>>),
}

/// Decodes one body in its content coding, fed chunk by chunk.
pub(crate) struct BodyDecoder {
    coding: Coding,
    state: State,
}

impl BodyDecoder {
    /// A decoder for a body in `coding` that decodes to at most `limit` bytes. `size_hint`
    /// (the `Content-Length`, 0 if unknown) sizes the first allocation.
    ///
    /// Fails only when the decoder cannot allocate its state.
    pub(crate) fn new(
        coding: Coding,
        size_hint: usize,
        limit: usize,
    ) -> Result<BodyDecoder, WireError> {
        let capacity = match coding {
            Coding::Identity if size_hint > 0 => size_hint,
            Coding::Identity => 64 * 1024,
            // JSON compresses about tenfold; growing from there costs a copy or two at most.
            _ => size_hint
                .saturating_mul(8)
                .clamp(64 * 1024, MAX_COMPRESSED_HINT),
        }
        .min(limit);
        let sink = Sink {
            body: BytesMut::with_capacity(capacity),
            limit,
            over: false,
        };
        let state = match coding {
            Coding::Identity => State::Identity(sink),
            Coding::Gzip => State::Gzip(flate2::write::GzDecoder::new(sink)),
            Coding::Deflate => State::Deflate(flate2::write::ZlibDecoder::new(sink)),
            Coding::Zstd => State::Zstd(
                zstd::stream::write::Decoder::new(sink)
                    .map_err(|source| WireError::Setup { coding, source })?,
            ),
            Coding::Brotli => State::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(sink, BROTLI_BUFFER),
            )),
        };
        Ok(BodyDecoder { coding, state })
    }

    /// Bytes decoded so far.
    pub(crate) fn decoded_len(&self) -> usize {
        self.sink().body.len()
    }

    fn sink(&self) -> &Sink {
        match &self.state {
            State::Identity(sink) => sink,
            State::Gzip(d) => d.get_ref(),
            State::Deflate(d) => d.get_ref(),
            State::Zstd(d) => d.get_ref(),
            State::Brotli(d) => d.get_ref(),
        }
    }

    /// Decodes the next chunk of the body as received.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<(), WireError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let fed = match &mut self.state {
            State::Identity(sink) => sink.write_all(chunk).map(|()| 0),
            State::Gzip(d) => feed(d, chunk),
            State::Deflate(d) => feed(d, chunk),
            State::Zstd(d) => feed(d, chunk),
            State::Brotli(d) => feed(d.as_mut(), chunk),
        };
        match fed {
            Ok(0) => Ok(()),
            Ok(extra) => Err(WireError::TrailingData {
                coding: self.coding,
                extra,
            }),
            Err(source) => Err(self.failure(source)),
        }
    }

    /// Ends the body: checks that the compressed stream is complete and returns the decoded
    /// bytes.
    pub(crate) fn finish(self) -> Result<Bytes, WireError> {
        let (coding, limit) = (self.coding, self.sink().limit);
        let fail = |source, over| decode_error(coding, limit, over, source);
        let sink = match self.state {
            State::Identity(sink) => sink,
            State::Gzip(mut d) => {
                d.try_finish().map_err(|e| fail(e, d.get_ref().over))?;
                d.finish().map_err(|e| fail(e, false))?
            }
            State::Deflate(mut d) => {
                d.try_finish().map_err(|e| fail(e, d.get_ref().over))?;
                d.finish().map_err(|e| fail(e, false))?
            }
            State::Zstd(mut d) => {
                d.do_finish().map_err(|e| fail(e, d.get_ref().over))?;
                d.into_inner()
            }
            State::Brotli(mut d) => {
                d.close().map_err(|e| fail(e, d.get_ref().over))?;
                d.into_inner().map_err(|sink| {
                    let open =
                        io::Error::new(io::ErrorKind::InvalidData, "brotli stream not closed");
                    fail(open, sink.over)
                })?
            }
        };
        Ok(sink.body.freeze())
    }

    fn failure(&self, source: io::Error) -> WireError {
        let sink = self.sink();
        decode_error(self.coding, sink.limit, sink.over, source)
    }
}

/// A decoder's error: the limit, when the sink hit it (`over`), else damage.
fn decode_error(coding: Coding, limit: usize, over: bool, source: io::Error) -> WireError {
    if over {
        WireError::TooLarge { limit, coding }
    } else {
        WireError::Corrupt { coding, source }
    }
}

/// Writes all of `chunk` into a decoder; returns how many bytes it refused because its stream
/// had ended (0 when it took everything).
fn feed(decoder: &mut impl Write, mut chunk: &[u8]) -> io::Result<usize> {
    while !chunk.is_empty() {
        match decoder.write(chunk) {
            Ok(0) => return Ok(chunk.len()),
            Ok(n) => chunk = &chunk[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(n: usize) -> Vec<u8> {
        let mut out = b"{\"contacts\":[".to_vec();
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(
                format!(r#"{{"phone_number":"+1415555{i:04}","list_number":"+18005551234"}}"#)
                    .as_bytes(),
            );
        }
        out.extend_from_slice(b"]}");
        out
    }

    fn encode(coding: Coding, data: &[u8]) -> Vec<u8> {
        match coding {
            Coding::Identity => data.to_vec(),
            Coding::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Deflate => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Zstd => zstd::stream::encode_all(data, 3).unwrap(),
            Coding::Brotli => {
                let mut out = Vec::new();
                brotli::BrotliCompress(
                    &mut &data[..],
                    &mut out,
                    &brotli::enc::BrotliEncoderParams {
                        quality: 5,
                        ..Default::default()
                    },
                )
                .unwrap();
                out
            }
        }
    }

    const ALL: [Coding; 5] = [
        Coding::Identity,
        Coding::Gzip,
        Coding::Deflate,
        Coding::Zstd,
        Coding::Brotli,
    ];

    /// Feeds `wire` in chunks of `chunk` bytes.
    fn decode(coding: Coding, wire: &[u8], chunk: usize, limit: usize) -> Result<Bytes, WireError> {
        let mut decoder = BodyDecoder::new(coding, wire.len(), limit).unwrap();
        for part in wire.chunks(chunk) {
            decoder.push(part)?;
        }
        decoder.finish()
    }

    #[test]
    fn every_coding_round_trips_whatever_the_chunking() {
        let data = json(2000);
        for coding in ALL {
            let wire = encode(coding, &data);
            if coding != Coding::Identity {
                assert!(wire.len() * 4 < data.len(), "{coding:?} compresses JSON");
            }
            for chunk in [1, 7, 1024, 16 * 1024, wire.len()] {
                let got = decode(coding, &wire, chunk, 1 << 20).unwrap();
                assert_eq!(&got[..], &data[..], "{coding:?} in chunks of {chunk}");
            }
        }
    }

    #[test]
    fn a_body_cut_anywhere_is_an_error_never_a_shorter_body() {
        let data = json(300);
        for coding in ALL.into_iter().filter(|c| *c != Coding::Identity) {
            let wire = encode(coding, &data);
            for cut in [1, 2, 9, 10, wire.len() / 2, wire.len() - 4, wire.len() - 1] {
                let err = decode(coding, &wire[..cut], 100, 1 << 20).unwrap_err();
                assert!(
                    matches!(err, WireError::Corrupt { .. }),
                    "{coding:?} cut at {cut}: {err}"
                );
                assert!(err.to_string().contains(coding.name()), "{err}");
            }
        }
    }

    #[test]
    fn damaged_bytes_are_an_error() {
        let data = json(300);
        for coding in ALL.into_iter().filter(|c| *c != Coding::Identity) {
            let mut wire = encode(coding, &data);
            let middle = wire.len() / 2;
            for b in &mut wire[middle..middle + 16] {
                *b ^= 0x5a;
            }
            let result = decode(coding, &wire, 512, 1 << 20);
            assert!(result.is_err(), "{coding:?}: damage went unnoticed");
        }
    }

    #[test]
    fn bytes_after_the_stream_are_an_error() {
        let data = json(50);
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let mut wire = encode(coding, &data);
            wire.extend_from_slice(b"<html>proxy</html>");
            let err = decode(coding, &wire, wire.len(), 1 << 20).unwrap_err();
            assert!(
                matches!(
                    err,
                    WireError::TrailingData { .. } | WireError::Corrupt { .. }
                ),
                "{coding:?}: {err}"
            );
        }
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let zeros = vec![b' '; 4 << 20];
        for coding in ALL {
            let wire = encode(coding, &zeros);
            let mut decoder = BodyDecoder::new(coding, wire.len(), 1 << 20).unwrap();
            let mut result = Ok(());
            for part in wire.chunks(4096) {
                result = decoder.push(part);
                if result.is_err() {
                    break;
                }
            }
            let err = match result {
                Err(e) => e,
                Ok(()) => decoder.finish().unwrap_err(),
            };
            assert!(
                matches!(
                    err,
                    WireError::TooLarge {
                        limit: 1_048_576,
                        ..
                    }
                ),
                "{coding:?}: {err}"
            );
        }
    }

    #[test]
    fn content_encoding_headers_parse_or_name_what_is_unsupported() {
        let parse = |v: &str| Coding::from_header(Some(v.as_bytes()));
        assert_eq!(Coding::from_header(None), Ok(Coding::Identity));
        assert_eq!(parse(""), Ok(Coding::Identity));
        assert_eq!(parse("identity"), Ok(Coding::Identity));
        assert_eq!(parse("GZIP"), Ok(Coding::Gzip));
        assert_eq!(parse("x-gzip"), Ok(Coding::Gzip));
        assert_eq!(parse(" zstd "), Ok(Coding::Zstd));
        assert_eq!(parse("br"), Ok(Coding::Brotli));
        assert_eq!(parse("deflate"), Ok(Coding::Deflate));
        assert_eq!(parse("gzip, identity"), Ok(Coding::Gzip));
        let err = parse("compress").unwrap_err();
        assert!(err.to_string().contains("\"compress\""), "{err}");
        let err = parse("deflate, gzip").unwrap_err();
        assert!(err.to_string().contains("deflate, gzip"), "{err}");
    }
}
