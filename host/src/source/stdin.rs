//! NDJSON on standard input as a live source.
//!
//! A reader thread hands lines over as they arrive; a batch closes when it is full or when no
//! line has arrived for the batch window, so a live pipe is ingested as it flows, not at EOF.

use super::BatchLimits;
use crate::source::record::{Batch, Record};
use crate::source::sequence::Position;
use std::io::{self, BufRead};
use tokio::sync::mpsc;

/// The label stdin records carry in object keys and envelopes.
pub const STDIN_LABEL: &str = "stdin";

/// Batches from standard input (or any reader, for tests).
#[derive(Debug)]
pub struct StdinSource {
    label: String,
    lines: mpsc::Receiver<io::Result<Record>>,
    /// A record that did not fit the previous batch's byte limit.
    carried: Option<Record>,
    done: bool,
}

impl StdinSource {
    /// Reads the process's standard input.
    pub fn open() -> Self {
        Self::from_reader(io::BufReader::new(io::stdin()))
    }

    /// Reads NDJSON from `reader` on a background thread.
    pub fn from_reader(reader: impl BufRead + Send + 'static) -> Self {
        let (sender, lines) = mpsc::channel(1024);
        std::thread::spawn(move || read_lines(reader, &sender));
        // Lines are numbered from 1 on every run, so the run's start time keeps one run's
        // objects from overwriting another's.
        let label = format!(
            "{STDIN_LABEL}-{}",
            crate::source::record::now().unix_millis()
        );
        Self {
            label,
            lines,
            carried: None,
            done: false,
        }
    }

    /// The source's label in object keys and envelopes: `stdin-<start, Unix ms>`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The next batch, or `None` at end of input.
    pub async fn next_batch(&mut self, limits: &BatchLimits) -> io::Result<Option<Batch>> {
        let mut records = Vec::new();
        let mut bytes = 0;
        if let Some(record) = self.carried.take() {
            bytes += record.data.len();
            records.push(record);
        }
        while !self.done && records.len() < limits.max_records {
            let next = if records.is_empty() {
                self.lines.recv().await
            } else {
                match tokio::time::timeout(limits.window, self.lines.recv()).await {
                    Ok(next) => next,
                    Err(_idle) => break,
                }
            };
            match next {
                Some(record) => {
                    let record = record?;
                    if !records.is_empty() && bytes + record.data.len() > limits.max_bytes {
                        self.carried = Some(record);
                        break;
                    }
                    bytes += record.data.len();
                    records.push(record);
                }
                None => self.done = true,
            }
        }
        Ok((!records.is_empty()).then(|| Batch {
            source: self.label.clone(),
            stream: None,
            records,
        }))
    }
}

fn read_lines(mut reader: impl BufRead, sender: &mpsc::Sender<io::Result<Record>>) {
    let mut line = Vec::new();
    let mut line_number = 0u64;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                let _ = sender.blocking_send(Err(e));
                return;
            }
        }
        line_number += 1;
        let data = line.strip_suffix(b"\n").unwrap_or(&line);
        let data = data.strip_suffix(b"\r").unwrap_or(data);
        if data.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = Record::new(
            data.to_vec(),
            format!("{STDIN_LABEL}:{line_number}"),
            Position::from_index(line_number),
            crate::source::record::now(),
        );
        if sender.blocking_send(Ok(record)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn closes_a_batch_when_the_pipe_goes_idle() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let mut source = StdinSource::from_reader(std::io::BufReader::new(reader));
        let limits = BatchLimits {
            window: Duration::from_millis(50),
            ..BatchLimits::default()
        };
        use std::io::Write;
        writer.write_all(b"{\"a\":1}\n\n{\"a\":2}\n").unwrap();
        // The writer stays open: the batch must close on the idle window, not at EOF.
        let batch = tokio::time::timeout(Duration::from_secs(10), source.next_batch(&limits))
            .await
            .expect("the idle window closes the batch")
            .unwrap()
            .unwrap();
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.records[1].position, Position::from_index(3));
        assert!(batch.source.starts_with("stdin-"), "{}", batch.source);
        drop(writer);
        assert!(source.next_batch(&limits).await.unwrap().is_none());
    }
}
