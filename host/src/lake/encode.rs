//! Encoding: records as newline-delimited JSON, compressed with gzip or zstd.
//!
//! Lines are written as received (or as rewritten by the transform). A pretty-printed event
//! spans several lines; raw newlines can only be insignificant whitespace in valid JSON, so they
//! are folded into spaces and every stored event stays exactly one line.

use flate2::{Compress, Compression, FlushCompress, Status};

/// The gzip level the lake uses. Measured on ~1 KB retail events with zlib-rs (see
/// docs/performance.md): level 1 compresses several times faster than level 6 for a few
/// percent more bytes, which keeps compression from dominating a batch.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

/// The file extension of lake and failed objects.
pub const EXTENSION: &str = "json.gz";
/// `Content-Type` of the objects.
pub const CONTENT_TYPE: &str = "application/x-ndjson";
/// `Content-Encoding` of the objects.
pub const CONTENT_ENCODING: &str = "gzip";

/// Appends `line` and a newline to `out`, folding any raw `\n`/`\r` into spaces.
pub fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    let start = out.len();
    out.extend_from_slice(line);
    // Nearly every line has no break at all: find that out with SIMD, fold only when needed.
    if memchr::memchr2(b'\n', b'\r', line).is_some() {
        for byte in &mut out[start..] {
            if *byte == b'\n' || *byte == b'\r' {
                *byte = b' ';
            }
        }
    }
    out.push(b'\n');
}

/// A gzip compressor that keeps its deflate state from one object to the next. Setting up a
/// deflate stream (hundreds of KB of tables) costs more than compressing a small object, and a
/// batch writes one object per partition, often hundreds.
pub struct Gzip {
    deflate: Compress,
}

/// The gzip member header: deflate, no name or time, unknown OS. No time keeps objects
/// byte-identical across replays.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

impl Gzip {
    /// A compressor at `level` (0-9).
    pub fn new(level: u32) -> Self {
        Self {
            deflate: Compress::new(Compression::new(level), false),
        }
    }

    /// One complete gzip member holding `data`.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        self.deflate.reset();
        // Retail events compress 3-5x at level 1; start near that to avoid regrowth.
        let mut out = Vec::with_capacity(data.len() / 3 + 64);
        out.extend_from_slice(&GZIP_HEADER);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity() / 2 + 1024);
            }
            let consumed =
                usize::try_from(self.deflate.total_in()).expect("within the input's length");
            let status = self
                .deflate
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Finish)
                .expect("deflate into memory cannot fail");
            if status == Status::StreamEnd {
                break;
            }
        }
        out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        // ISIZE is the length modulo 2^32, by definition.
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out
    }
}

/// The zstd level measured best for the lake (docs/performance.md): level 1 compresses
/// faster than gzip level 1 and smaller than gzip level 6.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// A zstd compressor that keeps its context (and its tables) from one object to the next, for
/// the same reason as [`Gzip`].
pub struct Zstd {
    context: zstd::bulk::Compressor<'static>,
}

impl Zstd {
    /// A compressor at `level` (1-22).
    pub fn new(level: i32) -> Self {
        let mut context =
            zstd::bulk::Compressor::new(level).expect("zstd accepts levels 1-22 for a new context");
        // A checksum lets readers detect a damaged object, as gzip's CRC32 does.
        context
            .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .expect("the checksum flag is a valid parameter");
        Self { context }
    }

    /// One complete zstd frame holding `data`.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        self.context
            .compress(data)
            .expect("zstd compresses into a buffer of its own size bound")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    #[test]
    fn folds_pretty_printed_json_into_one_line() {
        let mut out = Vec::new();
        push_line(&mut out, b"{\n  \"a\": 1\r\n}");
        push_line(&mut out, b"{\"b\":2}");
        assert_eq!(out, b"{   \"a\": 1  }\n{\"b\":2}\n");
    }

    #[test]
    fn zstd_round_trips_and_reuses_its_state() {
        let mut zstd = Zstd::new(DEFAULT_ZSTD_LEVEL);
        let inputs = [
            b"{\"a\":1}\n".repeat(1000),
            Vec::new(),
            (0..=255u8).cycle().take(300_000).collect(),
        ];
        for data in &inputs {
            let frame = zstd.compress(data);
            assert_eq!(&zstd::decode_all(&frame[..]).unwrap(), data);
        }
        let fresh = Zstd::new(DEFAULT_ZSTD_LEVEL).compress(&inputs[0]);
        assert_eq!(
            zstd.compress(&inputs[0]),
            fresh,
            "no state leaks between objects"
        );
    }

    #[test]
    fn gzip_round_trips_and_reuses_its_state() {
        let mut gzip = Gzip::new(DEFAULT_GZIP_LEVEL);
        let inputs = [
            b"{\"a\":1}\n".repeat(1000),
            Vec::new(),
            (0..=255u8).cycle().take(300_000).collect(),
        ];
        for data in &inputs {
            let mut back = Vec::new();
            GzDecoder::new(&gzip.compress(data)[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(&back, data);
        }
        let fresh = Gzip::new(DEFAULT_GZIP_LEVEL).compress(&inputs[0]);
        assert_eq!(
            gzip.compress(&inputs[0]),
            fresh,
            "no state leaks between objects"
        );
    }
}
