//! The one-line export of a transform function.

/// Exports a transform function as a Weir guest, with the partition columns it writes:
///
/// ```ignore
/// weir_guest_sdk::export!(transform, columns = ["section", "dt", "hr"]);
/// ```
///
/// The function has the signature `fn(&Record<'_>) -> Outcome`; every [`Partition`] it returns
/// must name exactly these columns, in this order (the host sends any other to the failed
/// location as `invalid_partition`). The columns are the layout of the lake table the transform
/// writes: a version with other columns writes another table. They are recorded in the module
/// (a `weir.partition_columns` custom section), so the registry reads them without running it.
///
/// On `wasm32` targets this expands to the ABI's entry points (`weir_v1_init`, `weir_v1_input`,
/// `weir_v1_transform`), which call the function once per record; elsewhere it expands to
/// nothing but a check of the function's signature, so `cargo test` calls the function like any
/// other. `export!(transform)` without columns builds a module the registry refuses.
///
/// Use it once per crate, in a crate built as a `cdylib` (add `rlib` too, so that tests and
/// other crates can call the function).
///
/// [`Partition`]: crate::Partition
#[macro_export]
macro_rules! export {
    ($transform:path, columns = [$($column:literal),+ $(,)?]) => {
        $crate::export!($transform);

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const COLUMNS: &str = concat!($($column, "\n"),+);
            #[used]
            #[unsafe(link_section = "weir.partition_columns")]
            static PARTITION_COLUMNS: [u8; COLUMNS.len()] = $crate::__abi::section(COLUMNS);
        };
    };
    ($transform:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(no_mangle)]
            extern "C" fn weir_v1_init() {
                $crate::__abi::init()
            }

            #[unsafe(no_mangle)]
            extern "C" fn weir_v1_input(len: i32) -> i32 {
                $crate::__abi::input(len)
            }

            #[unsafe(no_mangle)]
            extern "C" fn weir_v1_transform(
                data_len: i32,
                key_len: i32,
                seq_len: i32,
                arrival_ms: i64,
            ) -> i32 {
                $crate::__abi::transform(data_len, key_len, seq_len, arrival_ms, $transform)
            }
        };

        // Natively, refer to the function anyway: a wrong signature fails `cargo test` rather
        // than only the wasm build, and a private function is not reported as unused.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn(&$crate::Record<'_>) -> $crate::Outcome = $transform;
    };
}
