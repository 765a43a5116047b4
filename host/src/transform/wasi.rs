//! A deterministic sliver of WASI preview 1: just enough for Rust's `std` to link and run.
//!
//! Transforms get no filesystem, network, environment or real clock. The clock reads the
//! record's arrival time and `random_get` is a fixed sequence reseeded per record, so the same
//! record always gets the same outcome. Anything not defined here is refused at load time.

use super::guest::{GuestState, guest_slice, guest_slice_mut, memory_and_state};
use wasmtime::{Caller, Linker};

/// The WASI preview 1 import module.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

/// Names the guest may import from [`MODULE`].
pub(crate) const NAMES: &[&str] = &[
    "fd_write",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "random_get",
    "sched_yield",
    "proc_exit",
    "fd_close",
    "fd_fdstat_get",
    "fd_seek",
    "fd_read",
    "fd_prestat_get",
    "fd_prestat_dir_name",
];

const SUCCESS: i32 = 0;
/// `errno::badf`: there are no files.
const BADF: i32 = 8;

/// Adds the WASI subset to the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "fd_write", fd_write)?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(
            MODULE,
            name,
            |mut caller: Caller<'_, GuestState>, count: i32, size: i32| {
                let (memory, _) = memory_and_state(&mut caller)?;
                guest_slice_mut(memory, count, 4)?.fill(0);
                guest_slice_mut(memory, size, 4)?.fill(0);
                Ok(SUCCESS)
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(MODULE, name, |_: i32, _: i32| SUCCESS)?;
    }
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut caller: Caller<'_, GuestState>, _clock: i32, _precision: i64, time: i32| {
            let (memory, state) = memory_and_state(&mut caller)?;
            let now = state.now_nanos;
            guest_slice_mut(memory, time, 8)?.copy_from_slice(&now.to_le_bytes());
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut caller: Caller<'_, GuestState>, buf: i32, len: i32| {
            let (memory, state) = memory_and_state(&mut caller)?;
            for chunk in guest_slice_mut(memory, buf, len)?.chunks_mut(8) {
                let block = state.next_random().to_le_bytes();
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(MODULE, "sched_yield", || SUCCESS)?;
    linker.func_wrap(MODULE, "proc_exit", |code: i32| -> wasmtime::Result<()> {
        Err(super::guest::HostTrap::Exit(code).into())
    })?;
    linker.func_wrap(MODULE, "fd_close", |_: i32| BADF)?;
    linker.func_wrap(MODULE, "fd_fdstat_get", |_: i32, _: i32| BADF)?;
    linker.func_wrap(MODULE, "fd_seek", |_: i32, _: i64, _: i32, _: i32| BADF)?;
    linker.func_wrap(MODULE, "fd_read", |_: i32, _: i32, _: i32, _: i32| BADF)?;
    linker.func_wrap(MODULE, "fd_prestat_get", |_: i32, _: i32| BADF)?;
    linker.func_wrap(MODULE, "fd_prestat_dir_name", |_: i32, _: i32, _: i32| BADF)?;
    Ok(())
}

/// `fd_write` to stdout or stderr becomes guest log lines; other descriptors do not exist.
fn fd_write(
    mut caller: Caller<'_, GuestState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    written: i32,
) -> wasmtime::Result<i32> {
    if fd != 1 && fd != 2 {
        return Ok(BADF);
    }
    let (memory, state) = memory_and_state(&mut caller)?;
    let iovs = guest_slice(memory, iovs, iovs_len.saturating_mul(8))?;
    let mut total: u32 = 0;
    for iov in iovs.chunks_exact(8) {
        let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        state.log(guest_slice(memory, ptr, len)?);
        total = total.saturating_add(len as u32);
    }
    guest_slice_mut(memory, written, 4)?.copy_from_slice(&total.to_le_bytes());
    Ok(SUCCESS)
}
