//! Partition paths from hostile segments.
//!
//! Properties: building never panics; an accepted path has exactly one `name=value` level per
//! segment, no level is `.` or `..` or empty, no value holds a separator, NUL or ASCII control
//! character, and unescaping each value gives back exactly what the transform sent. Non-ASCII,
//! C1 controls (U+0080..U+009F) included, stays UTF-8, as Spark leaves it (found by this
//! fuzzer: the first version of the property wrongly asked for every Unicode control escaped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_fuzz::lake::partition::{DEFAULT_PARTITION, PartitionLimits, build_path};
use weir_fuzz::unescape;

fuzz_target!(|data: &[u8]| {
    // Segments are `name\x01value` separated by `\x02`: short inputs reach every shape.
    let segments: Vec<(&[u8], &[u8])> = data
        .split(|&b| b == 2)
        .map(|s| match s.iter().position(|&b| b == 1) {
            Some(at) => (&s[..at], &s[at + 1..]),
            None => (&b"section"[..], s),
        })
        .collect();
    let mut path = String::new();
    if build_path(
        segments.iter().copied(),
        &PartitionLimits::default(),
        &mut path,
    )
    .is_err()
    {
        return;
    }
    let levels: Vec<&str> = path.split('/').collect();
    assert_eq!(levels.len(), segments.len(), "{path}");
    for (level, (name, value)) in levels.iter().zip(&segments) {
        assert!(
            *level != "." && *level != ".." && !level.is_empty(),
            "{path}"
        );
        let (got_name, escaped) = level.split_once('=').expect("every level is name=value");
        assert_eq!(got_name.as_bytes(), *name);
        assert!(
            !escaped.contains(['/', '\\', '=']) && !escaped.bytes().any(|b| b.is_ascii_control()),
            "{path}"
        );
        let value = std::str::from_utf8(value).expect("accepted values are UTF-8");
        if value.is_empty() {
            assert_eq!(escaped, DEFAULT_PARTITION);
        } else {
            assert_eq!(unescape(escaped).as_deref(), Some(value), "{path}");
        }
    }
});
