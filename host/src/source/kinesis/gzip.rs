//! Gzip frames: a Kinesis record whose data is gzip holding NDJSON, one event per line.
//!
//! The cost of a lake is S3 requests, one PUT per partition per batch, and a batch is capped
//! at 6 MB of Lambda payload: compressing events before they are put fits several times more
//! of them in a batch, so fewer batches, fewer objects and fewer requests per GB. The frame is
//! told apart by gzip's magic, which no JSON text can start with (0x1f is a control
//! character). The KPL's aggregation and these frames are alternatives, not layers: a user
//! record inside an aggregate is taken as it is.

use flate2::read::MultiGzDecoder;
use std::io::Read;
use thiserror::Error;

/// Gzip's magic and its only compression method, deflate.
const MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// A frame expands to at most this many times its size, and at most [`MAX_EXPANDED_BYTES`]:
/// newline-delimited JSON compresses 5 to 20 times, while a gzip bomb does a thousand. With
/// the 6 MB payload this bounds a batch's events to a few hundred MB of the function's memory.
pub const MAX_EXPANSION: usize = 64;
/// No frame expands past this, whatever its size.
pub const MAX_EXPANDED_BYTES: usize = 64 << 20;

/// Why bytes that start with gzip's magic are not a usable frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GzipError {
    /// Not a whole gzip stream: cut short, a bad checksum, or not deflate inside.
    #[error("gzip frame: corrupt: {0}")]
    Corrupt(String),
    /// It expands past its limit (a gzip bomb, or more than one frame should carry).
    #[error(
        "gzip frame: expands past {limit} bytes ({MAX_EXPANSION} times its size, at most {MAX_EXPANDED_BYTES})"
    )]
    TooLarge {
        /// The frame's limit in bytes.
        limit: usize,
    },
    /// It holds no events: only blank lines, or nothing.
    #[error("gzip frame: holds no events")]
    Empty,
}

impl GzipError {
    /// Short machine-readable reason, for failure envelopes and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Corrupt(_) => "gzip_corrupt",
            Self::TooLarge { .. } => "gzip_too_large",
            Self::Empty => "gzip_empty",
        }
    }
}

/// Whether `data` starts with gzip's magic.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// The frame's events in order: its lines without their `\n` or `\r\n`, blank lines skipped
/// (as `weir run` reads an NDJSON file: a line of only whitespace is blank). All or nothing: a frame that is corrupt anywhere, or
/// too large, gives no events.
pub fn expand(data: &[u8]) -> Result<Vec<Vec<u8>>, GzipError> {
    let limit = data
        .len()
        .saturating_mul(MAX_EXPANSION)
        .min(MAX_EXPANDED_BYTES);
    let mut text = Vec::new();
    // One byte past the limit tells "exactly at it" from "past it" without reading further.
    MultiGzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|e| GzipError::Corrupt(e.to_string()))?;
    if text.len() > limit {
        return Err(GzipError::TooLarge { limit });
    }
    let events: Vec<Vec<u8>> = text
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !is_blank(line))
        .map(<[u8]>::to_vec)
        .collect();
    if events.is_empty() {
        return Err(GzipError::Empty);
    }
    Ok(events)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Whether a frame carries `event` unchanged: one line, not blank, no `\r` at its end. Any
/// other event must go in a record of its own.
pub fn fits_frame(event: &[u8]) -> bool {
    !event.contains(&b'\n') && !event.ends_with(b"\r") && !is_blank(event)
}

/// One gzip frame of `events`, a line each; each must [`fits_frame`].
pub fn compress<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    for event in events {
        encoder
            .write_all(event)
            .and_then(|()| encoder.write_all(b"\n"))
            .expect("writing to a Vec cannot fail");
    }
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &[u8]) -> Vec<u8> {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn expands_lines_in_order_and_skips_blank_ones() {
        let data = frame(b"{\"a\":1}\n\n{\"a\":2}\r\n \t\n{\"a\":3}");
        assert!(is_gzip(&data));
        let events = expand(&data).unwrap();
        assert_eq!(events, [&b"{\"a\":1}"[..], b"{\"a\":2}", b"{\"a\":3}"]);
    }

    #[test]
    fn compress_and_expand_round_trip() {
        let events: Vec<&[u8]> = vec![b"{\"x\":\"\xc3\xa9\"}", b"[1,2]"];
        assert_eq!(expand(&compress(events.clone())).unwrap(), events);
    }

    #[test]
    fn only_single_lines_fit_a_frame() {
        assert!(fits_frame(b"{\"a\":\"\\n\"}"));
        for event in [&b""[..], b" \t", b"{\n}", b"{}\r", b"{}\n"] {
            assert!(!fits_frame(event), "{event:?}");
        }
    }

    #[test]
    fn reads_concatenated_members() {
        let mut data = frame(b"{\"a\":1}\n");
        data.extend(frame(b"{\"a\":2}\n"));
        assert_eq!(expand(&data).unwrap().len(), 2);
    }

    #[test]
    fn json_never_looks_like_gzip() {
        for text in [&b"{}"[..], b" {}", b"\"x\"", b"[1]", b""] {
            assert!(!is_gzip(text));
        }
    }

    #[test]
    fn refuses_a_bomb_without_expanding_it() {
        // 256 MiB of newlines compress to about 256 KiB, a thousand to one.
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![b'\n'; 1 << 20];
        for _ in 0..256 {
            std::io::Write::write_all(&mut encoder, &chunk).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        let error = expand(&bomb).unwrap_err();
        assert_eq!(error.code(), "gzip_too_large");
        assert!(
            matches!(error, GzipError::TooLarge { limit } if limit == bomb.len() * MAX_EXPANSION)
        );
    }

    #[test]
    fn refuses_corrupt_cut_and_empty_frames() {
        let data = frame(b"{\"a\":1}\n{\"a\":2}\n");
        let cut = &data[..data.len() - 6];
        assert_eq!(expand(cut).unwrap_err().code(), "gzip_corrupt");
        let mut flipped = data.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 0xff; // the CRC-32
        assert_eq!(expand(&flipped).unwrap_err().code(), "gzip_corrupt");
        assert_eq!(expand(&frame(b"\n\r\n\n")).unwrap_err(), GzipError::Empty);
        assert_eq!(expand(&MAGIC).unwrap_err().code(), "gzip_corrupt");
    }
}
