//! The fault campaign's shared parts: its size, the events it sends, the accounting at the end
//! (by shard and sequence number) and the report it writes.
//!
//! Every event carries a unique id (`metadata.uuid` = `c<n>`, also inside the broken ones), so
//! each lake line and failed envelope is traced back to the one record it came from, however
//! many times it was stored.

use crate::aws::SentRecord;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use weir::lake::envelope::Envelope;

/// How big a campaign is: `WEIR_CAMPAIGN_RECORDS` user records (default 20,000), sent as KPL
/// aggregates of `WEIR_CAMPAIGN_AGGREGATE` (default: enough to keep ~2,000 Kinesis records,
/// because the local stand-in's PutRecord is linear in the shard's length).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// User records sent.
    pub records: usize,
    /// User records per Kinesis record.
    pub aggregate: usize,
    /// Times the host process is killed.
    pub kills: usize,
}

impl Scale {
    /// The scale from the environment.
    pub fn from_env() -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
        };
        let records = var("WEIR_CAMPAIGN_RECORDS").unwrap_or(20_000).max(100);
        let aggregate = var("WEIR_CAMPAIGN_AGGREGATE")
            .unwrap_or((records / 2_000).clamp(1, 500))
            .clamp(1, 1000);
        let kills = var("WEIR_CAMPAIGN_KILLS").unwrap_or((records / 40_000).clamp(4, 30));
        Self {
            records,
            aggregate,
            kills,
        }
    }
}

/// The id the campaign gave event `n`.
fn id(n: usize) -> String {
    format!("c{n}")
}

/// Writes `count` events as NDJSON: one in 20 is not JSON (cut off), one in 20 is rejected
/// (empty section), the rest are valid retail events spread over three sections and two hours.
pub fn write_events(path: &Path, count: usize) {
    let file = std::fs::File::create(path).expect("the campaign's event file");
    let mut out = std::io::BufWriter::new(file);
    let sections = ["Electronics", "Home-Decor", "a/b=c%"];
    for n in 0..count {
        let id = id(n);
        let line = match n % 20 {
            7 => format!(r#"{{"metadata":{{"uuid":"{id}","section":"Electronics","#),
            13 => format!(
                r#"{{"metadata":{{"uuid":"{id}","section":""}},"payload":{{"userid":"{n}"}}}}"#
            ),
            _ => format!(
                r#"{{"metadata":{{"uuid":"{id}","section":"{}","event_time":"2026-11-25T{:02}:{:02}:00Z"}},"payload":{{"userid":"{}","items":{}}}}}"#,
                sections[n % 3],
                20 + n % 2,
                n % 60,
                n % 997,
                n % 5
            ),
        };
        writeln!(out, "{line}").expect("writing the event file");
    }
    out.flush().expect("writing the event file");
}

/// The campaign id inside an event's bytes (`"uuid":"c<n>"`), if any.
fn id_of(data: &[u8]) -> Option<&[u8]> {
    let marker = b"\"uuid\":\"c";
    let at = memchr_find(data, marker)? + marker.len() - 1;
    let end = data[at..].iter().position(|&b| b == b'"')? + at;
    Some(&data[at..end])
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where every record sent ended up, by shard and sequence number.
#[derive(Debug, Default)]
pub struct Tally {
    /// User records in the stream.
    pub sent: usize,
    /// Records found in the lake (at least once).
    pub in_lake: usize,
    /// Records found in the failed location (at least once, and not in the lake).
    pub in_failed: usize,
    /// Records found nowhere: `shard/position`.
    pub lost: Vec<String>,
    /// Copies beyond the first, in the lake and the failed location together.
    pub duplicates: usize,
    /// Copies stored under an object or envelope that names the wrong shard or position.
    pub misplaced: Vec<String>,
    /// Lines and envelopes that match no record sent.
    pub unknown: usize,
}

/// Counts, for every sent record, its copies among the lake objects (whose keys carry the shard
/// and the sequence range) and the failed envelopes (which carry shard and position).
pub fn tally(
    sent: &[SentRecord],
    lake: &[(String, Vec<Vec<u8>>)],
    failed: &[(String, Envelope)],
) -> Tally {
    let mut by_id: HashMap<&[u8], usize> = HashMap::with_capacity(sent.len());
    for (index, record) in sent.iter().enumerate() {
        let id = id_of(&record.data).expect("every campaign event carries its id");
        assert!(by_id.insert(id, index).is_none(), "ids are unique");
    }
    let mut tally = Tally {
        sent: sent.len(),
        ..Tally::default()
    };
    let (mut lake_copies, mut failed_copies) = (vec![0u32; sent.len()], vec![0u32; sent.len()]);
    for (key, lines) in lake {
        for line in lines {
            let Some(&index) = id_of(line).and_then(|id| by_id.get(id)) else {
                tally.unknown += 1;
                continue;
            };
            let record = &sent[index];
            if !crate::aws::covers(key, &record.shard, &record.position) {
                tally
                    .misplaced
                    .push(format!("{}/{} in {key}", record.shard, record.position));
            }
            lake_copies[index] += 1;
        }
    }
    let originals: Vec<Vec<u8>> = failed
        .iter()
        .map(|(_, e)| e.original().expect("envelopes hold base64"))
        .collect();
    for ((key, envelope), original) in failed.iter().zip(&originals) {
        let Some(&index) = id_of(original).and_then(|id| by_id.get(id)) else {
            tally.unknown += 1;
            continue;
        };
        let record = &sent[index];
        let same = envelope.source == record.shard
            && envelope.sequence_number == record.position.sequence_number()
            && envelope.sub_sequence_number == record.position.sub_sequence_number()
            && *original == record.data;
        if !same {
            tally
                .misplaced
                .push(format!("{}/{} in {key}", record.shard, record.position));
        }
        failed_copies[index] += 1;
    }
    for (index, record) in sent.iter().enumerate() {
        let copies = lake_copies[index] + failed_copies[index];
        match (lake_copies[index], failed_copies[index]) {
            (0, 0) => tally
                .lost
                .push(format!("{}/{}", record.shard, record.position)),
            (0, _) => tally.in_failed += 1,
            _ => tally.in_lake += 1,
        }
        tally.duplicates += copies.saturating_sub(1) as usize;
    }
    tally
}

/// `target/campaign-report-<mode>.json` and `.md`: what the campaign did and found.
pub fn write_report(mode: &str, figures: &Value) -> PathBuf {
    let dir = crate::target_dir();
    let json_path = dir.join(format!("campaign-report-{mode}.json"));
    let text = serde_json::to_string_pretty(figures).expect("figures serialise");
    std::fs::write(&json_path, text).expect("writing the campaign report");
    let mut md = format!("# Fault campaign: {mode}\n\n| figure | value |\n| --- | --- |\n");
    if let Value::Object(map) = figures {
        for (name, value) in map {
            md.push_str(&format!("| {name} | {value} |\n"));
        }
    }
    std::fs::write(dir.join(format!("campaign-report-{mode}.md")), md)
        .expect("writing the campaign report");
    json_path
}

/// The tally's figures, for the report.
pub fn tally_figures(tally: &Tally) -> Value {
    json!({
        "sent": tally.sent,
        "in_lake": tally.in_lake,
        "in_failed": tally.in_failed,
        "lost": tally.lost.len(),
        "duplicates": tally.duplicates,
        "misplaced": tally.misplaced.len(),
        "unknown": tally.unknown,
    })
}

/// SplitMix64, for reproducible kill times.
#[derive(Debug, Clone)]
pub struct Dice(pub u64);

impl Dice {
    /// A number in `low..high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        low + x % (high - low).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir::source::record::Timestamp;
    use weir::source::sequence::Position;

    fn sent(shard: &str, seq: u64, data: &str) -> SentRecord {
        SentRecord {
            shard: shard.into(),
            position: Position::from_index(seq),
            partition_key: String::new(),
            data: data.as_bytes().to_vec(),
            arrival: Timestamp::from_unix_millis(0),
        }
    }

    #[test]
    fn finds_ids_in_broken_events_too() {
        assert_eq!(id_of(br#"{"metadata":{"uuid":"c12","s"#), Some(&b"c12"[..]));
        assert_eq!(id_of(br#"{"metadata":{"uuid":"c12"#), None);
        assert_eq!(id_of(b"{}"), None);
    }

    #[test]
    fn counts_lost_duplicated_and_misplaced_records() {
        let records = [
            sent("s0", 1, r#"{"uuid":"c1"}"#),
            sent("s0", 2, r#"{"uuid":"c2"}"#),
            sent("s0", 3, r#"{"uuid":"c3"}"#),
        ];
        let line = |r: &SentRecord| r.data.clone();
        let lake = vec![
            ("p/s0-1-2-abc.json.gz".to_owned(), vec![line(&records[0])]),
            // c1 again from a retry, and c2 under a key whose range misses it.
            ("p/s0-1-1-abc.json.gz".to_owned(), vec![line(&records[0])]),
            ("p/s0-5-6-abc.json.gz".to_owned(), vec![line(&records[1])]),
        ];
        let tally = tally(&records, &lake, &[]);
        assert_eq!((tally.in_lake, tally.in_failed), (2, 0));
        assert_eq!(tally.lost, ["s0/3"]);
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.misplaced.len(), 1);
    }
}
