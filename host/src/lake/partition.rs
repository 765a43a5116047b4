//! Partition paths: turning a transform's `(name, value)` segments into a Hive-style path.
//!
//! The host, not the guest, builds the path, so the lake stays confined whatever a transform
//! emits: values are escaped exactly as Spark and Hive escape partition values (`%XX`), names
//! are restricted to lowercase column names, and every segment has the form `name=value`, so no
//! segment can be `.` or `..` and no value can add a level or forge another column.

use std::fmt::Write as _;

/// Spark and Hive write this for an empty or missing partition value.
pub const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Bounds on partition paths. Defaults suit S3 keys and local file systems alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLimits {
    /// Most segments (`name=value` levels) a path may have.
    pub max_segments: usize,
    /// Longest segment name, in bytes.
    pub max_name_bytes: usize,
    /// Longest escaped `name=value` segment, in bytes (255 is a file-name limit on most
    /// file systems).
    pub max_segment_bytes: usize,
    /// Longest whole path, in bytes: S3 keys end at 1,024 bytes, and the lake prefix and the
    /// object name need the rest.
    pub max_path_bytes: usize,
}

impl Default for PartitionLimits {
    fn default() -> Self {
        Self {
            max_segments: 8,
            max_name_bytes: 64,
            max_segment_bytes: 255,
            max_path_bytes: 768,
        }
    }
}

/// Why a transform's segments cannot become a partition path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    /// An accepted record must name at least one partition segment.
    #[error("the transform accepted the record without a partition segment")]
    NoSegments,
    /// More segments than [`PartitionLimits::max_segments`].
    #[error("{count} partition segments, at most {max} allowed")]
    TooManySegments {
        /// Segments emitted.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A name that is not a lowercase column name.
    #[error("partition name {name:?} is not a column name ([a-z0-9_], 1 to {max} bytes)")]
    InvalidName {
        /// The offending name (lossily decoded).
        name: String,
        /// The length limit.
        max: usize,
    },
    /// The same name twice: readers would see conflicting columns.
    #[error("partition name {name:?} appears twice")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A value that is not UTF-8.
    #[error("partition value for {name:?} is not UTF-8")]
    ValueNotUtf8 {
        /// The segment's name.
        name: String,
    },
    /// A path longer than [`PartitionLimits::max_path_bytes`].
    #[error("partition path is {len} bytes escaped, at most {max} allowed")]
    PathTooLong {
        /// Its escaped length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An escaped segment longer than [`PartitionLimits::max_segment_bytes`].
    #[error("partition segment {name:?} is {len} bytes escaped, at most {max} allowed")]
    SegmentTooLong {
        /// The segment's name.
        name: String,
        /// Its escaped length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl PartitionError {
    /// Short machine-readable code for the failed-record envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSegments => "no_segments",
            Self::TooManySegments { .. } => "too_many_segments",
            Self::InvalidName { .. } => "invalid_name",
            Self::DuplicateName { .. } => "duplicate_name",
            Self::ValueNotUtf8 { .. } => "value_not_utf8",
            Self::SegmentTooLong { .. } => "segment_too_long",
            Self::PathTooLong { .. } => "path_too_long",
        }
    }
}

/// Builds the path `name=value/name=value/...` from raw segments into `path` (cleared first).
///
/// Takes bytes because they come straight from guest memory; validation happens here, once.
pub fn build_path<'a>(
    segments: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    limits: &PartitionLimits,
    path: &mut String,
) -> Result<(), PartitionError> {
    path.clear();
    let count = segments.len();
    if count == 0 {
        return Err(PartitionError::NoSegments);
    }
    if count > limits.max_segments {
        return Err(PartitionError::TooManySegments {
            count,
            max: limits.max_segments,
        });
    }
    for (index, (name, value)) in segments.enumerate() {
        if !is_column_name(name, limits.max_name_bytes) {
            return Err(PartitionError::InvalidName {
                name: String::from_utf8_lossy(name).into_owned(),
                max: limits.max_name_bytes,
            });
        }
        let name = std::str::from_utf8(name).expect("column names are ASCII, checked above");
        if path
            .split('/')
            .any(|segment| segment.split('=').next() == Some(name))
        {
            return Err(PartitionError::DuplicateName {
                name: name.to_owned(),
            });
        }
        let value = std::str::from_utf8(value).map_err(|_| PartitionError::ValueNotUtf8 {
            name: name.to_owned(),
        })?;
        if index > 0 {
            path.push('/');
        }
        let start = path.len();
        path.push_str(name);
        path.push('=');
        escape_value_into(value, path);
        let len = path.len() - start;
        if len > limits.max_segment_bytes {
            path.clear();
            return Err(PartitionError::SegmentTooLong {
                name: name.to_owned(),
                len,
                max: limits.max_segment_bytes,
            });
        }
    }
    if path.len() > limits.max_path_bytes {
        let len = path.len();
        path.clear();
        return Err(PartitionError::PathTooLong {
            len,
            max: limits.max_path_bytes,
        });
    }
    Ok(())
}

/// Appends `value` escaped as Spark/Hive escape partition values (`ExternalCatalogUtils`):
/// `%XX` for control characters, DEL and `" # % ' * / : = ? \ { [ ] ^`; NUL too, which Spark
/// leaves alone but no file system or reader wants. Non-ASCII stays UTF-8. Empty becomes
/// [`DEFAULT_PARTITION`].
pub fn escape_value_into(value: &str, out: &mut String) {
    if value.is_empty() {
        out.push_str(DEFAULT_PARTITION);
        return;
    }
    let mut rest = value;
    while let Some(at) = rest.bytes().position(needs_escape) {
        out.push_str(&rest[..at]);
        let byte = rest.as_bytes()[at];
        write!(out, "%{byte:02X}").expect("writing to a String cannot fail");
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// Escapes one partition value; see [`escape_value_into`].
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    escape_value_into(value, &mut out);
    out
}

/// The value an escaped partition value stands for: `%XX` decoded, [`DEFAULT_PARTITION`] as
/// the empty value (what a catalog stores as the partition's value).
pub fn unescape_value(escaped: &str) -> String {
    if escaped == DEFAULT_PARTITION {
        return String::new();
    }
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn needs_escape(byte: u8) -> bool {
    matches!(
        byte,
        0x00..=0x1F
            | 0x7F
            | b'"'
            | b'#'
            | b'%'
            | b'\''
            | b'*'
            | b'/'
            | b':'
            | b'='
            | b'?'
            | b'\\'
            | b'{'
            | b'['
            | b']'
            | b'^'
    )
}

fn is_column_name(name: &[u8], max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(segments: &[(&str, &str)]) -> Result<String, PartitionError> {
        let mut path = String::new();
        let iter = segments.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        build_path(iter, &PartitionLimits::default(), &mut path).map(|()| path)
    }

    #[test]
    fn builds_ordered_hive_path() {
        let path = path_of(&[
            ("section", "Electronics"),
            ("dt", "2024-01-02"),
            ("hr", "07"),
        ]);
        assert_eq!(path.unwrap(), "section=Electronics/dt=2024-01-02/hr=07");
    }

    #[test]
    fn escapes_separators_so_values_cannot_add_levels() {
        assert_eq!(escape_value("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape_value("../../etc"), "..%2F..%2Fetc");
        assert_eq!(escape_value("100%"), "100%25");
    }

    #[test]
    fn unescaping_inverts_escaping() {
        for value in [
            "a/b=c",
            "../../etc",
            "100%",
            "Ünï\u{7}code",
            "",
            "%zz",
            "plain",
        ] {
            assert_eq!(unescape_value(&escape_value(value)), value);
        }
        // A `%` not followed by two hex digits is not an escape.
        assert_eq!(unescape_value("%zz%4"), "%zz%4");
    }

    #[test]
    fn escapes_every_spark_special_character() {
        for (raw, escaped) in [
            ("\"", "%22"),
            ("#", "%23"),
            ("'", "%27"),
            ("*", "%2A"),
            (":", "%3A"),
            ("?", "%3F"),
            ("\\", "%5C"),
            ("{", "%7B"),
            ("[", "%5B"),
            ("]", "%5D"),
            ("^", "%5E"),
            ("\u{0}", "%00"),
            ("\n", "%0A"),
            ("\t", "%09"),
            ("\u{1}", "%01"),
            ("\u{7f}", "%7F"),
        ] {
            assert_eq!(escape_value(raw), escaped, "escaping {raw:?}");
        }
    }

    #[test]
    fn keeps_non_ascii_and_harmless_punctuation() {
        assert_eq!(
            escape_value("Beauty-Products é 日本 ∕"),
            "Beauty-Products é 日本 ∕"
        );
        assert_eq!(escape_value(".."), "..");
    }

    #[test]
    fn leaves_c1_controls_as_utf8_like_spark() {
        // Spark escapes only ASCII; U+0085 and U+009F cannot add a level or leave the prefix.
        assert_eq!(escape_value("a\u{85}b\u{9f}"), "a\u{85}b\u{9f}");
    }

    #[test]
    fn empty_value_is_the_default_partition() {
        assert_eq!(
            path_of(&[("section", "")]).unwrap(),
            "section=__HIVE_DEFAULT_PARTITION__"
        );
    }

    #[test]
    fn rejects_names_that_are_not_column_names() {
        for name in ["", "Section", "a/b", "..", "a=b", "sé"] {
            let err = path_of(&[(name, "x")]).unwrap_err();
            assert!(
                matches!(err, PartitionError::InvalidName { .. }),
                "{name:?}: {err}"
            );
        }
    }

    #[test]
    fn rejects_duplicate_names_and_too_many_segments() {
        assert!(matches!(
            path_of(&[("a", "1"), ("a", "2")]),
            Err(PartitionError::DuplicateName { .. })
        ));
        let many: Vec<(&str, &str)> = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .map(|n| (*n, "v"))
            .collect();
        assert!(matches!(
            path_of(&many),
            Err(PartitionError::TooManySegments { count: 9, .. })
        ));
        assert_eq!(path_of(&[]), Err(PartitionError::NoSegments));
    }

    #[test]
    fn rejects_a_segment_longer_than_the_limit_after_escaping() {
        let at_limit = "x".repeat(255 - "section=".len());
        assert!(path_of(&[("section", &at_limit)]).is_ok());
        // 100 slashes are 300 bytes once escaped.
        let err = path_of(&[("section", &"/".repeat(100))]).unwrap_err();
        assert!(
            matches!(err, PartitionError::SegmentTooLong { len: 308, .. }),
            "{err}"
        );
    }

    #[test]
    fn rejects_a_path_longer_than_the_limit() {
        let value = "v".repeat(200);
        let segments: Vec<(&str, &str)> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| (*n, value.as_str()))
            .collect();
        assert!(matches!(
            path_of(&segments),
            Err(PartitionError::PathTooLong { len: 811, max: 768 })
        ));
        assert!(path_of(&segments[..3]).is_ok());
    }

    #[test]
    fn rejects_values_that_are_not_utf8() {
        let mut path = String::new();
        let err = build_path(
            [(&b"section"[..], &b"\xff"[..])].into_iter(),
            &PartitionLimits::default(),
            &mut path,
        );
        assert!(matches!(err, Err(PartitionError::ValueNotUtf8 { .. })));
    }
}
