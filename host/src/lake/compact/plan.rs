//! What compaction merges: closed partitions, their small objects in chunks, and the keys of
//! outputs and manifests. Pure: keys and sizes in, plans out.

use crate::lake::format::Format;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// Manifests are named `_weir-compaction-<hash>.json`: the leading `_` hides them from Spark
/// and Hive, and the extension from `*.json.gz` / `*.parquet` globs.
pub const MANIFEST_PREFIX: &str = "_weir-compaction-";
/// Compacted objects are named `compacted-<hash>.<ext>`.
pub const OUTPUT_PREFIX: &str = "compacted-";

/// One partition directory and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    /// The partition path, `section=…/dt=…/hr=…`.
    pub path: String,
    /// Data objects (`.json.gz`, `.parquet`) with their sizes, sorted by key.
    pub objects: Vec<(String, u64)>,
    /// Compaction manifests left by an interrupted run.
    pub manifests: Vec<String>,
}

/// Groups a lake listing by partition directory. Keys at the top level, and files that are
/// neither data objects nor manifests, are left out.
pub fn partitions(listing: Vec<(String, u64)>) -> Vec<Partition> {
    let mut by_path: BTreeMap<String, Partition> = BTreeMap::new();
    for (key, size) in listing {
        let Some((path, name)) = key.rsplit_once('/') else {
            continue;
        };
        // Hidden folders (`_weir/`: the ledger, descriptors, compaction's staging) are not
        // partitions.
        if path.split('/').any(|level| level.starts_with('_')) {
            continue;
        }
        let is_manifest = name.starts_with(MANIFEST_PREFIX) && name.ends_with(".json");
        if !is_manifest && Format::of_key(name).is_none() {
            continue;
        }
        let partition = by_path.entry(path.to_owned()).or_insert_with(|| Partition {
            path: path.to_owned(),
            ..Partition::default()
        });
        if is_manifest {
            partition.manifests.push(key);
        } else {
            partition.objects.push((key, size));
        }
    }
    by_path.into_values().collect()
}

/// Whether no more data belongs in the partition: its `dt` (and `hr`, if any) ended at least
/// `older_than` before `now` (seconds since the epoch). A partition without a `dt` level is
/// never closed.
pub fn is_closed(path: &str, now: u64, older_than: Duration) -> bool {
    let mut day = None;
    let mut hour = None;
    for level in path.split('/') {
        match level.split_once('=') {
            Some(("dt", value)) => day = parse_day(value),
            Some(("hr", value)) => hour = value.parse::<u64>().ok().filter(|h| *h < 24),
            _ => {}
        }
    }
    let Some(day) = day else {
        return false;
    };
    let end = match hour {
        Some(hour) => day * 86_400 + (hour + 1) * 3_600,
        None => (day + 1) * 86_400,
    };
    end.saturating_add(older_than.as_secs()) <= now
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (the civil-from-days inverse, proleptic Gregorian).
fn parse_day(value: &str) -> Option<u64> {
    let mut parts = value.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    u64::try_from(era * 146_097 + day_of_era - 719_468).ok()
}

/// Splits a partition's objects of one format into chunks to merge: objects under
/// `target_size`, in key order, packed until a chunk would pass `target_size`. Chunks of one
/// object are dropped: there is nothing to merge.
pub fn chunks(objects: &[(String, u64)], format: Format, target_size: u64) -> Vec<Vec<String>> {
    let mut chunks = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 0;
    for (key, bytes) in objects {
        if Format::of_key(key) != Some(format) || *bytes >= target_size {
            continue;
        }
        if !current.is_empty() && size + bytes > target_size {
            chunks.push(std::mem::take(&mut current));
            size = 0;
        }
        current.push(key.clone());
        size += bytes;
    }
    chunks.push(current);
    chunks.retain(|chunk| chunk.len() > 1);
    chunks
}

/// A hash naming what merging `sources` gives: the same sources always give the same names,
/// so a rerun overwrites instead of adding a second copy.
fn digest(sources: &[String]) -> String {
    let mut hash = Sha256::new();
    for key in sources {
        hash.update(key.as_bytes());
        hash.update(b"\n");
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key of the object that merges `sources`.
pub fn output_key(partition: &str, sources: &[String], format: Format) -> String {
    format!(
        "{partition}/{OUTPUT_PREFIX}{}.{}",
        digest(sources),
        format.extension()
    )
}

/// The key of the manifest that announces that merge.
pub fn manifest_key(partition: &str, sources: &[String]) -> String {
    format!("{partition}/{MANIFEST_PREFIX}{}.json", digest(sources))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600;

    #[test]
    fn a_partition_closes_when_its_hour_or_day_has_ended_long_enough_ago() {
        // 2024-03-10T00:00:00Z.
        let midnight = 1_710_028_800;
        let path = "section=a%2Fb/dt=2024-03-09/hr=23";
        assert!(is_closed(path, midnight, Duration::ZERO));
        assert!(!is_closed(path, midnight, Duration::from_secs(HOUR)));
        assert!(is_closed(path, midnight + HOUR, Duration::from_secs(HOUR)));
        assert!(!is_closed(
            "section=x/dt=2024-03-10/hr=00",
            midnight,
            Duration::ZERO
        ));
        assert!(is_closed("dt=2024-03-09", midnight, Duration::ZERO));
        assert!(!is_closed(
            "dt=2024-03-10",
            midnight + 23 * HOUR,
            Duration::ZERO
        ));
        for undated in ["section=x", "section=x/dt=yesterday", "dt=2024-13-01/hr=00"] {
            assert!(
                !is_closed(undated, u64::MAX / 2, Duration::ZERO),
                "{undated}"
            );
        }
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-03-01"), Some(11_017));
    }

    #[test]
    fn packs_small_objects_of_one_format_into_chunks() {
        let objects: Vec<(String, u64)> = [
            ("p/a.json.gz", 40),
            ("p/b.json.gz", 40),
            ("p/big.json.gz", 100),
            ("p/c.json.gz", 40),
            ("p/d.parquet", 10),
            ("p/e.json.gz", 10),
        ]
        .iter()
        .map(|(k, s)| (k.to_string(), *s))
        .collect();
        assert_eq!(
            chunks(&objects, Format::Json, 100),
            [
                vec!["p/a.json.gz", "p/b.json.gz"],
                vec!["p/c.json.gz", "p/e.json.gz"]
            ]
        );
        assert!(
            chunks(&objects, Format::Parquet, 100).is_empty(),
            "one object"
        );
    }

    #[test]
    fn groups_a_listing_by_partition_and_names_outputs_deterministically() {
        let listing = [
            "top.json.gz",
            "s=a/dt=2024-01-01/x.json.gz",
            "s=a/dt=2024-01-01/_weir-compaction-0011.json",
            "s=a/dt=2024-01-01/notes.txt",
            "s=b/dt=2024-01-01/y.parquet",
        ]
        .map(|k| (k.to_owned(), 1))
        .to_vec();
        let parts = partitions(listing);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].path, "s=a/dt=2024-01-01");
        assert_eq!(parts[0].objects.len(), 1);
        assert_eq!(parts[0].manifests.len(), 1);
        let sources = ["p/a.json.gz".to_owned(), "p/b.json.gz".to_owned()];
        let key = output_key("p", &sources, Format::Json);
        assert!(
            key.starts_with("p/compacted-") && key.ends_with(".json.gz"),
            "{key}"
        );
        assert_eq!(key, output_key("p", &sources, Format::Json));
        assert_ne!(key, output_key("p", &sources[..1], Format::Json));
        assert!(manifest_key("p", &sources).starts_with("p/_weir-compaction-"));
    }
}
