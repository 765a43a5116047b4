//! The catalog: every table and partition the host writes, registered in the AWS Glue Data
//! Catalog, so Athena and Spark find them without a crawler or `MSCK REPAIR TABLE`.
//!
//! Off the hot path: the pipeline [`Catalog::note`]s the partitions a batch wrote, and a
//! background task registers the new ones (`BatchCreatePartition`; one that exists already is
//! a success). A cache per process means at most one catalog call per new partition per
//! process. A batch never waits for, or fails because of, the catalog: an unavailable catalog
//! is logged with the table and partitions, counted, and retried with backoff; the Lambda
//! gives registration a short budget at the end of each invocation ([`Catalog::flush`]), and
//! scheduled compaction registers every partition of the lake again ([`Catalog::sync`]), so a
//! partition whose registration was lost with its process is registered on the next run.

pub mod athena;
pub mod definition;
pub mod glue;
pub mod sync;

use crate::catalog::definition::TableSpec;
use crate::catalog::glue::{CatalogError, Glue};
use crate::lake::format::Format;
use crate::lake::table::Table;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The first retry of a failed registration waits this long, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between retries of a failed registration.
const MAX_BACKOFF: Duration = Duration::from_secs(120);

/// A `--catalog` / `WEIR_CATALOG` value that names no catalog Weir can write.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a catalog: expected glue://DATABASE")]
pub struct CatalogUriError(String);

/// Parses `glue://DATABASE` into the database name.
pub fn parse_uri(uri: &str) -> Result<String, CatalogUriError> {
    let database = uri
        .strip_prefix("glue://")
        .filter(|db| {
            (1..=255).contains(&db.len())
                && db
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .ok_or_else(|| CatalogUriError(uri.to_owned()))?;
    Ok(database.to_owned())
}

/// Counters of a process's registrations, for metrics and the CLI's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogStats {
    /// Partitions registered (or found registered already).
    pub registered: u64,
    /// Failed catalog calls (each is retried).
    pub errors: u64,
    /// Partitions waiting to be registered.
    pub pending: u64,
}

/// The registrar of one lake into one catalog database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    glue: Glue,
    lake: String,
    queue: mpsc::UnboundedSender<Note>,
    /// Partitions noted by this process, per table: each is registered once.
    known: Mutex<HashMap<String, HashSet<String>>>,
    /// Parquet metadata fields noted per table.
    fields: Mutex<HashMap<String, BTreeSet<String>>>,
    /// Notes sent and not yet taken in by the worker.
    queued: AtomicUsize,
    /// Whether the worker has work due now.
    working: AtomicBool,
    /// When the worker retries next, while registrations wait for a retry.
    next_retry: Mutex<Option<Instant>>,
    registered: AtomicU64,
    errors: AtomicU64,
    pending: AtomicU64,
}

/// New partitions of one table, for the worker.
#[derive(Debug)]
struct Note {
    spec: TableSpec,
    paths: Vec<String>,
}

impl Catalog {
    /// Registers the tables of the lake at `lake` in the catalog `uri` (`glue://DATABASE`).
    /// Starts the background registrar on the current tokio runtime.
    pub async fn open(uri: &str, lake: &str) -> Result<Self, CatalogUriError> {
        let database = parse_uri(uri)?;
        let glue = Glue::connect(&database).await;
        let (queue, notes) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            glue,
            lake: lake.trim_end_matches('/').to_owned(),
            queue,
            known: Mutex::default(),
            fields: Mutex::default(),
            queued: AtomicUsize::new(0),
            working: AtomicBool::new(false),
            next_retry: Mutex::new(None),
            registered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        });
        tokio::spawn(worker(Arc::downgrade(&shared), notes));
        Ok(Self { shared })
    }

    /// The catalog database.
    pub fn database(&self) -> &str {
        self.shared.glue.database()
    }

    /// Notes that `table` (in `format`) received objects in the partition folders `dirs`
    /// (relative to the lake: `<table>/<partition path>`); Parquet objects with metadata
    /// `fields`. Returns at once: new partitions are registered in the background.
    pub fn note<'a>(
        &self,
        table: &Table,
        format: Format,
        dirs: impl IntoIterator<Item = &'a str>,
        fields: &BTreeSet<String>,
    ) {
        let prefix = format!("{}/", table.name);
        let paths: Vec<String> = {
            let mut known = self
                .shared
                .known
                .lock()
                .expect("the catalog cache is not poisoned");
            let known = known.entry(table.name.clone()).or_default();
            dirs.into_iter()
                .filter_map(|dir| dir.strip_prefix(&prefix))
                .filter(|path| known.insert((*path).to_owned()))
                .map(str::to_owned)
                .collect()
        };
        let mut spec = TableSpec::new(&self.shared.lake, table.clone(), format);
        let mut new_fields = false;
        if format == Format::Parquet {
            let mut all = self
                .shared
                .fields
                .lock()
                .expect("the catalog cache is not poisoned");
            let seen = all.entry(table.name.clone()).or_default();
            for field in fields {
                new_fields |= seen.insert(field.clone());
            }
            spec.metadata_fields = seen.clone();
        }
        if paths.is_empty() && !new_fields {
            return;
        }
        self.shared
            .pending
            .fetch_add(paths.len() as u64, Ordering::Relaxed);
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        if self.shared.queue.send(Note { spec, paths }).is_err() {
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Waits, for at most `budget`, until every noted partition is registered, or waits for
    /// a retry due after the budget. True when every noted partition is registered.
    pub async fn flush(&self, budget: Duration) -> bool {
        let deadline = Instant::now() + budget;
        loop {
            let shared = &self.shared;
            let idle =
                shared.queued.load(Ordering::SeqCst) == 0 && !shared.working.load(Ordering::SeqCst);
            let done = shared.pending.load(Ordering::SeqCst) == 0;
            if idle && done {
                return true;
            }
            let retry = *shared.next_retry.lock().expect("not poisoned");
            if Instant::now() >= deadline || (idle && retry.is_none_or(|at| at > deadline)) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CatalogStats {
        CatalogStats {
            registered: self.shared.registered.load(Ordering::Relaxed),
            errors: self.shared.errors.load(Ordering::Relaxed),
            pending: self.shared.pending.load(Ordering::SeqCst),
        }
    }

    /// Registers `table` and every partition in `paths` now (compaction and `weir catalog
    /// sync` do this for the whole lake). Returns the partitions registered or found.
    pub async fn sync(
        &self,
        table: &Table,
        format: Format,
        paths: &[String],
        fields: BTreeSet<String>,
    ) -> Result<usize, CatalogError> {
        let mut spec = TableSpec::new(&self.shared.lake, table.clone(), format);
        spec.metadata_fields = fields;
        self.shared.glue.ensure_table(&spec).await?;
        let created = self
            .shared
            .glue
            .create_partitions(&spec, paths)
            .await
            .map_err(|(_, error)| error)?;
        self.shared
            .registered
            .fetch_add(created as u64, Ordering::Relaxed);
        Ok(created)
    }
}

impl Catalog {
    /// Points the registered partition `path` of `table` at the lake folder `dir` (relative to
    /// the lake), or back at its own folder when `dir` is None. False when the partition is
    /// not registered (so no catalog reader sees it).
    pub async fn relocate(
        &self,
        table: &Table,
        format: Format,
        path: &str,
        dir: Option<&str>,
    ) -> Result<bool, CatalogError> {
        let spec = TableSpec::new(&self.shared.lake, table.clone(), format);
        let location = match dir {
            Some(dir) => format!("{}/{dir}/", self.shared.lake),
            None => format!("{}{path}/", spec.location),
        };
        self.shared
            .glue
            .relocate_partition(&spec, path, &location)
            .await
    }
}

/// What the worker still has to do for one table.
struct Work {
    spec: TableSpec,
    paths: BTreeSet<String>,
    /// Whether the table's definition must be (re)checked before its partitions.
    table_due: bool,
    next_try: Instant,
    backoff: Duration,
}

/// The background registrar: takes notes in, registers what is due, backs off on failure.
/// Stops when the catalog is dropped.
async fn worker(shared: std::sync::Weak<Shared>, mut notes: mpsc::UnboundedReceiver<Note>) {
    let mut work: BTreeMap<String, Work> = BTreeMap::new();
    // Tables whose definition this process made sure of: their new partitions need no GetTable.
    let mut ensured: Ensured = BTreeMap::new();
    loop {
        let Some(catalog) = shared.upgrade() else {
            return;
        };
        catalog.working.store(true, Ordering::SeqCst);
        while let Ok(note) = notes.try_recv() {
            take(&mut work, &ensured, note);
            catalog.queued.fetch_sub(1, Ordering::SeqCst);
        }
        let now = Instant::now();
        for item in work.values_mut().filter(|w| w.next_try <= now) {
            register(&catalog, &mut ensured, item).await;
        }
        work.retain(|_, w| w.table_due || !w.paths.is_empty());
        if work.values().any(|w| w.next_try <= Instant::now()) {
            continue;
        }
        let next = work.values().map(|w| w.next_try).min();
        *catalog.next_retry.lock().expect("not poisoned") = next;
        catalog.working.store(false, Ordering::SeqCst);
        drop(catalog);
        let note = match next {
            Some(at) => tokio::select! {
                note = notes.recv() => note,
                () = tokio::time::sleep_until(at) => continue,
            },
            None => notes.recv().await,
        };
        let Some(note) = note else {
            return;
        };
        let Some(catalog) = shared.upgrade() else {
            return;
        };
        catalog.working.store(true, Ordering::SeqCst);
        take(&mut work, &ensured, note);
        catalog.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The definitions made sure of, by table name.
type Ensured = BTreeMap<String, TableSpec>;

fn take(work: &mut BTreeMap<String, Work>, ensured: &Ensured, note: Note) {
    let now = Instant::now();
    let name = note.spec.table.name.clone();
    let item = work.entry(name.clone()).or_insert_with(|| Work {
        spec: note.spec.clone(),
        paths: BTreeSet::new(),
        table_due: ensured.get(&name) != Some(&note.spec),
        next_try: now,
        backoff: FIRST_BACKOFF,
    });
    if item.spec != note.spec {
        // Wider Parquet fields, or a table seen in another format: check the table again.
        item.spec = note.spec;
        item.table_due = true;
    }
    item.paths.extend(note.paths);
}

/// One attempt at a table's due work.
async fn register(catalog: &Shared, ensured: &mut Ensured, item: &mut Work) {
    let table = item.spec.glue_name();
    let result = async {
        if item.table_due {
            catalog.glue.ensure_table(&item.spec).await?;
            ensured.insert(item.spec.table.name.clone(), item.spec.clone());
            item.table_due = false;
        }
        let paths: Vec<String> = item.paths.iter().cloned().collect();
        match catalog.glue.create_partitions(&item.spec, &paths).await {
            Ok(created) => {
                catalog
                    .registered
                    .fetch_add(created as u64, Ordering::Relaxed);
                catalog
                    .pending
                    .fetch_sub(paths.len() as u64, Ordering::Relaxed);
                item.paths.clear();
                Ok(())
            }
            Err((failed, error)) => {
                let done = paths.len() - failed.len();
                catalog.registered.fetch_add(done as u64, Ordering::Relaxed);
                catalog.pending.fetch_sub(done as u64, Ordering::SeqCst);
                item.paths = failed.into_iter().collect();
                Err(error)
            }
        }
    }
    .await;
    match result {
        Ok(()) => item.backoff = FIRST_BACKOFF,
        Err(error) => {
            // The table may have been dropped or changed meanwhile: check it on the retry.
            ensured.remove(&item.spec.table.name);
            item.table_due = true;
            catalog.errors.fetch_add(1, Ordering::Relaxed);
            let sample: Vec<&String> = item.paths.iter().take(3).collect();
            tracing::warn!(
                database = %catalog.glue.database(),
                table = %table,
                partitions = item.paths.len(),
                sample = ?sample,
                retry_in_s = item.backoff.as_secs(),
                error = %error,
                "catalog registration failed; will retry"
            );
            item.next_try = Instant::now() + item.backoff;
            item.backoff = (item.backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_uris_name_a_glue_database() {
        assert_eq!(parse_uri("glue://weir_lake").unwrap(), "weir_lake");
        for bad in [
            "glue://",
            "glue://Weir",
            "glue://a-b",
            "hive://x",
            "weir_lake",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
    }
}
