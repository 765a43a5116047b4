//! The state a guest instance's host imports work on, and the errors they trap with.

use super::output::Output;
use wasmtime::{Memory, ResourceLimiter};

/// Why the host stopped a guest in the middle of a record. Raised from host imports and the
/// resource limiter; the session turns it into the record's failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostTrap {
    /// The guest tried to grow its memory past the cap.
    #[error("memory cap exceeded: the guest asked for {desired} bytes, the cap is {cap}")]
    MemoryCap { desired: usize, cap: usize },
    /// The guest's answer outgrew the per-record output cap.
    #[error("output cap exceeded: {len} bytes, the cap is {max}")]
    OutputTooLarge { len: usize, max: usize },
    /// The guest emitted more partition segments than the host allows.
    #[error("more than {max} partition segments")]
    TooManySegments { max: usize },
    /// The guest passed a buffer outside its memory.
    #[error("buffer at {ptr} of {len} bytes lies outside guest memory")]
    OutOfBounds { ptr: u32, len: u32 },
    /// The guest broke the answer protocol (two bodies, a rejection mixed with a partition, ...).
    #[error("{0}")]
    Protocol(&'static str),
    /// A host import was called before the instance was set up (from a start function).
    #[error("a host import was called before the instance was initialised")]
    EarlyCall,
    /// The guest called WASI `proc_exit`.
    #[error("the guest exited with code {0}")]
    Exit(i32),
}

/// Per-instance state: the guest's memory, the current record's answer and its limits.
pub(crate) struct GuestState {
    pub(crate) memory: Option<Memory>,
    pub(crate) output: Output,
    pub(crate) max_output: usize,
    pub(crate) max_segments: usize,
    pub(crate) memory_cap: usize,
    /// The record's arrival time, the only clock the guest can read.
    pub(crate) now_nanos: u64,
    /// Deterministic `random_get` state, reseeded for every record.
    pub(crate) random: u64,
    /// The panic message the guest sent before trapping.
    pub(crate) panic: Option<String>,
    /// Guest log lines left for this record.
    pub(crate) log_budget: u32,
}

/// Log lines a guest may write per record; the rest are dropped.
pub(crate) const LOG_LINES_PER_RECORD: u32 = 16;
/// Longest log line kept, in bytes.
pub(crate) const LOG_LINE_BYTES: usize = 1024;
const RANDOM_SEED: u64 = 0x5745_4952_5345_4544;

impl GuestState {
    pub(crate) fn new(max_output: usize, max_segments: usize, memory_cap: usize) -> Self {
        Self {
            memory: None,
            output: Output::default(),
            max_output,
            max_segments,
            memory_cap,
            now_nanos: 0,
            random: RANDOM_SEED,
            panic: None,
            log_budget: LOG_LINES_PER_RECORD,
        }
    }

    /// Resets per-record state so every record sees the same starting point.
    pub(crate) fn begin_record(&mut self, arrival_millis: i64) {
        self.output.clear();
        self.now_nanos = u64::try_from(arrival_millis)
            .unwrap_or(0)
            .saturating_mul(1_000_000);
        self.random = RANDOM_SEED;
        self.panic = None;
        self.log_budget = LOG_LINES_PER_RECORD;
    }

    /// Fails when `extra` more bytes would take the answer past the output cap.
    pub(crate) fn reserve_output(&self, extra: usize) -> Result<(), HostTrap> {
        let len = self.output.held_bytes().saturating_add(extra);
        if len > self.max_output {
            return Err(HostTrap::OutputTooLarge {
                len,
                max: self.max_output,
            });
        }
        Ok(())
    }

    /// Sends a guest log line to tracing, within the per-record budget.
    pub(crate) fn log(&mut self, line: &[u8]) {
        if self.log_budget == 0 {
            return;
        }
        self.log_budget -= 1;
        let line = String::from_utf8_lossy(&line[..line.len().min(LOG_LINE_BYTES)]);
        tracing::debug!(target: "weir::guest", line = %line.trim_end(), "guest log");
    }

    /// The next deterministic pseudo-random byte block (SplitMix64).
    pub(crate) fn next_random(&mut self) -> u64 {
        self.random = self.random.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl ResourceLimiter for GuestState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            return Err(HostTrap::MemoryCap {
                desired,
                cap: self.memory_cap,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Function tables of real transforms hold hundreds of entries.
        Ok(desired <= 100_000)
    }
}

/// The guest bytes at `ptr..ptr + len`, or the trap for a buffer outside guest memory.
pub(crate) fn guest_slice(memory: &[u8], ptr: i32, len: i32) -> Result<&[u8], HostTrap> {
    Ok(&memory[guest_range(memory.len(), ptr, len)?])
}

/// The mutable guest bytes at `ptr..ptr + len`.
pub(crate) fn guest_slice_mut(
    memory: &mut [u8],
    ptr: i32,
    len: i32,
) -> Result<&mut [u8], HostTrap> {
    let range = guest_range(memory.len(), ptr, len)?;
    Ok(&mut memory[range])
}

fn guest_range(memory_len: usize, ptr: i32, len: i32) -> Result<std::ops::Range<usize>, HostTrap> {
    // The ABI passes unsigned 32-bit offsets in i32 slots.
    let (ptr, len) = (ptr as u32, len as u32);
    let start = ptr as usize;
    match start.checked_add(len as usize) {
        Some(end) if end <= memory_len => Ok(start..end),
        _ => Err(HostTrap::OutOfBounds { ptr, len }),
    }
}

/// Guest memory and state together, as host imports need them.
pub(crate) fn memory_and_state<'a>(
    caller: &'a mut wasmtime::Caller<'_, GuestState>,
) -> Result<(&'a mut [u8], &'a mut GuestState), HostTrap> {
    let memory = caller.data().memory.ok_or(HostTrap::EarlyCall)?;
    Ok(memory.data_and_store_mut(caller))
}
