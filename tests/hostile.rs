//! The hostile-input corpus, `tests/data/hostile/`: its manifest, and the cases too big or too
//! binary to commit, generated at test time (10 MB records, broken KPL aggregates and gzip
//! frames).
//!
//! `manifest.json` maps each case to its expected outcome:
//! `{"expect": "lake", "partition": "section=…/dt=…/hr=…"}` (a list of partitions for an
//! aggregate of several user records) or `{"expect": "failed", "error_type": …, "code": …}`,
//! plus `why` (what the case attacks). A case with `generate` has no file: it names a generator
//! below, with its parameters beside it.

use md5::{Digest, Md5};
use serde_json::Value;
use std::collections::BTreeMap;
use weir::source::kinesis::{UserRecord, aggregate, compress};

/// The corpus directory.
pub fn dir() -> std::path::PathBuf {
    crate::data_dir().join("hostile")
}

/// The manifest: case name -> expectation.
pub fn manifest() -> BTreeMap<String, Value> {
    let text = std::fs::read(dir().join("manifest.json")).expect("the hostile manifest");
    serde_json::from_slice(&text).expect("the hostile manifest is a JSON object")
}

/// A valid retail event in section `section`, at 2026-11-25T21:00Z, with `payload` inside.
pub fn event(section: &str, payload: &str) -> Vec<u8> {
    format!(
        r#"{{"metadata":{{"uuid":"h1","section":{},"event_time":"2026-11-25T21:00:00Z"}},"payload":{{{payload}}}}}"#,
        serde_json::to_string(section).expect("a string serialises")
    )
    .into_bytes()
}

/// The bytes of one case: its file, or what its generator makes.
pub fn case_bytes(name: &str, case: &Value) -> Vec<u8> {
    let Some(generator) = case["generate"].as_str() else {
        return std::fs::read(dir().join(name)).expect("every file case exists");
    };
    let number = |field: &str| {
        case[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {field} is a number")) as usize
    };
    match generator {
        "padded_event" => padded_event(number("bytes")),
        "nested_arrays" => event(
            "A",
            &format!(
                r#""deep":{}{}"#,
                "[".repeat(number("depth")),
                "]".repeat(number("depth"))
            ),
        ),
        "kpl_cut" => {
            let mut whole = sample_aggregate();
            whole.truncate(number("keep"));
            whole
        }
        "kpl_bad_digest" => {
            let mut whole = sample_aggregate();
            let last = whole.len() - 1;
            whole[last] ^= 0x55;
            whole
        }
        "kpl_body_cut_digest_fixed" => {
            let whole = sample_aggregate();
            let body = &whole[4..whole.len() - 16];
            with_digest(&body[..body.len() / 2])
        }
        "kpl_garbage_body" => with_digest(&[0xff; 40]),
        "kpl_valid_hostile_users" => aggregate(&[
            user(event("../../etc", "")),
            user(event("a/b=c", "")),
            user(b"not json".to_vec()),
        ]),
        "gzip_hostile_events" => compress([
            &event("../../etc", "")[..],
            &event("a/b=c", ""),
            b"not json",
        ]),
        "gzip_bomb" => compress([&vec![b' '; number("bytes")][..]]),
        "gzip_cut" => {
            let mut whole = sample_frame();
            whole.truncate(number("keep"));
            whole
        }
        "gzip_bad_crc" => {
            let mut whole = sample_frame();
            let crc = whole.len() - 8;
            whole[crc] ^= 0x55;
            whole
        }
        "gzip_blank_lines" => compress([&b""[..], b"\r", b""]),
        "gzip_magic_then_json" => [&[0x1f, 0x8b, 0x08][..], &event("A", "")].concat(),
        other => panic!("{name}: unknown generator {other}"),
    }
}

/// A valid event of exactly `bytes` bytes, padded in its payload.
fn padded_event(bytes: usize) -> Vec<u8> {
    let empty = event("Big", r#""pad":"""#);
    let pad = "x".repeat(bytes.saturating_sub(empty.len()));
    event("Big", &format!(r#""pad":"{pad}""#))
}

fn user(data: Vec<u8>) -> UserRecord {
    UserRecord {
        partition_key: "pk".into(),
        explicit_hash_key: None,
        data,
    }
}

/// Three valid events as one KPL aggregate.
fn sample_aggregate() -> Vec<u8> {
    aggregate(&[
        user(event("A", "")),
        user(event("B", "")),
        user(event("C", "")),
    ])
}

/// Three valid events as one gzip frame.
fn sample_frame() -> Vec<u8> {
    compress([&event("A", "")[..], &event("B", ""), &event("C", "")])
}

/// `magic || body || md5(body)`: a well-formed frame around any body.
fn with_digest(body: &[u8]) -> Vec<u8> {
    let mut framed = vec![0xF3, 0x89, 0x9A, 0xC2];
    framed.extend_from_slice(body);
    framed.extend_from_slice(&Md5::digest(body));
    framed
}

/// Whether a lake key stays inside the lake: `section=…/dt=…/hr=…/<case>-….json.gz`, every
/// level `name=value`, none of them `.`, `..` or holding a separator.
pub fn confined(key: &str, case_label: &str) -> bool {
    let levels: Vec<&str> = key.split('/').collect();
    let [section, dt, hr, name] = levels[..] else {
        return false;
    };
    let columns = [("section", section), ("dt", dt), ("hr", hr)];
    columns.iter().all(|(column, level)| {
        level
            .split_once('=')
            .is_some_and(|(n, v)| n == *column && !v.is_empty() && !v.contains(['\\', '\0', '=']))
    }) && name.starts_with(&format!("{case_label}-"))
        && name.ends_with(".json.gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_events_have_the_size_asked_for() {
        assert_eq!(padded_event(1_000_000).len(), 1_000_000);
        assert!(serde_json::from_slice::<Value>(&padded_event(5_000)).is_ok());
    }

    #[test]
    fn confinement_refuses_extra_levels_and_traversal() {
        assert!(confined("section=a/dt=1/hr=2/c1-1-1-ab.json.gz", "c1"));
        assert!(!confined("section=a/x/dt=1/hr=2/c1-1-1-ab.json.gz", "c1"));
        assert!(!confined("../dt=1/hr=2/c1-1-1-ab.json.gz", "c1"));
        assert!(!confined("section=a/dt=1/hr=2/c2-1-1-ab.json.gz", "c1"));
        assert!(!confined("section=a\\b/dt=1/hr=2/c1-1-1-ab.json.gz", "c1"));
    }
}
