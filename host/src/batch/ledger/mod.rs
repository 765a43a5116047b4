//! The exactly-once ledger: one small document per shard, next to the lake, that records which
//! records are durably stored and which cut of a batch is in flight, written only with
//! conditional writes (If-None-Match / If-Match).
//!
//! A batch first learns which of its records are already stored (skipped) and which earlier,
//! unfinished attempts it overlaps (their objects are removed), then *opens* its cut (the
//! objects it is about to write), writes them, and *commits* the cut. However the event source
//! mapping re-cuts, bisects or redelivers, a record ends in exactly one committed cut's objects.
//! The design and its proof sketch are in `docs/exactly-once.md`.
//!
//! Documents are cached per process with their version tag, so a warm function reads nothing
//! before its batch, plus one GET after a cold start or when another process wrote the
//! document in between. A poller makes two conditional PUTs per batch (open and commit). The
//! Lambda on a single-lane mapping makes one: it answers once the objects are stored and folds
//! the commit into the shard's next open ([`Ledger::deferring_commits`]); a process that finds
//! a cut open that its batch overlaps or has passed checks the cut's objects (HEADs), and
//! commits it if they are all stored.

pub mod state;

use crate::source::sequence::Position;
use crate::storage::{VersionedError, VersionedStore};
use state::{ShardState, Span, StateError};
use std::collections::HashMap;
use std::sync::Mutex;

/// Where shard documents live and how the mapping runs.
#[derive(Debug)]
pub struct Ledger {
    documents: VersionedStore,
    multi_lane: bool,
    defer_commits: bool,
    cache: Mutex<HashMap<String, Snapshot>>,
    /// Per shard: open cuts this process knows are finished (its own, answered with the commit
    /// deferred, or checked), to commit with the shard's next open.
    finished: Mutex<HashMap<String, Vec<Span>>>,
    /// Per shard: open cuts this process found an object of missing, so it checks them once.
    incomplete: Mutex<HashMap<String, Vec<Span>>>,
}

/// A shard's document as last read or written, with its version tag (None: no document yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The document.
    pub state: ShardState,
    /// Its version, for the next conditional write.
    pub tag: Option<String>,
    /// Why the stored document was unusable (corrupt or foreign), if it was: this batch runs
    /// at least once, and its write replaces the document.
    pub fallback: Option<StateError>,
}

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The document changed since it was read: read it again and redo the step.
    #[error("the ledger document of {0} changed since it was read")]
    Conflict(String),
    /// Storage failed (after the SDK's retries).
    #[error("cannot reach the ledger document of {shard}")]
    Store {
        /// The shard.
        shard: String,
        /// Why.
        #[source]
        source: VersionedError,
    },
}

impl Ledger {
    /// A ledger at `location` (a directory or `s3://bucket/prefix`). `parallelization` is the
    /// event source mapping's `ParallelizationFactor`: above 1, a batch holds only some of its
    /// range's records, and the ledger tells them apart by partition key.
    pub async fn open(location: &str, parallelization: u32) -> Result<Self, VersionedError> {
        Ok(Self {
            documents: VersionedStore::open(location).await?,
            multi_lane: parallelization > 1,
            defer_commits: false,
            cache: Mutex::new(HashMap::new()),
            finished: Mutex::new(HashMap::new()),
            incomplete: Mutex::new(HashMap::new()),
        })
    }

    /// This ledger, answering each batch once its objects are stored and committing its cut
    /// with the shard's next open: one conditional PUT per batch instead of two. Only on a
    /// single-lane mapping (ignored otherwise), where every later batch of the shard holds the
    /// cut's records or lies above them, so it settles the cut (see [`state::ShardState::unsettled`]).
    pub fn deferring_commits(mut self) -> Self {
        self.defer_commits = !self.multi_lane;
        self
    }

    /// Whether batches may hold interleaved subsets of a shard (`ParallelizationFactor` > 1).
    pub fn multi_lane(&self) -> bool {
        self.multi_lane
    }

    /// Whether a cut's commit waits for the shard's next open ([`Ledger::deferring_commits`]).
    pub fn defers_commits(&self) -> bool {
        self.defer_commits
    }

    /// Notes that the open cut `span` is finished: every object stored.
    pub fn note_finished(&self, shard: &str, span: Span) {
        note(&self.finished, shard, span);
    }

    /// The open cuts of `shard` known to be finished, lowest first.
    pub fn finished(&self, shard: &str) -> Vec<Span> {
        let mut spans = lock(&self.finished).get(shard).cloned().unwrap_or_default();
        spans.sort_by(|a, b| a.first.cmp(&b.first));
        spans
    }

    /// Forgets `spans` once a write of the document committed them.
    pub fn forget_finished(&self, shard: &str, spans: &[Span]) {
        if let Some(known) = lock(&self.finished).get_mut(shard) {
            known.retain(|span| !spans.contains(span));
        }
    }

    /// Notes that an object of the open cut `span` was missing when checked.
    pub fn note_incomplete(&self, shard: &str, span: Span) {
        note(&self.incomplete, shard, span);
    }

    /// Forgets the incomplete cuts that `state` no longer holds open (abandoned since).
    pub fn prune_incomplete(&self, shard: &str, state: &ShardState) {
        if let Some(spans) = lock(&self.incomplete).get_mut(shard) {
            spans.retain(|span| state.open.iter().any(|cut| cut.span == *span));
        }
    }

    /// The open cuts of `shard` found with an object missing that lie wholly below `lowest`.
    pub fn incomplete_below(&self, shard: &str, lowest: &Position) -> Vec<Span> {
        let known = lock(&self.incomplete);
        let spans = known.get(shard).into_iter().flatten();
        spans.filter(|span| span.last < *lowest).cloned().collect()
    }

    /// Whether the open cut `span` was checked already: finished or incomplete.
    pub fn checked(&self, shard: &str, span: &Span) -> bool {
        [&self.finished, &self.incomplete].iter().any(|known| {
            lock(known)
                .get(shard)
                .is_some_and(|spans| spans.contains(span))
        })
    }

    fn key(shard: &str) -> String {
        format!("{shard}.json")
    }

    /// The shard's document: the cached one, or read from storage; with the requests made.
    pub async fn read(&self, shard: &str) -> Result<(Snapshot, usize), LedgerError> {
        let cached = self.cache().get(shard).cloned();
        match cached {
            Some(snapshot) => Ok((snapshot, 0)),
            None => Ok((self.fetch(shard).await?, 1)),
        }
    }

    /// The shard's document, read from storage.
    pub async fn fetch(&self, shard: &str) -> Result<Snapshot, LedgerError> {
        let key = Self::key(shard);
        let stored = self
            .documents
            .get(&key)
            .await
            .map_err(|source| LedgerError::Store {
                shard: shard.to_owned(),
                source,
            })?;
        let snapshot = match stored {
            None => Snapshot {
                state: ShardState::new(shard),
                tag: None,
                fallback: None,
            },
            Some(versioned) => match ShardState::decode(&versioned.bytes, shard) {
                Ok(state) => Snapshot {
                    state,
                    tag: Some(versioned.tag),
                    fallback: None,
                },
                Err(why) => {
                    tracing::error!(shard, key = %key, error = %why, "unusable ledger document: this batch runs at least once and replaces it");
                    Snapshot {
                        state: ShardState::new(shard),
                        tag: Some(versioned.tag),
                        fallback: Some(why),
                    }
                }
            },
        };
        self.remember(shard, &snapshot);
        Ok(snapshot)
    }

    /// Writes `state` if the document is still `read.tag`; returns the new snapshot.
    pub async fn write(
        &self,
        shard: &str,
        read: &Snapshot,
        state: ShardState,
    ) -> Result<Snapshot, LedgerError> {
        let written = self
            .documents
            .replace(&Self::key(shard), &state.encode(), read.tag.as_deref())
            .await;
        match written {
            Ok(tag) => {
                let snapshot = Snapshot {
                    state,
                    tag: Some(tag),
                    fallback: None,
                };
                self.remember(shard, &snapshot);
                Ok(snapshot)
            }
            Err(VersionedError::Conflict(_) | VersionedError::Exists(_)) => {
                self.cache().remove(shard);
                Err(LedgerError::Conflict(shard.to_owned()))
            }
            Err(source) => {
                // The write may have landed without an answer: read again next time.
                self.cache().remove(shard);
                Err(LedgerError::Store {
                    shard: shard.to_owned(),
                    source,
                })
            }
        }
    }

    fn remember(&self, shard: &str, snapshot: &Snapshot) {
        self.cache().insert(shard.to_owned(), snapshot.clone());
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Snapshot>> {
        lock(&self.cache)
    }
}

fn note(known: &Mutex<HashMap<String, Vec<Span>>>, shard: &str, span: Span) {
    let mut known = lock(known);
    let spans = known.entry(shard.to_owned()).or_default();
    if !spans.contains(&span) {
        spans.push(span);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().expect("the ledger's maps are never poisoned")
}
