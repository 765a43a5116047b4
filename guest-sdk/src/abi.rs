//! The export glue behind [`export!`](crate::export!): the `weir_v1_*` entry points' bodies.
//!
//! Together with `host.rs` (the imports, the only `unsafe` calls) and the macro's
//! `#[unsafe(no_mangle)]`, this is all the unsafe surface of a transform, so authors write none.
//! `ABI.md` beside `Cargo.toml` is the contract this implements.

use std::cell::RefCell;

use serde::de::IgnoredAny;

use crate::{Outcome, Record, Timestamp, host};

thread_local! {
    // The buffer the host writes each record into. wasm32-wasip1 guests are single-threaded, so
    // this is one buffer per instance. It only grows, so once it fits the largest record so far,
    // the host's writes need no allocation.
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The bytes of a custom section, as a static array (what `link_section` needs).
pub const fn section<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// `weir_v1_init`: called once per instance before any record.
///
/// Routes panics to the host's `panic` import, so that a trap caused by a panic carries its
/// location and message (`panicked at src/lib.rs:12:5: ...`) into the record's failure reason.
pub fn init() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload_as_str()
            .unwrap_or("a panic payload that is not a string");
        let text = match info.location() {
            Some(location) => format!("panicked at {location}: {message}"),
            None => format!("panicked: {message}"),
        };
        host::panic(&text);
    }));
}

/// `weir_v1_input`: a pointer to a buffer of at least `len` bytes for the next record, or 0 if
/// it cannot be allocated.
pub fn input(len: i32) -> i32 {
    // The ABI's lengths are unsigned.
    let len = len as u32 as usize;
    INPUT.with_borrow_mut(|buffer| {
        if buffer.len() < len {
            if buffer.try_reserve_exact(len - buffer.len()).is_err() {
                return 0;
            }
            buffer.resize(len, 0);
        }
        // Pointers are 32 bits on wasm32; the cast only truncates in native builds, which never
        // call this.
        buffer.as_mut_ptr() as usize as i32
    })
}

/// `weir_v1_transform`: runs `transform` on the record the host wrote into the input buffer and
/// reports the outcome through the imports. Returns 0 for accept, 1 for reject.
pub fn transform<F>(data_len: i32, key_len: i32, seq_len: i32, arrival_ms: i64, transform: F) -> i32
where
    F: Fn(&Record<'_>) -> Outcome,
{
    INPUT.with_borrow(|buffer| {
        let record = record_in(buffer, data_len, key_len, seq_len, arrival_ms);
        match settle(&record, transform(&record)) {
            Ok(partition) => {
                for (name, value) in partition.segments() {
                    host::partition(name, value);
                }
                if let Some(body) = partition.body() {
                    host::body(body);
                }
                0
            }
            Err(rejection) => {
                host::reject(rejection.code(), rejection.message());
                1
            }
        }
    })
}

/// The record laid out in `buffer` as the ABI describes: data, then partition key, then
/// sequence number.
///
/// Lengths that overrun the buffer or a key that is not UTF-8 break the host's side of the
/// contract; they panic, which traps and fails only this record.
fn record_in(
    buffer: &[u8],
    data_len: i32,
    key_len: i32,
    seq_len: i32,
    arrival_ms: i64,
) -> Record<'_> {
    let [data_len, key_len, seq_len] = [data_len, key_len, seq_len].map(|len| len as u32 as usize);
    let Some(input) = data_len
        .checked_add(key_len)
        .and_then(|len| len.checked_add(seq_len))
        .and_then(|len| buffer.get(..len))
    else {
        panic!(
            "weir_v1_transform({data_len}, {key_len}, {seq_len}) overruns the {}-byte input buffer",
            buffer.len()
        );
    };
    let (data, rest) = input.split_at(data_len);
    let (key, seq) = rest.split_at(key_len);
    let utf8 = |bytes, what| match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => panic!("the host passed a {what} that is not UTF-8: {error}"),
    };
    Record::new(data)
        .with_partition_key(utf8(key, "partition key"))
        .with_sequence_number(utf8(seq, "sequence number"))
        .with_arrival(Timestamp::from_unix_millis(arrival_ms))
}

/// The outcome to report, holding the promise that an accepted record's stored bytes are one
/// JSON value.
///
/// A transform that accepts without ever parsing the data (say, one that partitions by arrival
/// time alone) would otherwise let any bytes into the lake: such data is checked here and, if it
/// is not JSON, becomes an `invalid_json` rejection. A replacement body that is not one line of
/// JSON is the transform's bug, not the data's: it panics.
pub(crate) fn settle(record: &Record<'_>, outcome: Outcome) -> Outcome {
    let partition = outcome?;
    match partition.body() {
        Some(body) => {
            if let Err(problem) = check_body(body) {
                panic!("the transform's replacement body {problem}");
            }
        }
        None if !record.was_parsed() => {
            record.parse::<IgnoredAny>()?;
        }
        None => {}
    }
    Ok(partition)
}

fn check_body(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|error| format!("is not UTF-8: {error}"))?;
    serde_json::from_str::<IgnoredAny>(text).map_err(|error| format!("is not JSON: {error}"))?;
    // In valid JSON, CR and LF can only be whitespace between tokens, never inside a string.
    match text.find(['\n', '\r']) {
        Some(at) => Err(format!("is not on one line: a line break at byte {at}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Partition, Rejection};

    fn accept(_: &Record<'_>) -> Outcome {
        Ok(Partition::new().segment("all", "records"))
    }

    #[test]
    fn turns_an_unparsed_accept_of_non_json_into_invalid_json() {
        let record = Record::new(b"not json");
        let rejection = settle(&record, accept(&record)).expect_err("not JSON");
        assert_eq!(rejection.code(), "invalid_json");
        assert_eq!(rejection.message(), "expected ident at line 1 column 2");
    }

    #[test]
    fn keeps_an_unparsed_accept_of_json() {
        let record = Record::new(b"{\n  \"any\": [1, 2]\n}");
        assert_eq!(settle(&record, accept(&record)), accept(&record));
    }

    #[test]
    fn rejects_an_unparsed_accept_of_non_utf8_json_strings() {
        let record = Record::new(b"{\"a\":\"\xc3\"}");
        let rejection = settle(&record, accept(&record)).expect_err("not UTF-8");
        assert_eq!(rejection.code(), "invalid_json");
    }

    #[test]
    fn trusts_a_record_that_was_parsed() {
        let record = Record::new(b"{}");
        let partition = record
            .parse::<IgnoredAny>()
            .map(|_| Partition::new().segment("a", "b"));
        assert!(settle(&record, partition).is_ok());
    }

    #[test]
    fn passes_rejections_through() {
        let record = Record::new(b"{}");
        let rejection = Rejection::new("mine", "because");
        assert_eq!(settle(&record, Err(rejection.clone())), Err(rejection));
    }

    #[test]
    fn accepts_a_one_line_json_body_for_unparsed_garbage() {
        let record = Record::new(b"\xff garbage");
        let outcome = Ok(Partition::new()
            .segment("a", "b")
            .with_body(br#"{"raw":"replaced"}"#.to_vec()));
        assert!(settle(&record, outcome).is_ok());
    }

    #[test]
    #[should_panic(expected = "replacement body is not on one line: a line break at byte 1")]
    fn panics_on_a_body_with_a_line_break() {
        let record = Record::new(b"{}");
        let _ = settle(
            &record,
            Ok(Partition::new()
                .segment("a", "b")
                .with_body(b"{\n}".to_vec())),
        );
    }

    #[test]
    #[should_panic(expected = "replacement body is not JSON")]
    fn panics_on_a_body_that_is_not_json() {
        let record = Record::new(b"{}");
        let _ = settle(
            &record,
            Ok(Partition::new().segment("a", "b").with_body(b"{".to_vec())),
        );
    }

    #[test]
    fn lays_out_data_key_and_sequence_number_in_order() {
        let buffer = b"{}key-11234567890 and unused space";
        let record = record_in(buffer, 2, 5, 10, 42);
        assert_eq!(record.data(), b"{}");
        assert_eq!(record.partition_key(), "key-1");
        assert_eq!(record.sequence_number(), "1234567890");
        assert_eq!(record.arrival(), Timestamp::from_unix_millis(42));
    }

    #[test]
    #[should_panic(expected = "overruns the 4-byte input buffer")]
    fn panics_when_the_host_overruns_the_buffer() {
        let _ = record_in(b"{}ab", 2, 2, 1, 0);
    }

    #[test]
    #[should_panic(expected = "overruns")]
    fn panics_on_lengths_that_overflow() {
        let _ = record_in(b"{}", -1, -1, -1, 0);
    }

    #[test]
    fn grows_the_input_buffer_and_reuses_it() {
        let first = input(16);
        assert_ne!(first, 0);
        assert_eq!(INPUT.with_borrow(Vec::len), 16);
        input(8);
        assert_eq!(INPUT.with_borrow(Vec::len), 16, "never shrinks");
    }
}
