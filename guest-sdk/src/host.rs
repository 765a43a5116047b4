//! Calls into the host: the `weir_v1` imports behind safe functions.
//!
//! Every import takes `(pointer, length)` pairs into the guest's memory; the host copies the
//! bytes during the call, so borrowing a `&str` or `&[u8]` for the duration of the call is all
//! the ownership the ABI needs.

#[cfg(target_arch = "wasm32")]
mod imports {
    // `usize` and pointers are 32 bits on wasm32: they are the ABI's `i32`s.
    #[link(wasm_import_module = "weir_v1")]
    unsafe extern "C" {
        pub(super) fn partition(
            name_ptr: *const u8,
            name_len: usize,
            value_ptr: *const u8,
            value_len: usize,
        );
        pub(super) fn body(ptr: *const u8, len: usize);
        pub(super) fn reject(
            code_ptr: *const u8,
            code_len: usize,
            message_ptr: *const u8,
            message_len: usize,
        );
        pub(super) fn log(ptr: *const u8, len: usize);
        pub(super) fn panic(ptr: *const u8, len: usize);
    }
}

/// Sends one line to the host's log, tagged with the transform and the record being processed.
///
/// For debugging: the host truncates long lines and drops lines beyond a per-record rate, so
/// never rely on a log line arriving. Outside WebAssembly (in `cargo test`), the line goes to
/// standard error, which the test harness captures.
pub fn log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the pointer and length describe a live `&str`; the host only reads it during the
    // call.
    unsafe {
        imports::log(message.as_ptr(), message.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("weir guest log: {message}");
}

// The functions below are called only by the export glue, which exists only on wasm32. Native
// builds keep them so that the glue compiles and is type-checked everywhere.

pub(crate) fn partition(name: &str, value: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: both pairs describe live `&str`s; the host copies them during the call.
    unsafe {
        imports::partition(name.as_ptr(), name.len(), value.as_ptr(), value.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!("partition {name}={value}: the weir_v1 imports exist only in a wasm guest");
}

pub(crate) fn body(body: &[u8]) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the pair describes a live slice; the host copies it during the call.
    unsafe {
        imports::body(body.as_ptr(), body.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!(
        "body of {} bytes: the weir_v1 imports exist only in a wasm guest",
        body.len()
    );
}

pub(crate) fn reject(code: &str, message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: both pairs describe live `&str`s; the host copies them during the call.
    unsafe {
        imports::reject(code.as_ptr(), code.len(), message.as_ptr(), message.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    unreachable!("reject {code}: {message}: the weir_v1 imports exist only in a wasm guest");
}

pub(crate) fn panic(message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the pair describes a live `&str`; the host copies it during the call.
    unsafe {
        imports::panic(message.as_ptr(), message.len())
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("weir guest panic: {message}");
}
