//! Kinesis Producer Library (KPL) aggregation: one Kinesis record that carries many user records.
//!
//! The KPL packs user records as `magic || AggregatedRecord (protobuf) || md5(AggregatedRecord)`.
//! Decoding turns such a record back into its user records, in order, so each one is transformed,
//! partitioned and stored (or failed) on its own. Encoding exists for tests and for
//! `weir send --aggregate`. The protobuf subset is parsed by hand: three fields do not justify a
//! code generator, and hand parsing keeps full control over what hostile input can make us
//! allocate.
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;  // checked, then dropped
//! }
//! message Tag {
//!   required string key                     = 1;
//!   optional string value                   = 2;
//! }
//! ```
//!
//! Unknown fields of every wire type are skipped, groups included, as protobuf requires (and
//! as the KCL and the Python, Node and Go de-aggregators do). A message missing a `required`
//! field is not a valid aggregate, a tag without its key included.

use md5::{Digest, Md5};
use std::collections::HashMap;
use thiserror::Error;

/// The four bytes every KPL aggregate starts with.
const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the trailing MD5 digest.
const DIGEST_LEN: usize = 16;
/// A u64 needs at most ten 7-bit groups; anything longer is not a protobuf varint.
const MAX_VARINT_LEN: usize = 10;
/// Protobuf field numbers are 29 bits.
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;
/// Kinesis rejects partition keys longer than 256 characters.
const MAX_PARTITION_KEY_CHARS: usize = 256;
/// An explicit hash key is a decimal number below 2^128, so at most 39 digits.
const MAX_EXPLICIT_HASH_KEY_LEN: usize = 39;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_START_GROUP: u8 = 3;
const WIRE_END_GROUP: u8 = 4;
const WIRE_FIXED32: u8 = 5;
/// How deep unknown groups may nest (protobuf-java's default recursion limit).
const MAX_GROUP_DEPTH: usize = 100;

/// One user record inside an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The partition key the producer gave this user record.
    pub partition_key: String,
    /// The explicit hash key the producer gave this user record, if any (a decimal number).
    pub explicit_hash_key: Option<String>,
    /// The user record's payload.
    pub data: Vec<u8>,
}

/// Why bytes that start with the KPL magic are not a usable aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KplError {
    /// Shorter than the magic plus the 16-byte digest, or a field runs past the end of its message.
    #[error(
        "KPL aggregate: truncated (shorter than the magic and MD5 digest, or a field runs past the end)"
    )]
    Truncated,
    /// The trailing MD5 digest does not match the protobuf body.
    #[error("KPL aggregate: the MD5 digest does not match its contents")]
    BadChecksum,
    /// The body is not a valid `AggregatedRecord`.
    #[error("KPL aggregate: malformed: {reason}")]
    Malformed {
        /// What is wrong, naming the field or user record involved.
        reason: String,
    },
}

impl KplError {
    /// Short machine-readable reason, for failure envelopes and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Truncated => "kpl_truncated",
            Self::BadChecksum => "kpl_checksum",
            Self::Malformed { .. } => "kpl_malformed",
        }
    }
}

fn malformed(reason: impl Into<String>) -> KplError {
    KplError::Malformed {
        reason: reason.into(),
    }
}

/// Whether `data` starts with the KPL aggregation magic.
pub fn is_aggregate(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// The user records of an aggregate, in order. Callers check `is_aggregate` first; an aggregate
/// with zero records is Malformed.
///
/// Keys longer than Kinesis allows are Malformed too: every user record gets its own copy of its
/// key, so the cap bounds how far a small aggregate can expand in memory.
///
/// Note that the KCL treats a magic-prefixed record whose digest or body is bad as an ordinary,
/// non-aggregated record; here that is the caller's choice, made on the returned error.
pub fn deaggregate(data: &[u8]) -> Result<Vec<UserRecord>, KplError> {
    // A short prefix of the magic is a cut-off aggregate; anything else was never one.
    if !data.starts_with(&MAGIC[..data.len().min(MAGIC.len())]) {
        return Err(malformed("the data does not start with the KPL magic"));
    }
    let rest = data.get(MAGIC.len()..).unwrap_or_default();
    let body_len = rest
        .len()
        .checked_sub(DIGEST_LEN)
        .ok_or(KplError::Truncated)?;
    let (body, digest) = rest.split_at(body_len);
    if Md5::digest(body).as_slice() != digest {
        return Err(KplError::BadChecksum);
    }
    decode_aggregated_record(body)
}

/// Encodes user records as one aggregate (partition keys deduplicated into the table, no explicit
/// hash keys unless given).
///
/// Keys are not checked against Kinesis's limits, and an empty slice gives an aggregate with no
/// records; `deaggregate` rejects both, as the KPL never writes them.
pub fn aggregate(records: &[UserRecord]) -> Vec<u8> {
    let mut partition_keys = KeyTable::default();
    let mut hash_keys = KeyTable::default();
    let mut encoded_records = Vec::with_capacity(records.len());
    for record in records {
        let mut encoded = Vec::with_capacity(record.data.len() + 2 * MAX_VARINT_LEN + 2);
        put_key(&mut encoded, 1, WIRE_VARINT);
        put_varint(&mut encoded, partition_keys.index_of(&record.partition_key));
        if let Some(hash_key) = &record.explicit_hash_key {
            put_key(&mut encoded, 2, WIRE_VARINT);
            put_varint(&mut encoded, hash_keys.index_of(hash_key));
        }
        put_len_field(&mut encoded, 3, &record.data);
        encoded_records.push(encoded);
    }

    // Fields in number order, as protobuf's own serialisers (and so the KPL) write them.
    let mut body = Vec::new();
    for key in &partition_keys.keys {
        put_len_field(&mut body, 1, key.as_bytes());
    }
    for key in &hash_keys.keys {
        put_len_field(&mut body, 2, key.as_bytes());
    }
    for encoded in &encoded_records {
        put_len_field(&mut body, 3, encoded);
    }

    let mut out = Vec::with_capacity(MAGIC.len() + body.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

/// A string table that hands out each distinct key's index, in first-seen order.
#[derive(Default)]
struct KeyTable<'a> {
    keys: Vec<&'a str>,
    index: HashMap<&'a str, u64>,
}

impl<'a> KeyTable<'a> {
    fn index_of(&mut self, key: &'a str) -> u64 {
        let next = self.keys.len() as u64;
        *self.index.entry(key).or_insert_with(|| {
            self.keys.push(key);
            next
        })
    }
}

/// A `Record` as it sits on the wire, before its key indexes are looked up.
struct RawRecord<'a> {
    partition_key_index: u64,
    explicit_hash_key_index: Option<u64>,
    data: &'a [u8],
}

fn decode_aggregated_record(body: &[u8]) -> Result<Vec<UserRecord>, KplError> {
    // Protobuf allows fields in any order, so records are resolved only once both tables are read.
    // Every entry pushed below consumed at least two input bytes, which bounds these vectors.
    let mut partition_keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw_records = Vec::new();
    let mut reader = Reader { rest: body };
    while !reader.rest.is_empty() {
        let (field, wire) = reader.key()?;
        match field {
            1 => {
                expect_wire("AggregatedRecord.partition_key_table", wire, WIRE_LEN)?;
                let entry = partition_keys.len();
                let key = utf8_key(reader.len_delimited()?, "partition key", entry)?;
                if key.chars().count() > MAX_PARTITION_KEY_CHARS {
                    return Err(malformed(format!(
                        "partition key table entry {entry} is longer than Kinesis's {MAX_PARTITION_KEY_CHARS} characters"
                    )));
                }
                partition_keys.push(key);
            }
            2 => {
                expect_wire("AggregatedRecord.explicit_hash_key_table", wire, WIRE_LEN)?;
                let entry = hash_keys.len();
                let key = utf8_key(reader.len_delimited()?, "explicit hash key", entry)?;
                if key.len() > MAX_EXPLICIT_HASH_KEY_LEN {
                    return Err(malformed(format!(
                        "explicit hash key table entry {entry} is longer than a 128-bit decimal number ({MAX_EXPLICIT_HASH_KEY_LEN} digits)"
                    )));
                }
                hash_keys.push(key);
            }
            3 => {
                expect_wire("AggregatedRecord.records", wire, WIRE_LEN)?;
                let record = decode_record(reader.len_delimited()?, raw_records.len())?;
                raw_records.push(record);
            }
            _ => reader.skip_field(field, wire)?,
        }
    }
    if raw_records.is_empty() {
        return Err(malformed("the aggregate holds no user records"));
    }

    // Key lengths are capped above, so the copies made per record stay proportional to the input.
    raw_records
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let partition_key = lookup(&partition_keys, raw.partition_key_index).ok_or_else(|| {
                malformed(format!(
                    "user record {i}: partition_key_index {} is outside the partition key table ({} entries)",
                    raw.partition_key_index,
                    partition_keys.len()
                ))
            })?;
            let explicit_hash_key = match raw.explicit_hash_key_index {
                None => None,
                Some(index) => {
                    let key = lookup(&hash_keys, index).ok_or_else(|| {
                        malformed(format!(
                            "user record {i}: explicit_hash_key_index {index} is outside the explicit hash key table ({} entries)",
                            hash_keys.len()
                        ))
                    })?;
                    // Kinesis hash keys are 128-bit: anything else could never have been routed.
                    if !key.bytes().all(|b| b.is_ascii_digit()) || key.parse::<u128>().is_err() {
                        return Err(malformed(format!(
                            "user record {i}: explicit hash key {key:?} is not a decimal number below 2^128"
                        )));
                    }
                    Some(key)
                }
            };
            Ok(UserRecord {
                partition_key: partition_key.to_owned(),
                explicit_hash_key: explicit_hash_key.map(str::to_owned),
                data: raw.data.to_vec(),
            })
        })
        .collect()
}

fn decode_record(bytes: &[u8], index: usize) -> Result<RawRecord<'_>, KplError> {
    let mut partition_key_index = None;
    let mut explicit_hash_key_index = None;
    let mut data = None;
    let mut reader = Reader { rest: bytes };
    // A repeated scalar field keeps its last value, as protobuf parsers do.
    while !reader.rest.is_empty() {
        let (field, wire) = reader.key()?;
        match field {
            1 => {
                expect_wire("Record.partition_key_index", wire, WIRE_VARINT)?;
                partition_key_index = Some(reader.varint()?);
            }
            2 => {
                expect_wire("Record.explicit_hash_key_index", wire, WIRE_VARINT)?;
                explicit_hash_key_index = Some(reader.varint()?);
            }
            3 => {
                expect_wire("Record.data", wire, WIRE_LEN)?;
                data = Some(reader.len_delimited()?);
            }
            4 => {
                expect_wire("Record.tags", wire, WIRE_LEN)?;
                check_tag(reader.len_delimited()?, index)?;
            }
            _ => reader.skip_field(field, wire)?,
        }
    }
    let missing = |field: &str| malformed(format!("user record {index} has no {field}"));
    Ok(RawRecord {
        partition_key_index: partition_key_index.ok_or_else(|| missing("partition_key_index"))?,
        explicit_hash_key_index,
        data: data.ok_or_else(|| missing("data"))?,
    })
}

/// A tag is dropped, but it must be a valid `Tag`: its required key present.
fn check_tag(bytes: &[u8], record: usize) -> Result<(), KplError> {
    let mut has_key = false;
    let mut reader = Reader { rest: bytes };
    while !reader.rest.is_empty() {
        let (field, wire) = reader.key()?;
        match field {
            1 | 2 => {
                expect_wire("Tag.key and Tag.value", wire, WIRE_LEN)?;
                reader.len_delimited()?;
                has_key |= field == 1;
            }
            _ => reader.skip_field(field, wire)?,
        }
    }
    if has_key {
        Ok(())
    } else {
        Err(malformed(format!(
            "user record {record} has a tag without its required key"
        )))
    }
}

fn lookup<'a>(table: &[&'a str], index: u64) -> Option<&'a str> {
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
}

fn utf8_key<'a>(bytes: &'a [u8], table: &str, entry: usize) -> Result<&'a str, KplError> {
    std::str::from_utf8(bytes)
        .map_err(|_| malformed(format!("{table} table entry {entry} is not valid UTF-8")))
}

fn expect_wire(field: &str, wire: u8, expected: u8) -> Result<(), KplError> {
    if wire == expected {
        Ok(())
    } else {
        Err(malformed(format!(
            "{field} has wire type {wire}, expected {expected}"
        )))
    }
}

/// A cursor over protobuf bytes; every read checks the remaining length before slicing.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, KplError> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().take(MAX_VARINT_LEN).enumerate() {
            // The tenth group holds only bit 63, and must end the varint: any other value there
            // would either drop high bits or run on past ten bytes.
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(malformed(
                    "a varint overflows 64 bits or runs past 10 bytes",
                ));
            }
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = self.rest.get(i + 1..).unwrap_or_default();
                return Ok(value);
            }
        }
        // Ten bytes always end above (value or error), so only running out of input gets here.
        Err(KplError::Truncated)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], KplError> {
        let (taken, rest) = self.rest.split_at_checked(len).ok_or(KplError::Truncated)?;
        self.rest = rest;
        Ok(taken)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], KplError> {
        // A length that does not even fit in usize certainly runs past the end.
        let len = usize::try_from(self.varint()?).map_err(|_| KplError::Truncated)?;
        self.take(len)
    }

    /// Skips a group's fields up to the end-group key of `field` (groups nest).
    fn skip_group(&mut self, field: u64, depth: usize) -> Result<(), KplError> {
        if depth > MAX_GROUP_DEPTH {
            return Err(malformed("groups nest deeper than protobuf parsers allow"));
        }
        loop {
            if self.rest.is_empty() {
                return Err(KplError::Truncated);
            }
            let (inner, wire) = self.key()?;
            match wire {
                WIRE_END_GROUP if inner == field => return Ok(()),
                WIRE_END_GROUP => {
                    return Err(malformed(format!(
                        "group {field} ends with the end-group key of field {inner}"
                    )));
                }
                WIRE_START_GROUP => self.skip_group(inner, depth + 1)?,
                _ => self.skip_value(wire)?,
            }
        }
    }

    fn key(&mut self) -> Result<(u64, u8), KplError> {
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > MAX_FIELD_NUMBER {
            return Err(malformed(format!(
                "field number {field} is outside protobuf's range"
            )));
        }
        let wire = u8::try_from(key & 0x7).expect("a value masked to 3 bits fits in u8");
        Ok((field, wire))
    }

    /// Skips an unknown field of any wire type, a whole group included.
    fn skip_field(&mut self, field: u64, wire: u8) -> Result<(), KplError> {
        match wire {
            WIRE_START_GROUP => self.skip_group(field, 0),
            _ => self.skip_value(wire),
        }
    }

    /// Skips one value that is not a group.
    fn skip_value(&mut self, wire: u8) -> Result<(), KplError> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8).map(drop),
            WIRE_LEN => self.len_delimited().map(drop),
            WIRE_FIXED32 => self.take(4).map(drop),
            // Starts are handled by `skip_field` and `skip_group`; an end here has no start.
            WIRE_START_GROUP | WIRE_END_GROUP => {
                Err(malformed("an end-group key without its start"))
            }
            _ => Err(malformed(format!("wire type {wire} does not exist"))),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7F) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u64, wire: u8) {
    put_varint(out, (field << 3) | u64::from(wire));
}

fn put_len_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition_key: &str, explicit_hash_key: Option<&str>, data: &[u8]) -> UserRecord {
        UserRecord {
            partition_key: partition_key.to_owned(),
            explicit_hash_key: explicit_hash_key.map(str::to_owned),
            data: data.to_vec(),
        }
    }

    /// Wraps a hand-built protobuf body with the magic and a correct digest.
    fn sign(body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(body);
        out.extend_from_slice(&Md5::digest(body));
        out
    }

    fn is_malformed(result: &Result<Vec<UserRecord>, KplError>) -> bool {
        matches!(result, Err(KplError::Malformed { .. }))
    }

    /// Decodes a hand-built body and returns why it is malformed, so tests can check the reason.
    fn malformed_reason(body: &[u8]) -> String {
        match deaggregate(&sign(body)) {
            Err(KplError::Malformed { reason }) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    fn sample() -> Vec<UserRecord> {
        let binary: Vec<u8> = (0..=255).collect();
        vec![
            record("user-1", None, b"{\"n\":1}"),
            record(
                "user-2",
                Some("170141183460469231731687303715884105728"),
                b"",
            ),
            record("user-1", None, &binary),
            record("user-3", Some("0"), &[0x00, 0xF3, 0x89, 0x9A, 0xC2]),
            record("user-2", Some("0"), &vec![b'x'; 300]),
            record("ключ", None, b"unicode key"),
        ]
    }

    /// The aggregate of `hand_written_records`, written out from the protobuf encoding rules.
    const HAND_WRITTEN: &[u8] = &[
        0xF3, 0x89, 0x9A, 0xC2, // magic
        0x0A, 0x01, b'a', // field 1 (partition_key_table), length 1: "a"
        0x0A, 0x01, b'b', // field 1, length 1: "b"
        0x12, 0x01, b'7', // field 2 (explicit_hash_key_table), length 1: "7"
        0x1A, 0x06, // field 3 (records), length 6:
        0x08, 0x00, //   partition_key_index = 0
        0x1A, 0x02, b'h', b'i', //   data = "hi"
        0x1A, 0x06, // field 3, length 6:
        0x08, 0x01, //   partition_key_index = 1
        0x10, 0x00, //   explicit_hash_key_index = 0
        0x1A, 0x00, //   data = ""
        0x1A, 0x06, // field 3, length 6:
        0x08, 0x00, //   partition_key_index = 0
        0x1A, 0x02, 0x00, 0xFF, //   data = [0x00, 0xFF]
        // md5 of the 33 body bytes above, from Python's hashlib.
        0xFB, 0x24, 0x89, 0x7F, 0x85, 0x15, 0x5A, 0x79, 0xB1, 0xA6, 0xA9, 0xAE, 0x24, 0x7D, 0xA9,
        0x23,
    ];

    fn hand_written_records() -> Vec<UserRecord> {
        vec![
            record("a", None, b"hi"),
            record("b", Some("7"), b""),
            record("a", None, &[0x00, 0xFF]),
        ]
    }

    #[test]
    fn round_trips_records_with_shared_and_distinct_keys() {
        let records = sample();
        let encoded = aggregate(&records);
        assert!(is_aggregate(&encoded));
        assert_eq!(deaggregate(&encoded), Ok(records));
    }

    #[test]
    fn encoder_writes_the_documented_wire_format() {
        assert_eq!(aggregate(&hand_written_records()), HAND_WRITTEN);
    }

    #[test]
    fn decoder_reads_the_documented_wire_format() {
        assert_eq!(deaggregate(HAND_WRITTEN), Ok(hand_written_records()));
    }

    #[test]
    fn encodes_varints_as_seven_bit_groups_low_first() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (300, &[0xAC, 0x02]),
            (
                u64::MAX,
                &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            ),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out, bytes, "encoding {value}");
            let mut reader = Reader { rest: bytes };
            assert_eq!(reader.varint(), Ok(value), "decoding {value}");
            assert!(reader.rest.is_empty());
        }
    }

    #[test]
    fn reads_fields_in_any_order() {
        // Records first, then the explicit hash key table, then the partition key table.
        let body = [
            0x1A, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x01, b'z', // record
            0x12, 0x01, b'9', // explicit_hash_key_table: "9"
            0x0A, 0x02, b'p', b'k', // partition_key_table: "pk"
        ];
        assert_eq!(
            deaggregate(&sign(&body)),
            Ok(vec![record("pk", Some("9"), b"z")])
        );
    }

    #[test]
    fn skips_unknown_fields_and_tags() {
        let body = [
            0x0A, 0x01, b'k', // partition_key_table: "k"
            0x28, 0x96, 0x01, // field 5, varint 150
            0x31, 1, 2, 3, 4, 5, 6, 7, 8, // field 6, fixed64
            0x3D, 1, 2, 3, 4, // field 7, fixed32
            0x42, 0x02, 0xAA, 0xBB, // field 8, length-delimited
            0x1A, 0x0E, // record, length 14:
            0x08, 0x00, //   partition_key_index = 0
            0x22, 0x05, 0x0A, 0x01, b't', 0x12, 0x00, //   tag { key: "t", value: "" }
            0x1A, 0x01, b'd', //   data = "d"
            0x48, 0x01, //   field 9, varint 1
        ];
        assert_eq!(deaggregate(&sign(&body)), Ok(vec![record("k", None, b"d")]));
    }

    #[test]
    fn skips_unknown_groups_nested_ones_included() {
        let body = [
            0x0A, 0x01, b'k', // partition_key_table: "k"
            0x2B, // field 5, start group
            0x08, 0x01, //   field 1, varint 1
            0x33, //   field 6, start group (nested)
            0x12, 0x01, b'x', //     field 2, length-delimited
            0x34, //   field 6, end group
            0x2C, // field 5, end group
            0x1A, 0x07, // record, length 7:
            0x08, 0x00, //   partition_key_index = 0
            0x53, 0x54, //   field 10, an empty group
            0x1A, 0x01, b'd', //   data = "d"
        ];
        assert_eq!(deaggregate(&sign(&body)), Ok(vec![record("k", None, b"d")]));
    }

    #[test]
    fn a_group_closed_by_another_field_or_left_open_is_malformed() {
        let crossed = [0x0A, 0x01, b'k', 0x2B, 0x34];
        assert!(malformed_reason(&crossed).contains("ends with the end-group key of field 6"));
        assert!(malformed_reason(&[0x0A, 0x01, b'k', 0x2C]).contains("without its start"));
        assert_eq!(
            deaggregate(&sign(&[0x0A, 0x01, b'k', 0x2B])),
            Err(KplError::Truncated)
        );
    }

    #[test]
    fn a_tag_without_its_required_key_is_not_a_valid_aggregate() {
        let body = [
            0x0A, 0x01, b'k', // partition_key_table: "k"
            0x1A, 0x0A, // record, length 10:
            0x08, 0x00, //   partition_key_index = 0
            0x22, 0x03, 0x12, 0x01, b'v', //   tag { value: "v" }, no key
            0x1A, 0x01, b'd', //   data = "d"
        ];
        assert!(malformed_reason(&body).contains("tag without its required key"));
    }

    #[test]
    fn every_truncation_of_a_valid_aggregate_is_an_error() {
        let encoded = aggregate(&sample());
        for len in 0..encoded.len() {
            assert!(deaggregate(&encoded[..len]).is_err(), "length {len}");
        }
        assert_eq!(
            deaggregate(&encoded[..MAGIC.len()]),
            Err(KplError::Truncated)
        );
    }

    #[test]
    fn flipped_bit_in_digest_is_bad_checksum() {
        let encoded = aggregate(&sample());
        for bit in 0..DIGEST_LEN * 8 {
            let mut corrupt = encoded.clone();
            let at = encoded.len() - DIGEST_LEN + bit / 8;
            corrupt[at] ^= 1 << (bit % 8);
            assert_eq!(
                deaggregate(&corrupt),
                Err(KplError::BadChecksum),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn flipped_bit_in_body_is_bad_checksum() {
        let encoded = aggregate(&hand_written_records());
        for bit in MAGIC.len() * 8..(encoded.len() - DIGEST_LEN) * 8 {
            let mut corrupt = encoded.clone();
            corrupt[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                deaggregate(&corrupt),
                Err(KplError::BadChecksum),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn partition_key_index_out_of_range_is_malformed() {
        let body = [
            0x0A, 0x01, b'a', // partition_key_table: one entry
            0x1A, 0x04, 0x08, 0x01, 0x1A, 0x00, // record with partition_key_index = 1
        ];
        let reason = malformed_reason(&body);
        assert!(reason.contains("partition_key_index 1"), "{reason}");
    }

    #[test]
    fn explicit_hash_key_index_out_of_range_is_malformed() {
        let body = [
            0x0A, 0x01, b'a', // partition_key_table: one entry, no explicit hash keys
            0x1A, 0x06, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x00, // explicit_hash_key_index = 0
        ];
        assert!(malformed_reason(&body).contains("explicit_hash_key_index 0"));
    }

    #[test]
    fn record_without_required_fields_is_malformed() {
        let no_index = [0x0A, 0x01, b'a', 0x1A, 0x02, 0x1A, 0x00];
        let no_data = [0x0A, 0x01, b'a', 0x1A, 0x02, 0x08, 0x00];
        assert!(malformed_reason(&no_index).contains("has no partition_key_index"));
        assert!(malformed_reason(&no_data).contains("has no data"));
    }

    #[test]
    fn aggregate_with_no_records_is_malformed() {
        assert!(is_malformed(&deaggregate(&aggregate(&[]))));
        assert!(malformed_reason(&[0x0A, 0x01, b'a']).contains("no user records"));
    }

    #[test]
    fn data_without_magic_is_not_an_aggregate() {
        for data in [
            &b""[..],
            b"\xF3\x89\x9A",
            b"{\"n\":1}",
            b"\xC2\x9A\x89\xF3rest",
        ] {
            assert!(!is_aggregate(data), "{data:?}");
        }
        assert!(is_aggregate(&MAGIC));
        assert!(is_malformed(&deaggregate(b"{\"n\":1} plus enough bytes")));
    }

    #[test]
    fn huge_declared_length_is_truncated_not_allocated() {
        let max_len = [
            0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ];
        assert_eq!(deaggregate(&sign(&max_len)), Err(KplError::Truncated));
        let one_gib_record = [0x1A, 0x80, 0x80, 0x80, 0x80, 0x04, 0x08, 0x00];
        assert_eq!(
            deaggregate(&sign(&one_gib_record)),
            Err(KplError::Truncated)
        );
    }

    #[test]
    fn overlong_or_overflowing_varint_is_malformed() {
        let eleven_bytes = [
            0x28, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00,
        ];
        let overflow = [
            0x28, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02,
        ];
        assert!(malformed_reason(&eleven_bytes).contains("runs past 10 bytes"));
        assert!(malformed_reason(&overflow).contains("overflows 64 bits"));
        let cut_short = [0x28, 0xFF, 0xFF];
        assert_eq!(deaggregate(&sign(&cut_short)), Err(KplError::Truncated));
    }

    #[test]
    fn wire_types_that_do_not_exist_are_malformed() {
        for key in [0x2E, 0x2F] {
            // field 5 with wire types 6 and 7
            let reason = malformed_reason(&[key, 0x00]);
            assert!(reason.contains("wire type"), "{key:#x}: {reason}");
        }
    }

    #[test]
    fn an_explicit_hash_key_outside_0_to_2_pow_128_is_malformed() {
        for bad in ["-1", "abc", "340282366920938463463374607431768211456", ""] {
            let mut body = vec![0x0A, 0x01, b'k', 0x12, bad.len() as u8];
            body.extend_from_slice(bad.as_bytes());
            body.extend_from_slice(&[0x1A, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x01, b'd']);
            let reason = malformed_reason(&body);
            assert!(
                reason.contains("not a decimal number below 2^128"),
                "{bad:?}: {reason}"
            );
        }
        let max = "340282366920938463463374607431768211455";
        let mut body = vec![0x0A, 0x01, b'k', 0x12, max.len() as u8];
        body.extend_from_slice(max.as_bytes());
        body.extend_from_slice(&[0x1A, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x01, b'd']);
        assert_eq!(
            deaggregate(&sign(&body)).unwrap()[0]
                .explicit_hash_key
                .as_deref(),
            Some(max)
        );
    }

    #[test]
    fn known_field_with_the_wrong_wire_type_is_malformed() {
        let varint_table_entry = [0x08, 0x01, 0x1A, 0x04, 0x08, 0x00, 0x1A, 0x00];
        let reason = malformed_reason(&varint_table_entry);
        assert!(reason.contains("partition_key_table"), "{reason}");
    }

    #[test]
    fn field_number_zero_is_malformed() {
        assert!(malformed_reason(&[0x02, 0x00]).contains("field number 0"));
    }

    #[test]
    fn invalid_utf8_in_a_key_is_malformed() {
        let body = [0x0A, 0x01, 0xFF, 0x1A, 0x04, 0x08, 0x00, 0x1A, 0x00];
        assert!(malformed_reason(&body).contains("not valid UTF-8"));
    }

    #[test]
    fn keys_longer_than_kinesis_allows_are_malformed() {
        let longest = "k".repeat(MAX_PARTITION_KEY_CHARS);
        let ok = aggregate(&[record(&longest, None, b"")]);
        assert!(deaggregate(&ok).is_ok());
        let too_long = aggregate(&[record(&format!("{longest}k"), None, b"")]);
        assert!(is_malformed(&deaggregate(&too_long)));
        let hash_key = "1".repeat(MAX_EXPLICIT_HASH_KEY_LEN + 1);
        let bad_hash = aggregate(&[record("k", Some(&hash_key), b"")]);
        assert!(is_malformed(&deaggregate(&bad_hash)));
    }

    #[test]
    fn errors_have_stable_codes_and_name_the_format() {
        let errors = [
            (KplError::Truncated, "kpl_truncated"),
            (KplError::BadChecksum, "kpl_checksum"),
            (malformed("x"), "kpl_malformed"),
        ];
        for (error, code) in errors {
            assert_eq!(error.code(), code);
            assert!(error.to_string().starts_with("KPL aggregate: "), "{error}");
        }
    }

    /// SplitMix64: a tiny deterministic generator, so failures reproduce without extra crates.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_10EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = SplitMix64(0x5EED);
        let valid = aggregate(&sample());
        let valid_body = &valid[MAGIC.len()..valid.len() - DIGEST_LEN];
        let (mut ok, mut truncated, mut checksum, mut malformed) = (0, 0, 0, 0);
        for i in 0..10_000 {
            let input = match (i % 2, (i / 2) % 3) {
                (0, _) => {
                    let len = rng.below(64);
                    rng.bytes(len)
                }
                // Random tail after the magic: almost always a checksum failure.
                (_, 0) => {
                    let len = rng.below(64);
                    [&MAGIC[..], &rng.bytes(len)].concat()
                }
                // Random body with a correct digest, so the protobuf parser sees it.
                (_, 1) => {
                    let len = rng.below(64);
                    sign(&rng.bytes(len))
                }
                // A valid body with a few bytes changed, re-signed: near-misses of real input.
                _ => {
                    let mut body = valid_body.to_vec();
                    for _ in 0..=rng.below(3) {
                        let at = rng.below(body.len());
                        body[at] = rng.next() as u8;
                    }
                    sign(&body)
                }
            };
            match deaggregate(&input) {
                Ok(records) => {
                    ok += 1;
                    let data_len: usize = records.iter().map(|r| r.data.len()).sum();
                    assert!(data_len <= input.len(), "input {input:?}");
                    assert_eq!(deaggregate(&aggregate(&records)), Ok(records));
                }
                Err(KplError::Truncated) => truncated += 1,
                Err(KplError::BadChecksum) => checksum += 1,
                Err(KplError::Malformed { .. }) => malformed += 1,
            }
        }
        // Each outcome was reached, so the inputs exercised every path rather than one.
        assert!(ok > 0 && truncated > 0 && checksum > 0 && malformed > 0);
    }
}
