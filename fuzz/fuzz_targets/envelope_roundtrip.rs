//! Failed-record envelopes: the original bytes are exactly recoverable.
//!
//! Properties: whatever the record's bytes and partition key, its envelope is one NDJSON line
//! (no raw line break for the encoder to fold), it parses back to the same envelope, and
//! `original()` returns the record's bytes exactly, also after the gzip'd object round trip.
#![no_main]

use flate2::read::GzDecoder;
use libfuzzer_sys::fuzz_target;
use std::io::Read;
use weir_fuzz::lake::encode::{Gzip, push_line};
use weir_fuzz::lake::envelope::Envelope;
use weir_fuzz::source::failure::{ErrorType, Failure};
use weir_fuzz::source::record::{Record, Timestamp};
use weir_fuzz::source::sequence::Position;
use weir_fuzz::transform::TransformId;

fuzz_target!(|data: &[u8]| {
    let (key, bytes) = data.split_at(
        data.len()
            .min(usize::from(data.first().copied().unwrap_or(0) % 32)),
    );
    let key = String::from_utf8_lossy(key).into_owned();
    let record = Record::new(
        bytes.to_vec(),
        key.clone(),
        Position::from_index(u64::from(data.len() as u32)).with_sub(7),
        Timestamp::from_unix_millis(i64::from(data.len() as u32) * 1_000_003),
    );
    let failure = Failure::new(
        ErrorType::Rejected,
        key.clone(),
        String::from_utf8_lossy(bytes),
    );
    let id = TransformId {
        name: "fuzz".into(),
        sha256: "ab".repeat(32),
        version: None,
    };
    let envelope = Envelope::new(&record, &failure, "shardId-0", &id);
    let line = envelope.to_json();
    assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));

    let mut ndjson = Vec::new();
    push_line(&mut ndjson, &line);
    let object = Gzip::new(1).compress(&ndjson);
    let mut back = Vec::new();
    GzDecoder::new(&object[..])
        .read_to_end(&mut back)
        .expect("gzip round trip");
    let parsed: Envelope =
        serde_json::from_slice(back.strip_suffix(b"\n").expect("one line")).expect("parses");
    assert_eq!(parsed, envelope);
    assert_eq!(parsed.original().expect("base64"), bytes);
    assert_eq!(parsed.partition_key, key);
});
