//! The host's pure modules, compiled from the host's own source files for fuzzing.
//!
//! Depending on `weir-host` would rebuild wasmtime and the AWS SDK with sanitizer coverage on
//! the nightly toolchain (tens of minutes here) to fuzz code that uses neither. These modules
//! take no wasmtime or AWS types by design (see the house style), so they compile on their own:
//! the fuzzers run exactly the code the host runs, with the same `crate::` paths.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod lake {
    //! What lands in the lake: the pure parts the fuzzers reach.
    #[path = "../../../host/src/lake/encode.rs"]
    pub mod encode;
    #[path = "../../../host/src/lake/envelope.rs"]
    pub mod envelope;
    #[path = "../../../host/src/lake/partition.rs"]
    pub mod partition;
}

pub mod source {
    //! Records, positions and Kinesis decoding.
    #[path = "../../../host/src/source/failure.rs"]
    pub mod failure;
    #[path = "../../../host/src/source/kinesis/mod.rs"]
    pub mod kinesis;
    #[path = "../../../host/src/source/record.rs"]
    pub mod record;
    #[path = "../../../host/src/source/sequence.rs"]
    pub mod sequence;
}

#[path = "../../host/src/transform/id.rs"]
mod transform_id;

pub mod transform {
    //! Only the transform's identity; the runtime stays out.
    pub use crate::transform_id::TransformId;
}

/// Undoes Spark/Hive partition-value escaping (`%XX`), for checking that escaping is lossless.
pub fn unescape(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
