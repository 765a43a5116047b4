//! The `weir_v1` host imports: how a guest answers for a record (see `guest-sdk/ABI.md`).

use super::guest::{GuestState, HostTrap, guest_slice, memory_and_state};
use wasmtime::{Caller, Linker};

/// The import module of ABI version 1.
pub(crate) const MODULE: &str = "weir_v1";

/// Names the guest may import from [`MODULE`].
pub(crate) const NAMES: &[&str] = &["partition", "body", "reject", "log", "panic"];

type Ptr = i32;
type Len = i32;

/// Adds the `weir_v1` imports to the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "partition",
        |mut caller: Caller<'_, GuestState>,
         name: Ptr,
         name_len: Len,
         value: Ptr,
         value_len: Len| {
            let (memory, state) = memory_and_state(&mut caller)?;
            let (name, value) = (
                guest_slice(memory, name, name_len)?,
                guest_slice(memory, value, value_len)?,
            );
            if state.output.rejection().is_some() {
                return Err(HostTrap::Protocol("`partition` called after `reject`").into());
            }
            if state.output.segment_count() >= state.max_segments {
                return Err(HostTrap::TooManySegments {
                    max: state.max_segments,
                }
                .into());
            }
            state.reserve_output(name.len() + value.len())?;
            state.output.push_segment(name, value);
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "body",
        |mut caller: Caller<'_, GuestState>, body: Ptr, len: Len| {
            let (memory, state) = memory_and_state(&mut caller)?;
            let body = guest_slice(memory, body, len)?;
            if state.output.body().is_some() {
                return Err(HostTrap::Protocol("`body` called twice").into());
            }
            if state.output.rejection().is_some() {
                return Err(HostTrap::Protocol("`body` called after `reject`").into());
            }
            state.reserve_output(body.len())?;
            state.output.set_body(body);
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "reject",
        |mut caller: Caller<'_, GuestState>,
         code: Ptr,
         code_len: Len,
         message: Ptr,
         message_len: Len| {
            let (memory, state) = memory_and_state(&mut caller)?;
            let code = guest_slice(memory, code, code_len)?;
            let message = guest_slice(memory, message, message_len)?;
            if state.output.rejection().is_some() {
                return Err(HostTrap::Protocol("`reject` called twice").into());
            }
            if state.output.segment_count() > 0 || state.output.body().is_some() {
                return Err(
                    HostTrap::Protocol("`reject` called after `partition` or `body`").into(),
                );
            }
            state.reserve_output(code.len() + message.len())?;
            state.output.set_rejection(code, message);
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "log",
        |mut caller: Caller<'_, GuestState>, line: Ptr, len: Len| {
            let (memory, state) = memory_and_state(&mut caller)?;
            let line = guest_slice(memory, line, len)?;
            state.log(line);
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "panic",
        |mut caller: Caller<'_, GuestState>, message: Ptr, len: Len| {
            let (memory, state) = memory_and_state(&mut caller)?;
            let message = guest_slice(memory, message, len)?;
            let message = &message[..message.len().min(super::guest::LOG_LINE_BYTES)];
            state.panic = Some(String::from_utf8_lossy(message).into_owned());
            Ok(())
        },
    )?;
    Ok(())
}
