//! A shard's ledger document: which of its records are durably stored, and the cuts in flight.
//!
//! Pure logic, no I/O: [`super::Ledger`] reads and writes the document with conditional writes;
//! this file decides, for a batch, which records to skip and which earlier attempts to undo, and
//! how the document changes when a cut opens and when it commits. See `docs/exactly-once.md`.

use crate::lake::object::Destination;
use crate::source::record::Record;
use crate::source::sequence::Position;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `format` every ledger document carries; anything else is foreign.
pub const FORMAT: &str = "weir-ledger/1";

/// Under `ParallelizationFactor` > 1, how many lane hashes the committed spans keep at most
/// (8 bytes each). Older spans are dropped first: that can only let a very late redelivery be
/// stored twice, never lose a record.
pub const LANE_BUDGET: usize = 16_384;

/// A shard's ledger document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    /// Always [`FORMAT`].
    pub format: String,
    /// The shard (source label) the document belongs to.
    pub shard: String,
    /// Every record of the shard at or below this position is stored (a watermark, moved only
    /// by cuts of a single-lane mapping).
    #[serde(default, with = "optional_position")]
    pub stored: Option<Position>,
    /// Recently committed spans that the watermark does not cover, oldest first.
    #[serde(default)]
    pub committed: Vec<Span>,
    /// Cuts whose objects may be partly stored: not committed yet.
    #[serde(default)]
    pub open: Vec<OpenCut>,
}

/// A set of records of one shard: every record between `first` and `last` (inclusive) whose
/// Kinesis partition key hashes into `lanes`, or every record in between when `lanes` is None.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// The lowest position.
    #[serde(with = "position")]
    pub first: Position,
    /// The highest position.
    #[serde(with = "position")]
    pub last: Position,
    /// Hashes of the partition keys ([`lane_hash`]), sorted; None for a single-lane mapping,
    /// where a batch holds every record of its range.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "lane_set")]
    pub lanes: Option<Vec<u64>>,
}

/// A cut that was opened (its objects about to be written) and not yet committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCut {
    /// The records it holds.
    pub span: Span,
    /// The objects it writes.
    pub objects: Vec<ObjectRef>,
    /// Objects of earlier, abandoned attempts that must be gone before this cut's are written.
    #[serde(default)]
    pub garbage: Vec<ObjectRef>,
    /// Whether committing the cut may move the watermark: a single-lane cut that starts at or
    /// below every attempt it abandoned (records of an abandoned attempt below it are not
    /// stored, so the watermark must not pass them).
    #[serde(default)]
    pub advances: bool,
}

/// A lake or failed object, by destination and key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Lake or failed location.
    pub destination: Destination,
    /// The key under the destination's prefix.
    pub key: String,
}

/// What a batch meets in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Per record of the batch: already stored by a committed cut (skip it).
    pub stored: Vec<bool>,
    /// Indices into [`ShardState::open`] of the earlier attempts this batch overlaps: their
    /// objects are abandoned and removed before the new cut's are written.
    pub abandoned: Vec<usize>,
}

/// Why a ledger document cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not JSON of the ledger's shape.
    #[error("not a ledger document: {0}")]
    Malformed(String),
    /// Another format, or another shard's document.
    #[error("a foreign document: format {format:?}, shard {shard:?}")]
    Foreign {
        /// Its `format`.
        format: String,
        /// Its `shard`.
        shard: String,
    },
}

/// The lane hash of a Kinesis partition key: the first 8 bytes of its sha256 (stable across
/// processes and releases, unlike `std`'s hasher).
pub fn lane_hash(partition_key: &str) -> u64 {
    let digest = Sha256::digest(partition_key.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("sha256 is 32 bytes"))
}

impl Span {
    /// The span of `records` (sorted by position, at least one); `lanes` when the mapping
    /// may run more than one batch per shard at once.
    pub fn of(records: &[&Record], multi_lane: bool) -> Self {
        let first = records
            .iter()
            .map(|r| &r.position)
            .min()
            .expect("a cut holds at least one record");
        let last = records
            .iter()
            .map(|r| &r.position)
            .max()
            .expect("a cut holds at least one record");
        let lanes = multi_lane.then(|| {
            let mut lanes: Vec<u64> = records
                .iter()
                .map(|r| lane_hash(r.kinesis_partition_key()))
                .collect();
            lanes.sort_unstable();
            lanes.dedup();
            lanes
        });
        Self {
            first: first.clone(),
            last: last.clone(),
            lanes,
        }
    }

    /// Whether the record at `position`, with lane hash `lane`, belongs to the span. `lane` is
    /// needed only when the span keeps lanes.
    fn holds(&self, position: &Position, lane: Option<u64>) -> bool {
        self.first <= *position
            && *position <= self.last
            && self
                .lanes
                .as_ref()
                .is_none_or(|lanes| lane.is_some_and(|lane| lanes.binary_search(&lane).is_ok()))
    }

    fn lane_count(&self) -> usize {
        self.lanes.as_ref().map_or(0, Vec::len)
    }
}

impl ShardState {
    /// The document of a shard that has stored nothing yet.
    pub fn new(shard: &str) -> Self {
        Self {
            format: FORMAT.to_owned(),
            shard: shard.to_owned(),
            stored: None,
            committed: Vec::new(),
            open: Vec::new(),
        }
    }

    /// Reads a document, checking that it is a ledger document of `shard`.
    pub fn decode(bytes: &[u8], shard: &str) -> Result<Self, StateError> {
        let state: Self =
            serde_json::from_slice(bytes).map_err(|e| StateError::Malformed(e.to_string()))?;
        if state.format != FORMAT || state.shard != shard {
            return Err(StateError::Foreign {
                format: state.format,
                shard: state.shard,
            });
        }
        Ok(state)
    }

    /// The document's bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a ledger document always serializes")
    }

    /// Which of the records are stored, and which open cuts they overlap.
    pub fn plan(&self, records: &[Record]) -> Plan {
        // Hash each record's partition key once, and only if some span keeps lanes.
        let spans = self
            .committed
            .iter()
            .chain(self.open.iter().map(|cut| &cut.span));
        let multi_lane = spans.into_iter().any(|span| span.lanes.is_some());
        let lanes: Vec<Option<u64>> = records
            .iter()
            .map(|r| multi_lane.then(|| lane_hash(r.kinesis_partition_key())))
            .collect();
        let stored = records
            .iter()
            .zip(&lanes)
            .map(|(r, &lane)| {
                self.stored.as_ref().is_some_and(|w| r.position <= *w)
                    || self
                        .committed
                        .iter()
                        .any(|span| span.holds(&r.position, lane))
            })
            .collect();
        let abandoned = (0..self.open.len())
            .filter(|&i| {
                let span = &self.open[i].span;
                records
                    .iter()
                    .zip(&lanes)
                    .any(|(r, &lane)| span.holds(&r.position, lane))
            })
            .collect();
        Plan { stored, abandoned }
    }

    /// The single-lane open cuts that a batch reaching up to `highest` overlaps or has passed.
    /// The mapping delivers such a batch only after it was answered for the cut (a commit
    /// deferred, or lost with its process), after a failed attempt (a retry) or after giving
    /// the cut's records up: the cut's objects tell which, all stored or not. Cuts that keep
    /// lanes are never settled so: they are only abandoned.
    pub fn unsettled<'a>(&'a self, highest: &'a Position) -> impl Iterator<Item = &'a OpenCut> {
        // A single-lane batch holds every record of its range, so a cut starting at or below
        // its highest record either shares a record with it or lies wholly below it.
        self.open
            .iter()
            .filter(move |cut| cut.span.lanes.is_none() && cut.span.first <= *highest)
    }

    /// Opens `cut`, replacing the `abandoned` attempts: their objects that the cut does not
    /// write again become its garbage.
    pub fn open_cut(&mut self, mut cut: OpenCut, abandoned: &[usize]) {
        let mut garbage: Vec<ObjectRef> = Vec::new();
        cut.advances = cut.span.lanes.is_none();
        for &i in abandoned.iter().rev() {
            let old = self.open.remove(i);
            cut.advances &= old.span.first >= cut.span.first;
            garbage.extend(old.objects);
            garbage.extend(old.garbage);
        }
        garbage.extend(std::mem::take(&mut cut.garbage));
        garbage.sort();
        garbage.dedup();
        garbage.retain(|g| cut.objects.binary_search(g).is_err());
        cut.garbage = garbage;
        self.open.push(cut);
    }

    /// Drops the open cut with this span without committing it, so it no longer holds the
    /// watermark back: a single-lane mapping moved past it with an object missing (it gave
    /// the records up, or compaction merged the objects since). False if no such cut is open.
    pub fn drop_open(&mut self, span: &Span) -> bool {
        let before = self.open.len();
        self.open.retain(|cut| cut.span != *span);
        self.open.len() < before
    }

    /// Commits the open cut with this span: its records are stored. False if no such cut is
    /// open (another invocation took it over).
    pub fn commit(&mut self, span: &Span) -> bool {
        let Some(at) = self.open.iter().position(|cut| cut.span == *span) else {
            return false;
        };
        let cut = self.open.remove(at);
        // Nor may the watermark pass a cut still in flight.
        let nothing_below = self.open.iter().all(|open| open.span.first > span.last);
        if cut.advances && nothing_below {
            let last = span.last.clone();
            self.stored = Some(self.stored.take().map_or(last.clone(), |w| w.max(last)));
            let watermark = self.stored.clone();
            self.committed
                .retain(|s| watermark.as_ref().is_none_or(|w| s.last > *w));
        } else {
            self.committed.push(span.clone());
            self.trim_committed();
        }
        true
    }

    /// Drops the oldest multi-lane spans past [`LANE_BUDGET`], keeping at least the newest.
    fn trim_committed(&mut self) {
        let mut total: usize = self.committed.iter().map(Span::lane_count).sum();
        while self.committed.len() > 1 && total > LANE_BUDGET {
            total -= self.committed.remove(0).lane_count();
        }
    }
}

mod position {
    //! A position as the text `Display` writes.
    use crate::source::sequence::Position;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(p: &Position, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(p)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Position, D::Error> {
        let text = String::deserialize(d)?;
        Position::parse_display(&text).map_err(serde::de::Error::custom)
    }
}

mod optional_position {
    //! An optional position as text or null.
    use crate::source::sequence::Position;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(p: &Option<Position>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.collect_str(p),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Position>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| Position::parse_display(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod lane_set {
    //! Lane hashes as one base64 string of big-endian u64s: compact, and still JSON.
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        lanes: &Option<Vec<u64>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match lanes {
            Some(lanes) => {
                let bytes: Vec<u8> = lanes.iter().flat_map(|l| l.to_be_bytes()).collect();
                s.serialize_str(&STANDARD.encode(bytes))
            }
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u64>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bytes = STANDARD.decode(text).map_err(serde::de::Error::custom)?;
        if bytes.len() % 8 != 0 {
            return Err(serde::de::Error::custom("lane hashes are 8 bytes each"));
        }
        let mut lanes: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().expect("chunks of 8")))
            .collect();
        // Binary search needs them sorted, whoever wrote the document.
        lanes.sort_unstable();
        lanes.dedup();
        Ok(Some(lanes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::record::Timestamp;

    fn record(n: u64, key: &str) -> Record {
        Record::new(
            b"{}".to_vec(),
            key.into(),
            Position::from_index(n),
            Timestamp::from_unix_millis(0),
        )
    }

    fn records(range: std::ops::RangeInclusive<u64>) -> Vec<Record> {
        range.map(|n| record(n, "k")).collect()
    }

    fn object(key: &str) -> ObjectRef {
        ObjectRef {
            destination: Destination::Lake,
            key: key.into(),
        }
    }

    fn cut(records: &[Record], multi_lane: bool, objects: &[&str]) -> OpenCut {
        let refs: Vec<&Record> = records.iter().collect();
        let mut objects: Vec<ObjectRef> = objects.iter().map(|k| object(k)).collect();
        objects.sort();
        OpenCut {
            span: Span::of(&refs, multi_lane),
            objects,
            garbage: Vec::new(),
            advances: false,
        }
    }

    fn store(state: &mut ShardState, records: &[Record], objects: &[&str]) -> Span {
        let plan = state.plan(records);
        let cut = cut(records, false, objects);
        let span = cut.span.clone();
        state.open_cut(cut, &plan.abandoned);
        assert!(state.commit(&span));
        span
    }

    #[test]
    fn skips_records_a_committed_cut_holds() {
        let mut state = ShardState::new("s");
        store(&mut state, &records(1..=10), &["a"]);
        assert_eq!(state.stored, Some(Position::from_index(10)));
        let plan = state.plan(&records(8..=12));
        assert_eq!(plan.stored, [true, true, true, false, false]);
        assert!(plan.abandoned.is_empty());
    }

    #[test]
    fn a_shorter_retry_abandons_the_open_attempt_and_keeps_shared_keys() {
        let mut state = ShardState::new("s");
        let first = cut(&records(1..=10), false, &["p1-1-10", "p2-2-9"]);
        state.open_cut(first, &[]);
        // Bisected: the first half comes back.
        let half = records(1..=5);
        let plan = state.plan(&half);
        assert_eq!(plan.abandoned, [0]);
        assert_eq!(plan.stored, [false; 5]);
        state.open_cut(cut(&half, false, &["p1-1-5", "p2-2-9"]), &plan.abandoned);
        let open = &state.open[0];
        assert_eq!(open.garbage, [object("p1-1-10")]);
        assert!(open.advances);
        let span = open.span.clone();
        assert!(state.commit(&span));
        assert_eq!(state.stored, Some(Position::from_index(5)));
        assert!(state.open.is_empty());
        // The second half is new.
        assert_eq!(state.plan(&records(6..=10)).stored, [false; 5]);
    }

    #[test]
    fn the_watermark_never_passes_an_abandoned_attempt_below_the_cut() {
        let mut state = ShardState::new("s");
        state.open_cut(cut(&records(1..=10), false, &["a"]), &[]);
        let later = records(5..=12);
        let plan = state.plan(&later);
        assert_eq!(plan.abandoned, [0]);
        state.open_cut(cut(&later, false, &["b"]), &plan.abandoned);
        let span = state.open[0].span.clone();
        assert!(state.commit(&span));
        assert_eq!(state.stored, None, "records 1-4 are not stored");
        assert_eq!(
            state.plan(&records(1..=6)).stored,
            [false, false, false, false, true, true]
        );
        // Once 1-4 are stored, the watermark moves over both.
        store(&mut state, &records(1..=4), &["c"]);
        assert_eq!(state.stored, Some(Position::from_index(4)));
        assert_eq!(state.plan(&records(12..=13)).stored, [true, false]);
    }

    #[test]
    fn nor_passes_a_cut_still_in_flight() {
        let mut state = ShardState::new("s");
        state.open_cut(cut(&records(1..=3), false, &["a"]), &[]);
        let rest = records(4..=6);
        state.open_cut(cut(&rest, false, &["b"]), &[]);
        let span = state.open[1].span.clone();
        assert!(state.commit(&span));
        assert_eq!(state.stored, None);
        assert_eq!(
            state.plan(&records(2..=5)).stored,
            [false, false, true, true]
        );
    }

    #[test]
    fn a_batch_settles_the_single_lane_cuts_it_overlaps_or_has_passed() {
        let mut state = ShardState::new("s");
        state.open_cut(cut(&records(1..=3), false, &["a"]), &[]);
        state.open_cut(cut(&records(10..=12), false, &["b"]), &[]);
        let firsts = |state: &ShardState, highest: u64| -> Vec<Position> {
            state
                .unsettled(&Position::from_index(highest))
                .map(|cut| cut.span.first.clone())
                .collect()
        };
        assert!(
            firsts(&state, 0).is_empty(),
            "every cut lies above the batch"
        );
        assert_eq!(firsts(&state, 5), [Position::from_index(1)]);
        assert_eq!(
            firsts(&state, 10),
            [Position::from_index(1), Position::from_index(10)]
        );
        let mut lanes = ShardState::new("s");
        let lane: Vec<Record> = [4, 6].iter().map(|&n| record(n, "a")).collect();
        lanes.open_cut(cut(&lane, true, &["c"]), &[]);
        assert!(
            firsts(&lanes, 10).is_empty(),
            "lanes' cuts are only abandoned"
        );
        // Dropping the lowest lets the next commit move the watermark.
        let lowest = state.open[0].span.clone();
        assert!(state.drop_open(&lowest));
        assert!(!state.drop_open(&lowest));
        let middle = state.open[0].span.clone();
        assert!(state.commit(&middle));
        assert_eq!(state.stored, Some(Position::from_index(12)));
    }

    #[test]
    fn lanes_keep_interleaved_batches_apart() {
        let mut state = ShardState::new("s");
        let lane_a: Vec<Record> = [1, 3, 5].iter().map(|&n| record(n, "a")).collect();
        let lane_b: Vec<Record> = [2, 4, 6].iter().map(|&n| record(n, "b")).collect();
        state.open_cut(cut(&lane_a, true, &["a"]), &[]);
        // Lane b's batch overlaps lane a's range but not its records: nothing to abandon.
        let plan = state.plan(&lane_b);
        assert!(plan.abandoned.is_empty());
        state.open_cut(cut(&lane_b, true, &["b"]), &plan.abandoned);
        let span = state.open[0].span.clone();
        assert!(state.commit(&span));
        assert_eq!(state.stored, None, "lanes never move the watermark");
        assert_eq!(state.plan(&lane_a).stored, [true; 3]);
        assert_eq!(state.plan(&lane_b).stored, [false; 3]);
        assert_eq!(state.plan(&lane_b).abandoned, [0]);
    }

    #[test]
    fn a_cut_taken_over_does_not_commit() {
        let mut state = ShardState::new("s");
        let all = records(1..=4);
        state.open_cut(cut(&all, false, &["a"]), &[]);
        let mine = state.open[0].span.clone();
        let plan = state.plan(&all[..2]);
        state.open_cut(cut(&all[..2], false, &["b"]), &plan.abandoned);
        assert!(!state.commit(&mine));
    }

    #[test]
    fn multi_lane_spans_stay_within_the_budget_newest_kept() {
        let mut state = ShardState::new("s");
        let keys: Vec<String> = (0..LANE_BUDGET).map(|n| format!("k{n}")).collect();
        for batch in 0..3u64 {
            let records: Vec<Record> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| record(batch * 100_000 + i as u64 + 1, k))
                .collect();
            let plan = state.plan(&records);
            let cut = cut(&records, true, &["x"]);
            let span = cut.span.clone();
            state.open_cut(cut, &plan.abandoned);
            assert!(state.commit(&span));
        }
        assert_eq!(state.committed.len(), 1);
        assert_eq!(state.committed[0].first, Position::from_index(200_001));
    }

    #[test]
    fn documents_round_trip_and_foreign_ones_are_refused() {
        let mut state = ShardState::new("shardId-1");
        let aggregate: Vec<Record> = (0..3)
            .map(|sub| {
                let mut r = record(7, "user");
                r.position =
                    Position::parse("49590338271490256608559692538361571095921575989136588898")
                        .unwrap()
                        .with_sub(sub);
                r
            })
            .collect();
        state.open_cut(cut(&aggregate, true, &["a", "b"]), &[]);
        store(&mut state, &records(1..=2), &["c"]);
        let bytes = state.encode();
        assert_eq!(ShardState::decode(&bytes, "shardId-1").unwrap(), state);
        assert!(matches!(
            ShardState::decode(&bytes, "shardId-2"),
            Err(StateError::Foreign { .. })
        ));
        for garbage in [
            &b"{"[..],
            b"[]",
            br#"{"format":"weir-ledger/1","shard":"shardId-1","stored":"x"}"#,
        ] {
            assert!(matches!(
                ShardState::decode(garbage, "shardId-1"),
                Err(StateError::Malformed(_))
            ));
        }
    }
}
