//! Compaction: merges the per-batch objects of closed partitions into few large ones, without
//! a record ever being absent and without duplicates once it is done.
//!
//! Per chunk of small objects in a closed partition:
//!
//! ```text
//! write manifest (output key, source keys) -> write the merged output -> read it back and
//! check it holds exactly the sources' records -> delete the sources -> delete the manifest
//! ```
//!
//! The manifest comes first, so an interrupted run always leaves enough to finish: a rerun
//! reads each manifest before planning. Output missing: nothing was deleted yet, so the
//! manifest is dropped and the chunk planned again (to the same, deterministic, output key).
//! Output present and every source too: it is checked again, then the sources deleted. Output
//! present and some sources gone: it was checked before any delete, so the rest are deleted.
//!
//! Readers: between the output's write and the last source's delete, a listing of the
//! partition can see both, so a job started in that window reads those records twice. The
//! window is a few deletes long per chunk. A partition is compacted only once it is closed
//! (its `dt`/`hr` ended `older_than` ago); choose `older_than` longer than the stream's
//! retention, so that no redelivered batch can rewrite a source after it was merged.

pub mod catalogued;
pub(crate) mod merge;
mod plan;
pub mod scheduled;

pub use merge::{DecodeError, Records};
pub use plan::{
    MANIFEST_PREFIX, OUTPUT_PREFIX, Partition, chunks, is_closed, manifest_key, output_key,
    partitions,
};

use crate::lake::format::Format;
use crate::storage::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// How to compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactOptions {
    /// A partition is closed once its hour (or day) ended this long ago.
    pub older_than: Duration,
    /// Objects are merged up to about this many (stored) bytes; larger ones are left alone.
    pub target_size: u64,
    /// Gzip level of merged NDJSON objects.
    pub gzip_level: u32,
    /// Test hook: stop (as if the process died) after this many source deletes.
    pub stop_after_deletes: Option<usize>,
    /// Start no new merge after this instant (a Lambda's deadline, less a margin): the run
    /// ends cleanly, with [`CompactReport::unfinished`] set, and the next run goes on.
    pub deadline: Option<std::time::Instant>,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Closed partitions looked at.
    pub closed: usize,
    /// Partitions left alone because they may still get data (or have no `dt` level).
    pub open: usize,
    /// Merged objects written.
    pub written: usize,
    /// Source objects deleted after their records were verified in a merged object.
    pub removed: usize,
    /// Records in the merged objects written.
    pub records: usize,
    /// Merges an interrupted run had started and this one finished.
    pub resumed: usize,
    /// Bytes of the merged objects written.
    pub bytes: u64,
    /// Whether the run stopped at its deadline with closed partitions left to merge.
    pub unfinished: bool,
    /// Registered partitions left for the next pass because the catalog could not be moved.
    pub catalog_skipped: usize,
}

/// Why compaction stopped. Whatever it stopped at, every record is still in the lake, and a
/// rerun finishes the job.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// Listing, reading, writing or deleting failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An object is not what its extension says.
    #[error("cannot decode {key}")]
    Decode {
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// A merged object read back differs from its sources; it was deleted again.
    #[error("{output} read back does not hold exactly the records of its {sources} sources")]
    Verify {
        /// The merged object.
        output: String,
        /// How many sources it merged.
        sources: usize,
    },
    /// A manifest that is not valid JSON, or names an output whose sources are partly gone.
    #[error("manifest {manifest}: {reason}")]
    Manifest {
        /// The manifest.
        manifest: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`CompactOptions::stop_after_deletes`] was reached.
    #[error("stopped after {0} deletes, as asked")]
    Stopped(usize),
    /// The catalog could not be pointed back at a partition's folder; the next pass does it.
    #[error("catalog: {0}")]
    Catalog(String),
}

/// A compaction in progress: the output and the sources it merges, and where the merged
/// object is staged while a catalog points at it ([`catalogued`]).
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    output: String,
    sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    staged: Option<String>,
}

/// Compacts every closed partition of `lake`.
pub async fn compact(
    lake: &Store,
    options: &CompactOptions,
    now: SystemTime,
) -> Result<CompactReport, CompactError> {
    compact_registered(lake, None, options, now).await
}

/// Compacts every closed partition of `lake`; partitions of `catalog`'s tables through a
/// staging folder, so that catalog readers never see a record twice.
pub async fn compact_registered(
    lake: &Store,
    catalog: Option<&catalogued::CatalogTables<'_>>,
    options: &CompactOptions,
    now: SystemTime,
) -> Result<CompactReport, CompactError> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut run = Run {
        lake,
        catalog,
        options,
        report: CompactReport::default(),
        deletes: 0,
    };
    for partition in partitions(lake.list_sized("").await?) {
        if !is_closed(&partition.path, now, options.older_than) {
            run.report.open += 1;
            continue;
        }
        run.report.closed += 1;
        run.partition(partition).await?;
        if run.report.unfinished {
            break;
        }
    }
    Ok(run.report)
}

struct Run<'a> {
    lake: &'a Store,
    catalog: Option<&'a catalogued::CatalogTables<'a>>,
    options: &'a CompactOptions,
    report: CompactReport,
    deletes: usize,
}

impl Manifest {
    /// Where the merged object is written first: its staged key, else its output.
    fn target(&self) -> &str {
        self.staged.as_deref().unwrap_or(&self.output)
    }
}

impl Run<'_> {
    fn past_deadline(&self) -> bool {
        self.options
            .deadline
            .is_some_and(|deadline| std::time::Instant::now() >= deadline)
    }

    async fn partition(&mut self, mut partition: Partition) -> Result<(), CompactError> {
        let mut present: BTreeSet<String> =
            partition.objects.iter().map(|(k, _)| k.clone()).collect();
        // Manifests of plain compactions are finished the plain way, whatever this run is.
        let mut staged = Vec::new();
        for manifest in std::mem::take(&mut partition.manifests) {
            let read = self.read_manifest(&manifest).await?;
            if read.staged.is_some() {
                staged.push((manifest, read));
            } else {
                self.resume(&manifest, read, &mut present).await?;
            }
        }
        partition.objects.retain(|(key, _)| present.contains(key));
        let first_staged = staged.first().map(|(key, _)| key.clone());
        if self.compact_registered(&partition, staged).await? {
            return Ok(());
        }
        if let Some(manifest) = first_staged {
            // Only a run through the same catalog can finish it: the catalog may point at the
            // staging folder.
            return Err(CompactError::Manifest {
                manifest,
                reason: "left by a compaction through a catalog; run it again with --catalog"
                    .into(),
            });
        }
        for format in Format::ALL {
            for sources in chunks(&partition.objects, format, self.options.target_size) {
                if self.past_deadline() {
                    self.report.unfinished = true;
                    return Ok(());
                }
                let manifest = Manifest {
                    output: output_key(&partition.path, &sources, format),
                    sources,
                    staged: None,
                };
                let key = self.start_merge(&partition.path, &manifest, format).await?;
                self.finish(&key, &manifest, &manifest.sources).await?;
            }
        }
        Ok(())
    }

    /// Finishes (or undoes) what an interrupted run started under `manifest_key`.
    async fn resume(
        &mut self,
        key: &str,
        manifest: Manifest,
        present: &mut BTreeSet<String>,
    ) -> Result<(), CompactError> {
        let remaining: Vec<String> = manifest
            .sources
            .iter()
            .filter(|s| present.contains(*s))
            .cloned()
            .collect();
        if !present.contains(&manifest.output) {
            if remaining.len() != manifest.sources.len() {
                return Err(CompactError::Manifest {
                    manifest: key.to_owned(),
                    reason: format!(
                        "{} is missing and so are some of its sources; left for an operator",
                        manifest.output
                    ),
                });
            }
            // Nothing was deleted: plan this chunk again from scratch.
            return Ok(self.lake.delete(key).await?);
        }
        let format = Format::of_key(&manifest.output).ok_or_else(|| CompactError::Manifest {
            manifest: key.to_owned(),
            reason: format!("{} is not a data object", manifest.output),
        })?;
        if remaining.len() == manifest.sources.len() {
            // No source was deleted, so the output may never have been checked.
            let expected = self.decode_all(&manifest.sources, format).await?;
            self.verify(&manifest, &expected, format).await?;
        }
        present.remove(&manifest.output);
        for source in &remaining {
            present.remove(source);
        }
        self.report.resumed += 1;
        self.finish(key, &manifest, &remaining).await
    }

    /// Writes `manifest` (first, so an interrupted run can finish), then the checked merge of
    /// its sources; returns the manifest's key.
    async fn start_merge(
        &mut self,
        partition: &str,
        manifest: &Manifest,
        format: Format,
    ) -> Result<String, CompactError> {
        let key = manifest_key(partition, &manifest.sources);
        let text = serde_json::to_vec(manifest).expect("a manifest serializes");
        self.lake
            .put_bytes(&key, text.into(), "application/json", None)
            .await?;
        let records = self.merge(manifest, format).await?;
        self.report.written += 1;
        self.report.records += records.count();
        Ok(key)
    }

    async fn read_manifest(&self, key: &str) -> Result<Manifest, CompactError> {
        serde_json::from_slice(&self.lake.get(key).await?).map_err(|e| CompactError::Manifest {
            manifest: key.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Writes the merge of the manifest's sources (at its staged key, if it has one) and
    /// checks it; returns its records.
    async fn merge(
        &mut self,
        manifest: &Manifest,
        format: Format,
    ) -> Result<Records, CompactError> {
        let records = self.decode_all(&manifest.sources, format).await?;
        let body = records
            .encode(self.options.gzip_level)
            .map_err(|e| CompactError::Decode {
                key: manifest.output.clone(),
                source: e.into(),
            })?;
        self.report.bytes += body.len() as u64;
        self.lake
            .put_bytes(
                manifest.target(),
                body.into(),
                format.content_type(),
                format.content_encoding(),
            )
            .await?;
        self.verify(manifest, &records, format).await?;
        Ok(records)
    }

    /// Reads the output back and compares every record (so counts and bytes too) with
    /// `expected`; when they differ, deletes it (the sources still hold everything) and fails.
    async fn verify(
        &self,
        manifest: &Manifest,
        expected: &Records,
        format: Format,
    ) -> Result<(), CompactError> {
        let mut stored = Records::new(format);
        let body = self.lake.get(manifest.target()).await?;
        let decoded = stored.append(body.into());
        if decoded.is_err() || stored != *expected {
            self.lake.delete(manifest.target()).await?;
            return Err(CompactError::Verify {
                output: manifest.target().to_owned(),
                sources: manifest.sources.len(),
            });
        }
        Ok(())
    }

    async fn decode_all(&self, keys: &[String], format: Format) -> Result<Records, CompactError> {
        let mut records = Records::new(format);
        for key in keys {
            let body = self.lake.get(key).await?;
            records
                .append(body.into())
                .map_err(|source| CompactError::Decode {
                    key: key.clone(),
                    source,
                })?;
        }
        Ok(records)
    }

    /// Deletes the merged sources, then the manifest.
    async fn finish(
        &mut self,
        manifest_key: &str,
        manifest: &Manifest,
        sources: &[String],
    ) -> Result<(), CompactError> {
        self.delete_sources(sources).await?;
        tracing::info!(output = %manifest.output, sources = manifest.sources.len(), "merged");
        Ok(self.lake.delete(manifest_key).await?)
    }

    /// Deletes merged sources (their records are in a checked merged object).
    async fn delete_sources(&mut self, sources: &[String]) -> Result<(), CompactError> {
        for source in sources {
            self.lake.delete(source).await?;
            self.report.removed += 1;
            self.deletes += 1;
            if self.options.stop_after_deletes == Some(self.deletes) {
                return Err(CompactError::Stopped(self.deletes));
            }
        }
        Ok(())
    }
}
